"""The benchmark command: `python -m bench.run [--quick] [--only SECTIONS] [--models NAMES] [--out DIR]`.

Sections (default: all): runtimes, limit (needs runtimes' records for the distance
table; its GEMMs always run), zoo (vitdeploy against stock ExecuTorch lowering on the
timm graphs and the registry's DeiT/ViT-Tiny; uses limit's GEMMs when limit runs too,
measures them itself otherwise; also writes zoo.md; `--models` runs a subset), reparam, arm (emulated ARM64; needs
`vitdeploy devices setup qemu-arm64`), overhead, demo_time (the demo from a cold and a
warm cache, about 8 minutes). Writes one CSV per table, raw samples
included, and SUMMARY.md into `--out` (default results/benchmarks).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import demo_time, limit, overhead, reparam, runtimes, zoo
from bench.command import command_line
from bench.machine import describe_machine, load_average
from bench.measure import Budget, Section
from bench.tables import write_csv
from lowering.models import resolve_spec
from lowering.runtime import prepare_runtime

SECTIONS = ("runtimes", "limit", "zoo", "reparam", "arm", "overhead", "demo_time")
DEFAULT_OUT = Path("results/benchmarks")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke run, not evidence")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--models", default=None,
                        help="comma-separated zoo models to run (default: all; see bench.zoo.zoo_models)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where CSVs and SUMMARY.md go")
    args = parser.parse_args(argv)
    args.sections = [name.strip() for name in args.only.split(",") if name.strip()]
    args.models = tuple(name.strip() for name in args.models.split(",") if name.strip()) if args.models else None
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def _summary(command: str, machine: dict, sections: list[tuple[Section, float, tuple, tuple]], quick: bool) -> str:
    versions = ", ".join(f"{name} {value}" for name, value in machine["versions"].items())
    lines = [
        "# Benchmarks: reparameterization, runtimes, distance to the limit, harness overhead",
        "",
        f"Command: `{command}`" + (" (QUICK: a smoke run, too few samples to be evidence)" if quick else ""),
        f"Date (UTC): {machine['date_utc']}",
        f"Machine: {machine['cpu']}; {machine['cores']} cores; virtualized: {machine['virtualized']}; {machine['os']}",
        f"Toolchain: {versions}",
        "",
        "The machine may be shared with other work: every comparison is a ratio of artifacts measured side by "
        "side, interleaved in rounds in one process, with a bootstrap 95% interval of the ratio of medians that "
        "resamples whole rounds, the same rounds for both sides (single samples where there are fewer than five "
        "shared rounds); n is the number of timed samples behind each median and CV the samples' coefficient of "
        "variation. The load average (1/5/15 min) before and after each section says how busy the machine was.",
        "",
        "What the figures mean, which targets are missed and why: [ANALYSIS.md](ANALYSIS.md) (written by hand "
        "for the run dated above; rerunning the command refreshes only this file and the CSVs).",
    ]
    for section, seconds, before, after in sections:
        lines += ["", f"## {section.name}", "",
                  f"Wall time {seconds:.0f} s; load average before {before[0]:.2f}/{before[1]:.2f}/{before[2]:.2f}, "
                  f"after {after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f}. Data: "
                  + ", ".join(f"`{name}.csv`" for name in section.tables), "", section.markdown]
    return "\n".join(lines) + "\n"


def _write_zoo(out: Path, command: str, machine: dict, outcome: tuple, quick: bool) -> None:
    """zoo.md: the zoo section as a page of its own."""
    section, seconds, before, after = outcome
    versions = ", ".join(f"{name} {value}" for name, value in machine["versions"].items())
    page = "\n".join([
        "# Zoo: vitdeploy's ExecuTorch lowering against stock lowering", "",
        f"Command: `{command}`" + (" (QUICK: a smoke run, too few samples to be evidence)" if quick else ""),
        f"Date (UTC): {machine['date_utc']}; wall time {seconds:.0f} s; load average before "
        f"{before[0]:.2f}/{before[1]:.2f}/{before[2]:.2f}, after {after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f}",
        f"Machine: {machine['cpu']}; {machine['cores']} cores; virtualized: {machine['virtualized']}",
        f"Toolchain: {versions}", "",
        "Data: " + ", ".join(f"`{name}.csv`" for name in section.tables), "", section.markdown])
    out.mkdir(parents=True, exist_ok=True)
    (out / "zoo.md").write_text(page + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    budget = Budget(quick=args.quick)
    command = command_line("python -m bench.run", argv)
    machine = describe_machine()
    # ExecuTorch's pool is sized once per process: verification after lowering, the op
    # profiles and the in-process loop all run at 1 thread here (the agents size their own).
    prepare_runtime("executorch", 1)
    done: list[tuple[Section, float, tuple, tuple]] = []
    runtime_records, deit_spec = None, resolve_spec("deit_tiny")
    deit_macs, gemms = 0, None

    def timed(name: str, action) -> None:
        print(f"[bench] {name} ...", flush=True)
        before, started = load_average(), time.perf_counter()
        section = action()
        done.append((section, time.perf_counter() - started, before, load_average()))
        for table, rows in section.tables.items():
            write_csv(rows, args.out / f"{table}.csv")
        print(f"[bench] {name} done in {time.perf_counter() - started:.0f} s", flush=True)

    if "runtimes" in args.sections:
        def runtimes_section():
            nonlocal runtime_records, deit_macs
            section, runtime_records, deit_macs = runtimes.run(budget)
            return section
        timed("runtimes", runtimes_section)
    if "limit" in args.sections:
        def limit_section():
            nonlocal gemms
            gemms = limit.measure_gemms(budget, deit_spec)
            return limit.run(budget, deit_spec, runtime_records, deit_macs, gemms)
        timed("limit", limit_section)
    if "zoo" in args.sections:
        timed("zoo", lambda: zoo.run(budget, (gemms or limit.measure_gemms(budget, deit_spec))[1], args.models))
        _write_zoo(args.out, command, machine, done[-1], args.quick)
    if "reparam" in args.sections:
        timed("reparam", lambda: reparam.run_host(budget))
    if "arm" in args.sections:
        timed("arm", lambda: reparam.run_emulated(budget))
    if "overhead" in args.sections:
        timed("overhead", lambda: overhead.run(budget))
    if "demo_time" in args.sections:
        timed("demo_time", lambda: demo_time.run(budget))
    summary = _summary(command, machine, done, args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "SUMMARY.md").write_text(summary, encoding="utf-8")
    print(f"[bench] wrote {args.out / 'SUMMARY.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
