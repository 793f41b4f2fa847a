"""Who sets int8 ranges decides which model each target lowers: RepQ-ViT's folded model
goes to the calibrated targets only."""

import pytest

from lowering.export import CalibrationSet, Target
from lowering.int8_ranges import lowering_groups

PLAIN = (Target("onnx", "fp32"), Target("onnx", "dynamic-int8"))
CALIBRATED = (Target("onnx", "int8"), Target("executorch", "int8"))


def test_runtime_ranges_lower_every_target_from_the_model(model, images):
    (group,) = lowering_groups(model, PLAIN + CALIBRATED, CalibrationSet(images, "random"), "runtime")
    assert group.model is model and group.targets == PLAIN + CALIBRATED and group.calibrator is None


def test_repq_ranges_fold_the_model_of_the_calibrated_targets_only(model, images):
    calibration = CalibrationSet(images, "random")
    plain, folded = lowering_groups(model, CALIBRATED[:1] + PLAIN + CALIBRATED[1:], calibration, "repq")
    assert plain.model is model and plain.targets == PLAIN and plain.calibrator is None
    assert folded.model is not model and folded.targets == CALIBRATED
    assert folded.calibrator.identity.startswith("repq-vit-ranges:")
    spec = folded.lowering_spec(seed=3)
    assert (spec.calibrator, spec.calibration, spec.seed) == (folded.calibrator, calibration, 3)


def test_repq_without_calibrated_targets_calibrates_nothing(model):
    (group,) = lowering_groups(model, PLAIN, None, "repq")
    assert group.model is model and group.calibrator is None


def test_unknown_range_source_is_refused(model):
    with pytest.raises(ValueError, match="runtime, repq"):
        lowering_groups(model, PLAIN, None, "magic")
