"""DCAL lowers to every backend and verifies: the pair-wise branch removed (the manifest
says so), top-k and its gather the only work outside XNNPACK, which runs the rest in two
delegates.

Trained briefly on the digits, as the other attention variants are: int8 of a random
initialization says little about the model."""

import pytest

from lowering.data import calibration_set
from lowering.export import CalibrationSet, LoweringSpec, Target, lower_model
from lowering.int8_ranges import lowering_groups
from lowering.models.dcal import PAIR_WISE_BRANCH
from lowering.quant.simulate import UnsupportedModelError
from lowering.sources.model_input import ModelInput
from lowering.training import TrainingSettings, train_or_load

TARGETS = tuple(Target(*t.split("/")) for t in
                ("executorch/fp32", "executorch/int8", "onnx/fp32", "onnx/int8", "coreml/fp32"))
BRIEF = TrainingSettings(epochs=2, batch_size=32, train_limit=256)
# 16 patches, 4 of them selected.
SMALL = dict(depth=2, img_size=32, patch_size=8, num_classes=10, local_ratio=0.25)
# What runs on ExecuTorch's portable kernels: the selection and its index plumbing.
PORTABLE = {"aten.topk", "aten.gather", "aten.unsqueeze_copy", "aten.expand_copy"}


@pytest.fixture(scope="module")
def dcal_model():
    model, _ = train_or_load("deit_tiny_dcal", BRIEF, **SMALL)
    images, description = calibration_set(model.spec, num_images=16)
    return model, CalibrationSet(images, description)


@pytest.fixture(scope="module")
def lowered(dcal_model, artifact_cache):
    model, calibration = dcal_model
    spec = LoweringSpec(targets=TARGETS, calibration=calibration)
    return {str(a.target): a.manifest for a in lower_model(model, spec, cache=artifact_cache)}


def test_dcal_lowers_and_verifies_on_every_backend(lowered):
    assert set(lowered) == {str(target) for target in TARGETS}
    for target, manifest in lowered.items():
        verification = manifest.verification
        passed = verification["spec_check"]["passed"] if target == "coreml/fp32" else verification["passed"]
        assert passed, (target, verification)


def test_the_manifest_records_the_removed_pair_wise_branch(lowered):
    for manifest in lowered.values():
        assert manifest.model.removed_branches == [PAIR_WISE_BRANCH]
        assert manifest.model.spec_before_reparameterization["pair_wise"] and not manifest.model.spec["pair_wise"]
        assert manifest.reparameterized


@pytest.mark.parametrize("target", ["executorch/fp32", "executorch/int8"])
def test_only_top_k_and_its_gather_leave_the_two_xnnpack_delegates(lowered, target):
    delegation = lowered[target].delegation
    assert delegation["num_delegates"] == 2
    assert set(delegation["fallback_ops"]) == PORTABLE
    assert delegation["fallback_ops"]["aten.topk"] == 1


def test_onnx_and_core_ml_run_top_k_as_their_own_operator(lowered):
    assert lowered["onnx/fp32"].delegation["nodes_by_op_type"]["TopK"] == 1
    assert lowered["onnx/int8"].delegation["nodes_by_op_type"]["TopK"] == 1
    assert lowered["coreml/fp32"].delegation["ops_by_type"]["topk"] == 1


def test_repq_ranges_refuse_dcal_naming_the_runtime_ranges(dcal_model):
    model, calibration = dcal_model
    with pytest.raises(UnsupportedModelError, match="int8_ranges='runtime'"):
        lowering_groups(ModelInput.from_registry_model(model, "random"), TARGETS, calibration, "repq")
