"""Section zoo (issue 14): vitdeploy's ExecuTorch lowering against the stock one on a zoo of
small ViTs, `python -m bench.run --only zoo`.

Models: the nine shared timm graphs (tests/fixtures/timm_graphs) and the registry's
DeiT-Tiny and ViT-Tiny at 224 (random weights, seed 0). Artifacts per model: vitdeploy's
ExecuTorch fp32 and int8 (`lowering.export.lower_model`, int8 calibrated on 32 digits
images in the model's preprocessing), stock ExecuTorch fp32 and PT2E int8 calibrated on
the same images, and ONNX Runtime fp32 of a plain `torch.onnx.export` (`bench.stock`).
All of them are measured interleaved in one agent process per thread count (1 and 2),
so every vitdeploy/stock ratio comes from paired rounds; each artifact's output on the
reference input is compared with timm's recorded output (eager's for registry models),
and its achieved GFLOP/s with the GEMM limit of the limit section (`bench.limit`). Each
missed latency target is explained by the kernel that limits it (`zoo_targets.limiting_kernel`):
the GEMM floor and ETDump per-op profiles of both artifacts at that thread count, taken
after the timing, in a worker process per thread count (`bench.op_profile`).
`models` (`python -m bench.run --models a,b`) runs a subset.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bench.artifacts import SEED
from bench.limit import attainable
from bench.measure import Budget, Section, measure, sample_rows
from bench.op_profile import executorch_op_profiles_at
from bench.stock import stock_artifacts
from bench.tables import compare, interval, markdown_table
from bench.zoo_targets import (
    error_target,
    gemm_floor_ms,
    is_transformer,
    latency_limit,
    latency_target,
    limiting_kernel,
    missed,
    outside_ops,
    segment_target,
)
from bench_runner.devices.host import HostDevice
from bench_runner.harness.python_agent import PythonAgentHarness
from bench_runner.records import ArtifactInfo
from lowering.cache import weights_sha256
from lowering.data import calibration_set
from lowering.export import CalibrationSet, LoweringSpec, Target, lower_model
from lowering.models import count_macs, create
from lowering.runtime import load_artifact
from lowering.sources import open_model
from vitdeploy.errors import first_line

GRAPHS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "timm_graphs"
REGISTRY = ("deit_tiny", "vit_tiny")
THREADS = (1, 2)
VITDEPLOY = {"vitdeploy/fp32": Target("executorch", "fp32"), "vitdeploy/int8": Target("executorch", "int8")}
STOCK = {"stock/fp32": "executorch/fp32", "stock/int8": "executorch/int8", "ort/fp32": "onnx/fp32"}
KINDS = (*VITDEPLOY, *STOCK)


@dataclass(frozen=True, eq=False)
class ZooModel:
    """One model of the zoo: what `lower_model` takes (`source`), how to make its exported
    program for the stock lowering (`program`), its identity for the stock cache, the
    reference input and output errors are measured on, calibration images, MACs, and
    whether it has attention (the segment target applies to transformers)."""

    name: str
    source: object
    program: Callable[[], torch.export.ExportedProgram]
    content_id: str
    reference_input: torch.Tensor
    reference_output: torch.Tensor
    reference: str
    calibration: CalibrationSet
    macs: int
    transformer: bool


@dataclass(frozen=True)
class ZooArtifact:
    """One artifact: its `kind` (one of KINDS), what the agent needs, its delegation
    summary (ExecuTorch only), and its max abs error against the reference, or why its
    runtime could not run it (`failure`: then it is not measured)."""

    kind: str
    info: ArtifactInfo | None
    delegation: dict | None
    error: float | None
    failure: str | None = None


def _timm_models() -> list[ZooModel]:
    index = json.loads((GRAPHS / "index.json").read_text())
    models = []
    for name, facts in sorted(index.items()):
        source = open_model(str(GRAPHS / f"{name}.pt2"), mean=tuple(facts["mean"]), std=tuple(facts["std"]))
        recorded = torch.load(GRAPHS / f"{name}.io.pt")
        ops = [str(node.target) for node in source.program.graph.nodes if node.op == "call_function"]
        models.append(ZooModel(
            name, source, lambda program=source.program: program, f"program-sha256:{source.source_sha256}",
            recorded["input"], recorded["output"], "timm's recorded output",
            CalibrationSet(*calibration_set(source.image_format)), count_macs(source.model, source.input_shape),
            is_transformer(ops)))
    return models


def _registry_models() -> list[ZooModel]:
    models = []
    for name in REGISTRY:
        torch.manual_seed(SEED)
        model = create(name).eval()
        spec = model.spec
        shape = (1, spec.in_chans, spec.img_size, spec.img_size)
        reference_input = torch.randn(shape, generator=torch.Generator().manual_seed(SEED))
        with torch.no_grad():
            reference_output = model(reference_input)
        example = torch.zeros(shape)
        identity = f"registry:{json.dumps(spec.to_dict(), sort_keys=True)}:weights-sha256:{weights_sha256(model)}"
        models.append(ZooModel(
            name, model, lambda model=model, example=example: torch.export.export(model, (example,)), identity,
            reference_input, reference_output, "eager", CalibrationSet(*calibration_set(spec)),
            count_macs(model, shape), True))
    return models


def zoo_models(names: tuple[str, ...] | None = None) -> list[ZooModel]:
    """The shared timm graphs, then the registry's DeiT-Tiny and ViT-Tiny at 224; only
    those in `names` if given (an unknown name is an error)."""
    models = _timm_models() + _registry_models()
    if names is None:
        return models
    unknown = sorted(set(names) - {model.name for model in models})
    if unknown:
        raise ValueError(f"no zoo model {', '.join(unknown)}; the zoo has {', '.join(m.name for m in models)}")
    return [model for model in models if model.name in names]


def _checked(kind: str, info: ArtifactInfo, delegation: dict | None, model: ZooModel) -> ZooArtifact:
    """The artifact with its error on the reference input, or the failure of its runtime."""
    try:
        found = load_artifact(info.path, runtime=info.runtime)(model.reference_input.numpy())
    except RuntimeError as exc:  # ExecuTorch refuses a program it cannot initialize with a bare RuntimeError
        return ZooArtifact(kind, info, delegation, None, f"{info.runtime} cannot run it: {exc}")
    return ZooArtifact(kind, info, delegation, float(np.max(np.abs(found - model.reference_output.numpy()))))


def _artifacts(model: ZooModel, log=print) -> tuple[list[ZooArtifact], list[str]]:
    """The model's artifacts (built or from the caches) and notes on any that failed."""
    artifacts, notes = [], []
    shape = tuple(model.reference_input.shape)
    for kind, target in VITDEPLOY.items():
        spec = LoweringSpec(targets=(target,), calibration=model.calibration, seed=SEED, keep_failed=True)
        try:
            (artifact,) = lower_model(model.source, spec, log=log)
        except Exception as exc:  # a failing lowering is a result of the zoo, whatever it raises
            artifacts.append(ZooArtifact(kind, None, None, None,
                                         f"vitdeploy lowering failed: {type(exc).__name__}: {first_line(exc)[:300]}"))
            continue
        artifacts.append(_checked(kind, ArtifactInfo.from_path(artifact.path), artifact.manifest.delegation, model))
    stock = stock_artifacts(model.content_id, model.program, torch.zeros(shape), model.calibration.images,
                            model.calibration.identity, log=log)
    for kind, mode in STOCK.items():
        built = stock[mode]
        if built.failure:
            artifacts.append(ZooArtifact(kind, None, None, None, f"stock lowering failed: {built.failure}"))
            continue
        info = dataclasses.replace(ArtifactInfo.from_path(built.path, input_shape=shape), model=model.name,
                                   backend=f"{mode.split('/')[0]}-stock", quant=mode.split("/")[1])
        artifacts.append(_checked(kind, info, built.delegation, model))
    notes += [f"{model.name} {a.kind}: {a.failure}" for a in artifacts if a.failure]
    return artifacts, notes


