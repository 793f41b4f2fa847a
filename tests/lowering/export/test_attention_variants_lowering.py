"""ReLU and scaling attention, grouped-query attention with equal and unequal groups, and
gated class attention (its gates folded on the way) lower to every backend, verified
against the eager model.

The models are trained briefly on the digits: int8 of a randomly initialized ReLU
attention loses too much (cosine 0.87) to say anything about the variant."""

import pytest

from lowering.data import calibration_set
from lowering.export import CalibrationSet, LoweringSpec, Target, lower_model
from lowering.training import TrainingSettings, train_or_load

TARGETS = tuple(Target(*t.split("/")) for t in
                ("executorch/fp32", "executorch/int8", "onnx/fp32", "onnx/int8", "coreml/fp32"))
BRIEF = TrainingSettings(epochs=2, batch_size=32, train_limit=256)


@pytest.mark.parametrize("name, overrides", [
    ("deit_tiny_relu_attn", {}),
    ("deit_tiny_scaling_attn", {}),
    ("deit_small_gqa", {}),
    ("deit_tiny", {"kv_heads": 2, "query_groups": ((2, 1), (1, 2))}),
    ("deit_tiny_gated_class_attn", {"task": 1}),
])
def test_an_attention_variant_lowers_and_verifies_on_every_backend(name, overrides, artifact_cache):
    model, _ = train_or_load(name, BRIEF, depth=2, img_size=32, num_classes=10, **overrides)
    images, description = calibration_set(model.spec, num_images=16)
    spec = LoweringSpec(targets=TARGETS, calibration=CalibrationSet(images, description))
    artifacts = {str(a.target): a.manifest for a in lower_model(model, spec, cache=artifact_cache)}
    assert set(artifacts) == {str(target) for target in TARGETS}
    for target, manifest in artifacts.items():
        verification = manifest.verification
        if target == "coreml/fp32":
            assert verification["spec_check"]["passed"], verification
        else:
            assert verification["passed"], (target, verification)
    delegation = artifacts["executorch/fp32"].delegation
    assert delegation["num_delegates"] == 1 and not delegation["fallback_ops"], delegation["fallback_ops"]
