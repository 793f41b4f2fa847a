"""The native ExecuTorch runner against the Python agent on the same .pte, on the host:

    python -m bench.native_runner [--rounds R] [--runs N] [--threads T] [--out results/benchmarks/native_runner.md]

DeiT-Tiny 224 (random weights, seed 0) lowered to ExecuTorch fp32 by `lower_model` (through
the artifact cache), timed by `vitdeploy_et_runner` (bench_runner.native_runner, built once
into the user cache) and by the Python agent through the bench runner's protocol. Each
round runs one process of each, in alternating order, with 3 warm-ups and N timed runs;
reports both p50s and native / agent latency with a paired-round bootstrap 95% interval,
and checks the runner's output against ExecuTorch's Python runtime on the same input.
The target: the native runner within 3% of the agent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.artifacts import lower, runtime_model
from bench.command import command_line
from bench.machine import describe_machine
from bench.measure import labelled_artifacts, measure
from bench.tables import markdown_table
from bench_runner.devices.host import HostDevice
from bench_runner.harness.python_agent import PythonAgentHarness
from bench_runner.native_runner.build import build_runner, installed_executorch
from bench_runner.native_runner.inputs import runner_inputs
from bench_runner.native_runner.output import RunnerResult, describe_failure, parse_runner_output
from bench_runner.protocol import MeasurementSettings
from deploy.report.statistics import speedup
from lowering.export import Target
from lowering.runtime import load_artifact, prepare_runtime

LABEL = "executorch/fp32"
WARMUP = 3
TARGET_DEVIATION = 0.03


def _agent_round(device: HostDevice, labelled: dict, settings: MeasurementSettings) -> tuple:
    record = measure(device, PythonAgentHarness(), labelled, settings)[(LABEL, settings.threads[0])]
    if record.status != "ok":
        raise SystemExit(f"the agent failed: {record.error}")
    return record.samples_ms, record.load_ms, record.first_inference_ms, record.peak_rss_kb


def _native_round(device: HostDevice, binary: Path, model: Path, runs: int, threads: int, seed: int) -> RunnerResult:
    argv = [str(binary), "--model", str(model), "--warmup", str(WARMUP), "--iterations", str(runs),
            "--threads", str(threads), "--input-seed", str(seed)]
    result = device.run(argv, timeout=600)
    if result.exit_code != 0:
        raise SystemExit(describe_failure(result.exit_code, result.stderr))
    return parse_runner_output(result.stdout)


def _add(side: dict, round_number: int, samples, load_ms: float, first_ms: float, rss_kb: int) -> None:
    side["samples"] += samples
    side["rounds"] += [round_number] * len(samples)
    for key, value in (("load", load_ms), ("first", first_ms), ("rss", rss_kb)):
        side[key].append(value)


def _checksum_gap(model: Path, native: RunnerResult, threads: int) -> float:
    """Relative difference between the runner's output sum and ExecuTorch's Python runtime's."""
    (image,) = runner_inputs(native.input_shapes, native.input_seed)
    expected = float(np.cumsum(load_artifact(model, "executorch", threads)(image).astype(np.float64))[-1])
    return abs(native.checksum.sum - expected) / max(abs(expected), 1e-12)


def _rows(agent: dict, native: dict) -> list[dict]:
    """One table row per harness: medians of samples, loads, first inferences, peak RSS."""
    ratio = speedup(agent["samples"], native["samples"], baseline_rounds=agent["rounds"], row_rounds=native["rounds"])
    rows = []
    for name, side in (("Python agent", agent), ("native runner", native)):
        rows.append({"harness": name, "n": len(side["samples"]), "p50_ms": float(np.median(side["samples"])),
                     "load_ms": float(np.median(side["load"])), "first_ms": float(np.median(side["first"])),
                     "rss_mb": float(np.median(side["rss"])) / 1024})
    # speedup's ratio is agent / native; the table shows native / agent.
    point, low, high = 1 / ratio.ratio, 1 / ratio.ci_high, 1 / ratio.ci_low
    rows[1]["over_agent"] = f"{point:.3f} [{low:.3f}, {high:.3f}] ({ratio.resampled})"
    rows[1]["verdict"] = _verdict(point, low, high)
    return rows


