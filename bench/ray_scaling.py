"""The Ray executor against the local one: lowering fan-out and devices measured in parallel.

    python -m bench.ray_scaling [--repeats 3] [--out results/benchmarks/ray_scaling.md]

1. Scaling: one sweep of 8 lowering targets (2 random-weight ViTs x ExecuTorch, ONNX x
   fp32, int8; lowering, verification and evaluation, no device), each run from a new,
   empty vitdeploy cache, with the local executor and with Ray offering 1 and 2 CPUs
   (1 and 2 workers running lowering tasks). The three settings take turns, `--repeats`
   times. Reported: wall time of `run_sweep` (the Ray instance is started before and
   stopped after the clock), the ratio 1 worker / 2 workers with a t-interval over the
   repetitions, and the Ray executor's cost per task against the local executor.
2. Agreement: the demo's configuration in its `--quick` form measured on two emulated
   ARM64 devices (qemu-arm64 and a copy of its profile), once locally (one device after
   the other) and once with Ray (both at once, each holding its device resource and one
   CPU). Reported: whether both runs stored the same record keys, and each record's
   median with its 95% interval from both runs.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.command import command_line
from bench.machine import describe_machine
from bench.tables import markdown_table
from deploy.cli import quiet_third_party_output

SCALING_MODELS = """
[[model]]
label = "vit-d4"
name = "vit_tiny"
overrides = { depth = 4, img_size = 32, num_classes = 10 }

[[model]]
label = "vit-d6"
name = "vit_tiny"
overrides = { depth = 6, img_size = 32, num_classes = 10 }

[lowering]
backends = ["executorch", "onnx"]
quant = ["fp32", "int8"]

