"""`vitdeploy report`: accuracy-latency Pareto tables, CSV, HTML and plots from a results folder."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT = "report"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="join latency and accuracy records into Pareto tables (Markdown, CSV, HTML) and plots",
        description=(
            "Read every results store and every accuracy file (*.jsonl from `vitdeploy eval`) in RESULTS_DIR, "
            "join them by artifact sha256 and write, per device and thread count, a table of model, resolution, "
            "params, MACs, quantization, backend, accuracy (top-1, or the metric the model declares), p50 with its "
            "95% interval, p90, speed-up against a baseline and the accuracy-latency Pareto front, with a plot."
        ),
    )
    parser.add_argument("results", type=Path, metavar="RESULTS_DIR", help="folder holding the results store(s)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help=f"where to write the report (default RESULTS_DIR/{DEFAULT_OUT})")
    parser.add_argument("--baseline", metavar="MODEL_OR_LABEL",
                        help="model name or row label model/backend/quant for the speed-up column "
                             "(default: the fp32 row of the first model alphabetically)")
    parser.add_argument("--accuracy", type=Path, action="append", default=[], metavar="FILE",
                        help="an extra accuracy file (JSON Lines) outside RESULTS_DIR; repeatable")
    parser.add_argument("--dataset", help="the data set to report accuracy on, when the accuracy records cover several")
    parser.add_argument("--min-accuracy", type=_percent, metavar="TOP1_PCT",
                        help="print, per device, the fastest artifacts whose deployed top-1 is at least this "
                             "(in percent), ties listed together")
    parser.add_argument("--budget-ms", type=_positive, metavar="MS",
                        help="mark every row within, over or at this latency budget (by its p50's 95%% interval)")
    parser.set_defaults(func=run)


def _percent(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"a top-1 in percent, 0 to 100, not {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"a latency in milliseconds above 0, not {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from deploy.report import build_report, markdown_for_device, write_report
    from deploy.report.markdown import markdown_across_devices, markdown_fastest

    report = build_report(args.results, baseline=args.baseline, accuracy=args.accuracy, dataset=args.dataset,
                          budget_ms=args.budget_ms, min_top1_pct=args.min_accuracy)
    files = write_report(report, args.out or args.results / DEFAULT_OUT)
    for device in report.devices:
        print(markdown_for_device(report, device))
    if report.across_devices is not None and len(report.across_devices.columns) > 1:
        print(markdown_across_devices(report.across_devices))
    if report.fastest:
        print(markdown_fastest(report))
    print(f"report: {files.html}")
    print(f"        {files.markdown}")
    print(f"        {files.csv} (rows), {files.samples_csv} (raw samples)")
    if files.plots:
        print(f"plots:  {files.plots[0].parent}/ ({len(files.plots)} files)")
    return 0
