"""Accuracy of lowered artifacts (run in their own runtimes) and of PyTorch models.

    evaluate_artifact(path, source="digits", limit=None) -> AccuracyResult   kind "deployed"
    evaluation_dataset(spec, source="digits", limit=None) -> ImageDataset
    evaluate_model(model, dataset, simulated_quant=None) -> AccuracyResult   kind "eager"/"simulated"
    append_accuracy(results_dir, results) -> Path                            JSON Lines

An artifact is evaluated on the host through `lowering.runtime.load_artifact`, over the
embedded digits' val split or an image folder preprocessed as its manifest's model spec
says. Its fixed batch (the runtime's input shape) is filled by padding the last batch.
Accuracy records carry fractions (`unit` "fraction"); deployed accuracy and simulated
(fake-quant in PyTorch) accuracy are told apart by `kind` and never mixed.
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
from lowering.models.spec import ImageFormat, ModelSpec

ACCURACY_FILE = "accuracy.jsonl"
UNIT = "fraction"
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
    """

    artifact_sha256: str | None
    artifact_path: str | None
    model: str
    backend: str
    quant: str
    dataset: str
    num_images: int
    skipped_images: int
    top1: float
    top5: float
    unit: str
    kind: str
    created_at: str
    image_ids: tuple[str, ...] = ()
    top1_hits: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _record(accuracy: Accuracy, dataset: ImageDataset, **identity) -> AccuracyResult:
    return AccuracyResult(
        **identity,
        dataset=dataset.description,
        num_images=accuracy.num_images,
        skipped_images=accuracy.skipped,
        top1=accuracy.top1,
        top5=accuracy.top5,
        unit=UNIT,
        created_at=now_utc(),
        image_ids=accuracy.image_ids,
        top1_hits="".join("1" if hit else "0" for hit in accuracy.top1_hits),
    )


def evaluate_model(
    model,
    dataset: ImageDataset,
    simulated_quant: str | None = None,
    model_name: str | None = None,
    artifact_sha256: str | None = None,
) -> AccuracyResult:
    """Top-1/top-5 of a PyTorch model: "eager" (fp32), or "simulated" when the model is a
    fake-quant simulation of the mode `simulated_quant` (e.g. "w8a8")."""
    accuracy = measure_accuracy(eager_predictor(model), dataset, EVAL_BATCH)
    spec = getattr(model, "spec", None)
    return _record(
        accuracy,
        dataset,
        artifact_sha256=artifact_sha256,
        artifact_path=None,
        model=model_name or (spec.name if spec is not None else type(model).__name__),
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
    """Top-1/top-5 of an artifact run in its own runtime on the host ("deployed"), over
    the embedded digits' val split or the image folder `source`; `limit` evaluates that
    many images chosen with seed 0. Core ML artifacts need macOS."""
    from lowering.runtime import load_artifact

    path = Path(path)
    manifest = read_manifest(path)
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
    accuracy = measure_accuracy(predict, dataset, max(EVAL_BATCH, runner.input_shape[0]))
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

