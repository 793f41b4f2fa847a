"""Accuracy of lowered artifacts (run in their own runtimes) and of PyTorch models, by the
metric the model declares (`vitdeploy.metrics`: top-1 for a classifier, mean absolute
error for a regression model).

    evaluate_artifact(path, source="digits", limit=None) -> AccuracyResult   kind "deployed"
    evaluation_dataset(spec, source="digits", limit=None) -> ImageDataset
    evaluate_model(model, dataset, simulated_quant=None) -> AccuracyResult   kind "eager"/"simulated"
    append_accuracy(results_dir, results) -> Path                            JSON Lines

An artifact is evaluated on the host through `lowering.runtime.load_artifact`, over the
embedded digits' val split or an image folder preprocessed as its manifest's model spec
says. Its fixed batch (the runtime's input shape) is filled by padding the last batch.
Accuracy records carry the metric's name and value (top-1 and top-5 as fractions, `unit`
"fraction"; an error in the target's own unit) and every image's score; deployed
accuracy and simulated (fake-quant in PyTorch) accuracy are told apart by `kind` and
never mixed.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lowering.data import EMBEDDED, ImageDataset, open_dataset
from lowering.data.accuracy import Accuracy, Predict, eager_predictor, measure_accuracy
from vitdeploy.errors import VitdeployError
from vitdeploy.manifest import Manifest, artifact_sha256, now_utc, read_manifest
from vitdeploy.metrics import METRICS, TOP1, Metric, metric_for_output
from lowering.models.spec import ImageFormat, ModelSpec

ACCURACY_FILE = "accuracy.jsonl"
UNIT = "fraction"
TARGET_UNIT = "target"  # an error in the unit of the regression target
EAGER_BACKEND = "pytorch"
EVAL_BATCH = 64


class EvaluationError(VitdeployError):
    """An artifact or model cannot be evaluated as asked."""


@dataclass(frozen=True)
class AccuracyResult:
    """One accuracy record: a model or artifact on one data set.

    `kind` is "deployed" (an artifact in its own runtime), "simulated" (a fake-quant
    model in PyTorch, `quant` names the simulated mode) or "eager" (the float PyTorch
    model). `artifact_sha256` names the artifact the record belongs to; eager and
    simulated records carry it when they are the counterpart of a lowered artifact.
    `metric` names what `value` is (`vitdeploy.metrics`); `top1`/`top5` are a
    classifier's (None for a regression model), `top1_hits` its per-image hits ("0"/"1"
    in `image_ids` order) and `image_errors` a regression model's per-image errors.
    """

    artifact_sha256: str | None
    artifact_path: str | None
    model: str
    backend: str
    quant: str
    dataset: str
    num_images: int
    skipped_images: int
    top1: float | None
    top5: float | None
    unit: str
    kind: str
    created_at: str
    metric: str = TOP1.name
    value: float | None = None
    image_ids: tuple[str, ...] = ()
    top1_hits: str = ""
    image_errors: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def headline(self) -> str:
        """The result in a few words: "top-1 97.50 % (top-5 100.00 %)" or "MAE 0.412"."""
        text = METRICS[self.metric].text(self.value)
        return f"{text} (top-5 {100 * self.top5:.2f} %)" if self.top5 is not None else text


def _record(accuracy: Accuracy, dataset: ImageDataset, **identity) -> AccuracyResult:
    classifier = accuracy.metric is TOP1
    return AccuracyResult(
        **identity,
        dataset=dataset.description,
        num_images=accuracy.num_images,
        skipped_images=accuracy.skipped,
        top1=accuracy.value if classifier else None,
        top5=accuracy.top5,
        unit=UNIT if classifier else TARGET_UNIT,
        created_at=now_utc(),
        metric=accuracy.metric.name,
        value=accuracy.value,
        image_ids=accuracy.image_ids,
        top1_hits="".join("1" if score else "0" for score in accuracy.scores) if classifier else "",
        image_errors=() if classifier else accuracy.scores,
    )


def declared_metric(output: str, model: str) -> Metric:
    """The metric of a model whose head gives `output` (`ModelSpec.output`; "logits" for a
    model without a spec). An embedding model declares none: it cannot be evaluated."""
    metric = metric_for_output(output)
    if metric is None:
        raise EvaluationError(
            f"{model} outputs an embedding, which has no accuracy on labelled images; its lowering is "
            "checked by the cosine similarity of its embeddings (`vitdeploy lower` verifies it)"
        )
    return metric


def evaluate_model(
    model,
    dataset: ImageDataset,
    simulated_quant: str | None = None,
    model_name: str | None = None,
    artifact_sha256: str | None = None,
) -> AccuracyResult:
    """The metric of a PyTorch model: "eager" (fp32), or "simulated" when the model is a
    fake-quant simulation of the mode `simulated_quant` (e.g. "w8a8")."""
    spec = getattr(model, "spec", None)
    name = model_name or (spec.name if spec is not None else type(model).__name__)
    metric = declared_metric(spec.output if spec is not None else "logits", name)
    accuracy = measure_accuracy(eager_predictor(model), dataset, EVAL_BATCH, metric)
    return _record(
        accuracy,
        dataset,
        artifact_sha256=artifact_sha256,
        artifact_path=None,
        model=name,
        backend=EAGER_BACKEND,
        quant=simulated_quant or "fp32",
        kind="simulated" if simulated_quant else "eager",
    )


def artifact_image_format(manifest: Manifest, path: Path) -> ImageFormat:
    """The images an artifact takes, from its manifest: the model's preprocessing and the
    input shape (manifests before sources other than the registry hold it in model.spec)."""
    if manifest.model.preprocessing is not None:
        return ImageFormat.from_dict(manifest.model.preprocessing, manifest.input_shape)
    if not manifest.model.spec:
        raise EvaluationError(
            f"the manifest of {path} does not say the model's preprocessing; "
            "lower the model again with `vitdeploy lower`"
        )
    spec = ModelSpec.from_dict(manifest.model.spec)
    return ImageFormat(spec.preprocessing, spec.img_size, spec.in_chans)


def fixed_batch_predictor(predict: Predict, batch: int) -> Predict:
    """Run `predict`, which takes exactly `batch` images, on any number of images: split
    into batches of `batch`, pad the last one with zeros, drop the padded outputs."""

    def run(images: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            padding = batch - len(chunk)
            if padding:
                chunk = np.concatenate([chunk, np.zeros((padding, *chunk.shape[1:]), chunk.dtype)])
            outputs.append(np.asarray(predict(chunk))[: batch - padding])
        return np.concatenate(outputs)

    return run


def evaluation_dataset(
    spec: ModelSpec | ImageFormat, source: str | Path = EMBEDDED, limit: int | None = None, skip_bad: bool = False
) -> ImageDataset:
    """The images a model whose input `spec` describes is evaluated on: the embedded digits' val split or the
    image folder `source`, in the model's preprocessing; `limit` keeps that many images
    chosen with seed 0. Eager, simulated and deployed records of one model share it."""
    dataset = open_dataset(source, spec.preprocessing, spec.img_size, skip_bad=skip_bad)
    if limit is not None and limit < len(dataset):
        dataset = dataset.take(limit)
    return dataset


def evaluate_artifact(
    path: Path,
    source: str | Path = EMBEDDED,
    limit: int | None = None,
    skip_bad: bool = False,
) -> AccuracyResult:
    """The metric of an artifact run in its own runtime on the host ("deployed"), over
    the embedded digits' val split or the image folder `source`; `limit` evaluates that
    many images chosen with seed 0. Core ML artifacts need macOS."""
    from lowering.runtime import load_artifact

    path = Path(path)
    manifest = read_manifest(path)
    metric = declared_metric((manifest.model.spec or {}).get("output", "logits"), manifest.model.name)
    spec = artifact_image_format(manifest, path)
    sha256 = artifact_sha256(path)
    if manifest.sha256 != sha256:
        raise EvaluationError(
            f"{path} changed since its manifest was written (sha256 {sha256[:12]} != "
            f"{manifest.sha256[:12]}); lower it again"
        )
    runner = load_artifact(path)
    expected = (spec.in_chans, spec.img_size, spec.img_size)
    if tuple(runner.input_shape[1:]) != expected:
        raise EvaluationError(
            f"{path} takes inputs of shape {list(runner.input_shape)}, but its manifest says "
            f"{list(expected)} per image; its manifest is inconsistent: lower it again"
        )
    dataset = evaluation_dataset(spec, source, limit, skip_bad)
    predict = fixed_batch_predictor(runner, runner.input_shape[0])
    accuracy = measure_accuracy(predict, dataset, max(EVAL_BATCH, runner.input_shape[0]), metric)
    return _record(
        accuracy,
        dataset,
        artifact_sha256=sha256,
        artifact_path=str(path),
        model=manifest.model.name,
        backend=manifest.backend,
        quant=manifest.quant,
        kind="deployed",
    )


def append_accuracy(results_dir: Path, results: list[AccuracyResult]) -> Path:
    """Append the records to `results_dir/accuracy.jsonl`, one JSON object per line.

    All lines go in one locked, appending write followed by fsync, so concurrent writers
    never interleave and a reader sees whole lines. Records must name their artifact
    (the report joins accuracy to latency by artifact sha256).
    """
    orphans = [r.model for r in results if not r.artifact_sha256]
    if orphans:
        raise EvaluationError(
            f"accuracy records of {', '.join(orphans)} name no artifact; pass artifact_sha256 "
            "so the report can join them to the artifact's latency"
        )
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / ACCURACY_FILE
    payload = "".join(json.dumps(r.to_dict(), sort_keys=True) + "\n" for r in results).encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        view = memoryview(payload)
        while view:
            view = view[os.write(descriptor, view):]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return path

