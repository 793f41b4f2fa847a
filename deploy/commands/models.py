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
    parser.add_argument("--img-size", type=int, default=None, help="input resolution (default: each model's own)")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="the registry classifiers' width (default: each model's own; 1000 for ImageNet's)")
    parser.set_defaults(func=run)


def _row(label: str, kind: str, shape, params: int, macs: int, judged_by: str) -> str:
    height, width = shape[-2:]
    resolution = str(height) if height == width else f"{height}x{width}"
    from deploy.report.cells import format_count

    return f"{label:<28} {kind:<16} {resolution:>10} {params:>12,} {format_count(macs):>8}  {judged_by}"


def _judged_by(model) -> str:
    """What a model's quality is measured by: its spec's metric (registry models), else top-1."""
    spec = getattr(model, "spec", None)
    if spec is None:
        return "top-1"
    return "cosine of embeddings" if spec.metric is None else spec.metric.title


def _is_classifier(name: str) -> bool:
    from lowering.models import resolve_spec

    return resolve_spec(name).output == "logits"


def run(args: argparse.Namespace) -> int:
    from lowering.models import count_macs, count_params, list_models
    from lowering.sources import open_model

    print(f"{'model':<28} {'source':<16} {'resolution':>10} {'params':>12} {'MACs':>8}  judged by")
    named = args.models or list_models()
    for name in named:
        classes = args.num_classes is not None and not args.models and _is_classifier(name)
        model = open_model(name, overrides={"num_classes": args.num_classes} if classes else None,
                           img_size=args.img_size)
        macs = count_macs(model.model, model.input_shape)
        print(_row(model.label, model.source_kind, model.input_shape, count_params(model.model), macs,
                   _judged_by(model.model)))
    return 0
