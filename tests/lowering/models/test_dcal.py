"""DCAL: attention rollout, top-R token selection, global-local cross-attention, and the
pair-wise branch removed exactly at lowering."""

import pytest
import torch

from deploy.cli import main
from lowering.models import InvalidSpecError, ModelSpec, create, resolve_spec
from lowering.models.dcal import (
    PairWiseCrossAttention,
    blocks_with_attention,
    local_tokens,
    rollout_response,
    select_tokens,
)
from lowering.reparam import reparameterize

SMALL = dict(img_size=32, patch_size=8, depth=3, num_classes=10)  # 16 patches


def small_dcal(**overrides):
    torch.manual_seed(0)
    return create("deit_tiny_dcal", **{**SMALL, **overrides}).eval()


def test_rollout_is_the_class_row_of_the_product_of_the_mixed_attention():
    torch.manual_seed(0)
    maps = [torch.rand(2, 5, 5).softmax(dim=-1) for _ in range(3)]
    eye = torch.eye(5)
    mixed = [0.5 * a + 0.5 * eye for a in maps]
    mixed = [m / m.sum(dim=-1, keepdim=True) for m in mixed]
    product = mixed[2] @ mixed[1] @ mixed[0]
    torch.testing.assert_close(rollout_response(maps, eye), product[:, 0, 1:], rtol=0, atol=1e-6)


def test_the_blocks_attention_maps_are_their_head_averaged_softmax():
    model = small_dcal()
    x = model.embed(torch.randn(1, 3, 32, 32))
    tokens, maps = blocks_with_attention(model.blocks, x)
    torch.testing.assert_close(tokens, model.blocks(x), rtol=0, atol=1e-6)
    attn = model.blocks[0].attn
    q, k, _ = attn.split_heads(attn.qkv(model.blocks[0].norm1(x)))
    direct = (q @ k.transpose(-2, -1) * attn.scale).softmax(dim=-1).mean(dim=1)
    assert len(maps) == 3
    torch.testing.assert_close(maps[0], direct, rtol=0, atol=1e-6)


def test_the_highest_response_tokens_are_selected_highest_first():
    tokens = torch.arange(2 * 6 * 4, dtype=torch.float32).reshape(2, 6, 4)
    response = torch.tensor([[0.1, 0.9, 0.3, 0.8, 0.0, 0.2], [0.5, 0.1, 0.2, 0.3, 0.4, 0.6]])
    selected = select_tokens(tokens, response, 2)
    torch.testing.assert_close(selected[0], tokens[0, [1, 3]])
    torch.testing.assert_close(selected[1], tokens[1, [5, 0]])


def test_r_is_the_local_ratio_of_the_patches_and_at_least_one():
    assert local_tokens(resolve_spec("deit_tiny_dcal")) == 19
    assert local_tokens(resolve_spec("deit_tiny_dcal", **SMALL, local_ratio=0.25)) == 4
    assert local_tokens(resolve_spec("deit_tiny_dcal", img_size=32, patch_size=16, local_ratio=0.1)) == 1


def test_the_glca_head_reads_only_the_selected_tokens_as_queries():
    model = small_dcal(local_ratio=0.25)
    images = torch.randn(1, 3, 32, 32)
    tokens, maps = blocks_with_attention(model.blocks, model.embed(images))
    response = rollout_response(maps, model.glca.identity)
    chosen = response.topk(4).indices[0] + 1
    local = torch.cat([tokens[:, :1], tokens[:, chosen]], dim=1)
    for block in model.glca.blocks:
        local = block(local, tokens)
    expected = model.glca.head(model.glca.norm(local).mean(dim=1))
    torch.testing.assert_close(model.glca(tokens, maps), expected, rtol=0, atol=1e-6)
    sa = model.head(model.norm(tokens)[:, 0])
    torch.testing.assert_close(model(images), (sa + expected) / 2, rtol=0, atol=1e-6)


def test_pair_wise_cross_attention_attends_to_the_second_image_too():
    model = small_dcal()
    images, other = torch.randn(2, 1, 3, 32, 32)
    sa = model.head(model.norm(model.blocks(model.embed(images)))[:, 0])
    # Its own keys twice: every softmax weight halves and the output stays SA's.
    torch.testing.assert_close(model.forward_pair(images, images), sa, rtol=0, atol=1e-5)
    assert not torch.allclose(model.forward_pair(images, other), sa, atol=1e-3)


def _module_paths(program: torch.export.ExportedProgram) -> set[str]:
    return {path for node in program.graph.nodes for path, _ in (node.meta.get("nn_module_stack") or {}).values()}


class _PairForward(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images, pair):
        return self.model.forward_pair(images, pair)


def test_removing_the_pair_wise_branch_is_exact_and_leaves_no_pwca_ops():
    model = small_dcal()
    assert model.spec.pair_wise and model.spec.has_training_structure
    x = torch.randn(2, 3, 32, 32)
    assert any("pair_wise" in path for path in _module_paths(torch.export.export(_PairForward(model), (x[:1], x[1:]))))
    deployed = reparameterize(model)
    assert not any(isinstance(module, PairWiseCrossAttention) for module in deployed.modules())
    assert not deployed.spec.pair_wise and not deployed.spec.has_training_structure
    assert deployed.state_dict().keys() == model.state_dict().keys()
    torch.testing.assert_close(deployed(x), model(x), rtol=0, atol=1e-6)
    assert not any("pair_wise" in path for path in _module_paths(torch.export.export(deployed, (x[:1],))))
    with pytest.raises(ValueError, match="no pair-wise cross-attention branch"):
        deployed.forward_pair(x, x)


def test_the_spec_round_trips_and_other_models_keep_their_defaults():
    spec = resolve_spec("deit_tiny_dcal", **SMALL, local_ratio=0.25)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    model = create("deit_tiny_dcal", **spec.overrides())
    assert model.spec == spec
    rebuilt = create(spec.name, **reparameterize(model).spec.overrides())
    assert rebuilt.state_dict().keys() == model.state_dict().keys() and not rebuilt.spec.pair_wise
    plain = resolve_spec("deit_tiny")
    assert (plain.glca_blocks, plain.pair_wise) == (0, False)
    assert not any(key.startswith("glca") for key in create("deit_tiny", **SMALL).state_dict())


@pytest.mark.parametrize("overrides, message", [
    ({"glca_blocks": 0}, "give glca_blocks too"),
    ({"local_ratio": 0.0}, "local_ratio must be in"),
    ({"pair_wise": 1}, "pair_wise must be true or false"),
    ({"attention": ("scaling",)}, "rollout multiplies attention probabilities"),
    ({"kv_heads": 1}, "drop kv_heads"),
    ({"branches": 2}, "drop branches"),
])
def test_dcal_refuses_what_it_cannot_build(overrides, message):
    with pytest.raises(InvalidSpecError, match=message):
        resolve_spec("deit_tiny_dcal", **overrides)


def test_vitdeploy_models_lists_it(capsys):
    assert main(["models", "deit_tiny_dcal"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows[0][:3] == ["deit_tiny_dcal", "registry", "224"]
