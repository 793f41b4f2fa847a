"""`vitdeploy eval`: accuracy of lowered artifacts, run in their own runtimes on the host."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_RESULTS = Path("results")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure top-1/top-5 of artifacts in their own runtimes and append accuracy records",
        description=(
            "Run each artifact through its own runtime on the host (ExecuTorch, ONNX Runtime; Core ML "
            "needs macOS) over the embedded digits' val split or an image folder (root/<class>/<image>, "
            "classes sorted by name), preprocessed as the artifact's manifest says, and append one "
            "accuracy record per artifact to RESULTS/accuracy.jsonl."
        ),
    )
    parser.add_argument("artifacts", nargs="+", type=Path, metavar="ARTIFACT", help=".pte, .onnx or .mlpackage with its manifest")
    parser.add_argument("--data", default="digits", metavar="DIR|digits",
                        help="an image folder in ImageNet validation layout, or 'digits' (default: the embedded digits)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="DIR",
                        help=f"folder of the accuracy records (default {DEFAULT_RESULTS})")
    parser.add_argument("--limit", type=_positive, metavar="N", help="evaluate N images chosen with seed 0")
    parser.add_argument("--skip-bad", action="store_true", help="skip undecodable images (and count them) instead of failing")
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of images, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from deploy.evaluate import append_accuracy, evaluate_artifact
    from vitdeploy.errors import VitdeployError

    results, failures = [], []
    print(f"{'artifact':<40} {'model':<16} {'backend':<11} {'quant':<13} {'images':>7}  accuracy")
    for path in args.artifacts:
        try:
            result = evaluate_artifact(path, args.data, args.limit, args.skip_bad)
        except VitdeployError as exc:
            failures.append(f"{path}: {exc}")
            print(f"{path.name:<40} FAILED: {exc}")
            continue
        results.append(result)
        print(f"{path.name:<40} {result.model:<16} {result.backend:<11} {result.quant:<13} "
              f"{result.num_images:>7}  {result.headline}")
        if result.skipped_images:
            print(f"  skipped {result.skipped_images} undecodable image(s)")
    if results:
        written = append_accuracy(args.results, results)
        for dataset in sorted({r.dataset for r in results}):
            print(f"data set: {dataset}")
        print(f"appended {len(results)} accuracy record(s) to {written}")
    if failures:
        raise VitdeployError(f"{len(failures)} of {len(args.artifacts)} artifact(s) not evaluated:\n  " + "\n  ".join(failures))
    return 0
