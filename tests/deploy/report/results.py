"""Results built in code for the report's tests: benchmark records as the protocol writes
them, accuracy lines as `vitdeploy eval` writes them, and a results folder holding both."""

import hashlib
import json

import numpy as np

from bench_runner.records import BenchRecord
from bench_runner.stats import LatencyStats
from bench_runner.store import ResultsStore

DATASET = "sklearn-digits val (360 images, seed 0)"
QEMU_CPU = "QEMU cortex-a76 (emulated)"


def sha_of(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def latency_samples(median_ms: float, seed: int, n: int = 60, spread: float = 0.01) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    return tuple(float(v) for v in median_ms * (1.0 + spread * rng.standard_normal(n)))


def bench_record(artifact: str, samples, *, depth=12, backend="onnx", quant="fp32", device="host", emulated=False,
                 threads=1, repetition=0, status="ok", error=None, verified=True, output="logits",
                 kv_heads=None) -> BenchRecord:
    """A record as the protocol writes it; statistics from the real LatencyStats. `output`
    is the model's (a "regression" model declares the mean absolute error its metric)."""
    spec = {"name": "vit_tiny", "img_size": 32, "patch_size": 4, "depth": depth, "embed_dim": 96, "num_heads": 3,
            "output": output, "num_classes": 1 if output == "regression" else 10, "kv_heads": kv_heads}
    manifest = {
        "backend": backend, "runtime": "onnxruntime" if backend == "onnx" else "executorch", "quant": quant,
        "input_shape": [1, 3, 32, 32], "sha256": sha_of(artifact), "reparameterized": depth != 12,
        "model": {"name": "vit_tiny", "spec": spec, "params": 1_350_000 + depth, "macs": 88_000_000,
                  "weights_sha256": f"weights-{depth}"},
        "verification": {"passed": verified}, "toolchain": {"torch": "2.13.0", "onnx": "1.19.0"},
    }
    device_info = {"kind": "qemu-arm64" if emulated else "host", "name": device, "abi": "arm64-v8a" if emulated else "x86_64",
                   "cpu_model": QEMU_CPU if emulated else "Test CPU", "cores": 2, "os": "Linux", "emulated": emulated,
                   "frequencies_khz": [], "thermal_c": {}}
    ok = status == "ok"
    samples = tuple(samples) if ok else ()
    return BenchRecord(
        key=f"{sha_of(artifact)}-{device}-{threads}-{repetition}", run_id="run-1", timestamp="2026-01-01T00:00:00+00:00",
        status=status, error=error, artifact_path=f"/artifacts/{artifact}.onnx", artifact_sha256=sha_of(artifact),
        artifact_size_bytes=1000, manifest_path=f"/artifacts/{artifact}.onnx.manifest.json", manifest=manifest,
        model="vit_tiny", backend=backend, quant=quant, runtime="onnxruntime" if backend == "onnx" else "executorch",
        input_shape=(1, 3, 32, 32), input_dtype="float32", device_name=device, device_kind=device_info["kind"],
        emulated=emulated, device=device_info, harness="python-agent",
        toolchain={"measuring": {"python": "3.11.2"}, "device": {"onnxruntime": "1.23.0"}},
        threads=threads, cpu_mask=None, warmup=3, runs=len(samples), min_seconds=0.5, rounds=3, cooldown_seconds=0.0,
        repetition=repetition, seed=0, stats=LatencyStats.from_samples(samples) if ok else None, stable=True if ok else None,
        stability_note="", round_medians_ms=(), load_ms=None, first_inference_ms=None, peak_rss_kb=None,
        memory_kb=None, output_checksum=None, environment=(), samples_ms=samples,
        round_index=tuple(i % 3 for i in range(len(samples))),
    )


def accuracy_line(artifact: str, top1: float | None = None, kind: str = "deployed", unit: str = "percent",
                  dataset: str = DATASET, hits: str | None = None) -> str:
    """One accuracy record; with `hits` (a 0/1 string, one per image) it scores its images
    one by one, and its top-1 is theirs."""
    record = {"artifact_sha256": sha_of(artifact), "artifact_path": f"/artifacts/{artifact}.onnx",
              "model": "vit_tiny", "backend": "onnx", "quant": "fp32", "dataset": dataset, "num_images": 360,
              "top1": top1, "top5": 100.0 if unit == "percent" else 1.0, "unit": unit, "kind": kind}
    if hits is not None:
        record.update(num_images=len(hits), image_ids=[str(i) for i in range(len(hits))], top1_hits=hits,
                      top1=100.0 * hits.count("1") / len(hits) if unit == "percent" else hits.count("1") / len(hits))
    return json.dumps(record)


def error_line(artifact: str, errors, kind: str = "deployed", dataset: str = DATASET) -> str:
    """One accuracy record of a regression model: its mean absolute error and per-image errors."""
    return json.dumps({"artifact_sha256": sha_of(artifact), "artifact_path": f"/artifacts/{artifact}.onnx",
                       "model": "vit_tiny", "backend": "onnx", "quant": "fp32", "dataset": dataset,
                       "num_images": len(errors), "top1": None, "top5": None, "unit": "target", "kind": kind,
                       "metric": "mae", "value": float(np.mean(errors)), "image_ids": [str(i) for i in range(len(errors))],
                       "image_errors": [float(e) for e in errors]})


def write_results(root, records, accuracy_lines=()):
    ResultsStore(root / "store").append(records)
    if accuracy_lines:
        (root / "accuracy.jsonl").write_text("\n".join(accuracy_lines) + "\n", encoding="utf-8")
    return root


def row(report, label, device="host", threads=1):
    table = next(t for t in report.tables if t.device_name == device and t.threads == threads)
    return next(r for r in table.rows if r.label == label)
