"""`vitdeploy models`: the registry with parameters and MACs at a given image size."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models", help="list the registered models with parameters and MACs"
    )
    parser.add_argument("--img-size", type=int, default=224, help="input resolution (default 224)")
    parser.add_argument("--num-classes", type=int, default=1000, help="classifier width (default 1000)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lowering.models import count_macs, count_params, create, list_models

    print(f"{'model':<22} {'resolution':>10} {'params':>12} {'GMACs':>8}")
    for name in list_models():
        model = create(name, img_size=args.img_size, num_classes=args.num_classes)
        macs = count_macs(model, (1, model.spec.in_chans, args.img_size, args.img_size))
        print(f"{name:<22} {args.img_size:>10} {count_params(model):>12,} {macs / 1e9:>8.3f}")
    return 0
