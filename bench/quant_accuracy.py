"""Top-1 of post-training quantization on a ViT trained on the embedded digits.

    .venv/bin/python bench/quant_accuracy.py [--depth 12] [--branches 1] [--patch-size 16]
        [--images 32] [--seed 0] [--bits 8 6 4 3] [--no-deployed]
        [--output results/benchmarks/quant_accuracy.md]

The model is the demo's ViT-Tiny at 32 x 32 (trained, or loaded from the weights cache,
by `lowering.training.train_or_load`). Simulated rows: RepQ-ViT (log-sqrt2, SULQ or,
as the counterpart of what the int8 runtimes can run, uniform after softmax) against
plain per-tensor min-max, per bit width, calibrated on `--images`
images of the digits' train split chosen with `--seed`, measured on the val split.
Deployed rows: int8 artifacts lowered by `lowering.export.lower_model` and run in their
own runtimes: the RepQ-ViT deployable (folded model, our ranges) and, for reference, the
unfolded model with the runtimes' own calibration on the same images. Core ML needs
macOS to run, so its rows say so. Artifacts are always lowered afresh (never taken from
the artifact cache), so the rows reflect the current exporters. Besides top-1, each row gives the agreement of its
top-1 with FP32's and the relative L2 error of its logits, which separate settings that
359 images of an easy task cannot.

Prints a Markdown table and writes it, with the command, to `--output`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lowering.data import calibration_set, load_digits
from lowering.data.accuracy import eager_predictor, measure_accuracy
from lowering.quant import QuantConfig, calibrate
from lowering.training import DEMO_MODEL, DEMO_OVERRIDES, train_or_load

DEPLOYED_TARGETS = (("executorch", "int8"), ("onnx", "int8"), ("coreml", "w8a8"))
RUNTIME_NAMES = {"executorch": "ExecuTorch XNNPACK int8", "onnx": "ONNX Runtime QDQ int8", "coreml": "Core ML W8A8"}


@dataclass(frozen=True)
class Row:
    setting: str
    method: str
    kind: str
    top1: float | None
    agreement: float | None
    logit_error: float | None
    seconds: float | None = None

    def markdown(self) -> str:
        def fmt(value, pattern):
            return "n/a" if value is None else pattern.format(value)

        return (
            f"| {self.setting} | {self.method} | {self.kind} | {fmt(self.top1, '{:.2f}')} | "
            f"{fmt(self.agreement, '{:.2f}')} | {fmt(self.logit_error, '{:.4f}')} | {fmt(self.seconds, '{:.2f}')} |"
        )


HEADER = (
    "| Setting | Method | Kind | Top-1 (%) | Top-1 agreement with FP32 (%) | Relative logit error | Calibration (s) |\n"
    "|---|---|---|---|---|---|---|"
)


def _row(setting, method, kind, predict, val, reference, seconds=None) -> Row:
    logits = np.concatenate([predict(images) for images, _ in val.batches(64)])
    top1 = measure_accuracy(predict, val).top1 * 100
    agreement = float((logits.argmax(1) == reference.argmax(1)).mean() * 100)
    error = float(np.linalg.norm(logits - reference) / np.linalg.norm(reference))
    return Row(setting, method, kind, top1, agreement, error, seconds)


def simulated_rows(model, images, description, bits_list, val, reference) -> list[Row]:
    rows = []
    for bits in bits_list:
        methods = {
            "RepQ-ViT, log-sqrt2 softmax": QuantConfig.repq(bits, bits),
            "RepQ-ViT, SULQ softmax": QuantConfig.repq(bits, bits, "sulq"),
            "RepQ-ViT, uniform softmax": QuantConfig.repq(bits, bits, "uniform"),
            "per-tensor min-max": QuantConfig.minmax(bits, bits),
        }
        for method, config in methods.items():
            calibrated = calibrate(model, images, config, description)
            predict = eager_predictor(calibrated.model)
            rows.append(_row(config.label, method, "simulated", predict, val, reference, calibrated.seconds))
            print(rows[-1].markdown(), flush=True)
    return rows


def deployed_rows(model, source, images, description, val, reference) -> list[Row]:
    from lowering.export import CalibrationSet, LoweringSpec, Target, lower_model
    from lowering.quant.deployable import deployable_int8
    from lowering.runtime import load_artifact

    targets = tuple(Target(backend, quant) for backend, quant in DEPLOYED_TARGETS)
    verification = torch.from_numpy(val.inputs(0, 32))
    calibrated = calibrate(model, images, QuantConfig.repq(8, 8), description)
    deployable = deployable_int8(calibrated, images)
    variants = {
        "RepQ-ViT deployable (folded, our ranges)": lower_model(
            deployable.model,
            deployable.lowering_spec(targets, verification_images=verification, use_cache=False),
            source=source,
        ),
        "unfolded, the runtime's own calibration": lower_model(
            model,
            LoweringSpec(targets, calibration=CalibrationSet(images, description),
                         verification_images=verification, use_cache=False),
            source=source,
        ),
    }
    rows = []
    for method, artifacts in variants.items():
        for artifact in artifacts:
            label = f"{RUNTIME_NAMES[artifact.manifest.backend]}: {method}"
            if artifact.manifest.verification.get("status") == "pending-macos":
                rows.append(Row("W8A8", label, "deployed (needs macOS to run)", None, None, None))
            else:
                rows.append(_row("W8A8", label, "deployed", load_artifact(artifact.path), val, reference))
            print(rows[-1].markdown(), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--branches", type=int, default=1)
    parser.add_argument("--patch-size", type=int, default=16, help="16: the demo's 4 patches; 8: 16 patches")
    parser.add_argument("--images", type=int, default=32, help="calibration images")
    parser.add_argument("--seed", type=int, default=0, help="seed choosing the calibration images")
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 6, 4, 3])
    parser.add_argument("--no-deployed", dest="deployed", action="store_false")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path("results/benchmarks/quant_accuracy.md"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model, trained = train_or_load(
        DEMO_MODEL, depth=args.depth, branches=args.branches, patch_size=args.patch_size, **DEMO_OVERRIDES
    )
    spec = model.spec
    val = load_digits("val", spec.img_size, spec.preprocessing, trained.settings.data_seed)
    images, description = calibration_set(spec, "digits", args.images, args.seed)
    reference = np.concatenate([eager_predictor(model)(batch) for batch, _ in val.batches(64)])

    print(HEADER)
    rows = [_row("FP32", "float", "eager", eager_predictor(model), val, reference)]
    print(rows[-1].markdown(), flush=True)
    rows += simulated_rows(model, images, description, args.bits, val, reference)
    if args.deployed:
        rows += deployed_rows(model, trained.source, images, description, val, reference)

    command = " ".join([".venv/bin/python", shlex.quote(sys.argv[0])] + [shlex.quote(a) for a in sys.argv[1:]])
    text = "\n".join([
        "# Post-training quantization accuracy",
        "",
        f"Command: `{command}`",
        "",
        f"Model: {spec.name} {spec.depth} blocks x {spec.branches} branches, {spec.img_size} px, "
        f"patch {spec.patch_size}, weights `{trained.source}` ({trained.headline} at training).",
        f"Evaluation: {val.description}, {len(val)} images. Calibration: {description}.",
        "Simulated rows are fake-quant models in PyTorch; deployed rows are artifacts run in their own runtime.",
        "Min-max: per-tensor min-max ranges everywhere (uniform after softmax), weights per channel.",
        "Deployed int8 runs softmax, GELU and LayerNorm in float; ONNX Runtime's activations are",
        "symmetric int8, so it symmetrizes the fixed ranges it is given.",
        "",
        HEADER,
        *(row.markdown() for row in rows),
        "",
    ])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
