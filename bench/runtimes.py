"""Section 2: DeiT-Tiny 224 on every runtime side by side (eager PyTorch, ExecuTorch fp32
and int8, ONNX Runtime fp32, static int8 and dynamic int8) at 1 and 2 threads, all
interleaved in one agent process per thread count, checked against the issue's targets."""

from __future__ import annotations

import json
from pathlib import Path

from bench.artifacts import RUNTIME_TARGETS, lower, macs, runtime_model, verification_note
from bench.eager import EagerAgentHarness, save_eager
from bench.op_profile import op_profile_table, op_profiles
from bench.measure import Budget, Section, labelled_artifacts, measure, sample_rows, stats_rows
from bench.tables import compare, interval, markdown_table
from bench_runner.devices.host import HostDevice
from vitdeploy.user_cache import user_cache_dir

EAGER = "eager"
DEMO_ACCURACY = Path("results/demo/accuracy.jsonl")
FP32 = {"executorch": ("executorch/fp32",), "onnx": ("onnx/fp32",)}
INT8 = {"executorch": ("executorch/int8",), "onnx": ("onnx/int8", "onnx/dynamic-int8")}


def _best(records: dict, labels: tuple[str, ...], threads: int) -> str | None:
    """The label with the lowest p50 among `labels` at `threads` (measured ones only)."""
    measured = [label for label in labels if records[(label, threads)].stats is not None]
    return min(measured, key=lambda label: records[(label, threads)].stats.p50_ms) if measured else None


def _target(name: str, threads: int, baseline: str, row: str, records: dict, limit: float, kind: str) -> dict:
    """A target on the latency ratio row/baseline ("at most") or the speed-up ("at least")."""
    result = {"target": name, "threads": threads, "baseline": baseline, "row": row}
    result.update(compare(records[(baseline, threads)], records[(row, threads)]))
    if result.get("speedup") is None:
        return result
    key = "latency_ratio" if kind == "at most" else "speedup"
    result["measure"] = key
    result["limit"] = f"{kind} {limit}"
    point = result[key]
    met = point <= limit if kind == "at most" else point >= limit
    result["met"] = "yes" if met else "no"
    return result


def _targets(records: dict, threads: tuple[int, ...]) -> list[dict]:
    rows = []
    fp32_labels = tuple(label for labels in FP32.values() for label in labels)
    int8_labels = tuple(label for labels in INT8.values() for label in labels)
    for count in threads:
        rows.append(_target("ExecuTorch fp32 <= 0.9x ORT fp32 latency", count, "onnx/fp32", "executorch/fp32",
                            records, 0.9, "at most"))
        for runtime in ("executorch", "onnx"):
            best_fp32, best_int8 = _best(records, FP32[runtime], count), _best(records, INT8[runtime], count)
            if best_fp32 and best_int8:
                rows.append(_target(f"best int8 >= 2.2x faster than best fp32 ({runtime})", count, best_fp32,
                                    best_int8, records, 2.2, "at least"))
        best_fp32, best_int8 = _best(records, fp32_labels, count), _best(records, int8_labels, count)
        if best_fp32:
            rows.append(_target("best fp32 <= 0.8x eager latency", count, EAGER, best_fp32, records, 0.8, "at most"))
        if best_int8:
            rows.append(_target("best int8 <= 0.4x eager latency", count, EAGER, best_int8, records, 0.4, "at most"))
    return rows


def demo_accuracy_drops(path: Path = DEMO_ACCURACY) -> list[dict]:
    """Top-1 lost by each int8 artifact of the demo against its fp32 sibling (same model
    folder and backend), from the demo's accuracy records on the embedded digits."""
    if not path.is_file():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    fp32 = {(Path(e["artifact_path"]).parent.name, e["backend"]): e for e in entries if e["quant"] == "fp32"}
    drops = []
    for entry in entries:
        base = fp32.get((Path(entry["artifact_path"]).parent.name, entry["backend"]))
        if entry["quant"] == "fp32" or base is None:
            continue
        drops.append({"model": Path(entry["artifact_path"]).parent.name, "backend": entry["backend"],
                      "quant": entry["quant"], "dataset": entry["dataset"], "n": entry["num_images"],
                      "top1_fp32": base["top1"], "top1_quant": entry["top1"],
                      "drop_points": 100 * (base["top1"] - entry["top1"])})
    return drops


