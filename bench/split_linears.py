"""Whole against split wide linears in ExecuTorch's graph passes, ExecuTorch fp32, 1 thread:

    python -m bench.split_linears MODEL [--img-size N] [--depth D --branches B] [--rounds R] [--any-tokens]

Builds MODEL (random weights, seed 0; merged first when it has branches) twice into
ExecuTorch programs in a temporary folder, outside the artifact cache: once with the
`split_linears` pass turned off and once as lowering builds it (with `--any-tokens`:
split even below SPLIT_FROM_TOKENS tokens). Both are timed in this process, interleaved
in rounds; prints their p50s and split / whole latency with a paired-round 95% interval.
The source of the figures behind `passes.split_linears.MAX_LINEAR_WIDTH` and
`SPLIT_FROM_TOKENS`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deploy.report.statistics import speedup
from lowering.export.graph_fixes import make_softmax_layout_safe, remove_no_ops
from lowering.export.passes import XNNPACK_PASSES, GraphPass, apply_passes
from lowering.export.passes.split_linears import SPLIT_FROM_TOKENS, split_wide_linears
from lowering.models import create
from lowering.reparam import reparameterize
from lowering.runtime import load_artifact, prepare_runtime

RUNS_PER_ROUND = 20


def passes_with(split: GraphPass) -> tuple[GraphPass, ...]:
    """ExecuTorch's passes with `split` in place of the `split_linears` pass."""
    return tuple(split if graph_pass.name == split.name else graph_pass for graph_pass in XNNPACK_PASSES)


def _program(model: torch.nn.Module, size: int, path: Path, split: GraphPass) -> Path:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = torch.export.export(model, (torch.randn(1, 3, size, size),))
    program = make_softmax_layout_safe(remove_no_ops(apply_passes(exported, passes_with(split))[0]))
    path.write_bytes(to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.split_linears", description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--depth", type=int)
    parser.add_argument("--branches", type=int)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--any-tokens", action="store_true", help="split however few tokens the model has")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("img_size", args.img_size), ("depth", args.depth), ("branches", args.branches)) if v}
    torch.manual_seed(0)
    model = reparameterize(create(args.model, **overrides)).eval()
    prepare_runtime("executorch", 1)
    with tempfile.TemporaryDirectory() as folder:
        whole = _program(model, args.img_size, Path(folder) / "whole.pte", split_wide_linears(max_width=None))
        split = _program(model, args.img_size, Path(folder) / "split.pte",
                         split_wide_linears(from_tokens=0 if args.any_tokens else SPLIT_FROM_TOKENS))
        runners = {"whole": load_artifact(whole, "executorch", 1), "split": load_artifact(split, "executorch", 1)}
        images = np.random.default_rng(0).standard_normal((1, 3, args.img_size, args.img_size)).astype(np.float32)
        samples = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, runner in runners.items():
                for _ in range(3):
                    runner(images)
                for _ in range(RUNS_PER_ROUND):
                    start = time.perf_counter_ns()
                    runner(images)
                    samples[name].append((time.perf_counter_ns() - start) / 1e6)
    rounds = [r for r in range(args.rounds) for _ in range(RUNS_PER_ROUND)]
    ratio = speedup(samples["whole"], samples["split"], baseline_rounds=rounds, row_rounds=rounds)
    print(f"{args.model} {overrides}: whole p50 {np.median(samples['whole']):.3f} ms, split p50 "
          f"{np.median(samples['split']):.3f} ms, split / whole {1 / ratio.ratio:.3f} "
          f"[{1 / ratio.ci_high:.3f}, {1 / ratio.ci_low:.3f}] ({ratio.resampled}, n = {len(rounds)} each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
