"""`vitdeploy derive SRC --depth D --heads H --mlp-ratio R --out NEW.pth`: a smaller ViT
checkpoint that inherits its weights from a bigger one (`lowering.models.derive`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "derive", help="make a smaller ViT checkpoint from a bigger one by inheriting its most important weights"
    )
    parser.add_argument("source", type=Path, metavar="SRC", help="a ViT checkpoint (.pth, .pt, .bin or .safetensors)")
    parser.add_argument("--depth", type=int, help="blocks to keep, spread uniformly (default: all)")
    parser.add_argument("--heads", type=int, help="attention heads to keep per block, by L1 norm (default: all)")
    parser.add_argument("--mlp-ratio", type=float, help="hidden features per model channel to keep, by L1 norm "
                                                        "(default: the source's)")
    parser.add_argument("--head-dim", type=int, default=64, help="the source's head width (default 64, as ViT/DeiT)")
    parser.add_argument("--out", type=Path, required=True, metavar="NEW.pth", help="where the derived state dict goes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from lowering.models.checkpoint import load_state_dict
    from lowering.models.derive import derive_state, source_shape, uniform_layers

    state = load_state_dict(args.source)
    shape = source_shape(state, args.head_dim)
    depth = args.depth or shape.depth
    heads = args.heads or shape.num_heads
    mlp_ratio = args.mlp_ratio or shape.hidden / shape.embed_dim
    derived = derive_state(state, depth, heads, mlp_ratio, args.head_dim)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(derived, args.out)
    params = sum(value.numel() for value in state.values())
    derived_params = sum(value.numel() for value in derived.values())
    print(f"derived {args.out} from {args.source}: depth {shape.depth} -> {depth} "
          f"(blocks {', '.join(map(str, uniform_layers(shape.depth, depth)))}), heads {shape.num_heads} -> {heads}, "
          f"hidden {shape.hidden} -> {int(mlp_ratio * shape.embed_dim)}; "
          f"{params:,} -> {derived_params:,} parameters")
    return 0
