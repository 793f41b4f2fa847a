"""Lower one model into verified artifacts: the whole path behind `vitdeploy lower`.

    lower_model(model, spec, source="random", out_dir=None) -> list[Artifact]

For each target (backend x quantization mode): look the content key up in the artifact
cache; otherwise reparameterize (a branched model always), rewrite the model into the
backend's export form and torch.export it (once per form, shared by that form's
targets), let the backend build the artifact in a staging directory, verify it in its
own runtime against the eager model (the model as given, before any merge), write the
manifest and move both into the cache. With `out_dir`, artifacts are then copied there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from lowering.cache import ArtifactCache, cache_key, ensure_writable, publish, weights_sha256
from lowering.export.backends import Target, toolchain_versions
from lowering.export.forms import FORM_VERSIONS, export_form
from lowering.export.job import BuildJob, Built
from lowering.export.pt2e import ImageCalibrator
from lowering.export.settings import LoweringSpec
from lowering.export.unsupported import LoweringError
from lowering.models import count_macs, count_params
from lowering.reparam import reparameterize
from lowering.verify import MIN_INPUTS, VerificationError, eager_logits, random_inputs, verify_artifact
from vitdeploy.manifest import Manifest, ModelRecord, artifact_sha256, artifact_size, now_utc, read_manifest, write_manifest


@dataclass(frozen=True)
class Artifact:
    """A lowered, verified artifact with its manifest; `from_cache` if it was not rebuilt."""

    path: Path
    manifest: Manifest
    from_cache: bool

    @property
    def target(self) -> Target:
        return Target(self.manifest.backend, self.manifest.quant)


class _Lowering:
    """The state one `lower_model` call shares between its targets."""

    def __init__(self, model: nn.Module, spec: LoweringSpec, source: str, log: Callable[[str], None]):
        self.original = model.eval()
        self.spec = spec
        self.source = source
        self.log = log
        self.original_spec = model.spec
        self.reparameterized = spec.reparameterize or self.original_spec.branches > 1
        self.input_shape = (1, self.original_spec.in_chans, self.original_spec.img_size, self.original_spec.img_size)
        self.weights = weights_sha256(model)
        self.toolchain = toolchain_versions()
        self._lowered: nn.Module | None = None
        self._exported: dict[str, tuple[torch.export.ExportedProgram, float]] = {}
        self._reference: tuple[np.ndarray, np.ndarray, str] | None = None
        generator = torch.Generator().manual_seed(spec.seed)
        self.example = torch.randn(self.input_shape, generator=generator)

    # -- what the key covers -------------------------------------------------------
    def calibration_identity(self, target: Target) -> str | None:
        if not target.calibrated:
            return None
        hook = _hook_for(target, self.spec)
        parts = [f"calibrator:{hook.identity}"] if hook is not None else []
        if target.backend_descriptor.observes_images or hook is None:
            parts.append(f"images:{self.spec.calibration.identity}")
        return "+".join(parts)

    def key(self, target: Target) -> str:
        backend = target.backend_descriptor
        return cache_key({
            "weights_sha256": self.weights,
            "model_spec": self.original_spec.to_dict(),
            "reparameterized": self.reparameterized,
            "backend": target.backend,
            "quant": target.quant,
            "input_shape": list(self.input_shape),
            "calibration": self.calibration_identity(target),
            "backend_settings": {name: getattr(self.spec, name) for name in backend.key_settings},
            "form": backend.form,
            "form_version": FORM_VERSIONS[backend.form],
            "toolchain": self.toolchain,
        })

    # -- shared work -----------------------------------------------------------------
    @property
    def lowered(self) -> nn.Module:
        if self._lowered is None:
            if self.reparameterized:
                self._lowered = reparameterize(self.original)
                self.log(
                    f"reparameterized {self.original_spec.name}: {self.original_spec.depth} blocks x "
                    f"{self.original_spec.branches} branches -> {self._lowered.spec.depth} blocks, "
                    f"{self._lowered.spec.num_heads} heads, FFN width {self._lowered.spec.mlp_hidden_dim}"
                )
            else:
                self._lowered = self.original
        return self._lowered

    def exported(self, form: str) -> tuple[torch.export.ExportedProgram, float]:
        """torch.export of the export form, once per form, and the seconds it took."""
        if form not in self._exported:
            start = time.perf_counter()
            model = export_form(self.lowered, form)
            try:
                program = torch.export.export(model, (self.example,))
            except Exception as exc:  # torch.export raises many error types for untraceable code
                raise LoweringError(f"torch.export failed on the {form} export form: {exc}") from exc
            self._exported[form] = (program, time.perf_counter() - start)
        return self._exported[form]

    def reference(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Verification images, the eager model's logits on them, and their description."""
        if self._reference is None:
            if self.spec.verification_images is not None:
                images = self.spec.verification_images.detach().cpu().numpy().astype(np.float32)
                described = f"{len(images)} given images"
            else:
                images = random_inputs(self.input_shape, MIN_INPUTS, self.spec.seed)
                described = f"{len(images)} random normal images (seed {self.spec.seed})"
            self._reference = (images, eager_logits(self.original, images), described)
        return self._reference

    # -- one target ------------------------------------------------------------------
    def calibrator(self, target: Target):
        """The calibration hook the backend gets and its description for the manifest."""
        if not target.calibrated:
            return None, None
        hook = _hook_for(target, self.spec)
        if target.backend_descriptor.observes_images:
            images = self.spec.calibration.description
            return hook, images if hook is None else f"{images}, ranges fixed by {hook.identity}"
        if hook is not None:
            return hook, hook.identity
        return ImageCalibrator(self.spec.calibration), self.spec.calibration.description

    def build(self, target: Target, key: str, staging: Path) -> Path:
        """Build, verify and describe one artifact inside `staging` (shared by the call's
        targets: each gets its own folder, intermediates go to `staging/shared`)."""
        backend = target.backend_descriptor
        program, export_seconds = self.exported(backend.form)
        calibrator, described = self.calibrator(target)
        folder, scratch = staging / key, staging / "shared"
        folder.mkdir()
        scratch.mkdir(exist_ok=True)
        stem = folder / f"{self.original_spec.name}-{target.backend}-{target.quant}-{key[:10]}"
        job = BuildJob(target, program, self.example, self.spec, stem, scratch,
                       self.original_spec.num_classes, calibrator, described)
        start = time.perf_counter()
        built = backend.build(job)
        seconds = export_seconds + time.perf_counter() - start
        verification = self.verify(job, built)
        write_manifest(built.path, self.manifest(target, key, built, seconds, verification))
        return built.path

    def verify(self, job: BuildJob, built: Built) -> dict:
        """Run the artifact against the eager model where its runtime runs here, else
        the backend's spec check."""
        start = time.perf_counter()
        backend = job.target.backend_descriptor
        if backend.runs.available_here() or backend.check_spec is None:
            images, reference, described = self.reference()
            result = verify_artifact(built.path, backend.runtime, images, reference,
                                     job.target.thresholds, described).to_dict()
        else:
            result = backend.check_spec(built.path, job)
        result["seconds"] = round(time.perf_counter() - start, 3)
        return result

    def quantization_record(self, target: Target, built: Built) -> dict | None:
        """The backend's record of what runs in integer, and the calibrator's own record
        (method, what is simulated only) when one supplied the ranges."""
        hook = _hook_for(target, self.spec) if target.calibrated else None
        settings = getattr(hook, "settings", None)
        if built.quantization is None or settings is None:
            return built.quantization
        return {**built.quantization, "calibrator": settings}

    def manifest(self, target: Target, key: str, built: Built, seconds: float, verification: dict) -> Manifest:
        lowered = self.lowered
        model = ModelRecord(
            name=self.original_spec.name,
            spec=lowered.spec.to_dict(),
            params=count_params(lowered),
            macs=count_macs(lowered, self.input_shape),
            weights_sha256=self.weights,
            source=self.source,
            spec_before_reparameterization=self.original_spec.to_dict() if self.reparameterized else None,
        )
        return Manifest(
            backend=target.backend,
            runtime=target.backend_descriptor.runtime,
            quant=target.quant,
            quantization=self.quantization_record(target, built),
            model=model,
            reparameterized=self.reparameterized,
            branches_before=self.original_spec.branches,
            input_shape=self.input_shape,
            output_shape=(1, self.original_spec.num_classes),
            file=built.path.name,
            sha256=artifact_sha256(built.path),
            size_bytes=artifact_size(built.path),
            lowering_seconds=round(seconds, 3),
            toolchain=self.toolchain,
            verification=verification,
            delegation=built.delegation,
            export=built.details,
            created_at=now_utc(),
            cache_key=key,
        )


