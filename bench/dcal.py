"""What DCAL's top-k token selection costs, ExecuTorch (XNNPACK) fp32 on the host:

    python -m bench.dcal [--quick] [--threads 1] [--out results/benchmarks]

Full-size models (224 px, DeiT-Tiny, 12 blocks, random weights, seed 0) lowered by
`lower_model`: DeiT-Tiny; DCAL (`deit_tiny_dcal`: one GLCA block on the top 19 of 196
patches by attention rollout, the pair-wise branch removed at lowering); and the same
DCAL weights with the selection replaced by a fixed slice (the first 19 patches: no
rollout, top-k or gather, so one XNNPACK delegate). The three are measured interleaved
in one agent process (paired rounds); the DCAL program is also profiled per operator
(ETDump), and its ONNX artifact by ONNX Runtime's profiler, to show what top-k and its
gather take where they run. Writes dcal.md and dcal.csv.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from pathlib import Path

import torch

from bench.artifacts import SEED, lower, macs
from bench.command import command_line, host_bench_parser
from bench.machine import describe_machine
from bench.measure import Budget, labelled_artifacts, measure
from bench.op_profile import executorch_op_profiles_at, onnx_op_profile, op_profile_table
from bench.tables import compare, interval, markdown_table, write_csv
from bench_runner.devices.host import HostDevice
from bench_runner.harness.python_agent import PythonAgentHarness
from lowering.cache import ArtifactCache
from lowering.export import LoweringSpec, Target, lower_model
from lowering.models import count_params, create
from lowering.models.dcal import GlobalLocalCrossAttention
from lowering.runtime import prepare_runtime

EXECUTORCH, ONNX = Target("executorch", "fp32"), Target("onnx", "fp32")
PROFILE_RUNS = 50
# Twice the host budget's rounds and samples: a 5-10% difference on a shared host.
ROUNDS, RUNS, MIN_SECONDS = 12, 144, 9.0
# Words in the profilers' names of the selection's operators.
SELECTION_OPS = ("topk", "gather")
COLUMNS = (("model", "label"), ("params", "params"), ("MMACs", "mmacs"), ("XNNPACK segments", "segments"),
           ("portable ops", "portable"), ("max abs error vs eager", "max_abs_error"), ("p50 ms", "p50_ms"),
           ("min ms", "min_ms"), ("baseline", "baseline"),
           ("latency / baseline [95% CI]", "ratio"), ("stable", "stable"))


class FixedSlice(GlobalLocalCrossAttention):
    """GLCA on the first `count` patch tokens: the selection without rollout, top-k or gather."""

    def select(self, patches: torch.Tensor, maps: list[torch.Tensor]) -> torch.Tensor:
        return patches[:, : self.count]


def fixed_slice(model):
    """A copy of a DCAL model whose GLCA branch reads a fixed slice of the patches."""
    variant = copy.deepcopy(model)
    variant.glca = FixedSlice(model.spec)
    variant.glca.load_state_dict(model.glca.state_dict())
    return variant.eval()


def _lower_afresh(model, targets: tuple[Target, ...], folder: Path) -> dict:
    """`model` lowered into a cache of its own: the fixed slice has DCAL's weights and spec,
    so its cache key, and the key does not cover the model's code."""
    spec = LoweringSpec(targets=targets, seed=SEED, keep_failed=True)
    return {a.target: a for a in lower_model(model, spec, cache=ArtifactCache(folder), log=print)}


def _row(label, model, artifact, baseline) -> dict:
    delegation = artifact.manifest.delegation
    return {"label": label, "params": count_params(model), "mmacs": round(macs(model) / 1e6, 1),
            "segments": delegation.get("num_delegates"),
            "portable": ", ".join(f"{op} x{n}" for op, n in delegation.get("fallback_ops", {}).items()) or "none",
            "max_abs_error": artifact.manifest.verification.get("max_abs_error"), "baseline": baseline}


