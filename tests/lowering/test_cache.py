import errno
import json
import shutil

import pytest
import torch

from lowering.cache import (
    ArtifactCache,
    OutputError,
    cache_key,
    ensure_writable,
    publish,
    weights_sha256,
)
from tests.manifests import write_test_manifest
from vitdeploy.manifest import manifest_path


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))


def _artifact(folder, name="m.onnx", content=b"model bytes"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    write_test_manifest(path, model={"name": content.decode()})
    return path


def test_weights_hash_follows_every_byte_and_name():
    model = _model()
    assert weights_sha256(model) == weights_sha256(_model())
    assert weights_sha256(model) != weights_sha256(_model(seed=1))
    nudged = _model()
    with torch.no_grad():
        nudged[0].bias[1] += 1e-7
    assert weights_sha256(nudged) != weights_sha256(model)
    renamed = torch.nn.Sequential()
    renamed.add_module("first", model[0])
    renamed.add_module("1", model[1])
    assert weights_sha256(renamed) != weights_sha256(model)


def test_cache_key_covers_every_field_and_ignores_order():
    fields = {"weights_sha256": "ab", "backend": "onnx", "quant": "fp32", "calibration": None}
    key = cache_key(fields)
    assert key == cache_key(dict(reversed(list(fields.items()))))
    for name, value in (("weights_sha256", "ac"), ("quant", "int8"), ("calibration", "digits")):
        assert cache_key({**fields, name: value}) != key
    assert len(key) == 64


def test_lookup_finds_only_complete_entries_and_store_replaces(tmp_path):
    cache = ArtifactCache(tmp_path / "cache")
    assert cache.lookup("k" * 64) is None
    with cache.staging() as staging:
        stored = cache.store(_artifact(staging), "k" * 64)
    assert cache.lookup("k" * 64) == stored and stored.read_bytes() == b"model bytes"
    manifest_path(stored).unlink()
    assert cache.lookup("k" * 64) is None
    with cache.staging() as staging:
        cache.store(_artifact(staging, content=b"newer"), "k" * 64)
    assert cache.lookup("k" * 64).read_bytes() == b"newer"
    assert [p.name for p in cache.root.iterdir()] == ["k" * 64]


def test_publish_replaces_older_copies_of_files_and_packages(tmp_path):
    out = tmp_path / "out"
    publish(_artifact(tmp_path / "a", content=b"old"), out)
    copied = publish(_artifact(tmp_path / "b", content=b"new"), out)
    assert copied.read_bytes() == b"new"
    assert json.loads(manifest_path(copied).read_text())["model"]["name"] == "new"
    package = tmp_path / "c" / "m.mlpackage"
    (package / "Data").mkdir(parents=True)
    (package / "Data" / "weights.bin").write_bytes(b"w1")
    write_test_manifest(package)
    publish(package, out)
    (package / "Data" / "weights.bin").write_bytes(b"w2")
    published = publish(package, out)
    assert (published / "Data" / "weights.bin").read_bytes() == b"w2"
    assert sorted(p.name for p in out.iterdir()) == [
        "m.mlpackage", "m.mlpackage.manifest.json", "m.onnx", "m.onnx.manifest.json"]


def test_a_failed_copy_leaves_the_old_artifact_and_no_staging(tmp_path, monkeypatch):
    out = tmp_path / "out"
    publish(_artifact(tmp_path / "a", content=b"old"), out)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", full)
    with pytest.raises(OutputError, match="No space left on device"):
        publish(_artifact(tmp_path / "b", content=b"new"), out)
    assert sorted(p.name for p in out.iterdir()) == ["m.onnx", "m.onnx.manifest.json"]
    assert (out / "m.onnx").read_bytes() == b"old"


def test_unwritable_directory_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=f"cannot write artifacts to {blocker / 'out'}"):
        ensure_writable(blocker / "out")
    assert ensure_writable(tmp_path / "new" / "dir").is_dir()