[data]
eval_limit = 128
"""
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def _quiet(line: str) -> None:
    pass


def _timed_sweep(config, cpus: int | None, cache: Path) -> float:
    """Seconds of one sweep on a new cache; `cpus` None: the local executor."""
    import ray

    from deploy.sweep import run_sweep

    os.environ["VITDEPLOY_CACHE"] = str(cache)
    if cpus is not None:
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="warning")
        config = replace(config, executor=replace(config.executor, kind="ray"))
    try:
        started = time.perf_counter()
        outcome = run_sweep(config, log=_quiet)
        seconds = time.perf_counter() - started
    finally:
        if cpus is not None:
            ray.shutdown()
    failures = [f for f in outcome.failures if f.stage != "report"]  # no device, so no records to report
    if failures or len(outcome.artifacts) != 8:
        raise SystemExit(f"the scaling sweep failed: {failures}")
    return seconds


def scaling(folder: Path, repeats: int) -> str:
    from deploy.config import load_sweep_config

    path = folder / "scaling.toml"
    path.write_text(SCALING_MODELS)
    base = replace(load_sweep_config(path), devices=())
    settings = {"local": None, "ray, 1 worker": 1, "ray, 2 workers": 2}
    user_cache = os.environ.get("VITDEPLOY_CACHE")
    _timed_sweep(replace(base, results=folder / "warm-up"), None, folder / "cache-warm-up")
    times: dict[str, list[float]] = {name: [] for name in settings}
    try:
        for repetition in range(repeats):
            names = list(settings)
            order = names[repetition % 3:] + names[:repetition % 3]
            for name in order:
                run = f"{repetition}-{name.replace(', ', '-').replace(' ', '')}"
                seconds = _timed_sweep(replace(base, results=folder / run), settings[name], folder / f"cache-{run}")
                times[name].append(seconds)
                print(f"[ray_scaling] {name}, repetition {repetition + 1}: {seconds:.1f} s", flush=True)
    finally:
        if user_cache is None:
            os.environ.pop("VITDEPLOY_CACHE", None)
        else:
            os.environ["VITDEPLOY_CACHE"] = user_cache
    ratios = [one / two for one, two in zip(times["ray, 1 worker"], times["ray, 2 workers"])]
    overheads = [(ray_one - local) / 8 for ray_one, local in zip(times["ray, 1 worker"], times["local"])]
    table = markdown_table(
        [{"setting": name, "median": f"{statistics.median(values):.1f}", "runs": ", ".join(f"{v:.1f}" for v in values)}
         for name, values in times.items()],
        [("setting", "setting"), ("wall s (median)", "median"), ("runs (s)", "runs")])
    lines = [
        table, "",
        f"Speed-up of 2 workers over 1 (per repetition, 1 worker / 2 workers): {_interval(ratios, 3)} "
        f"(runs: {', '.join(f'{r:.3f}' for r in ratios)}).",
        f"Ray executor's cost per lowering task against the local executor ((ray 1 worker - local) / 8 tasks): "
        f"{_interval(overheads, 2)} s (runs: {', '.join(f'{o:.2f}' for o in overheads)}).",
    ]
    return "\n".join(lines)


def _interval(values: list[float], digits: int) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f} (one run: no interval)"
    half = T_975[len(values) - 1] * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.{digits}f} [95% t-interval {mean - half:.{digits}f}, {mean + half:.{digits}f}]"


def agreement(folder: Path) -> str:
    from bench_runner.profiles import PROFILES_DIR
    from bench_runner.store import ResultsStore
    from deploy.commands.demo import DEMO_CONFIG, quick
    from deploy.config import load_sweep_config
    from deploy.sweep import run_sweep

    copy = folder / "qemu-arm64-b.toml"
    copy.write_text((PROFILES_DIR / "qemu-arm64.toml").read_text().replace(
        'name = "qemu-arm64"', 'name = "qemu-arm64-b"'))
    config = quick(load_sweep_config(DEMO_CONFIG))
    emulated = {"warmup": 1, "runs": 12, "rounds": 3}
    config = replace(config, devices=("qemu-arm64", str(copy)),
                     device_measurement={"qemu-arm64": emulated, str(copy): emulated})
    run_sweep(replace(config, results=folder / "agreement-warm-up", devices=()), log=_quiet)  # trains and lowers
    seconds, stores = {}, {}
    for kind in ("local", "ray"):
        results = folder / f"agreement-{kind}"
        started = time.perf_counter()
        outcome = run_sweep(replace(config, results=results, executor=replace(config.executor, kind=kind)),
                            log=_quiet)
        seconds[kind] = time.perf_counter() - started
        if outcome.failures:
            raise SystemExit(f"the {kind} agreement sweep failed: {outcome.failures}")
        stores[kind] = {r.key: r for r in ResultsStore(results / "store").load()}
    local, remote = stores["local"], stores["ray"]
    same = set(local) == set(remote) and len(local) == len(remote)
    rows = []
    for key in sorted(local, key=lambda k: (local[k].device_name, local[k].artifact_path)):
        a, b = local[key], remote.get(key)
        rows.append({"device": a.device_name, "model": a.manifest["model"].get("label") or a.model,
                     "backend": a.backend, "quant": a.quant,
                     "local": _median_with_interval(a), "ray": "-" if b is None else _median_with_interval(b),
                     "ratio": "-" if b is None else f"{b.stats.p50_ms / a.stats.p50_ms:.3f}",
                     "overlap": "yes" if b is not None and _overlap(a.stats, b.stats) else "no"})
    table = markdown_table(rows, [("device", "device"), ("model", "model"), ("backend", "backend"), ("quant", "quant"),
                                  ("local p50 ms [95% CI]", "local"), ("ray p50 ms [95% CI]", "ray"),
                                  ("ray / local", "ratio"), ("intervals overlap", "overlap")])
    return "\n".join([
        f"Same record keys from both executors: {'yes' if same else 'NO'} ({len(local)} local, {len(remote)} ray).",
        "Wall time of the sweep (lowering from the warm cache, both devices measured): "
        f"local {seconds['local']:.0f} s, "
        f"ray {seconds['ray']:.0f} s (Ray instance started and stopped inside the clock).", "", table])


def _median_with_interval(record) -> str:
    return f"{record.stats.p50_ms:.1f} [{record.stats.ci95_low_ms:.1f}, {record.stats.ci95_high_ms:.1f}]"


def _overlap(a, b) -> bool:
    return a.ci95_low_ms <= b.ci95_high_ms and b.ci95_low_ms <= a.ci95_high_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ray_scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of each scaling setting")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/ray_scaling.md"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    command = command_line(parser.prog, argv)
    machine = describe_machine()
    quiet_third_party_output()
    with tempfile.TemporaryDirectory(prefix="vitdeploy-ray-scaling-") as tmp:
        folder = Path(tmp)
        scaling_text = scaling(folder, args.repeats)
        agreement_text = agreement(folder)
    text = "\n".join([
        "# Sweeps on Ray: lowering fan-out and devices measured in parallel", "",
        f"Command: `{command}`",
        f"Date (UTC): {machine['date_utc']}",
        f"Machine: {machine['cpu']}; {machine['cores']} cores; virtualized: {machine['virtualized']}; {machine['os']}",
        "", __doc__.split("\n\n", 2)[2].strip(), "",
        "## Scaling: 8 lowering targets", "", scaling_text, "",
        "## Agreement: two emulated devices, local and in parallel on Ray", "", agreement_text, "",
    ])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"[ray_scaling] wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
