import json

import numpy as np
import pytest
import torch

from deploy.cli import main
from deploy.evaluate import (
    EvaluationError,
    append_accuracy,
    evaluate_artifact,
    evaluate_model,
    fixed_batch_predictor,
)
from deploy.report.inputs import load_accuracy
from lowering.data import DatasetError, load_digits
from tests.manifests import write_test_manifest
from vitdeploy.manifest import artifact_sha256
from lowering.models import create

TINY = dict(depth=1, embed_dim=48, img_size=16, patch_size=8, num_classes=10)
BATCH = 2


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return create("vit_tiny", **TINY)


@pytest.fixture(scope="module")
def onnx_artifact(tmp_path_factory, tiny_model):
    """A tiny ViT exported to ONNX with a fixed batch of 2, and a hand-written manifest."""
    path = tmp_path_factory.mktemp("artifact") / "tiny.onnx"
    program = torch.onnx.export(tiny_model, (torch.zeros(BATCH, 3, 16, 16),), dynamo=True, verbose=False)
    program.save(str(path))
    spec = tiny_model.spec
    write_test_manifest(path, model={"name": "tiny_vit", "spec": spec.to_dict(), "source": "random"},
                        input_shape=(BATCH, 3, spec.img_size, spec.img_size))
    return path


def _eager_top1(model, dataset):
    with torch.no_grad():
        logits = model(torch.from_numpy(dataset.inputs()))
    return (logits.argmax(1).numpy() == dataset.labels).mean()


def test_evaluate_model_counts_eager_top1_and_labels_simulation(tiny_model):
    val = load_digits("val", 16, tiny_model.spec.preprocessing).take(50)
    eager = evaluate_model(tiny_model, val)
    assert (eager.kind, eager.quant, eager.backend, eager.unit) == ("eager", "fp32", "pytorch", "fraction")
    assert eager.top1 == pytest.approx(_eager_top1(tiny_model, val))
    assert eager.num_images == 50 and eager.dataset == val.description and eager.top5 >= eager.top1
    simulated = evaluate_model(tiny_model, val, simulated_quant="w8a8", artifact_sha256="ab" * 32)
    assert (simulated.kind, simulated.quant) == ("simulated", "w8a8")


def test_fixed_batch_predictor_pads_the_last_batch():
    calls = []

    def predict(images):
        calls.append(len(images))
        return images.reshape(len(images), -1)[:, :2]

    images = np.arange(7 * 4, dtype=np.float32).reshape(7, 1, 2, 2)
    out = fixed_batch_predictor(predict, 3)(images)
    assert calls == [3, 3, 3]
    np.testing.assert_array_equal(out, images.reshape(7, -1)[:, :2])


def test_records_append_as_json_lines_the_report_reads(tmp_path, tiny_model):
    val = load_digits("val", 16, tiny_model.spec.preprocessing).take(20)
    first = evaluate_model(tiny_model, val, artifact_sha256="a" * 64)
    second = evaluate_model(tiny_model, val, simulated_quant="w4a4", artifact_sha256="b" * 64)
    path = append_accuracy(tmp_path, [first])
    assert append_accuracy(tmp_path, [second]) == path
    lines = path.read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["eager", "simulated"]
    records = load_accuracy([path])
    assert [record.value for record in records] == pytest.approx([100 * first.top1, 100 * second.top1])
    with pytest.raises(EvaluationError, match="artifact_sha256"):
        append_accuracy(tmp_path, [evaluate_model(tiny_model, val)])


def test_eval_cli_reproduces_the_eager_top1_of_an_onnx_artifact(tmp_path, onnx_artifact, tiny_model, capsys):
    results = tmp_path / "results"
    assert main(["eval", str(onnx_artifact), "--results", str(results), "--limit", "25"]) == 0
    records = [json.loads(line) for line in (results / "accuracy.jsonl").read_text().splitlines()]
    assert len(records) == 1
    record = records[0]
    val = load_digits("val", 16, tiny_model.spec.preprocessing).take(25)
    assert record["kind"] == "deployed" and record["num_images"] == 25
    assert record["artifact_sha256"] == artifact_sha256(onnx_artifact)
    assert (record["model"], record["backend"], record["quant"]) == ("tiny_vit", "onnx", "fp32")
    assert record["dataset"] == val.description
    assert record["top1"] == _eager_top1(tiny_model, val)
    assert "appended 1 accuracy record" in capsys.readouterr().out


def test_eval_on_an_image_folder_uses_the_manifest_preprocessing(tmp_path, onnx_artifact):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        Image.new("RGB", (30, 20), (200, 10, 10)).save(tmp_path / "data" / name / "x.png")
    (tmp_path / "data" / "b" / "bad.jpg").write_bytes(b"broken")
    with pytest.raises(DatasetError, match="bad.jpg"):
        evaluate_artifact(onnx_artifact, tmp_path / "data")
    result = evaluate_artifact(onnx_artifact, tmp_path / "data", skip_bad=True)
    assert (result.num_images, result.skipped_images) == (2, 1)
    assert result.top1 == 0.5  # two identical images, labels 0 and 1


def test_coreml_on_linux_and_missing_manifest_are_clear_errors(tmp_path, capsys, tiny_model):
    package = tmp_path / "model.mlpackage"
    package.mkdir()
    (package / "Manifest.json").write_text("{}")
    write_test_manifest(package, model={"name": "m", "spec": tiny_model.spec.to_dict()}, input_shape=(1, 3, 16, 16))
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(b"x")
    assert main(["eval", str(package), str(bare), "--results", str(tmp_path / "r")]) == 2
    out = capsys.readouterr()
    assert "macOS" in out.out + out.err and "manifest" in out.out + out.err
    assert not (tmp_path / "r").exists()


def test_lower_then_eval_an_executorch_program_matches_eager_top1(tmp_path, monkeypatch):
    """The whole chain through both CLIs: `vitdeploy lower` a checkpoint, `vitdeploy eval` it."""
    from safetensors.torch import save_file

    monkeypatch.setenv("VITDEPLOY_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(1)
    model = create("vit_tiny", depth=1, img_size=16, patch_size=8, num_classes=10)
    save_file(model.state_dict(), str(tmp_path / "weights.safetensors"))
    out = tmp_path / "artifacts"
    assert main(["lower", "vit_tiny", "--checkpoint", str(tmp_path / "weights.safetensors"),
                 "--backend", "executorch", "--out", str(out)]) == 0
    (program,) = out.glob("*.pte")
    assert main(["eval", str(program), "--results", str(tmp_path / "results"), "--limit", "40"]) == 0
    (line,) = (tmp_path / "results" / "accuracy.jsonl").read_text().splitlines()
    record = json.loads(line)
    val = load_digits("val", 16, model.spec.preprocessing).take(40)
    assert (record["backend"], record["kind"], record["num_images"]) == ("executorch", "deployed", 40)
    assert record["top1"] == _eager_top1(model, val)
