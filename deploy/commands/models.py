"""`vitdeploy models [MODEL...]`: parameters and MACs of the registry's models, or of any
model sources named (programs, Hugging Face folders, factories)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models", help="list the registered models, or the models named, with parameters and MACs"
    )
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="model sources to describe, as `vitdeploy lower` takes them (default: the registry)")
    parser.add_argument("--img-size", type=int, default=None,
                        help="input resolution (default: 224 for the registry, the source's own otherwise)")
    parser.add_argument("--num-classes", type=int, default=1000, help="the registry's classifier width (default 1000)")
    parser.set_defaults(func=run)


def _row(label: str, kind: str, shape, params: int, macs: int) -> str:
    height, width = shape[-2:]
    resolution = str(height) if height == width else f"{height}x{width}"
    from deploy.report.cells import format_count

    return f"{label:<22} {kind:<16} {resolution:>10} {params:>12,} {format_count(macs):>8}"


def run(args: argparse.Namespace) -> int:
    from lowering.models import count_macs, count_params, list_models
    from lowering.sources import open_model

    print(f"{'model':<22} {'source':<16} {'resolution':>10} {'params':>12} {'MACs':>8}")
    named = args.models or list_models()
    for name in named:
        registry_defaults = {"num_classes": args.num_classes} if not args.models else None
        size = args.img_size or (224 if not args.models else None)
        model = open_model(name, overrides=registry_defaults, img_size=size)
        macs = count_macs(model.model, model.input_shape)
        print(_row(model.label, model.source_kind, model.input_shape, count_params(model.model), macs))
    return 0