def _verdict(point: float, low: float, high: float) -> str:
    """Whether native / agent meets the target: the interval inside it, or only the point."""
    if abs(point - 1) > TARGET_DEVIATION:
        return f"missed: outside {TARGET_DEVIATION:.0%}"
    inside = max(abs(low - 1), abs(high - 1)) <= TARGET_DEVIATION
    return f"met: within {TARGET_DEVIATION:.0%}" + ("" if inside else ", the interval reaching past it")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.native_runner", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per process")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/native_runner.md"))
    args = parser.parse_args(argv)
    command = command_line(parser.prog, argv)
    machine = describe_machine()
    # ExecuTorch's pool is sized once per process: verification after lowering and the checksum check.
    prepare_runtime("executorch", args.threads)
    artifact = lower(runtime_model(), (Target("executorch", "fp32"),))[Target("executorch", "fp32")]
    binary = build_runner(installed_executorch(), "host")
    settings = MeasurementSettings(threads=(args.threads,), warmup=WARMUP, runs=args.runs, min_seconds=0.0, rounds=1)
    labelled = labelled_artifacts({LABEL: artifact})
    sides = {name: {"samples": [], "rounds": [], "load": [], "first": [], "rss": []} for name in ("agent", "native")}
    device, native = HostDevice(), None
    try:
        for round_number in range(args.rounds):
            for name in ("agent", "native") if round_number % 2 == 0 else ("native", "agent"):
                if name == "agent":
                    timings = _agent_round(device, labelled, settings)
                else:
                    native = _native_round(device, binary, artifact.path, args.runs, args.threads, round_number)
                    timings = native.samples_ms, native.load_ms, native.first_inference_ms, native.peak_rss_kb
                _add(sides[name], round_number, *timings)
            print(f"[native_runner] round {round_number + 1}/{args.rounds} done", flush=True)
    finally:
        device.cleanup()
    rows = _rows(sides["agent"], sides["native"])
    gap = _checksum_gap(artifact.path, native, args.threads)
    columns = (("harness", "harness"), ("n", "n"), ("p50 ms", "p50_ms"), ("native / agent [95% CI]", "over_agent"),
               ("target", "verdict"), ("load ms (median)", "load_ms"), ("first inference ms", "first_ms"),
               ("peak RSS MB", "rss_mb"))
    text = "\n".join([
        "# Native ExecuTorch runner against the Python agent", "",
        f"Command: `{command}`", f"Date (UTC): {machine['date_utc']}",
        f"Machine: {machine['cpu']}; {machine['cores']} cores; virtualized: {machine['virtualized']}; {machine['os']}",
        f"ExecuTorch {machine['versions']['executorch']}; runner {binary.parent.name}", "",
        f"DeiT-Tiny 224 ExecuTorch fp32 (XNNPACK), {args.threads} thread(s): {args.rounds} rounds, each one agent "
        f"process and one runner process (alternating which goes first), {WARMUP} warm-ups and {args.runs} timed runs "
        "each. The interval resamples rounds in pairs. A runner sample is one Module::execute (inputs copied in, "
        "Method::execute, outputs collected); an agent sample is one `method.execute` call from Python. Inputs differ "
        "(the agent's seeded normal values, the runner's seeded uniform ones), which dense fp32 kernels do not care "
        "about. Peak RSS: the agent's includes Python and torch; the runner's is its VmHWM.", "",
        markdown_table(rows, columns), "",
        f"The runner's output sum equals ExecuTorch's Python runtime's on the runner's own input to a relative "
        f"{gap:.1e}.",
    ]) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
