import torch
from torch import nn

from lowering.export.passes.splits import SPLITS
from tests.lowering.export.passes.conftest import export, ops, same_function


class Pieces(nn.Module):
    def forward(self, x):
        q, k, v = x.reshape(2, 3, 3, 4).permute(1, 0, 2, 3).unbind(0)
        a, b = x.chunk(2, dim=-1)
        c, _, e = x.split([3, 4, 5], dim=-1)
        return (q + k * v).sum() + (a * b).sum() + c.sum() * e.mean()


def test_multi_output_ops_become_slices():
    x = torch.randn(2, 3, 12)
    program = export(Pieces(), x)
    passed = SPLITS(program)
    assert not {"aten.unbind", "aten.chunk", "aten.split_with_sizes"} & set(ops(passed))
    assert ops(passed).count("aten.slice") == 7  # the unused piece of the split is not sliced
    same_function(program, passed, x, atol=0)


def test_a_program_without_them_is_left_as_it_is():
    program = export(nn.Linear(3, 4), torch.randn(2, 3))
    assert SPLITS(program) is program
