"""Section 1: depth reparameterization. ViT-Tiny 12 x 1 against the merged 6 x 2, 4 x 3
and 3 x 4 models (equal MACs) on ExecuTorch-XNNPACK and ONNX Runtime, interleaved in one
agent process per thread count; on the emulated ARM CPU (ONNX Runtime only, reduced
resolution, relative only)."""

from __future__ import annotations

from bench.artifacts import DEPTH_SHAPES, REPARAM_TARGETS, lower, macs, reparam_models, shape_label
from bench.op_profile import op_profile_table, op_profiles
from bench.measure import Budget, Section, labelled_artifacts, measure, sample_rows, stats_rows
from bench.tables import compare, interval, markdown_table
from bench_runner.devices.host import HostDevice
from bench_runner.harness.python_agent import PythonAgentHarness
from lowering.export import Target

BASELINE = shape_label(*DEPTH_SHAPES[0])
EMULATED_IMG_SIZE = 64


def _lowered(img_size: int, targets: tuple[Target, ...]) -> tuple[dict, dict]:
    """{shape/backend: Artifact} and {label: MACs} of the four depth shapes."""
    artifacts, counted = {}, {}
    for shape, model in reparam_models(img_size).items():
        for target, artifact in lower(model, targets).items():
            label = f"{shape}/{target.backend}"
            artifacts[label] = artifact
            counted[label] = macs(model)
    if len(set(counted.values())) != 1:
        raise AssertionError(f"the depth shapes should have equal MACs, got {counted}")
    return artifacts, counted


def _speedups(records: dict, backends: tuple[str, ...], threads: tuple[int, ...]) -> list[dict]:
    rows = []
    device = next(iter(records.values())).device_name
    for backend in backends:
        for count in threads:
            baseline = records[(f"{BASELINE}/{backend}", count)]
            for depth, branches in DEPTH_SHAPES[1:]:
                shape = shape_label(depth, branches)
                row = {"device": device, "backend": backend, "threads": count, "baseline": BASELINE, "merged": shape}
                row.update(compare(baseline, records[(f"{shape}/{backend}", count)]))
                if row.get("speedup") is not None:
                    row["verdict"] = ("faster" if row["speedup_ci_low"] > 1 else
                                      "SLOWER" if row["speedup_ci_high"] < 1 else "no difference")
                rows.append(row)
    return rows


COLUMNS = (
    ("device", "device"), ("runtime", "backend"), ("threads", "threads"), ("merged", "merged"),
    ("12x1 p50 ms", "baseline_p50_ms"), ("merged p50 ms", "row_p50_ms"),
    ("speed-up [95% CI]", lambda r: interval(r, "speedup")), ("n", lambda r: f"{r.get('n_baseline')}/{r.get('n_row')}"),
    ("CV 12x1/merged", lambda r: f"{r['cv_baseline']:.2f}/{r['cv_row']:.2f}" if "cv_row" in r else "-"),
    ("verdict", "verdict"),
)


def run_host(budget: Budget) -> Section:
    artifacts, counted = _lowered(224, REPARAM_TARGETS)
    settings = budget.host((1, 2))
    device = HostDevice()
    try:
        records = measure(device, PythonAgentHarness(), labelled_artifacts(artifacts), settings)
    finally:
        device.cleanup()
    speedups = _speedups(records, tuple(t.backend for t in REPARAM_TARGETS), settings.threads)
    macs_note = f"all four shapes: {next(iter(counted.values())) / 1e9:.3f} GMACs (count_macs)"
    markdown = (f"ViT-Tiny 224, random weights (seed 0); {macs_note}. Speed-up = p50(12x1) / p50(merged), "
                "bootstrap 95% CI of the ratio of medians; all eight artifacts interleaved in rounds in one "
                "agent process per thread count.\n\n" + markdown_table(speedups, COLUMNS))
    profiles = op_profiles(artifacts, runs=10 if budget.quick else 30)
    for backend, profiler in (("executorch", "ETDump (XNNPACK's operator names)"), ("onnx", "its profiler")):
        markdown += (f"\n\nWhere {backend} spends its time at 1 thread, per op type ({profiler}; ms per inference, "
                     "calls in brackets):\n\n"
                     + op_profile_table([row for row in profiles if row["artifact"].endswith(f"/{backend}")]))
    return Section("reparam", markdown, {
        "reparam_speedups": speedups,
        "reparam_op_profile": profiles,
        "reparam_stats": stats_rows("reparam", records, counted),
        "reparam_samples": sample_rows("reparam", records),
    })


def run_emulated(budget: Budget) -> Section:
    from bench_runner.devices.qemu import QemuArm64Device
    from bench_runner.profiles import find_profile

    artifacts, counted = _lowered(EMULATED_IMG_SIZE, (Target("onnx", "fp32"),))
    profile = find_profile("qemu-arm64")
    device = QemuArm64Device.from_profile(profile)
    settings = budget.emulated()
    try:
        records = measure(device, PythonAgentHarness.from_profile(profile), labelled_artifacts(artifacts), settings)
    finally:
        device.cleanup()
    speedups = _speedups(records, ("onnx",), settings.threads)
    host = HostDevice()
    try:
        host_records = measure(host, PythonAgentHarness(), labelled_artifacts(artifacts), budget.host((1,)))
    finally:
        host.cleanup()
    speedups += _speedups(host_records, ("onnx",), (1,))
    records = {**{(f"qemu:{label}", t): r for (label, t), r in records.items()},
               **{(f"host:{label}", t): r for (label, t), r in host_records.items()}}
    counted = {f"{where}:{label}": value for label, value in counted.items() for where in ("qemu", "host")}
    markdown = (f"Emulated ARM64 (QEMU user mode, {device.cpu}), ONNX Runtime only, ViT-Tiny at "
                f"{EMULATED_IMG_SIZE}x{EMULATED_IMG_SIZE} ({next(iter(counted.values())) / 1e6:.0f} MMACs, 17 tokens) "
                "to keep each emulated inference near a second. Emulation runs 250-500x slower than the host and "
                "does not model a phone's caches or pipelines: a relative signal only, never a phone's latency. "
                "The same four artifacts were then measured on the host at 1 thread for comparison.\n\n"
                + markdown_table(speedups, COLUMNS))
    return Section("reparam_arm", markdown, {
        "reparam_arm_speedups": speedups,
        "reparam_arm_stats": stats_rows("reparam_arm", records, counted),
        "reparam_arm_samples": sample_rows("reparam_arm", records),
    })
