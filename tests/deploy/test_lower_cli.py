import pytest
import torch

from deploy.cli import main
from vitdeploy.manifest import read_manifest

TINY = ["vit_tiny", "--override", "depth=2", "--override", "num_classes=10", "--img-size", "32"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VITDEPLOY_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _artifacts(folder, suffix):
    return sorted(folder.glob(f"*{suffix}"))


def test_lower_writes_verified_artifacts_and_then_serves_them_from_the_cache(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["lower", *TINY, "--backend", "onnx", "--quant", "fp32,dynamic-int8", "--out", str(out)]) == 0
    first = capsys.readouterr().out
    paths = _artifacts(out, ".onnx")
    assert len(paths) == 2
    manifests = [read_manifest(p) for p in paths]
    assert sorted(m.quant for m in manifests) == ["dynamic-int8", "fp32"]
    assert all(m.verification["inputs"] == "32 given images" for m in manifests)
    assert str(paths[0]) in first and "verification: passed" in first and "from cache" not in first
    assert main(["lower", *TINY, "--backend", "onnx", "--quant", "fp32,dynamic-int8", "--out", str(out)]) == 0
    again = capsys.readouterr().out
    assert again.count("(from cache)") == 2


def test_branched_model_is_reparameterized_and_says_so(tmp_path, capsys):
    code = main(["lower", *TINY, "--override", "depth=3", "--override", "branches=4",
                 "--backend", "onnx", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "4 branches per block: reparameterizing" in out
    manifest = read_manifest(_artifacts(tmp_path, ".onnx")[0])
    assert manifest.reparameterized and manifest.model.spec["num_heads"] == 12
    assert manifest.verification["max_abs_error"] <= 1e-4


def test_device_profile_gives_the_defaults(tmp_path, capsys):
    profile = tmp_path / "phone.toml"
    profile.write_text('kind = "host"\n[lowering]\nbackends = ["onnx"]\nquantization = ["fp16"]\ninput_size = 32\n')
    code = main(["lower", "vit_tiny", "--override", "depth=1", "--override", "num_classes=10",
                 "--device", str(profile), "--out", str(tmp_path / "out")])
    assert code == 0
    manifest = read_manifest(_artifacts(tmp_path / "out", ".onnx")[0])
    assert (manifest.quant, manifest.input_shape) == ("fp16", (1, 3, 32, 32))


def test_a_profile_naming_an_unknown_backend_is_a_clear_error(tmp_path, capsys):
    profile = tmp_path / "phone.toml"
    profile.write_text('kind = "android"\n[lowering]\nbackends = ["tflite"]\n')
    assert main(["lower", *TINY, "--device", str(profile), "--out", str(tmp_path / "out")]) == 2
    assert "unknown backend 'tflite'; valid backends: executorch, onnx, coreml" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["--backend", "tflite"], "valid backends: executorch, onnx, coreml"),
    (["--backend", "onnx", "--quant", "int4"], "unknown quantization mode 'int4'"),
    (["--override", "depth"], "KEY=VALUE"),
    (["--checkpoint", "missing.pth"], "checkpoint not found"),
])
def test_bad_input_is_a_clear_error(argv, message, tmp_path, capsys):
    assert main(["lower", *TINY, *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_checkpoint_that_does_not_fit_names_the_mismatch(tmp_path, capsys):
    checkpoint = tmp_path / "other.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 8), "head.weight": torch.zeros(3, 8)}, checkpoint)
    assert main(["lower", "vit_tiny", "--checkpoint", str(checkpoint), "--backend", "onnx",
                 "--out", str(tmp_path)]) == 2
    assert "does not fit model" in capsys.readouterr().err


def test_unwritable_output_directory_fails_before_lowering(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["lower", *TINY, "--backend", "onnx", "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot write artifacts" in err and str(blocker / "out") in err


def test_repq_int8_ranges_fold_the_model_of_the_calibrated_targets_only(tmp_path, capsys):
    import json

    out = tmp_path / "out"
    branched = ["vit_tiny", "--override", "depth=2", "--override", "branches=2", "--img-size", "32",
                "--override", "num_classes=10", "--backend", "onnx", "--keep-failed", "--out", str(out)]
    assert main(["lower", *branched, "--quant", "fp32,int8", "--int8-ranges", "repq"]) == 0
    assert "RepQ-ViT" in capsys.readouterr().out
    (int8,) = (m for m in map(json.loads, (p.read_text() for p in out.glob("*.manifest.json"))) if m["quant"] == "int8")
    assert int8["quantization"]["calibrator"]["method"] == "RepQ-ViT scale reparameterization"
    # The fp32 artifact lowered the unfolded model: without RepQ-ViT it is the same cache entry.
    assert main(["lower", *branched, "--quant", "fp32"]) == 0
    assert "(from cache)" in capsys.readouterr().out


def test_lower_takes_an_exported_program_and_names_bad_input(tmp_path, capsys):
    import torch

    from tests.lowering.sources.factories import tiny_classifier

    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(tiny_classifier(), (torch.zeros(1, 3, 16, 16),)), str(path))
    assert main(["lower", str(path), "--backend", "onnx", "--mean", "0.4,0.5,0.6", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "model: tiny (exported-program), input [1, 3, 16, 16]" in out and "verification: passed" in out
    manifest = read_manifest(_artifacts(tmp_path / "out", ".onnx")[0])
    assert manifest.model.source_kind == "exported-program" and manifest.model.preprocessing["mean"] == [0.4, 0.5, 0.6]
    for argv, message in ((["--input-shape", "1,3,16"], "--input-shape expects N,C,H,W"),
                          (["--mean", "0.5"], "--mean expects three comma-separated numbers"),
                          (["--override", "depth=2"], "overrides apply to registry models")):
        assert main(["lower", str(path), "--backend", "onnx", "--out", str(tmp_path / "bad"), *argv]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_repq_int8_ranges_fold_an_exported_program_and_say_where(tmp_path, capsys):
    import torch

    from tests.lowering.sources.factories import pre_norm_encoder

    path = tmp_path / "encoder.pt2"
    torch.export.save(torch.export.export(pre_norm_encoder().eval(), (torch.zeros(1, 3, 16, 16),)), str(path))
    argv = ["lower", str(path), "--backend", "onnx", "--quant", "int8", "--int8-ranges", "repq", "--out", str(tmp_path / "out")]
    assert main(argv) == 0, capsys.readouterr().err
    assert "int8 ranges: RepQ-ViT fold: 5 LayerNorm(s) into 9 linear(s)" in capsys.readouterr().out
    record = read_manifest(_artifacts(tmp_path / "out", ".onnx")[0]).quantization["calibrator"]
    assert len(record["folded_into_weights"]) == 5 and record["method"].endswith("on the exported graph")
