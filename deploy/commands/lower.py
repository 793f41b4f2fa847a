"""`vitdeploy lower`: a model to verified ExecuTorch, ONNX and Core ML artifacts."""

from __future__ import annotations

import argparse
from pathlib import Path

from lowering.int8_ranges import INT8_RANGES

DEFAULT_OUT = Path("artifacts")
DEFAULT_BACKENDS = "executorch,onnx"
DEFAULT_QUANT = "fp32"
DEFAULT_CALIBRATION = "digits"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lower",
        help="lower a model to ExecuTorch (XNNPACK), ONNX and Core ML artifacts, each verified",
        description=(
            "Build one artifact per backend x quantization mode, verify it in its own runtime "
            "against the eager model, and write it with a sidecar manifest (ARTIFACT.manifest.json). "
            "A branched model is reparameterized first. Artifacts are cached by content in the "
            "user cache; lowering the same thing again returns at once."
        ),
    )
    parser.add_argument("model", metavar="MODEL",
                        help="a registered model name (see `vitdeploy models`), a PATH.pt2 saved by torch.export.save, "
                             "a Hugging Face folder (save_pretrained), package.module:callable returning an "
                             "nn.Module, or timm:NAME")
    parser.add_argument("--checkpoint", type=Path, metavar="PATH",
                        help="weights (.pth/.pt/.bin or .safetensors) for a registry model or a factory's module; "
                             "default for registry models: random weights (seed 0)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a registry model's spec field, e.g. depth=6 or branches=2 (repeatable)")
    parser.add_argument("--input-shape", metavar="N,C,H,W",
                        help="the input to lower at: needed by programs with dynamic shapes and by factories "
                             "whose module does not say its input size")
    parser.add_argument("--mean", metavar="R,G,B", help="normalization mean (default: the source's, else ImageNet's)")
    parser.add_argument("--std", metavar="R,G,B", help="normalization std (default: the source's, else ImageNet's)")
    parser.add_argument("--reparameterize", action="store_true",
                        help="fuse reparameterizable modules first (always done for a branched model)")
    parser.add_argument("--backend", metavar="LIST",
                        help=f"comma-separated backends (default: the device profile's, else {DEFAULT_BACKENDS}); "
                             "a name it does not know lists the valid ones")
    parser.add_argument("--quant", metavar="LIST",
                        help=f"comma-separated quantization modes (default: the device profile's, else {DEFAULT_QUANT}); "
                             "each backend builds the ones it has, and a mode none has lists each backend's")
    parser.add_argument("--device", metavar="PROFILE", help="take defaults from device_profiles/PROFILE.toml")
    parser.add_argument("--img-size", type=int, metavar="N",
                        help="input resolution (default: the checkpoint's; without one, the profile's, else the model's)")
    parser.add_argument("--calibration", default=DEFAULT_CALIBRATION, metavar="digits|DIR",
                        help="calibration images for int8/w8a8: the embedded digits (default) or an image folder; "
                             "digits' val split (or 32 other images of DIR) also serve as verification inputs")
    parser.add_argument("--int8-ranges", choices=INT8_RANGES, default=INT8_RANGES[0],
                        help="who sets int8 activation ranges: the runtime's own observers (default), or "
                        "RepQ-ViT calibration folded into LayerNorm and the next linear (lowering.quant; "
                        "the targets that are not calibrated lower the model unfolded)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--no-cache", action="store_true", help="lower again even if the cache holds the artifact")
    parser.add_argument("--keep-failed", action="store_true",
                        help="keep an artifact that fails verification (its manifest says so) instead of failing")
    parser.set_defaults(func=run)