def _stats_row(model: ZooModel, artifact: ZooArtifact, threads: int, record, limit: dict) -> dict:
    status = record.status if record else "not measured"
    row = {"model": model.name, "artifact": artifact.kind, "threads": threads, "macs": model.macs,
           "transformer": model.transformer, "status": status,
           "error": artifact.failure or (record.error if record else "") or "",
           "segments": artifact.delegation["num_delegates"] if artifact.delegation else None,
           "outside": outside_ops(artifact.delegation, top=4) if artifact.delegation else "",
           "max_abs_error": artifact.error, "reference": model.reference, "limit_gflops": limit["gflops"]}
    if record is not None and record.stats is not None:
        achieved = 2 * model.macs / (record.stats.p50_ms / 1e3) / 1e9
        row.update(n=record.stats.n, p50_ms=record.stats.p50_ms, ci95_low_ms=record.stats.ci95_low_ms,
                   ci95_high_ms=record.stats.ci95_high_ms, cv=record.stats.cv, stable=record.stable,
                   achieved_gflops=achieved, fraction_of_limit=achieved / limit["gflops"])
    return row


def _ratios(name: str, artifacts: dict[str, ZooArtifact], records: dict, threads: int) -> dict:
    """vitdeploy/stock latency ratios of one model at `threads`, per quantization (a
    `compare` result, or a note on the artifact that could not be run)."""
    ratios = {}
    for quant in ("fp32", "int8"):
        ours, stock = artifacts.get(f"vitdeploy/{quant}"), artifacts.get(f"stock/{quant}")
        if ours is None or stock is None:
            continue
        failed = [f"{a.kind}: {a.failure}" for a in (ours, stock) if a.failure]
        ratios[quant] = ({"speedup": None, "note": "; ".join(failed)} if failed else
                         compare(records[(f"{name}/stock/{quant}", threads)],
                                 records[(f"{name}/vitdeploy/{quant}", threads)]))
    return ratios


