import torch
from torch import nn

from lowering.export.passes.group_norm import GROUP_NORM, group_averaging
from tests.lowering.export.passes.conftest import export, module_paths, ops, same_function, written_by


class Grouped(nn.Module):
    def __init__(self, groups, conv=nn.Conv2d):
        super().__init__()
        self.conv = conv(3, 8, 3)
        self.norm = nn.GroupNorm(groups, 8)
        self.norm.weight.data.uniform_(0.5, 1.5)
        self.norm.bias.data.normal_(0, 0.1)

    def forward(self, x):
        return self.norm(self.conv(x))


def test_group_norm_of_images_becomes_spatial_means_and_group_averaging_convolutions():
    x = torch.randn(2, 3, 9, 9) * 2 + 1
    for groups in (1, 4, 8):
        program = export(Grouped(groups), x)
        passed = GROUP_NORM(program)
        found = ops(passed)
        assert "aten.group_norm" not in found and found.count("aten.mean") == 2
        assert found.count("aten.conv2d") == 3 and "aten.linear" not in found and "aten.reshape" not in found
        assert module_paths(written_by(passed, "group_norm")) == {"norm"}
        same_function(program, passed, x, atol=2e-6)


def test_group_norm_of_other_ranks_becomes_averaging_linears_per_group():
    x = torch.randn(2, 3, 12) * 2 + 1
    for groups in (1, 4):
        program = export(Grouped(groups, nn.Conv1d), x)
        passed = GROUP_NORM(program)
        assert "aten.group_norm" not in ops(passed) and ops(passed).count("aten.linear") == 2
        assert "aten.mean" not in ops(passed)
        same_function(program, passed, x, atol=2e-6)


def test_group_averaging_averages_each_groups_channels():
    weight = group_averaging(6, 2, torch.float32)
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert torch.nn.functional.conv2d(x, weight).flatten().tolist() == [1.0, 1.0, 1.0, 4.0, 4.0, 4.0]


def test_a_program_without_group_norm_is_left_as_it_is():
    program = export(nn.LayerNorm(4), torch.randn(2, 4))
    assert GROUP_NORM(program) is program
