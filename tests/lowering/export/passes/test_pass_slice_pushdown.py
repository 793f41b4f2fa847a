import torch
from torch import nn

from lowering.export.passes.slice_pushdown import SLICE_PUSHDOWN
from tests.lowering.export.passes.conftest import export, ops, same_function


class ChunkedQkv(nn.Module):
    """A qkv linear computed in three output chunks, concatenated and split into heads again."""

    def __init__(self):
        super().__init__()
        self.parts = nn.ModuleList(nn.Linear(8, 12) for _ in range(3))

    def forward(self, x):
        heads = torch.cat([part(x) for part in self.parts], dim=-1).reshape(1, 5, 3, 2, 6).permute(2, 0, 3, 1, 4)
        q, k, v = (heads[i : i + 1] for i in range(3))
        return q * k + v


def test_slices_of_a_concatenation_read_their_own_part():
    x = torch.randn(1, 5, 8)
    program = export(ChunkedQkv(), x)
    passed = SLICE_PUSHDOWN(program)
    assert "aten.cat" not in ops(passed) and "aten.slice" not in ops(passed)
    assert ops(passed).count("aten.permute") == 3
    same_function(program, passed, x, atol=0)


def test_a_slice_of_an_input_used_otherwise_stays():
    class Shared(nn.Module):
        def forward(self, x):
            y = x.permute(1, 0)
            return y[:2] * 2, y

    program = export(Shared(), torch.randn(3, 4))
    assert SLICE_PUSHDOWN(program) is program


def test_slices_that_reach_no_concatenation_stay():
    class Unchunked(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(8, 36)

        def forward(self, x):
            heads = self.qkv(x).reshape(1, 5, 3, 2, 6).permute(2, 0, 3, 1, 4)
            return heads[0:1] * heads[1:2] + heads[2:3]

    program = export(Unchunked(), torch.randn(1, 5, 8))
    assert SLICE_PUSHDOWN(program) is program
