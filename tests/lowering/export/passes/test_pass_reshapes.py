import torch
from torch import nn

from lowering.export.passes.reshapes import RESHAPES
from tests.lowering.export.passes.conftest import export, ops, same_function


class Chain(nn.Module):
    """Scores [heads, tokens, tokens] viewed 4-D for a softmax, then 3-D again."""

    def forward(self, scores, values):
        weights = scores.reshape(1, 3, 5, 5).softmax(-1).reshape(3, 5, 5)
        return torch.bmm(weights, values).reshape(1, 3, 5, 4).reshape(1, 15, 4).view(15, 4)


def test_chains_of_reshapes_collapse_and_the_softmax_stays_3d():
    scores, values = torch.randn(3, 5, 5), torch.randn(3, 5, 4)
    program = export(Chain(), scores, values)
    passed = RESHAPES(program)
    assert ops(passed) == ["aten.softmax", "aten.bmm", "aten.reshape"]
    same_function(program, passed, scores, values, atol=0)


def test_a_softmax_over_a_changed_last_dimension_and_single_reshapes_are_left_as_they_are():
    class Flat(nn.Module):
        def forward(self, x):
            return x.reshape(3, 10).softmax(-1)

    program = export(Flat(), torch.randn(3, 5, 2))
    assert RESHAPES(program) is program
