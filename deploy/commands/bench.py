"""`vitdeploy bench`: measure artifacts on a device and append records to the results store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_RESULTS = Path("results") / "store"


def int_list(text: str) -> tuple[int, ...]:
    """Parse "1,2,4" into (1, 2, 4)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,4, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    from bench_runner.harness import HARNESSES

    parser = subparsers.add_parser(
        "bench",
        help="measure artifacts on a device and append the records to the results store",
        description=(
            "Measure artifacts on a device under the device profile's protocol (warm-up, at least N runs "
            "and S seconds, artifacts interleaved in rounds, a thread sweep) and append one record per "
            "artifact and thread count to the results store. Options override the profile."
        ),
    )
    parser.add_argument("artifacts", nargs="+", type=Path, metavar="ARTIFACT", help=".pte, .onnx or .mlpackage files")
    parser.add_argument(
        "--device", default="host", help="a profile name in device_profiles/, a profile .toml, or a device kind (default host)"
    )
    parser.add_argument("--profiles", type=Path, metavar="DIR", help="folder of device profiles (default: device_profiles/)")
    parser.add_argument("--harness", choices=sorted(HARNESSES), default=None, help="how to run the artifacts (default: the profile's native tool for each runtime, else python-agent)")
    parser.add_argument("--threads", type=int_list, help="thread counts to sweep, e.g. 1,2,4")
    parser.add_argument("--cpu-mask", help="hexadecimal CPU affinity mask, e.g. f0")
    parser.add_argument("--warmup", type=int, help="untimed runs at the start of each round")
    parser.add_argument("--runs", type=int, help="at least this many timed runs per artifact")
    parser.add_argument("--min-seconds", type=float, help="at least this many timed seconds per artifact")
    parser.add_argument("--rounds", type=int, help="rounds the artifacts alternate in")
    parser.add_argument("--cooldown", type=float, dest="cooldown_seconds", help="idle seconds between configurations")
    parser.add_argument("--repetitions", type=int, help="repeat the whole sweep this many times")
    parser.add_argument("--timeout", type=float, dest="timeout_seconds", help="seconds before a harness call is killed")
    parser.add_argument("--seed", type=int, help="seed of the fixed inputs and the bootstrap")
    parser.add_argument("--input-shape", type=int_list, help="input shape when an artifact has no manifest, e.g. 1,3,224,224")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="DIR", help=f"results store (default {DEFAULT_RESULTS})")
    parser.add_argument("--resume", action="store_true", help="skip measurements the store already holds")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="afterwards, export the whole store to this CSV file")
    parser.set_defaults(func=run)


class ProgressPrinter:
    """Draws one progress line on stderr: a bar over configurations, the device, the round."""

    def __init__(self, stream=None, width: int = 20) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interactive = self.stream.isatty()

    def __call__(self, progress) -> None:
        done = progress.configuration - 1
        filled = round(self.width * done / max(progress.configurations, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        round_text = "all rounds" if progress.round is None else f"round {progress.round + 1}/{progress.rounds}"
        line = (
            f"[{bar}] {progress.configuration}/{progress.configurations} {progress.device} "
            f"threads={progress.threads} rep={progress.repetition} {round_text} {progress.artifact}: {progress.message}"
        )
        if self.interactive:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()


AGGREGATE_HEADING = (
    "from the tool's aggregate on {device}: mean / trimmed mean over N runs, no raw samples, no interval "
    "(not comparable with p50s)"
)


def format_table(records) -> str:
    """The short console summary: one line per record with raw samples or a failure; records
    that carry only a tool's aggregate follow in their own table per device, never as p50s."""
    header = ("artifact", "model", "backend", "quant", "threads", "p50 ms", "95% CI ms", "n", "notes")
    rows = []
    for record in records:
        if record.ok and record.aggregate is not None:
            continue
        notes = ["emulated"] if record.emulated else []
        if record.ok:
            stats = record.stats
            if not record.stable:
                notes.append("unstable: " + record.stability_note)
            cells = (f"{stats.p50_ms:.3f}", f"{stats.ci95_low_ms:.3f}-{stats.ci95_high_ms:.3f}", str(stats.n))
        else:
            notes.append("failed: " + (record.error or "").splitlines()[0][:120])
            cells = ("-", "-", "0")
        rows.append((*_identity(record), *cells, "; ".join(notes)))
    sections = [_aligned(header, rows)] if rows else []
    return "\n\n".join(sections + _aggregate_tables(records))


def _identity(record) -> tuple[str, ...]:
    return (Path(record.artifact_path).name, record.model, record.backend, record.quant, str(record.threads))


def _aggregate_tables(records) -> list[str]:
    from bench_runner.protocol import aggregate_problems

    header = ("artifact", "model", "backend", "quant", "threads", "mean ms", "trimmed mean ms", "runs", "notes")
    by_device: dict[str, list] = {}
    for record in records:
        if record.ok and record.aggregate is not None:
            by_device.setdefault(record.device_name, []).append(record)
    tables = []
    for device, group in by_device.items():
        rows = []
        for record in group:
            aggregate = record.aggregate
            notes = ["emulated"] if record.emulated else []
            if record.stable is False:
                notes.append("unstable: " + aggregate_problems(record.stability_note))
            trimmed = "-" if aggregate.trimmed_mean_ms is None else f"{aggregate.trimmed_mean_ms:.3f}"
            rows.append((*_identity(record), f"{aggregate.mean_ms:.3f}", trimmed, str(aggregate.runs), "; ".join(notes)))
        sources = dict.fromkeys(record.aggregate.source for record in group)
        lines = [AGGREGATE_HEADING.format(device=device), _aligned(header, rows)]
        lines += [f"source: {source}" for source in sources]
        if any(record.aggregate.trimmed_mean_is_pooled for record in group):
            lines.append("trimmed mean over several rounds: the run-weighted mean of each round's trimmed mean")
        tables.append("\n".join(lines))
    return tables


def _aligned(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (header, *rows))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from bench_runner.devices import open_device
    from bench_runner.profiles import find_profile
    from bench_runner.protocol import run_on_profile
    from bench_runner.records import ArtifactInfo
    from bench_runner.store import ResultsStore

    profile = find_profile(args.device, args.profiles)
    settings = profile.measurement.with_overrides(
        threads=args.threads,
        cpu_mask=args.cpu_mask,
        warmup=args.warmup,
        runs=args.runs,
        min_seconds=args.min_seconds,
        rounds=args.rounds,
        cooldown_seconds=args.cooldown_seconds,
        repetitions=args.repetitions,
        timeout_seconds=args.timeout_seconds,
        seed=args.seed,
    )
    artifacts = [ArtifactInfo.from_path(path, input_shape=args.input_shape) for path in args.artifacts]
    store = ResultsStore(args.results)
    device = open_device(profile)
    printer = ProgressPrinter()
    try:
        records = run_on_profile(
            device, profile, artifacts, settings,
            harness_name=args.harness, store=store, resume=args.resume, progress=printer,
        )
    finally:
        printer.finish()
        device.cleanup()

    if records:
        print(format_table(records))
    else:
        print("nothing to measure: the store already holds every requested measurement (--resume)")
    if any(record.emulated for record in records):
        print("note: emulated-CPU times are a functional and relative signal, never a phone's latency")
    if any(record.ok and record.stable is False for record in records):
        print("note: unstable records were measured while the machine was busy or drifting; measure again on a quiet machine")
    print(f"{len(records)} record(s) appended to {store.root}")
    if args.csv:
        print(f"store exported to {store.export_csv(args.csv)}")
    return 0 if all(record.ok for record in records) else 1
