import errno
import json
import shutil
from dataclasses import replace
from importlib.metadata import version

import numpy as np
import pytest
import torch

from lowering import verify
from lowering.cache import ArtifactCache, OutputError
from lowering.export import (
    BACKENDS,
    CalibrationSet,
    LoweringError,
    LoweringSpec,
    Target,
    UnknownTargetError,
    UnsupportedOpError,
    lower_model,
    parse_targets,
)
from lowering.export import executorch, onnx
from lowering.models import ModelSpec
from lowering.runtime import load_artifact
from lowering.verify import VerificationError
from tests.lowering.export.conftest import tiny_vit
from vitdeploy.manifest import SCHEMA_VERSION, artifact_sha256, manifest_path, read_manifest

MANIFEST_KEYS = {
    "backend", "runtime", "quant", "quantization", "model", "reparameterized", "input_shape",
    "input_dtype", "sha256", "size_bytes", "lowering_seconds", "toolchain", "verification",
    "delegation", "created_at", "cache_key",
}


def _calibration(count=16, seed=3):
    images = torch.randn(count, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    return CalibrationSet(images, f"random normal x{count}, seed {seed}")


def _lower(model, targets, cache, out=None, **settings):
    spec = LoweringSpec(targets=tuple(Target(*t.split("/")) for t in targets), **settings)
    return lower_model(model, spec, out_dir=out, cache=cache)


def test_fp32_artifacts_with_manifests_on_every_backend(fp32_lowering):
    model, artifacts, out, _ = fp32_lowering
    assert set(artifacts) == {"executorch", "onnx", "coreml"}
    for backend, artifact in artifacts.items():
        manifest = read_manifest(artifact.path)
        assert artifact.path.parent == out and artifact.path.exists()
        written = json.loads(manifest_path(artifact.path).read_text())
        assert MANIFEST_KEYS <= set(written) and written["schema_version"] == SCHEMA_VERSION
        assert manifest.backend == backend and manifest.quant == "fp32"
        assert manifest.sha256 == artifact_sha256(artifact.path)
        assert manifest.input_shape == (1, 3, 32, 32)
        assert ModelSpec.from_dict(manifest.model.spec) == model.spec
        assert manifest.model.params > 0 and manifest.model.macs > 0
        assert manifest.toolchain["torch"] == version("torch")
        assert not artifact.from_cache


def test_fp32_artifacts_agree_with_eager_within_1e_4(fp32_lowering):
    model, artifacts, _, _ = fp32_lowering
    for backend in ("executorch", "onnx"):
        verification = artifacts[backend].manifest.verification
        assert verification["passed"] and verification["num_inputs"] >= 32
        assert verification["max_abs_error"] <= 1e-4
        assert verification["thresholds"]["max_abs_error"] == 1e-4
        images = np.random.default_rng(7).standard_normal((4, 3, 32, 32)).astype(np.float32)
        found = load_artifact(artifacts[backend].path)(images)
        with torch.no_grad():
            expected = model(torch.from_numpy(images)).numpy()
        assert np.abs(found - expected).max() < 1e-4


def test_whole_plain_vit_sits_in_one_xnnpack_delegate(fp32_lowering):
    delegation = fp32_lowering[1]["executorch"].manifest.delegation
    assert delegation["num_delegates"] == 1
    assert delegation["fallback_ops"] == {}
    inside = delegation["delegated_ops"]
    # 2 blocks: qkv, proj, fc1, fc2 each, the head, and two averaging linears per layer norm
    # (2 per block + the final one).
    assert inside["aten.linear"] == 2 * 4 + 1 + 2 * 5
    assert inside["aten.bmm"] == 2 * 2 and inside["aten._softmax"] == 2
    assert inside["aten.rsqrt"] == 5 and inside["aten.convolution"] == 1


def test_onnx_and_coreml_summaries(fp32_lowering):
    _, artifacts, _, _ = fp32_lowering
    onnx_manifest = artifacts["onnx"].manifest
    assert onnx_manifest.export["opset"] >= 17
    assert onnx_manifest.delegation["nodes_by_op_type"]["Softmax"] == 2
    coreml = artifacts["coreml"].manifest.verification
    assert coreml["status"] == "pending-macos" and coreml["spec_check"]["passed"], coreml
    assert coreml["spec_check"]["input"] == {"name": "images", "shape": [1, 3, 32, 32], "dtype": "FLOAT32"}
    assert coreml["spec_check"]["op_types"]["softmax"] == 2
    assert coreml["spec_check"]["output_precision"].get("FLOAT16", 0) == 0


def test_second_identical_lowering_comes_from_the_cache(fp32_lowering, artifact_cache, tmp_path):
    model, first, _, _ = fp32_lowering
    notes = []
    spec = LoweringSpec(targets=(Target("executorch", "fp32"), Target("onnx", "fp32")))
    again = lower_model(model, spec, out_dir=tmp_path, cache=artifact_cache, log=notes.append)
    assert [a.from_cache for a in again] == [True, True]
    assert notes == ["executorch/fp32: from cache", "onnx/fp32: from cache"]
    assert again[0].manifest.cache_key == first["executorch"].manifest.cache_key
    assert (tmp_path / again[0].path.name).read_bytes() == first["executorch"].path.read_bytes()
    changed = tiny_vit(seed=1)
    rebuilt = _lower(changed, ["onnx/fp32"], artifact_cache)
    assert not rebuilt[0].from_cache
    forced = _lower(model, ["onnx/fp32"], artifact_cache, use_cache=False)
    assert not forced[0].from_cache


def test_the_cache_key_follows_each_graph_pass_version_and_setting(monkeypatch):
    from lowering.export.passes.split_linears import split_wide_linears
    from lowering.export.pipeline import _Lowering
    from lowering.sources.model_input import ModelInput

    target = Target("executorch", "fp32")
    lowering = _Lowering(ModelInput.from_registry_model(tiny_vit(), "random"), LoweringSpec(targets=(target,)),
                         lambda note: None)
    keys = {lowering.key(target)}
    passes = executorch.BACKEND.passes
    for changed in ([replace(passes[0], version=passes[0].version + 1), *passes[1:]],
                    [split_wide_linears(max_width=512) if p.name == "split_linears" else p for p in passes],
                    passes[:-1]):
        monkeypatch.setitem(BACKENDS, "executorch", replace(executorch.BACKEND, passes=tuple(changed)))
        keys.add(lowering.key(target))
    assert len(keys) == 4


class _Ranges:
    """A stand-in for the quantization helper's calibration hook."""

    identity = "test ranges v1"

    def __init__(self):
        self.calls = []

    def __call__(self, prepared):
        self.calls.append(type(prepared).__name__)
        prepared(torch.randn(1, 3, 32, 32))

    def onnx_tensor_overrides(self, exported, prepared):
        self.calls.append((exported.exists(), prepared.exists()))
        return {}


# Cosine of each mode's logits to eager on this test's model and inputs, measured at
# 0.999999 (fp16), 0.9986 (int8) and 0.99955 (dynamic-int8); int8 calibrated on images
# 100 times too large (ranges 100 times too wide) measures 0.52.
MIN_COSINE_TO_EAGER = {"fp16": 0.9999, "int8": 0.99, "dynamic-int8": 0.995}


def test_quantized_onnx_modes_report_their_error(artifact_cache):
    model, hook = tiny_vit(), _Ranges()
    artifacts = _lower(model, ["onnx/fp16", "onnx/int8", "onnx/dynamic-int8"], artifact_cache,
                       calibration=_calibration(), calibrator=hook, keep_failed=True)
    for artifact in artifacts:
        manifest = artifact.manifest
        verification = manifest.verification
        assert 0 < verification["max_abs_error"] < 1
        assert verification["cosine_similarity"] >= MIN_COSINE_TO_EAGER[manifest.quant], manifest.quant
        assert verification["passed"]
        assert manifest.quantization["bits"] in (8, 16)
    ops = artifacts[1].manifest.delegation["nodes_by_op_type"]
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    assert artifacts[1].manifest.quantization["calibration"] == (
        "random normal x16, seed 3, ranges fixed by test ranges v1")
    assert hook.calls == [(True, True)]
    assert "MatMulInteger" in artifacts[2].manifest.delegation["nodes_by_op_type"]
    linears, products = _matmul_inputs(artifacts[1].path)
    assert linears and all(kinds == {"DequantizeLinear"} for kinds in linears)
    assert products and not any("DequantizeLinear" in kinds for kinds in products)


def _matmul_inputs(path) -> tuple[list[set[str]], list[set[str]]]:
    """For each MatMul or Gemm with a constant (dequantized) weight, and for each MatMul
    multiplying two activations: the op types producing its inputs."""
    import onnx

    graph = onnx.load(str(path)).graph
    constants = {initializer.name for initializer in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}

    def weight(name: str) -> bool:
        node = producer.get(name)
        return name in constants or (node is not None and node.op_type == "DequantizeLinear" and node.input[0] in constants)

    linears, products = [], []
    for node in graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            kinds = {producer[name].op_type if name in producer else "input" for name in node.input}
            (linears if any(weight(name) for name in node.input) else products).append(kinds)
    return linears, products


def test_coreml_modes_are_checked_by_spec_and_w8a8_takes_the_calibrator_hook(artifact_cache):
    ranges = _Ranges()
    artifacts = _lower(tiny_vit(), ["coreml/fp16", "coreml/w8", "coreml/w8a8"], artifact_cache,
                       calibrator=ranges, coreml_deployment_target="iOS18")
    for artifact in artifacts:
        check = artifact.manifest.verification["spec_check"]
        assert check["passed"], check["problems"]
        assert check["output_precision"]["FLOAT16"] > 0
        assert artifact.manifest.export["deployment_target"] == "iOS18"
        assert artifact.path.suffix == ".mlpackage" and artifact.path.is_dir()
    weight_ops = artifacts[1].manifest.verification["spec_check"]["op_types"]
    assert {"constexpr_affine_dequantize", "constexpr_blockwise_shift_scale"} & set(weight_ops)
    assert artifacts[2].manifest.verification["spec_check"]["op_types"]["quantize"] > 0
    assert ranges.calls == ["GraphModule"]
    assert artifacts[2].manifest.quantization["calibration"] == "test ranges v1"


@pytest.mark.slow
def test_executorch_int8_modes_stay_in_one_delegate_and_report_their_error(artifact_cache):
    artifacts = _lower(tiny_vit(), ["executorch/int8", "executorch/dynamic-int8"], artifact_cache,
                       calibration=_calibration(), keep_failed=True)
    for artifact in artifacts:
        delegation = artifact.manifest.delegation
        assert delegation["num_delegates"] == 1 and delegation["fallback_ops"] == {}
        assert 0 < artifact.manifest.verification["max_abs_error"] < 1
    assert artifacts[0].manifest.delegation["delegated_ops"]["quantized_decomposed.quantize_per_tensor"] > 0
    assert artifacts[1].manifest.delegation["delegated_ops"]["quantized_decomposed.choose_qparams"] > 0
    assert artifacts[0].manifest.quantization["method"] == "static"


@pytest.mark.slow
def test_delegation_summary_names_what_falls_back_and_where(artifact_cache, monkeypatch):
    monkeypatch.setitem(BACKENDS, "executorch", replace(executorch.BACKEND, passes=()))
    artifact, = _lower(tiny_vit(depth=1), ["executorch/fp32"], artifact_cache)
    delegation = artifact.manifest.delegation
    assert delegation["num_delegates"] > 1
    assert delegation["fallback_modules"]["aten.native_layer_norm"] == ["blocks.0.norm1", "blocks.0.norm2", "norm"]
    assert delegation["fallback_reasons"]["aten.native_layer_norm"] == ["no XNNPACK node config for this operator"]
    assert artifact.manifest.verification["passed"]


def test_branched_model_is_reparameterized_on_the_way(artifact_cache):
    model = tiny_vit(depth=3, branches=4)
    notes = []
    spec = LoweringSpec(targets=(Target("onnx", "fp32"),))
    artifact, = lower_model(model, spec, cache=artifact_cache, log=notes.append)
    manifest = artifact.manifest
    assert manifest.reparameterized and manifest.branches_before == 4
    assert manifest.model.spec["branches"] == 1 and manifest.model.spec["num_heads"] == 12
    assert manifest.model.spec_before_reparameterization["branches"] == 4
    assert manifest.verification["max_abs_error"] <= 1e-4
    assert any("reparameterized" in note for note in notes)


def test_failed_verification_is_an_error_unless_kept(artifact_cache, tmp_path, monkeypatch):
    strict = {**onnx.BACKEND.modes, "fp32": verify.Thresholds(max_abs_error=0.0)}
    monkeypatch.setitem(BACKENDS, "onnx", replace(onnx.BACKEND, modes=strict))
    model = tiny_vit(seed=5)
    with pytest.raises(VerificationError, match="max abs error"):
        _lower(model, ["onnx/fp32"], artifact_cache, out=tmp_path / "strict", use_cache=False)
    assert list((tmp_path / "strict").iterdir()) == []
    kept, = _lower(model, ["onnx/fp32"], artifact_cache, out=tmp_path / "kept", keep_failed=True)
    assert kept.manifest.verification["passed"] is False
    assert json.loads(manifest_path(kept.path).read_text())["verification"]["failures"]


def test_unwritable_output_is_a_clear_error_without_partial_files(artifact_cache, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError, match="cannot write artifacts"):
        _lower(tiny_vit(), ["onnx/fp32"], artifact_cache, out=blocker / "out")
    assert blocker.read_text() == "not a directory"


def test_full_disk_leaves_no_half_written_artifact(fp32_lowering, artifact_cache, tmp_path, monkeypatch):
    model = fp32_lowering[0]

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", no_space)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="No space left"):
        _lower(model, ["onnx/fp32"], artifact_cache, out=out)
    assert list(out.iterdir()) == []
    monkeypatch.undo()
    fresh = ArtifactCache(tmp_path / "cache")
    monkeypatch.setattr("lowering.export.onnx.node_counts", no_space)
    with pytest.raises(OutputError, match="No space left"):
        _lower(model, ["onnx/fp32"], fresh)
    assert list(fresh.root.iterdir()) == []


def test_an_op_a_backend_cannot_take_names_the_op_and_its_module(artifact_cache):
    class Bessel(torch.nn.Module):
        def forward(self, x):
            return torch.special.bessel_j0(x)

    model = tiny_vit(depth=1)
    model.blocks[0].mlp.act = Bessel()
    for target in ("onnx/fp32", "coreml/fp32"):
        with pytest.raises(UnsupportedOpError, match=r"special_bessel_j0 \(from blocks\.0\.mlp\.act\)"):
            _lower(model, [target], artifact_cache)


def test_targets_and_settings_are_validated():
    with pytest.raises(UnknownTargetError, match="valid backends: executorch, onnx, coreml"):
        parse_targets(["tflite"], ["fp32"])
    with pytest.raises(UnknownTargetError, match="valid modes"):
        parse_targets(["onnx"], ["int4"])
    with pytest.raises(UnknownTargetError, match="applies to none"):
        parse_targets(["executorch"], ["w8"])
    targets, skipped = parse_targets(["executorch", "onnx"], ["fp16", "fp32"])
    assert targets == (Target("executorch", "fp32"), Target("onnx", "fp16"), Target("onnx", "fp32"))
    assert skipped == ["executorch has no fp16 mode (its modes: fp32, int8, dynamic-int8)"]
    with pytest.raises(UnknownTargetError, match="its modes"):
        Target("coreml", "int8")
    with pytest.raises(LoweringError, match="calibration"):
        lower_model(tiny_vit(), LoweringSpec(targets=(Target("onnx", "int8"),)))