def _stock_segments(artifacts: dict[str, ZooArtifact], quant: str) -> int:
    return (artifacts[f"stock/{quant}"].delegation or {}).get("num_delegates", 0)


def _missed_latency(models: list[ZooModel], artifacts: dict, ratios: dict) -> list[tuple[str, str, int]]:
    """(model, quant, threads) of every latency target missed; `ratios[model][threads]` is `_ratios`."""
    return [(model.name, quant, threads) for model in models for threads in THREADS
            for quant, comparison in ratios[model.name][threads].items()
            if missed(comparison, _stock_segments(artifacts[model.name], quant))]


def _explanations(models: list[ZooModel], artifacts: dict, ratios: dict, stats: dict, runs: int,
                  log=print) -> tuple[dict, list[dict]]:
    """`limiting_kernel` of each missed latency target, keyed (model, quant, threads), and
    the per-op profile rows of the artifacts profiled for them; `stats` are `_stats_row`s."""
    wanted = _missed_latency(models, artifacts, ratios)
    macs = {model.name: model.macs for model in models}
    explanations, rows = {}, []
    for threads in THREADS:
        cases = [(name, quant) for name, quant, count in wanted if count == threads]
        programs = {f"{name}/{side}/{quant}": artifacts[name][f"{side}/{quant}"].info.path
                    for name, quant in cases for side in ("vitdeploy", "stock")}
        if not programs:
            continue
        log(f"[zoo] per-op profiles of {len(programs)} artifacts at {threads} thread(s) for missed targets ...")
        profiles = executorch_op_profiles_at(programs, threads, runs)
        rows += [{"artifact": label, "threads": threads, **row} for label, found in profiles.items() for row in found]
        for name, quant in cases:
            ours, stock = (stats[(name, f"{side}/{quant}", threads)] for side in ("vitdeploy", "stock"))
            floor = gemm_floor_ms(macs[name], ours["limit_gflops"])
            explanations[(name, quant, threads)] = limiting_kernel(
                latency_limit(_stock_segments(artifacts[name], quant)), ours["p50_ms"], stock["p50_ms"], floor,
                profiles[f"{name}/vitdeploy/{quant}"], profiles[f"{name}/stock/{quant}"])
    return explanations, rows


