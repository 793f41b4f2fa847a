import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lowering.export.passes.attention import ATTENTION
from tests.lowering.export.passes.conftest import export, ops, same_function, written_by


class Sdpa(nn.Module):
    def __init__(self, mask=None, scale=None):
        super().__init__()
        self.mask, self.scale = mask, scale

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask, scale=self.scale)


def _qkv(batch=(2, 3), tokens=7, keys=5, width=8):
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(*batch, tokens, width, generator=generator),
            torch.randn(*batch, keys, width, generator=generator),
            torch.randn(*batch, keys, 4, generator=generator))


@pytest.mark.parametrize(("mask", "scale"), [(None, None), (None, 0.3), (torch.randn(3, 7, 5), None)],
                         ids=["no mask", "scale", "float mask"])
def test_attention_becomes_3d_products_and_a_softmax(mask, scale):
    inputs = _qkv()
    program = export(Sdpa(mask, scale), *inputs)
    passed = ATTENTION(program)
    assert "aten.scaled_dot_product_attention" not in ops(passed)
    assert ops(passed).count("aten.bmm") == 2 and "aten.softmax" in ops(passed)
    assert written_by(passed, "attention")
    same_function(program, passed, *inputs)


def test_3d_attention_needs_no_reshape():
    inputs = _qkv(batch=(3,))
    passed = ATTENTION(export(Sdpa(), *inputs))
    assert "aten.reshape" not in ops(passed) and ops(passed).count("aten.bmm") == 2


@pytest.mark.parametrize("model", [Sdpa(mask=torch.ones(7, 5, dtype=torch.bool)), nn.Identity()],
                         ids=["boolean mask", "no attention"])
def test_other_attention_is_left_as_it_is(model):
    inputs = _qkv()
    program = export(model, *inputs) if not isinstance(model, nn.Identity) else export(model, inputs[0])
    assert ATTENTION(program) is program