def _hook_for(target: Target, spec: LoweringSpec):
    """The spec's calibration hook if it has the method `target`'s backend calls."""
    hook = spec.calibrator
    if hook is None or not hasattr(hook, target.backend_descriptor.hook_method):
        return None
    return hook


def _check_inputs(spec: LoweringSpec) -> None:
    calibrated = [t for t in spec.targets if t.calibrated]
    needs_images = [t for t in calibrated if spec.calibrator is None or t.backend_descriptor.observes_images]
    if needs_images and spec.calibration is None:
        raise LoweringError(
            f"{', '.join(map(str, needs_images))} need calibration images: give a calibration "
            "set (CLI: --calibration digits or --calibration DIR)"
        )


def lower_model(
    model: nn.Module,
    spec: LoweringSpec,
    source: str = "random",
    out_dir: str | Path | None = None,
    cache: ArtifactCache | None = None,
    log: Callable[[str], None] = lambda message: None,
    label: str | None = None,
) -> list[Artifact]:
    """Lower `model` (a lowering.models VisionTransformer) into one verified artifact per
    target of `spec`, in target order.

    `source` is recorded in the manifests (checkpoint path, "random", "trained:<key>").
    `out_dir`: where the artifacts and manifests are copied (None: leave them in the
    cache and return the cached paths); `label` names the model in the manifests copied
    there (`model.label`, which reports show). `log` receives progress notes (reparameterization,
    each target as it is built or found in the cache).

    Raises VerificationError when an artifact fails its check (unless `spec.keep_failed`),
    UnsupportedOpError / LoweringError when a backend refuses the model, OutputError when
    artifacts cannot be written.
    """
    _check_inputs(spec)
    cache = cache or ArtifactCache()
    if out_dir is not None:
        ensure_writable(Path(out_dir))
    lowering = _Lowering(model, spec, source, log)
    artifacts = []
    with cache.staging() as staging:
        for target in spec.targets:
            artifacts.append(_lower_target(lowering, target, cache, staging, out_dir, label))
    return artifacts


def _lower_target(lowering: _Lowering, target: Target, cache: ArtifactCache, staging: Path,
                  out_dir: str | Path | None, label: str | None) -> Artifact:
    spec, log = lowering.spec, lowering.log
    key = lowering.key(target)
    cached = cache.lookup(key) if spec.use_cache else None
    from_cache = cached is not None
    if from_cache:
        log(f"{target}: from cache")
    else:
        log(f"{target}: lowering")
        cached = cache.store(lowering.build(target, key, staging), key)
    manifest = read_manifest(cached)
    if not manifest.passed and not spec.keep_failed:
        raise VerificationError(
            f"{target} artifact failed verification against the eager model: {manifest.failure_text}. "
            f"Keep it anyway with keep_failed (CLI: --keep-failed); it stays in the cache at {cached}"
        )
    if out_dir is None:
        return Artifact(cached, manifest, from_cache)
    path = publish(cached, Path(out_dir), label)
    return Artifact(path, read_manifest(path), from_cache)
