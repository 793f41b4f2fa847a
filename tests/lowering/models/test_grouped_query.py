"""Grouped-query attention: the layer, the spec, and the conversion from multi-head checkpoints."""

import pytest
import torch

from lowering.models import InvalidSpecError, count_params, create, resolve_spec
from lowering.models.grouped_query import key_norms, to_grouped_query
from lowering.models.layers import GroupedQueryAttention

SMALL = dict(img_size=32, patch_size=16, depth=2, num_classes=10)


def _expanded_reference(attention: GroupedQueryAttention, x: torch.Tensor) -> torch.Tensor:
    """Multi-head softmax attention with each key and value head repeated for its queries."""
    batch, tokens, _ = x.shape
    heads, kv, width = attention.num_heads, len(attention.groups), attention.head_dim
    qkv = attention.qkv(x)
    q = qkv[..., : heads * width].reshape(batch, tokens, heads, width).transpose(1, 2)
    k, v = (qkv[..., (heads + i * kv) * width : (heads + (i + 1) * kv) * width].reshape(batch, tokens, kv, width)
            .transpose(1, 2).repeat_interleave(torch.tensor(attention.groups), dim=1) for i in (0, 1))
    weights = (q @ k.transpose(-2, -1) / width**0.5).softmax(-1)
    return attention.proj((weights @ v).transpose(1, 2).reshape(batch, tokens, -1))


@pytest.mark.parametrize("groups", [(2, 2), (3, 1), (1, 1, 1, 1), (4,)])
def test_grouped_query_attention_is_multi_head_attention_over_shared_keys(groups):
    torch.manual_seed(0)
    attention = GroupedQueryAttention(32, 4, 8, groups).eval()
    x = torch.randn(2, 7, 32)
    torch.testing.assert_close(attention(x), _expanded_reference(attention, x), rtol=1e-5, atol=1e-6)


def test_a_spec_with_kv_heads_builds_fewer_parameters_and_checks_its_groups():
    assert count_params(create("deit_small_gqa", **SMALL)) < count_params(create("deit_small", **SMALL))
    spec = resolve_spec("deit_tiny", depth=2, kv_heads=2, query_groups=((2, 1), (1, 2)))
    assert spec.block_query_groups(1) == (1, 2) and resolve_spec("deit_small_gqa").block_query_groups(0) == (3, 3)
    with pytest.raises(InvalidSpecError, match="do not split evenly over 2 kv_heads"):
        resolve_spec("deit_tiny", kv_heads=2)
    with pytest.raises(InvalidSpecError, match="adding up to 3 heads"):
        resolve_spec("deit_tiny", depth=1, kv_heads=2, query_groups=((2, 2),))
    with pytest.raises(InvalidSpecError, match="unbranched"):
        resolve_spec("deit_tiny", kv_heads=3, branches=2)


def test_converting_with_as_many_kv_heads_as_heads_is_exact():
    torch.manual_seed(0)
    model = create("deit_small", **SMALL).eval()
    converted = to_grouped_query(model, kv_heads=6)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(converted(x), model(x), rtol=1e-5, atol=1e-6)
    assert converted.spec.kv_heads == 6 and count_params(converted) == count_params(model)


def test_mean_pooling_is_exact_when_a_groups_heads_share_their_keys_and_values():
    torch.manual_seed(0)
    model = create("deit_small", **SMALL).eval()
    with torch.no_grad():
        for block in model.blocks:
            weight, bias = block.attn.qkv.weight, block.attn.qkv.bias
            for part in (1, 2):  # keys, values: heads 0-2 and 3-5 made alike
                rows = weight[part * 384 : (part + 1) * 384].view(2, 3, 64, -1)
                rows[:] = rows[:, :1].clone()
                bias[part * 384 : (part + 1) * 384].view(2, 3, 64)[:] = bias[part * 384 : (part + 1) * 384].view(2, 3, 64)[:, :1].clone()
    converted = to_grouped_query(model, kv_heads=2)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(converted(x), model(x), rtol=1e-5, atol=1e-5)
    assert converted.spec.kv_heads == 2 and converted.spec.query_groups == ()


def test_the_key_norm_allocation_gives_the_stronger_key_head_more_queries_and_is_frozen_in_the_spec():
    torch.manual_seed(0)
    model = create("deit_small", **SMALL).eval()
    with torch.no_grad():
        model.blocks[1].attn.qkv.weight[384 : 384 + 192] *= 20  # block 1: the first group's keys dominate
    images = torch.randn(4, 3, 32, 32)
    converted = to_grouped_query(model, kv_heads=2, allocation="key-norm", images=images)
    groups = converted.spec.query_groups
    assert len(groups) == 2 and all(sum(g) == 6 and min(g) >= 1 for g in groups)
    assert groups[1][0] > groups[1][1]
    norms = key_norms(converted, images)
    assert norms[1][0] > norms[1][1]
    rebuilt = create("deit_small", **converted.spec.overrides())
    rebuilt.load_state_dict(converted.state_dict())
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(rebuilt.eval()(x), converted(x))


def test_fake_quant_simulation_refuses_grouped_query_attention():
    from lowering.quant import QuantConfig, fake_quantize
    from lowering.quant.simulate import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="grouped-query attention"):
        fake_quantize(create("deit_small_gqa", **SMALL), QuantConfig())
