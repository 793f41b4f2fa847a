"""Attention variants per block (MPCViT's space): softmax, ReLU and scaling attention."""

import pytest
import torch

from lowering.models import InvalidSpecError, create, list_models, resolve_spec
from lowering.models.layers import RELU_ATTENTION_EPS, Attention
from lowering.reparam import reparameterize


def _reference(attention: Attention, x: torch.Tensor) -> torch.Tensor:
    """The textbook formula of each kind: weights of q k^T / sqrt(d), then times v."""
    batch, tokens, _ = x.shape
    q, k, v = attention.qkv(x).reshape(batch, tokens, 3, attention.num_heads, -1).permute(2, 0, 3, 1, 4)
    scores = q @ k.transpose(-2, -1) / attention.head_dim**0.5
    if attention.kind == "softmax":
        weights = scores.softmax(-1)
    elif attention.kind == "relu":
        weights = scores.relu() / torch.maximum(scores.relu().sum(-1, keepdim=True), torch.tensor(RELU_ATTENTION_EPS))
    else:
        weights = scores / tokens
    return attention.proj((weights @ v).transpose(1, 2).reshape(batch, tokens, -1))


@pytest.mark.parametrize("kind", ["softmax", "relu", "scaling"])
@pytest.mark.parametrize("tokens", [5, 40])  # fewer and more tokens than the 16 head features
def test_each_kind_computes_its_formula(kind, tokens):
    torch.manual_seed(0)
    attention = Attention(32, 2, 16, kind).eval()
    x = torch.randn(2, tokens, 32)
    torch.testing.assert_close(attention(x), _reference(attention, x), rtol=1e-5, atol=1e-6)


def test_scaling_attention_multiplies_keys_and_values_first_when_that_is_cheaper():
    from lowering.models import count_macs

    torch.manual_seed(0)
    many_tokens = {kind: create("deit_tiny", img_size=224, depth=1, attention=kind) for kind in ("softmax", "scaling")}
    macs = {kind: count_macs(model, (1, 3, 224, 224)) for kind, model in many_tokens.items()}
    tokens, heads, width = 197, 3, 64
    assert macs["softmax"] - macs["scaling"] == 2 * heads * (tokens * tokens * width - tokens * width * width)


def test_a_spec_names_the_attention_of_every_block_or_of_each():
    spec = resolve_spec("deit_tiny", depth=3, attention="softmax, relu,scaling")
    assert spec.attention == ("softmax", "relu", "scaling") and spec.block_attention(2) == "scaling"
    model = create("deit_tiny", img_size=32, depth=3, attention=["relu", "relu", "scaling"])
    assert [block.attn.kind for block in model.blocks] == ["relu", "relu", "scaling"]
    assert model.spec.attention == ("relu", "relu", "scaling")
    assert create("deit_tiny_relu_attn", img_size=32, depth=2).spec.attention == ("relu",)
    assert {"deit_tiny_relu_attn", "deit_tiny_scaling_attn"} <= set(list_models())
    with pytest.raises(InvalidSpecError, match="one of softmax, relu, scaling for every block, or one per block"):
        resolve_spec("deit_tiny", attention="cosine")
    with pytest.raises(InvalidSpecError, match=r"or one per block \(12\)"):
        resolve_spec("deit_tiny", attention="relu,softmax")


def test_branches_of_relu_and_scaling_attention_merge_exactly():
    torch.manual_seed(0)
    branched = create("vit_tiny", img_size=32, patch_size=8, depth=2, branches=3, attention="relu,scaling").eval()
    merged = reparameterize(branched)
    assert merged.spec.attention == ("relu", "scaling") and merged.spec.branches == 1
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(merged(x), branched(x), rtol=1e-5, atol=1e-5)
