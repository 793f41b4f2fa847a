"""The regression ViT (one output, judged by its mean absolute error) trains on the digits'
values, lowers to every backend verified, and its artifacts are evaluated by its metric."""

import numpy as np
import pytest

from deploy.evaluate import EvaluationError, evaluate_artifact, evaluate_model, evaluation_dataset
from lowering.data import calibration_set, verification_images
from lowering.export import CalibrationSet, LoweringSpec, Target, lower_model
from lowering.models import create
from lowering.training import TrainingSettings, train_or_load

TARGETS = tuple(Target(*t.split("/")) for t in
                ("executorch/fp32", "executorch/int8", "onnx/fp32", "onnx/int8", "coreml/fp32"))
FIT = TrainingSettings(epochs=10, batch_size=32)
SMALL = {"depth": 2, "img_size": 32}


@pytest.fixture(scope="module")
def trained():
    return train_or_load("vit_autofocus", FIT, **SMALL)


def test_the_full_size_model_has_the_papers_parameter_count():
    model = create("vit_autofocus")
    assert sum(p.numel() for p in model.parameters()) == 4_065_537
    assert model.spec.metric.name == "mae" and not model.spec.metric.higher_is_better


def test_training_fits_the_digit_value_and_reports_its_error(trained):
    model, result = trained
    assert result.val_metric == "mae"
    # Predicting the median digit for every image errs by 2.5 on average; ten epochs halve that.
    assert 0 < result.val_value < 1.25
    assert "val MAE" in result.headline


def test_it_lowers_to_every_backend_and_is_evaluated_by_its_error(trained, artifact_cache):
    model, _ = trained
    images, description = calibration_set(model.spec, num_images=16)
    # Verified on digits, as a sweep does: random inputs barely move a regression output,
    # so int8 noise would swamp their correlation.
    spec = LoweringSpec(targets=TARGETS, calibration=CalibrationSet(images, description),
                        verification_images=verification_images(model.spec))
    artifacts = {str(a.target): a for a in lower_model(model, spec, cache=artifact_cache)}
    for target, artifact in artifacts.items():
        verification = artifact.manifest.verification
        if target == "coreml/fp32":
            assert verification["spec_check"]["passed"], verification
        else:
            assert verification["passed"], (target, verification)
    assert artifacts["executorch/fp32"].manifest.delegation["num_delegates"] == 1
    eager = evaluate_model(model, evaluation_dataset(model.spec, limit=64))
    deployed = evaluate_artifact(artifacts["onnx/fp32"].path, limit=64)
    assert (eager.metric, deployed.metric, deployed.top1, deployed.unit) == ("mae", "mae", None, "target")
    assert deployed.value == pytest.approx(eager.value, abs=1e-4)
    assert len(deployed.image_errors) == 64 and deployed.value == pytest.approx(np.mean(deployed.image_errors))


def test_an_embedding_model_is_refused_by_evaluation_with_the_reason():
    model = create("vit_tiny_clip", img_size=32, depth=1)
    with pytest.raises(EvaluationError, match="embedding.*cosine similarity"):
        evaluate_model(model, evaluation_dataset(model.spec, limit=8))
