"""ONNX Runtime's transformer fusions on the dynamo export against vitdeploy's ONNX fp32
artifact (issue 14, part 3): `python -m bench.onnx_fusions [--quick] [--models NAMES] [--out DIR]`.

For each model (the registry's DeiT-Tiny at 224, random weights seed 0, and timm graphs
of the zoo, `bench.zoo.zoo_models`): vitdeploy's ONNX fp32 artifact (`lower_model`, the
dynamo export kept through ONNX Runtime's extended offline optimization when that removes
nodes), and `onnxruntime.transformers.optimizer.optimize_model` of the same dynamo export
(`lowering.export.onnx.export_program`) for each of VARIANTS. All are measured interleaved
in one agent process at 1 thread; each fused graph's latency ratio to vitdeploy's comes
with a bootstrap 95% interval over paired rounds, and its max abs error against the
reference output (eager's, or timm's recorded one). Nothing is downloaded: the optimizer
is part of the installed onnxruntime wheel. ONNX Runtime's per-op profile of every artifact
says where the time goes. Writes onnx_fusions.md and its CSVs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

from bench.artifacts import SEED
from bench.command import command_line
from bench.machine import describe_machine, load_average
from bench.measure import Budget, measure
from bench.op_profile import onnx_op_profile, op_profile_table
from bench.tables import compare, interval, markdown_table, write_csv
from bench.zoo import ZooModel, zoo_models
from bench_runner.devices.host import HostDevice
from bench_runner.harness.python_agent import PythonAgentHarness
from bench_runner.records import ArtifactInfo
from lowering.export import LoweringSpec, Target, lower_model
from lowering.export.onnx import export_program
from lowering.runtime import load_artifact

MODELS = ("deit_tiny", "vit", "swin")
# (model_type, opt_level): the optimizer's python fusions alone (0), then with ONNX
# Runtime's basic (1) or extended (2) graph optimizations applied after them.
VARIANTS = (("vit", 0), ("vit", 1), ("vit", 2))
BASELINE = "vitdeploy"
DEFAULT_OUT = Path("results/benchmarks")


def fused(source: Path, target: Path, model_type: str, opt_level: int) -> dict[str, int]:
    """`source` through `optimize_model` (heads and width found by the optimizer) saved
    at `target`; the fused operators it wrote, by type."""
    from onnxruntime.transformers.optimizer import optimize_model

    with contextlib.redirect_stdout(io.StringIO()):
        model = optimize_model(str(source), model_type=model_type, num_heads=0, hidden_size=0, opt_level=opt_level)
    model.save_model_to_file(str(target))
    return {name: count for name, count in model.get_fused_operator_statistics().items() if count}


def _artifacts(model: ZooModel, scratch: Path) -> dict[str, dict]:
    """{label: {"path", "fusions"}}: vitdeploy's ONNX fp32 artifact and each fused variant."""
    (artifact,) = lower_model(model.source, LoweringSpec(targets=(Target("onnx", "fp32"),), seed=SEED),
                              log=lambda message: None)
    exported = scratch / f"{model.name}.onnx"
    export_program(model.program(), torch.zeros(tuple(model.reference_input.shape)), exported)
    found = {BASELINE: {"path": artifact.path, "fusions": {}}}
    for model_type, level in VARIANTS:
        path = scratch / f"{model.name}.{model_type}-O{level}.onnx"
        found[f"fused {model_type} O{level}"] = {"path": path, "fusions": fused(exported, path, model_type, level)}
    return found


def _error(path: Path, model: ZooModel) -> float:
    found = load_artifact(path, runtime="onnxruntime", threads=1)(model.reference_input.numpy())
    return float(np.max(np.abs(found - model.reference_output.numpy())))


def _nodes(path: Path) -> int:
    return len(onnx.load(str(path), load_external_data=False).graph.node)