def main(argv: list[str] | None = None) -> int:
    parser = host_bench_parser("python -m bench.dcal", __doc__.splitlines()[0])
    args = parser.parse_args(argv)
    command = command_line(parser.prog, argv)
    prepare_runtime("executorch", args.threads)
    torch.manual_seed(0)
    baseline = create("deit_tiny")
    torch.manual_seed(0)
    dcal = create("deit_tiny_dcal")
    sliced = fixed_slice(dcal)
    models = {"DeiT-Tiny": baseline, "DCAL, top-k": dcal, "DCAL, fixed slice": sliced}
    with tempfile.TemporaryDirectory(prefix="vitdeploy-dcal-") as scratch:
        artifacts = {"DeiT-Tiny": lower(baseline, (EXECUTORCH,))[EXECUTORCH]}
        dcal_artifacts = _lower_afresh(dcal, (EXECUTORCH, ONNX), Path(scratch) / "top-k")
        artifacts["DCAL, top-k"] = dcal_artifacts[EXECUTORCH]
        artifacts["DCAL, fixed slice"] = _lower_afresh(sliced, (EXECUTORCH,), Path(scratch) / "fixed-slice")[EXECUTORCH]
        device = HostDevice()
        try:
            settings = Budget(args.quick).host((args.threads,))
            if not args.quick:
                settings = dataclasses.replace(settings, rounds=ROUNDS, runs=RUNS, min_seconds=MIN_SECONDS)
            records = measure(device, PythonAgentHarness(), labelled_artifacts(artifacts), settings)
        finally:
            device.cleanup()
        profile_runs = 5 if args.quick else PROFILE_RUNS
        profiles = executorch_op_profiles_at({"DCAL, top-k": artifacts["DCAL, top-k"].path,
                                              "DCAL, fixed slice": artifacts["DCAL, fixed slice"].path},
                                             args.threads, profile_runs)
        onnx_profile = onnx_op_profile(dcal_artifacts[ONNX].path, args.threads, profile_runs)
    rows = []
    for label, base in (("DeiT-Tiny", "DeiT-Tiny"), ("DCAL, top-k", "DCAL, fixed slice"),
                        ("DCAL, fixed slice", "DeiT-Tiny")):
        row = _row(label, models[label], artifacts[label], base)
        record = records[(label, args.threads)]
        row["p50_ms"], row["min_ms"] = (record.stats.p50_ms, record.stats.min_ms) if record.stats else (None, None)
        row["stable"] = record.stable
        if label != base:
            row.update(compare(records[(base, args.threads)], record))
            row["ratio"] = interval(row, "latency_ratio")
        rows.append(row)
    profile_rows = [{"artifact": label, **row} for label, entries in profiles.items() for row in entries]
    profile_rows += [{"artifact": "DCAL, top-k (ONNX Runtime)", **row} for row in onnx_profile]
    selection = [row for row in profile_rows if any(word in row["op_type"].lower() for word in SELECTION_OPS)]
    machine = describe_machine()
    text = "\n".join([
        "# DCAL: what top-k token selection costs (ExecuTorch fp32, XNNPACK)", "",
        f"Command: `{command}`", f"Date (UTC): {machine['date_utc']}",
        f"Machine: {machine['cpu']}; {machine['cores']} cores; {machine['os']}; load average "
        f"{', '.join(f'{value:.1f}' for value in machine['load_average'])} at the end (other work on a shared host "
        "widens the intervals; `stable` False flags it, and the minimum is the least disturbed figure)", "",
        f"224 px, DeiT-Tiny (12 blocks), random weights (seed 0); {args.threads} thread(s); the three programs "
        "interleaved in one agent process, the interval resampling paired rounds. DCAL adds one global-local "
        "cross-attention block whose queries are the class token and the 19 (10% of 196) patches attention rollout "
        "ranks highest; its output is the mean of the SA and GLCA heads' logits. XNNPACK has no top-k: ExecuTorch "
        "runs it, the gather and the index's unsqueeze/expand on its portable kernels between the two XNNPACK "
        "delegates (before: the 12 SA blocks and the rollout; after: the GLCA block and both heads). "
        "ONNX Runtime runs TopK and GatherElements as its own CPU kernels and Core ML's program has a `topk` and a "
        "`gather_along_axis` op (spec only here: no macOS). The fixed slice takes the first 19 patches instead: "
        "no rollout, top-k or gather, one delegate; its latency difference to top-k is the whole selection "
        "(rollout, top-k, gather, the delegate boundary).", "",
        markdown_table(rows, COLUMNS), "",
        f"## Per-operator time, ms per inference (calls), {profile_runs} runs after 3 warm-ups", "",
        "ExecuTorch from ETDump (XNNPACK's operators by XNNPACK's names, portable kernels as "
        "`native_call_*`); the ONNX column is ONNX Runtime's profiler on the ONNX artifact of the same DCAL model.", "",
        op_profile_table(profile_rows, top=6), "",
        "Selection operators alone:", "",
        markdown_table(selection, (("artifact", "artifact"), ("op", "op_type"), ("calls", "calls_per_run"),
                                   ("ms per inference", "ms_per_run"), ("share of the total", "share"))),
    ]) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dcal.md").write_text(text, encoding="utf-8")
    write_csv(rows + [{"section": "op_profile", **row} for row in profile_rows], args.out / "dcal.csv")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
