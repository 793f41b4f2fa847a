"""Entry point of the `vitdeploy` console script."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from deploy.commands import COMMAND_MODULES
from vitdeploy.errors import VitdeployError

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitdeploy",
        description="Lower small Vision Transformers to mobile runtimes and measure them.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"deploy.commands.{name}").register(subparsers)
    return parser


# Libraries that report their own optional parts (torchao's CUDA kernels, torchvision
# ops for the ONNX exporter) or deprecations: none of it concerns a vitdeploy user. A
# filter on the exact logger survives torch resetting its loggers' levels on import.
QUIET_LOGGERS = (
    "torchao",
    "torch.onnx._internal.exporter._registration",
    "torch.utils._pytree",
    "coremltools",
)


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def quiet_third_party_output() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).addFilter(_errors_only)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_third_party_output()
    try:
        return int(args.func(args) or 0)
    except VitdeployError as exc:
        print(f"vitdeploy {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