def _delegation(artifacts: dict) -> str:
    notes = []
    for label, artifact in artifacts.items():
        delegation = artifact.manifest.delegation
        if "num_delegates" in delegation:
            outside = sum(delegation.get("fallback_ops", {}).values())
            notes.append(f"{label}: {delegation['num_delegates']} XNNPACK delegate(s), "
                         f"{delegation['ops_in_delegates']} ops inside, {outside} outside")
    return "; ".join(notes)


STATS_COLUMNS = (("artifact", "label"), ("threads", "threads"), ("p50 ms", "p50_ms"),
                 ("95% CI of p50", lambda r: f"[{r['ci95_low_ms']:.2f}, {r['ci95_high_ms']:.2f}]" if "p50_ms" in r else "-"),
                 ("n", "n"), ("CV", "cv"), ("GMAC/s", "gmacs_per_s"), ("status", "status"), ("stability", "stability_note"),
                 ("verification vs eager", "verification"))
TARGET_COLUMNS = (("target", "target"), ("threads", "threads"), ("row / baseline", lambda r: f"{r['row']} / {r['baseline']}"),
                  ("measured [95% CI]", lambda r: f"{r.get('measure', '')} {interval(r, r['measure'])}" if "measure" in r else r.get("note")),
                  ("limit", "limit"), ("met", "met"), ("n", lambda r: f"{r.get('n_baseline')}/{r.get('n_row')}"))
DROP_COLUMNS = (("model", "model"), ("backend", "backend"), ("quant", "quant"), ("top-1 fp32", "top1_fp32"),
                ("top-1 quant", "top1_quant"), ("drop (points)", "drop_points"), ("images", "n"))


def run(budget: Budget) -> tuple[Section, dict, int]:
    """The section, its records (for the distance-to-limit section) and the model's MACs."""
    model = runtime_model()
    artifacts = {str(target): artifact for target, artifact in lower(model, RUNTIME_TARGETS).items()}
    labelled = {EAGER: save_eager(model, user_cache_dir() / "bench" / "deit_tiny-eager.pt"),
                **labelled_artifacts(artifacts)}
    settings = budget.host((1, 2))
    device = HostDevice()
    try:
        records = measure(device, EagerAgentHarness(), labelled, settings)
    finally:
        device.cleanup()
    model_macs = macs(model)
    stats = stats_rows("runtimes", records, {label: model_macs for label in labelled})
    for row in stats:
        row["verification"] = verification_note(artifacts[row["label"]]) if row["label"] in artifacts else "eager (reference)"
    targets = _targets(records, settings.threads)
    drops = demo_accuracy_drops()
    markdown = "\n\n".join([
        f"DeiT-Tiny 224, random weights (seed 0), {model_macs / 1e9:.3f} GMACs; int8 calibrated on 32 digits "
        f"images; artifacts that fail verification against eager are kept and measured (random weights: "
        f"only latency matters here). Delegation: {_delegation(artifacts)}.",
        markdown_table(stats, STATS_COLUMNS),
        "Targets (latency ratio = p50(row) / p50(baseline); speed-up = its inverse; bootstrap 95% CIs):",
        markdown_table(targets, TARGET_COLUMNS),
        f"Accuracy lost by int8 (source: {DEMO_ACCURACY}, the demo's ViT-Tiny digits models at 32x32, "
        "not DeiT-Tiny 224; the random-weight DeiT here has no meaningful accuracy):",
        markdown_table(drops, DROP_COLUMNS) if drops else f"({DEMO_ACCURACY} not found: run `vitdeploy demo` first)",
    ])
    profiles = op_profiles(artifacts, runs=10 if budget.quick else 30)
    markdown += ("\n\nWhere each runtime spends its time at 1 thread, per op type (ONNX Runtime's profiler; "
                 "ExecuTorch's ETDump with XNNPACK's operator names; ms per inference, calls in brackets):\n\n"
                 + op_profile_table(profiles, top=5))
    section = Section("runtimes", markdown, {
        "runtimes_op_profile": profiles,
        "runtimes_stats": stats, "runtimes_targets": targets, "runtimes_accuracy_drop": drops,
        "runtimes_samples": sample_rows("runtimes", records),
    })
    return section, records, model_macs