def _targets(model: ZooModel, artifacts: dict[str, ZooArtifact], ratios: dict, explanations: dict) -> list[dict]:
    """The model's target rows; `ratios` maps a thread count to `_ratios`, `explanations`
    (`_explanations`) explain missed latency targets."""
    rows = []
    for quant in ("fp32", "int8"):
        ours = artifacts.get(f"vitdeploy/{quant}")
        if ours is None:
            continue
        if model.transformer:
            rows.append(segment_target(model.name, f"vitdeploy {quant}", ours.delegation))
        for threads in THREADS:
            rows.append(latency_target(model.name, quant, threads, ratios[threads][quant],
                                       _stock_segments(artifacts, quant), ours.delegation,
                                       explanations.get((model.name, quant, threads), "")))
    fp32 = artifacts.get("vitdeploy/fp32")
    rows.append(error_target(model.name, fp32.error if fp32 else None, model.reference))
    return rows


def _summary_row(model: ZooModel, artifacts: dict[str, ZooArtifact], ratios: dict, threads: int,
                 stats: dict) -> dict:
    """One line of the zoo table: a model at one thread count (`ratios`: `_ratios` there)."""
    def p50(kind):
        row = stats.get((model.name, kind, threads), {})
        return row.get("p50_ms")

    def segments(kind):
        artifact = artifacts.get(kind)
        return artifact.delegation["num_delegates"] if artifact and artifact.delegation else "-"

    def error(kind):
        artifact = artifacts.get(kind)
        return f"{artifact.error:.1e}" if artifact and artifact.error is not None else "-"

    def fraction(kind):
        value = stats.get((model.name, kind, threads), {}).get("fraction_of_limit")
        return f"{value:.2f}" if value is not None else "-"

    return {
        "model": model.name, "threads": threads,
        "segments_fp32": f"{segments('vitdeploy/fp32')} / {segments('stock/fp32')}",
        "vitdeploy_fp32_ms": p50("vitdeploy/fp32"), "stock_fp32_ms": p50("stock/fp32"),
        "ratio_fp32": interval(ratios["fp32"], "latency_ratio") if "fp32" in ratios else "-",
        "ort_fp32_ms": p50("ort/fp32"),
        "segments_int8": f"{segments('vitdeploy/int8')} / {segments('stock/int8')}",
        "vitdeploy_int8_ms": p50("vitdeploy/int8"), "stock_int8_ms": p50("stock/int8"),
        "ratio_int8": interval(ratios["int8"], "latency_ratio") if "int8" in ratios else "-",
        "error_fp32": f"{error('vitdeploy/fp32')} / {error('stock/fp32')}",
        "fraction": f"{fraction('vitdeploy/fp32')} / {fraction('vitdeploy/int8')}",
    }


ZOO_COLUMNS = (("model", "model"), ("threads", "threads"), ("segments fp32 (ours / stock)", "segments_fp32"),
               ("ours fp32 ms", "vitdeploy_fp32_ms"), ("stock fp32 ms", "stock_fp32_ms"),
               ("ours / stock fp32 [95% CI]", "ratio_fp32"), ("ORT fp32 ms", "ort_fp32_ms"),
               ("segments int8 (ours / stock)", "segments_int8"), ("ours int8 ms", "vitdeploy_int8_ms"),
               ("stock int8 ms", "stock_int8_ms"), ("ours / stock int8 [95% CI]", "ratio_int8"),
               ("fp32 max abs error (ours / stock)", "error_fp32"),
               ("fraction of GEMM limit (ours fp32 / int8)", "fraction"))