def run(budget: Budget, names: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """One row per model and artifact (p50, ratio to vitdeploy's [95% CI], error, nodes,
    fusions), and ONNX Runtime's per-op profile of each artifact at 1 thread, after the timing."""
    models = zoo_models(names)
    with tempfile.TemporaryDirectory(prefix="vitdeploy-onnx-fusions-") as folder:
        artifacts = {model.name: _artifacts(model, Path(folder)) for model in models}
        labelled = {f"{name}/{label}": ArtifactInfo.from_path(entry["path"], input_shape=shape)
                    for model in models for name, shape in [(model.name, tuple(model.reference_input.shape))]
                    for label, entry in artifacts[name].items()}
        device = HostDevice()
        try:
            records = measure(device, PythonAgentHarness(), labelled, budget.host((1,)))
        finally:
            device.cleanup()
        rows = []
        for model in models:
            baseline = records[(f"{model.name}/{BASELINE}", 1)]
            for label, entry in artifacts[model.name].items():
                record = records[(f"{model.name}/{label}", 1)]
                comparison = compare(baseline, record) if label != BASELINE else {}
                rows.append({"model": model.name, "artifact": label,
                             "p50_ms": record.stats.p50_ms if record.stats else None,
                             "ratio": interval(comparison, "latency_ratio") if comparison else "1",
                             "latency_ratio": comparison.get("latency_ratio"),
                             "max_abs_error": _error(entry["path"], model), "nodes": _nodes(entry["path"]),
                             "fusions": ", ".join(f"{k} {v}" for k, v in entry["fusions"].items()) or "-"})
        profiles = [{"model": model.name, "artifact": label, **row} for model in models
                    for label, entry in artifacts[model.name].items()
                    for row in onnx_op_profile(entry["path"], threads=1, runs=10 if budget.quick else 30)]
    return rows, profiles


COLUMNS = (("model", "model"), ("artifact", "artifact"), ("p50 ms", "p50_ms"),
           ("p50 / vitdeploy's [95% CI]", "ratio"), ("max abs error", lambda r: f"{r['max_abs_error']:.1e}"),
           ("ONNX nodes", "nodes"), ("fused operators", "fusions"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.onnx_fusions", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke run, not evidence")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated zoo models")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    command = command_line("python -m bench.onnx_fusions", argv)
    machine, before = describe_machine(), load_average()
    rows, profiles = run(Budget(quick=args.quick), tuple(name.strip() for name in args.models.split(",")))
    after = load_average()
    write_csv(rows, args.out / "onnx_fusions.csv")
    write_csv(profiles, args.out / "onnx_fusions_op_profile.csv")
    per_model = [f"ONNX Runtime's profile of {name}, ms per inference (calls), 1 thread:\n\n"
                 + op_profile_table([row for row in profiles if row["model"] == name], top=5)
                 for name in dict.fromkeys(row["model"] for row in profiles)]
    page = "\n".join([
        "# ONNX Runtime's transformer fusions on the dynamo export", "",
        f"Command: `{command}`" + (" (QUICK: a smoke run, too few samples to be evidence)" if args.quick else ""),
        f"Date (UTC): {machine['date_utc']}; load average before {before[0]:.2f}/{before[1]:.2f}/{before[2]:.2f}, "
        f"after {after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f}",
        f"Machine: {machine['cpu']}; {machine['cores']} cores; virtualized: {machine['virtualized']}",
        "Toolchain: " + ", ".join(f"{name} {value}" for name, value in machine["versions"].items()), "",
        "Data: `onnx_fusions.csv`, `onnx_fusions_op_profile.csv`. " + __doc__.split("\n\n")[1].replace("\n", " "), "",
        "'vitdeploy' is the ONNX backend's fp32 artifact; 'fused vit O<n>' is `optimize_model(model_type='vit', "
        "opt_level=n)` of the same dynamo export. Ratios are p50(fused) / p50(vitdeploy) over paired rounds, "
        "1 thread.", "",
        markdown_table(rows, COLUMNS), "", "\n\n".join(per_model)])
    (args.out / "onnx_fusions.md").write_text(page + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'onnx_fusions.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
