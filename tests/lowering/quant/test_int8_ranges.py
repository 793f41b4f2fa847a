"""Who sets int8 ranges decides which model each target lowers: RepQ-ViT's folded model
goes to the calibrated targets only."""

import pytest
import torch

from lowering.export import CalibrationSet, Target
from lowering.int8_ranges import lowering_groups
from lowering.sources import ModelInput

PLAIN = (Target("onnx", "fp32"), Target("onnx", "dynamic-int8"))
CALIBRATED = (Target("onnx", "int8"), Target("executorch", "int8"))


@pytest.fixture
def source(model):
    return ModelInput.from_registry_model(model)


def test_runtime_ranges_lower_every_target_from_the_model(source, images):
    (group,) = lowering_groups(source, PLAIN + CALIBRATED, CalibrationSet(images, "random"), "runtime")
    assert group.model is source and group.targets == PLAIN + CALIBRATED and group.calibrator is None


def test_repq_ranges_fold_the_model_of_the_calibrated_targets_only(source, images):
    calibration = CalibrationSet(images, "random")
    plain, folded = lowering_groups(source, CALIBRATED[:1] + PLAIN + CALIBRATED[1:], calibration, "repq")
    assert plain.model is source and plain.targets == PLAIN and plain.calibrator is None
    assert folded.model.model is not source.model and folded.targets == CALIBRATED
    assert (folded.model.source, folded.model.label) == (source.source, source.label)
    assert folded.calibrator.identity.startswith("repq-vit-ranges:")
    spec = folded.lowering_spec(seed=3)
    assert (spec.calibrator, spec.calibration, spec.seed) == (folded.calibrator, calibration, 3)


def test_repq_without_calibrated_targets_calibrates_nothing(source):
    (group,) = lowering_groups(source, PLAIN, None, "repq")
    assert group.model is source and group.calibrator is None


def test_unknown_range_source_is_refused(source):
    with pytest.raises(ValueError, match="runtime, repq"):
        lowering_groups(source, PLAIN, None, "magic")


def test_repq_on_a_model_outside_the_registry_folds_its_exported_graph(source, images):
    from dataclasses import replace

    program = replace(source, spec=None, source_kind="exported-program",
                      program=torch.export.export(source.model, (source.example,)))
    plain, folded = lowering_groups(program, PLAIN + CALIBRATED, CalibrationSet(images, "random"), "repq")
    assert plain.model is program and folded.model.program is not program.program
    assert folded.note.startswith("RepQ-ViT fold: ") and folded.calibrator.ranges
