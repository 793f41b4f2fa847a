import hashlib

import pytest

from bench_runner.records import ArtifactError, ArtifactInfo
from vitdeploy.manifest import artifact_sha256
from tests.bench_runner.tiny_artifacts import write_tiny_onnx
from tests.manifests import write_test_manifest


def test_provenance_comes_from_the_manifest(tmp_path):
    artifact = write_tiny_onnx(tmp_path / "model.onnx")
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    manifest = write_test_manifest(
        artifact, quant="dynamic-int8", model={"name": "deit_tiny", "spec": {"depth": 12}}, input_shape=(1, 16),
    )
    info = ArtifactInfo.from_path(artifact)
    assert (info.model, info.backend, info.quant, info.runtime) == ("deit_tiny", "onnx", "dynamic-int8", "onnxruntime")
    assert info.input_shape == (1, 16) and info.input_dtype == "float32"
    assert info.sha256 == sha and info.size_bytes == artifact.stat().st_size
    assert info.manifest_path == manifest and info.manifest.model.spec["depth"] == 12
    variant = info.variant("v0")
    assert (variant.id, variant.path, variant.runtime, variant.input_shape) == ("v0", artifact, "onnxruntime", (1, 16))


def test_without_a_manifest_the_format_gives_the_runtime_and_the_shape_must_be_given(tmp_path):
    artifact = write_tiny_onnx(tmp_path / "model.onnx")
    with pytest.raises(ArtifactError, match="--input-shape"):
        ArtifactInfo.from_path(artifact)
    info = ArtifactInfo.from_path(artifact, input_shape=(1, 16))
    assert (info.runtime, info.backend, info.model, info.quant, info.manifest_path) == (
        "onnxruntime", "onnx", "unknown", "unknown", None,
    )


def test_an_artifact_changed_after_lowering_is_refused(tmp_path):
    artifact = write_tiny_onnx(tmp_path / "model.onnx")
    write_test_manifest(artifact, sha256="0" * 64, input_shape=(1, 16))
    with pytest.raises(ArtifactError, match="changed since its manifest"):
        ArtifactInfo.from_path(artifact)


def test_unknown_format_and_missing_file_are_errors(tmp_path):
    unknown = tmp_path / "model.bin"
    unknown.write_bytes(b"x")
    with pytest.raises(ArtifactError, match="which runtime"):
        ArtifactInfo.from_path(unknown, input_shape=(1,))
    with pytest.raises(ArtifactError, match="does not exist"):
        ArtifactInfo.from_path(tmp_path / "absent.onnx", input_shape=(1,))


def test_directory_hash_covers_names_and_contents(tmp_path):
    package = tmp_path / "m.mlpackage"
    (package / "Data").mkdir(parents=True)
    (package / "Data" / "weights.bin").write_bytes(b"abc")
    first = artifact_sha256(package)
    (package / "Data" / "weights.bin").write_bytes(b"abd")
    second = artifact_sha256(package)
    (package / "Data" / "weights.bin").rename(package / "Data" / "other.bin")
    assert len({first, second, artifact_sha256(package)}) == 3