TARGET_COLUMNS = (("model", "model"), ("target", "target"), ("threads", "threads"), ("measured", "measured"),
                  ("limit", "limit"), ("met", "met"),
                  ("what limits it (missed targets): ops outside the delegates; GEMM floor; ETDump per-op shares",
                   "outside"))


def run(budget: Budget, gemm_summary: list[dict], models: tuple[str, ...] | None = None, log=print) -> Section:
    """The section; `gemm_summary` is the limit section's GEMM summary (`bench.limit`);
    `models`: the zoo models to run (None: all)."""
    models = zoo_models(models)
    artifacts: dict[str, dict[str, ZooArtifact]] = {}
    notes: list[str] = []
    for model in models:
        log(f"[zoo] {model.name}: lowering (or from the caches) ...")
        found, failed = _artifacts(model, log=lambda message: None)
        artifacts[model.name] = {artifact.kind: artifact for artifact in found}
        notes += failed
    labelled = {f"{model.name}/{kind}": artifact.info for model in models
                for kind, artifact in artifacts[model.name].items() if artifact.failure is None}
    settings = budget.host(THREADS).with_overrides(timeout_seconds=3600.0)
    log(f"[zoo] measuring {len(labelled)} artifacts interleaved at {THREADS} thread(s) ...")
    device = HostDevice()
    try:
        records = measure(device, PythonAgentHarness(), labelled, settings)
    finally:
        device.cleanup()
    stats, ratios, targets, summary = {}, {}, [], []
    for model in models:
        for kind, artifact in artifacts[model.name].items():
            for threads in THREADS:
                dtype = kind.split("/")[1]
                stats[(model.name, kind, threads)] = _stats_row(model, artifact, threads,
                                                                records.get((f"{model.name}/{kind}", threads)),
                                                                attainable(gemm_summary, dtype, threads))
        ratios[model.name] = {threads: _ratios(model.name, artifacts[model.name], records, threads)
                              for threads in THREADS}
    explanations, profiles = _explanations(models, artifacts, ratios, stats, runs=10 if budget.quick else 20, log=log)
    for model in models:
        targets += _targets(model, artifacts[model.name], ratios[model.name], explanations)
        summary += [_summary_row(model, artifacts[model.name], ratios[model.name][threads], threads, stats)
                    for threads in THREADS]
    unmet = [row for row in targets if row["met"].startswith("no")]
    markdown = "\n\n".join([
        f"{len(models)} models ({', '.join(m.name for m in models)}), {len(labelled)} artifacts measured interleaved "
        f"in one agent process per thread count; 'ours' = vitdeploy's lowering (`lowering.export.lower_model`), "
        "'stock' = torch.export + to_edge_transform_and_lower(XnnpackPartitioner) (int8: PT2E with the stock "
        "XNNPACKQuantizer, symmetric per channel, calibrated on the same 32 digits images), ORT = ONNX Runtime on a "
        "plain torch.onnx.export. Ratios are p50(ours) / p50(stock) with bootstrap 95% CIs over paired rounds. "
        "Errors: max abs difference of the fp32 logits from timm's recorded output (timm graphs) or from eager "
        "(DeiT-Tiny, ViT-Tiny). Fraction of GEMM limit: achieved GFLOP/s (2 x MACs / p50) over the best GEMM rate "
        "of the limit section at that dtype and thread count.",
        markdown_table(summary, ZOO_COLUMNS),
        f"Targets ({len(targets) - len(unmet)} of {len(targets)} met; segment targets apply to models with "
        "attention, i.e. a softmax or SDPA in their graph):",
        markdown_table(targets, TARGET_COLUMNS),
        *(["Failures: " + "; ".join(notes)] if notes else []),
    ])
    return Section("zoo", markdown, {"zoo": list(stats.values()), "zoo_targets": targets,
                                     "zoo_samples": sample_rows("zoo", records), "zoo_op_profile": profiles})
