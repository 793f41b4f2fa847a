"""A standalone benchmark's command line: the options shared by the host benchmarks of
model variants, and the command recorded beside the results."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

DEFAULT_OUT = Path("results/benchmarks")


def host_bench_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """`prog`'s parser with --quick (a smoke run), --threads (1) and --out (results/benchmarks)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke run, not evidence")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def command_line(prog: str, argv: list[str] | None) -> str:
    """`prog` (e.g. "python -m bench.dcal") and its arguments, `sys.argv`'s when `argv` is
    None, as a user would type them again."""
    return (prog + " " + shlex.join(sys.argv[1:] if argv is None else argv)).strip()
