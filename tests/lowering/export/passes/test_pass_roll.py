import torch
from torch import nn

from lowering.export.passes.roll import ROLL
from tests.lowering.export.passes.conftest import export, ops, same_function


class Shift(nn.Module):
    def __init__(self, shifts, dims):
        super().__init__()
        self.shifts, self.dims = shifts, dims

    def forward(self, x):
        return torch.roll(x, self.shifts, self.dims) * 2


def test_roll_becomes_slices_and_cats_exactly():
    x = torch.randn(1, 7, 7, 4)
    for shifts, dims in [((-3, -3), (1, 2)), ((3, 9), (1, 2)), ((7,), (1,))]:
        program = export(Shift(shifts, dims), x)
        passed = ROLL(program)
        assert "aten.roll" not in ops(passed)
        same_function(program, passed, x, atol=0)


def test_a_flat_roll_is_left_as_it_is():
    program = export(Shift(3, None), torch.randn(2, 5))
    assert ROLL(program) is program
