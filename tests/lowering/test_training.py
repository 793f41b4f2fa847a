import json
from dataclasses import replace

import pytest
import torch

from lowering.models import InvalidSpecError, create
from lowering.training import TrainingError, TrainingSettings, demo_specs, train_or_load

TINY = dict(depth=1, embed_dim=48, img_size=16, patch_size=8, num_classes=10)
QUICK = TrainingSettings(epochs=2, batch_size=32, train_limit=96)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VITDEPLOY_CACHE", str(tmp_path))
    return tmp_path


def _equal_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_is_deterministic_and_the_cache_returns_the_same_weights(cache, monkeypatch):
    model, result = train_or_load("vit_tiny", QUICK, **TINY)
    assert not result.cache_hit and result.val_metric == "top1" and 0.0 <= result.val_value <= 1.0
    assert result.weights_path == cache / "weights" / f"{result.key}.safetensors"
    sidecar = json.loads(result.weights_path.with_suffix(".json").read_text())
    assert sidecar["val_value"] == result.val_value and sidecar["settings"]["epochs"] == 2

    cached, hit = train_or_load("vit_tiny", QUICK, **TINY)
    assert hit.cache_hit and hit.key == result.key and hit.val_value == result.val_value
    assert _equal_weights(model, cached)

    monkeypatch.setenv("VITDEPLOY_CACHE", str(cache / "elsewhere"))
    retrained, again = train_or_load("vit_tiny", QUICK, **TINY)
    assert not again.cache_hit and _equal_weights(model, retrained)


def test_other_seed_or_settings_train_a_different_model(cache):
    model, result = train_or_load("vit_tiny", QUICK, **TINY)
    other, other_result = train_or_load("vit_tiny", replace(QUICK, seed=1), **TINY)
    assert other_result.key != result.key and not _equal_weights(model, other)


def test_training_moves_the_weights_and_keeps_the_callers_rng(cache):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model, _ = train_or_load("vit_tiny", QUICK, **TINY)
    assert torch.equal(torch.rand(3), expected)
    untrained = create("vit_tiny", **TINY)
    assert not torch.equal(model.head.weight, untrained.head.weight)


def test_branched_model_trains_and_loads_back_branched(cache):
    model, result = train_or_load("vit_tiny", QUICK, **{**TINY, "branches": 2})
    cached, hit = train_or_load(result.spec, QUICK)
    assert hit.cache_hit and cached.spec.branches == 2 and _equal_weights(model, cached)


def test_wrong_class_count_or_mixed_arguments_are_errors(cache):
    with pytest.raises(TrainingError, match="num_classes=10"):
        train_or_load("vit_tiny", QUICK, **{**TINY, "num_classes": 1000})
    spec = demo_specs()[0]
    with pytest.raises(TrainingError, match="not both"):
        train_or_load(spec, QUICK, depth=2)


def test_demo_models_are_vit_tiny_at_the_four_layouts():
    specs = demo_specs()
    assert [(s.depth, s.branches) for s in specs] == [(12, 1), (6, 2), (4, 3), (3, 4)]
    assert {(s.embed_dim, s.num_heads, s.img_size, s.num_classes) for s in specs} == {(192, 3, 32, 10)}


def test_a_dcal_model_trains_its_pair_wise_branch_on_every_batch(cache, monkeypatch):
    from lowering.models.vit import VisionTransformer

    pairs = []
    original = VisionTransformer.forward_pair

    def counted(self, images, pair):
        pairs.append((images.shape[0], torch.equal(pair, images.roll(1, dims=0))))
        return original(self, images, pair)

    monkeypatch.setattr(VisionTransformer, "forward_pair", counted)
    model, _ = train_or_load("deit_tiny_dcal", QUICK, **{**TINY, "num_heads": 2, "head_dim": 24})
    assert pairs == [(32, True)] * 6  # 96 images in batches of 32, two epochs
    assert model.has_pair_wise_branch


def test_a_regression_model_must_have_one_output(cache):
    with pytest.raises(InvalidSpecError, match="regression model has one output: num_classes must be 1"):
        train_or_load("vit_autofocus", QUICK, img_size=16, patch_size=8, depth=1, num_classes=10)
