import pytest
import torch
from torch import nn

from lowering.export.passes.views import VIEWS
from tests.lowering.export.passes.conftest import export, ops, same_function


class ClassToken(nn.Module):
    """A ViT's stem and head: expand the class token to the batch, read it back by select."""

    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8))

    def forward(self, x):
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return tokens[:, 0] + tokens.mean(1).unsqueeze(1).squeeze(1)


class Broadcast(nn.Module):
    def forward(self, x, scores):
        return x * scores.expand_as(x)


@pytest.mark.parametrize(("model", "inputs"), [
    (ClassToken(), (torch.randn(1, 4, 8),)),
    (Broadcast(), (torch.randn(2, 3, 5), torch.randn(2, 1, 5))),
], ids=["class token", "broadcast"])
def test_selects_squeezes_and_needless_expands_go(model, inputs):
    program = export(model, *inputs)
    passed = VIEWS(program)
    assert not {"aten.select", "aten.squeeze", "aten.expand", "aten.expand_as"} & set(ops(passed))
    assert "aten.unsqueeze" not in ops(passed)
    same_function(program, passed, *inputs, atol=0)


def test_an_expand_that_copies_stays():
    program = export(ClassToken(), torch.randn(2, 4, 8))  # batch 2: the cat needs the copies
    passed = VIEWS(program)
    assert ops(passed).count("aten.expand") == 1 and "aten.select" not in ops(passed)
    same_function(program, passed, torch.randn(2, 4, 8), atol=0)


def test_an_unsqueeze_of_the_last_dimension_is_left_as_it_is():
    class Last(nn.Module):
        def forward(self, x):
            return x.unsqueeze(-1) * 2

    program = export(Last(), torch.randn(2, 3))
    assert VIEWS(program) is program
