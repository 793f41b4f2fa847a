import torch
from torch import nn

from lowering.export.passes.group_norm import GROUP_NORM
from tests.lowering.export.passes.conftest import export, module_paths, ops, same_function, written_by


class Grouped(nn.Module):
    def __init__(self, groups):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.norm = nn.GroupNorm(groups, 8)
        self.norm.weight.data.uniform_(0.5, 1.5)
        self.norm.bias.data.normal_(0, 0.1)

    def forward(self, x):
        return self.norm(self.conv(x))


def test_group_norm_becomes_averaging_linears_per_group():
    x = torch.randn(2, 3, 9, 9) * 2 + 1
    for groups in (1, 4):
        program = export(Grouped(groups), x)
        passed = GROUP_NORM(program)
        assert "aten.group_norm" not in ops(passed) and ops(passed).count("aten.linear") == 2
        assert module_paths(written_by(passed, "group_norm")) == {"norm"}
        same_function(program, passed, x)


def test_a_program_without_group_norm_is_left_as_it_is():
    program = export(nn.LayerNorm(4), torch.randn(2, 4))
    assert GROUP_NORM(program) is program
