"""`vitdeploy demo`: the shipped demo sweep on the host and the emulated ARM64 CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo.toml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train, lower, verify, measure and report four small ViTs (no network, no phone)",
        description=f"Runs the sweep in {DEMO_CONFIG.name}: four ViT-Tiny-width models with the "
        "same MACs (12 x 1 and merged 6 x 2, 4 x 3, 3 x 4 branches) trained on the embedded "
        "digits, lowered to ExecuTorch and ONNX in fp32 and int8, measured on the host and "
        "the emulated ARM64 CPU (set up on first use), and reported.",
    )
    parser.add_argument("--results", type=Path, default=Path("results/demo"), help="results folder")
    parser.add_argument("--quick", action="store_true",
                        help="two models, fp32 only, short training and few runs (for tests)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from deploy.commands.sweep import finish
    from deploy.config import load_sweep_config

    config = replace(load_sweep_config(DEMO_CONFIG), results=args.results)
    if args.quick:
        config = quick(config)
    return finish(config)


def quick(config):
    """The demo trimmed for the test suite: the same pipeline on less work."""
    from dataclasses import replace

    return replace(
        config,
        models=(config.models[0], config.models[-1]),
        quant=("fp32",),
        training={**config.training, "epochs": 1, "train_limit": 256},
        eval_limit=64,
        measurement={**config.measurement, "warmup": 1, "runs": 10, "min_seconds": 0.0, "rounds": 2},
        device_measurement={name: {"warmup": 1, "runs": 2, "rounds": 1} for name in config.device_measurement},
    )