def parse_overrides(pairs: list[str]) -> dict:
    """KEY=VALUE strings as spec overrides, values read as int, float or bool where they look so."""
    from lowering.models import InvalidSpecError

    overrides = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise InvalidSpecError(f"--override expects KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = _value(text.strip())
    return overrides


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _numbers(text: str | None, flag: str, kind: type, count: int, example: str) -> tuple | None:
    """`count` comma-separated numbers of `kind` given to `flag`, or None if not given."""
    from lowering.sources import ModelSourceError

    if text is None:
        return None
    try:
        values = tuple(kind(v) for v in _split(text))
    except ValueError:
        values = ()
    if len(values) != count or (kind is int and min(values) < 1):
        raise ModelSourceError(f"{flag} expects {example}, got {text!r}")
    return values


def _data(args, model, calibrate: bool):
    """The calibration set (when a mode needs one) and verification images from
    --calibration (None when the source has too few: verification then uses random images)."""
    from lowering.data import calibration_set, verification_images
    from lowering.export import CalibrationSet

    images = model.image_format
    calibration = CalibrationSet(*calibration_set(images, args.calibration)) if calibrate else None
    return calibration, verification_images(images, args.calibration)


def _describe(artifact) -> list[str]:
    from vitdeploy.manifest import manifest_path

    manifest = artifact.manifest
    lines = [f"{artifact.target}: {artifact.path}" + ("  (from cache)" if artifact.from_cache else "")]
    lines.append(f"  size {manifest.size_bytes / 1e6:.2f} MB, lowered in {manifest.lowering_seconds:.1f} s"
                 f", manifest {manifest_path(artifact.path).name}")
    verification = manifest.verification
    if verification.get("status") == "pending-macos":
        check = verification["spec_check"]
        state = "spec ok" if check["passed"] else "spec problems: " + "; ".join(check["problems"])
        lines.append(f"  verification: pending (Core ML prediction needs macOS); {state}")
    else:
        lines.append(
            f"  verification: {'passed' if verification['passed'] else 'FAILED'}: max abs error "
            f"{verification['max_abs_error']:.2e}, cosine {verification['cosine_similarity']:.6f}, top-1 agreement "
            f"{100 * verification['top1_agreement']:.1f}% over {verification['num_inputs']} inputs"
            + ("" if verification["passed"] else " (" + "; ".join(verification["failures"]) + ")")
        )
    delegation = manifest.delegation
    if "num_delegates" in delegation:
        fallback = delegation["fallback_ops"]
        lines.append(f"  delegation: {delegation['num_delegates']} XNNPACK delegate(s) holding "
                     f"{delegation['ops_in_delegates']} ops; outside them, on portable kernels: "
                     f"{sum(fallback.values()) if fallback else 'nothing'}")
        for op, count in sorted(fallback.items(), key=lambda item: -item[1]):
            modules = delegation["fallback_modules"].get(op, [])
            where = ", ".join(modules[:2]) + (f" +{len(modules) - 2} more" if len(modules) > 2 else "")
            reasons = "; ".join(delegation["fallback_reasons"].get(op, []))
            lines.append(f"    {op} x{count} (in {where or '?'}): {reasons}")
    elif "nodes_by_op_type" in delegation:
        top = sorted(delegation["nodes_by_op_type"].items(), key=lambda item: -item[1])[:6]
        lines.append(f"  graph: {delegation['num_nodes']} nodes (" + ", ".join(f"{op} {n}" for op, n in top) + ", ...)")
    elif "ops_by_type" in delegation:
        lines.append(f"  program: {delegation['num_ops']} operations")
    return lines


def run(args: argparse.Namespace) -> int:
    from bench_runner.profiles import find_profile
    from lowering.export import lower_model, parse_targets
    from lowering.export.settings import DEFAULT_COREML_TARGET
    from lowering.int8_ranges import lowering_groups
    from lowering.sources import open_model, source_kind_of

    profile = find_profile(args.device).lowering if args.device else None
    backends = _split(args.backend) if args.backend else list(profile.backends) if profile else _split(DEFAULT_BACKENDS)
    modes = _split(args.quant) if args.quant else list(profile.quantization) if profile else [DEFAULT_QUANT]
    targets, skipped = parse_targets(backends, modes)
    for note in skipped:
        print(f"skipped: {note}")

    # A checkpoint's position embedding fixes a registry model's resolution; a profile's
    # size applies to random weights only, an explicit --img-size always.
    registry = source_kind_of(args.model) == "registry"
    profile_size = profile.input_size if profile and registry and args.checkpoint is None else None
    model = open_model(
        args.model, checkpoint=args.checkpoint, overrides=parse_overrides(args.override),
        input_shape=_numbers(args.input_shape, "--input-shape", int, 4, "N,C,H,W (e.g. 1,3,224,224)"),
        img_size=args.img_size or profile_size,
        mean=_numbers(args.mean, "--mean", float, 3, "three comma-separated numbers, one per channel"),
        std=_numbers(args.std, "--std", float, 3, "three comma-separated numbers, one per channel"),
    )
    spec = model.spec
    if spec is not None and spec.branches > 1:
        print(f"{spec.name} has {spec.branches} branches per block: reparameterizing it before lowering")
    print(f"model: {model.label} ({model.source_kind}), input {list(model.input_shape)}")

    calibrate = any(t.calibrated for t in targets)
    calibration, verification = _data(args, model, calibrate)
    if calibrate:
        print(f"calibration: {calibration.description}")
    artifacts = []
    for group in lowering_groups(model, targets, calibration, args.int8_ranges):
        if group.note is not None:
            print(f"int8 ranges: {group.note}")
        lowering_spec = group.lowering_spec(
            verification_images=verification,
            coreml_deployment_target=(profile.coreml_deployment_target if profile else None) or DEFAULT_COREML_TARGET,
            reparameterize=args.reparameterize,
            keep_failed=args.keep_failed,
            use_cache=not args.no_cache,
        )
        artifacts += lower_model(group.model, lowering_spec, out_dir=args.out,
                                 log=lambda message: print(message, flush=True))
    for artifact in artifacts:
        print("\n".join(_describe(artifact)))
    return 0
