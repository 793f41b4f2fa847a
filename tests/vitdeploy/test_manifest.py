import json

import pytest

from tests.manifests import write_test_manifest
from vitdeploy.manifest import SCHEMA_VERSION, Manifest, ManifestError, manifest_path, read_manifest, write_manifest


def _artifact(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"model")
    return path


def test_a_manifest_survives_writing_and_reading(tmp_path):
    path = _artifact(tmp_path)
    write_test_manifest(path, model={"name": "deit_tiny", "params": 5, "macs": 7}, quant="int8",
                        verification={"passed": True}, delegation={"num_nodes": 3})
    manifest = read_manifest(path)
    assert (manifest.backend, manifest.runtime, manifest.quant) == ("onnx", "onnxruntime", "int8")
    assert (manifest.model.name, manifest.model.params, manifest.model.macs) == ("deit_tiny", 5, 7)
    assert manifest.input_shape == (1, 3, 2, 2) and manifest.passed
    write_manifest(path, manifest.with_label("baseline"))
    again = read_manifest(path)
    assert again == Manifest.from_dict(manifest.to_dict()).with_label("baseline")
    assert again.model.display_name == "baseline"
    assert json.loads(manifest_path(path).read_text())["schema_version"] == SCHEMA_VERSION


def test_a_version_1_manifest_without_a_schema_version_still_reads(tmp_path):
    path = _artifact(tmp_path)
    version_1 = {
        "backend": "onnx", "runtime": "onnxruntime", "quant": "fp32", "quantization": None,
        "model": {"name": "vit_tiny", "spec": {"depth": 12}, "params": 1, "macs": 2, "source": "random"},
        "reparameterized": False, "branches_before": 1, "input_shape": [1, 3, 32, 32], "input_dtype": "float32",
        "output_shape": [1, 10], "file": "m.onnx", "sha256": "ab" * 32, "size_bytes": 5, "lowering_seconds": 1.5,
        "toolchain": {"torch": "2.13.0"}, "verification": {"status": "passed", "passed": True},
        "delegation": {}, "export": {}, "created_at": "2026-11-30T10:00:00+00:00", "cache_key": "k" * 64,
    }
    manifest_path(path).write_text(json.dumps(version_1))
    manifest = read_manifest(path)
    assert manifest.input_shape == (1, 3, 32, 32) and manifest.output_shape == (1, 10)
    assert manifest.model.spec == {"depth": 12} and manifest.lowering_seconds == 1.5
    assert manifest.schema_version == SCHEMA_VERSION


def test_newer_incomplete_and_unreadable_manifests_are_clear_errors(tmp_path):
    path = _artifact(tmp_path)
    write_test_manifest(path)
    data = json.loads(manifest_path(path).read_text())
    manifest_path(path).write_text(json.dumps({**data, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ManifestError, match="newer than this vitdeploy reads"):
        read_manifest(path)
    del data["sha256"]
    manifest_path(path).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="lacks sha256"):
        read_manifest(path)
    manifest_path(path).write_text(json.dumps({**data, "sha256": "0", "model": "vit"}))
    with pytest.raises(ManifestError, match="`model` must be an object"):
        read_manifest(path)
    manifest_path(path).write_text("{not json")
    with pytest.raises(ManifestError, match="unreadable"):
        read_manifest(path)


def test_a_failed_spec_check_fails_and_says_why(tmp_path):
    path = _artifact(tmp_path)
    write_test_manifest(path, verification={"status": "pending-macos", "spec_check": {"passed": False,
                                                                                       "problems": ["no float16"]}})
    manifest = read_manifest(path)
    assert not manifest.passed and manifest.failure_text == "no float16"
