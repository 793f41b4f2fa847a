"""The models load timm checkpoints strictly and reproduce timm's logits."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lowering.models import VisionTransformer, create, resolve_spec

FIXTURES = Path(__file__).parents[2] / "fixtures" / "timm"
TIMM_NAMES = {
    "vit_tiny_patch16_224": "vit_tiny",
    "deit_tiny_patch16_224": "deit_tiny",
    "deit_tiny_distilled_patch16_224": "deit_tiny_distilled",
    "deit_small_patch16_224": "deit_small",
    "vit_small_patch16_224": "vit_small",
    "deit_base_patch16_224": "deit_base",
}


def _case(stem: str) -> tuple[str, Path, dict]:
    meta = json.loads((FIXTURES / f"{stem}.json").read_text())
    checkpoint = FIXTURES / f"{stem}.{meta['format']}"
    return TIMM_NAMES[meta["timm_name"]], checkpoint, meta


@pytest.mark.parametrize("stem", ["vit_tiny_d1_32px", "deit_tiny_d2_48px"])
def test_fixture_checkpoint_reproduces_timm_logits(stem):
    name, checkpoint, meta = _case(stem)
    model = create(name, checkpoint=checkpoint)
    images = torch.from_numpy(np.load(FIXTURES / f"{stem}.input.npy"))
    expected = np.load(FIXTURES / f"{stem}.logits.npy")
    with torch.no_grad():
        logits = model(images).numpy()
    assert logits.shape == tuple(meta["logits_shape"])
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)
    assert sum(p.numel() for p in model.parameters()) == meta["params"]


@pytest.mark.parametrize("stem", ["vit_tiny_d1_32px", "deit_tiny_d2_48px"])
def test_shapes_are_inferred_from_the_checkpoint(stem):
    name, checkpoint, meta = _case(stem)
    spec = create(name, checkpoint=checkpoint).spec
    assert spec.depth == meta["overrides"]["depth"]
    assert spec.img_size == meta["overrides"]["img_size"]
    assert spec.num_classes == meta["overrides"]["num_classes"]


@pytest.mark.parametrize("timm_name", sorted(TIMM_NAMES))
def test_state_dict_keys_and_shapes_match_timm(timm_name):
    reference = json.loads((FIXTURES / "state_dict_keys.json").read_text())[timm_name]
    with torch.device("meta"):
        model = VisionTransformer(resolve_spec(TIMM_NAMES[timm_name]))
    state = model.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == reference["state_dict"]
    assert sum(v.numel() for v in state.values()) == reference["params"]


def test_distilled_model_averages_its_two_heads():
    model = create("deit_tiny_distilled", depth=1, img_size=32, num_classes=5)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = model.forward_features(images)
        expected = (model.head(features[:, 0]) + model.head_dist(features[:, 1])) / 2
        torch.testing.assert_close(model(images), expected)
        assert not torch.allclose(model.head(features[:, 0]), expected)


def test_numerics_follow_timm():
    model = create("vit_tiny", depth=1, img_size=32)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(n.eps == 1e-6 for n in norms)
    gelus = [m for m in model.modules() if isinstance(m, torch.nn.GELU)]
    assert gelus and all(g.approximate == "none" for g in gelus)
    assert model.blocks[0].attn.qkv.bias is not None
