"""`vitdeploy sweep CONFIG.toml`: lower, verify, evaluate, benchmark and report in one go."""

from __future__ import annotations

import argparse
from pathlib import Path

from deploy.executors import EXECUTORS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a sweep: models x lowering x devices x threads, then the report",
        description="Run every cell of a sweep configuration (see deploy/configs/demo.toml for a "
        "commented example). Resumable: finished work is reused; a failed cell is reported "
        "and the rest goes on: run the same command again to continue a sweep that was stopped.",
    )
    parser.add_argument("config", type=Path, help="sweep configuration (TOML)")
    parser.add_argument("--results", type=Path, help="results folder (overrides the config's)")
    parser.add_argument("--executor", choices=EXECUTORS, help="where the work runs (overrides the config's "
                        "[executor] kind; default local): local = this process; ray = Ray tasks over a cluster, "
                        "see `vitdeploy worker --help`")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from deploy.config import load_sweep_config

    config = load_sweep_config(args.config)
    if args.results is not None:
        config = replace(config, results=args.results)
    if args.executor is not None:
        config = replace(config, executor=replace(config.executor, kind=args.executor))
    return finish(config)


def finish(config) -> int:
    """Run the sweep, print its tables, failures and notes; 1 if any cell failed."""
    from deploy.sweep import run_sweep

    outcome = run_sweep(config)
    for device, markdown in outcome.report_markdown.items():
        print(f"\n{markdown}")
    for note in outcome.notes:
        print(f"note: {note}")
    for failure in outcome.failures:
        print(f"FAILED {failure.stage} {failure.what}: {failure.error}")
    if outcome.report_dir is not None:
        print(f"\nreport: {outcome.report_dir}/report.html (and report.md, report.csv, raw_samples.csv, plots/)")
    return 1 if outcome.failures else 0
