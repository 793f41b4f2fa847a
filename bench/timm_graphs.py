"""The nine shared timm graphs (tests/fixtures/timm_graphs) through vitdeploy's lowering:

    python -m bench.timm_graphs [--out results/benchmarks]

For each program: ExecuTorch fp32 and int8 (XNNPACK), ONNX fp32 and int8, Core ML fp32,
built by `lowering.export.lower_model` (through the artifact cache: a cached artifact
reports the lowering time of its first build), int8 calibrated on 32 digits images in the
model's preprocessing. Writes `timm_graphs.csv` and `timm_graphs.md`: XNNPACK segments,
operators outside the delegates, fp32 error against timm's own output on its stored
input, the verification error against the exported program, and lowering seconds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from bench.tables import markdown_table, write_csv
from bench.zoo_targets import outside_ops
from lowering.data import calibration_set, verification_images
from lowering.export import CalibrationSet, LoweringSpec, Target, lower_model
from lowering.runtime import load_artifact
from lowering.sources import open_model

GRAPHS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "timm_graphs"
TARGETS = tuple(Target(*t.split("/")) for t in
                ("executorch/fp32", "executorch/int8", "onnx/fp32", "onnx/int8", "coreml/fp32"))
COLUMNS = (("model", "model"), ("target", "target"), ("XNNPACK segments", "segments"),
           ("ops outside the delegates (top kinds)", "outside"), ("max abs error vs timm", "error_vs_timm"),
           ("verification (vs the exported program)", "verification"), ("lowering s", "lowering_s"))


def _row(name: str, artifact, recorded: dict) -> dict:
    manifest = artifact.manifest
    verification = manifest.verification
    row = {"model": name, "target": str(artifact.target), "segments": manifest.delegation.get("num_delegates", ""),
           "outside": outside_ops(manifest.delegation, top=4) if "num_delegates" in manifest.delegation else "",
           "error_vs_timm": "", "lowering_s": round(manifest.lowering_seconds, 1)}
    if verification.get("status") == "pending-macos":
        row["verification"] = "spec ok" if verification["spec_check"]["passed"] else "spec problems"
        return row
    metric = (f"max {verification['max_abs_error']:.1e}" if artifact.target.quant == "fp32"
              else f"cosine {verification['cosine_similarity']:.4f}")
    row["verification"] = ("passed, " if manifest.passed else "FAILED, ") + metric
    if artifact.target.quant == "fp32":
        found = load_artifact(artifact.path)(recorded["input"].numpy())
        row["error_vs_timm"] = f"{float(np.max(np.abs(found - recorded['output'].numpy()))):.1e}"
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.timm_graphs", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    args = parser.parse_args(argv)
    index = json.loads((GRAPHS / "index.json").read_text())
    rows = []
    for name, facts in sorted(index.items()):
        model = open_model(str(GRAPHS / f"{name}.pt2"), mean=tuple(facts["mean"]), std=tuple(facts["std"]))
        calibration = CalibrationSet(*calibration_set(model.image_format))
        spec = LoweringSpec(targets=TARGETS, calibration=calibration, keep_failed=True,
                            verification_images=verification_images(model.image_format))
        artifacts = lower_model(model, spec)
        recorded = torch.load(GRAPHS / f"{name}.io.pt")
        rows += [_row(name, artifact, recorded) for artifact in artifacts]
        print(f"{name}: done", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "timm_graphs.csv")
    table = markdown_table(rows, COLUMNS)
    (args.out / "timm_graphs.md").write_text(
        "# The shared timm graphs through `vitdeploy lower`\n\n`python -m bench.timm_graphs`; "
        f"torch {torch.__version__}.\n\n" + table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
