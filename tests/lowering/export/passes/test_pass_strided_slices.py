import torch
from torch import nn

from lowering.export.passes.strided_slices import STRIDED_SLICES
from tests.lowering.export.passes.conftest import export, ops, same_function


class Subsample(nn.Module):
    """LeViT's subsampling of a square token grid, at an even and an odd resolution."""

    def forward(self, even, odd):
        return torch.cat([even[:, ::2, ::2].flatten(), odd[:, 1::3, ::2].flatten(), odd[:, -2::4].flatten()])


def test_step_slices_become_unit_slices_and_views_exactly():
    even, odd = torch.randn(1, 14, 14, 4), torch.randn(1, 7, 7, 4)
    program = export(Subsample(), even, odd)
    passed = STRIDED_SLICES(program)
    steps = [n for n in passed.graph.nodes if n.target == torch.ops.aten.slice.Tensor and len(n.args) > 4]
    assert all(n.args[4] == 1 for n in steps) and "aten.cat" in ops(passed)
    same_function(program, passed, even, odd, atol=0)


def test_unit_slices_are_left_as_they_are():
    class Crop(nn.Module):
        def forward(self, x):
            return x[:, 1:3]

    program = export(Crop(), torch.randn(2, 5))
    assert STRIDED_SLICES(program) is program
