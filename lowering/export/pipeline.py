"""Lower one model into verified artifacts: the whole path behind `vitdeploy lower`.

    lower_model(model, spec, source="random", out_dir=None) -> list[Artifact]

For each target (backend x quantization mode): look the content key up in the artifact
cache; otherwise reparameterize (a branched model always), torch.export it (once, shared
by every target), run the backend's graph passes on the program (`passes`; once per set
of passes), let the backend build the artifact in a staging directory, verify it in its
own runtime against the eager model (the model as given, before any merge), write the
manifest and move both into the cache. With `out_dir`, artifacts are then copied there.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from lowering.cache import ArtifactCache, cache_key, ensure_writable, publish, weights_sha256
from lowering.export.backends import Target, toolchain_versions
from lowering.export.graph_fixes import GRAPH_FIXES_VERSION
from lowering.export.job import BuildJob, Built
from lowering.export.passes import apply_passes, identity
from lowering.export.pt2e import ImageCalibrator
from lowering.export.settings import LoweringSpec
from lowering.export.unsupported import LoweringError
from lowering.models import count_macs, count_params
from lowering.models.dcal import removed_branches
from lowering.reparam import reparameterize
from lowering.sources.model_input import ModelInput, single_output
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

    def __init__(self, model: ModelInput, spec: LoweringSpec, log: Callable[[str], None]):
        self.input = model
        self.original = model.model
        self.spec = spec
        self.log = log
        self.original_spec = model.spec
        structured = model.spec is not None and model.spec.has_training_structure
        self.reparameterized = spec.reparameterize or structured
        self.input_shape = model.input_shape
        self.weights = weights_sha256(self.original)
        self.toolchain = toolchain_versions()
        self._lowered: nn.Module | None = None
        self._exported: tuple[torch.export.ExportedProgram, float] | None = None
        self._passed: dict[tuple, tuple[torch.export.ExportedProgram, list[str], float]] = {}
        self._reference: tuple[np.ndarray, np.ndarray, str] | None = None
        generator = torch.Generator().manual_seed(spec.seed)
        self.example = torch.randn(self.input_shape, generator=generator)

    @property
    def int8_elementwise(self) -> bool:
        """Static int8 of additions and multiplications too: for the registry's ViTs only
        (`pt2e.xnnpack_quantizer`)."""
        return self.original_spec is not None

    def model_identity(self) -> dict:
        """What identifies the model beyond its weights: a registry spec, or the source."""
        if self.original_spec is not None:
            return {"model_spec": self.original_spec.to_dict()}
        return {"source_kind": self.input.source_kind, "source_sha256": self.input.source_sha256,
                "class": f"{type(self.original).__module__}.{type(self.original).__qualname__}"}

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
            **self.model_identity(),
            "reparameterized": self.reparameterized,
            "backend": target.backend,
            "quant": target.quant,
            "input_shape": list(self.input_shape),
            "calibration": self.calibration_identity(target),
            "backend_settings": {name: getattr(self.spec, name) for name in backend.key_settings},
            "graph_fixes_version": GRAPH_FIXES_VERSION,
            "graph_passes": identity(backend.passes),
            "int8_elementwise": self.int8_elementwise,
            "toolchain": self.toolchain,
        })

    # -- shared work -----------------------------------------------------------------
    @property
    def lowered(self) -> nn.Module:
        if self._lowered is None:
            if self.reparameterized:
                self._lowered = reparameterize(self.original)
                self.log(_reparameterized_note(self.input.label, self.original_spec, getattr(self._lowered, "spec", None)))
            else:
                self._lowered = self.original
        return self._lowered

    def exported(self) -> tuple[torch.export.ExportedProgram, float]:
        """torch.export of the model to lower (once) and the seconds it took."""
        if self._exported is None:
            start = time.perf_counter()
            if self.input.program is not None and not self.reparameterized:
                program = self.input.program
            else:
                try:
                    program = torch.export.export(self.lowered, (self.example,))
                except Exception as exc:  # torch.export raises many error types for untraceable code
                    raise LoweringError(f"torch.export failed: {exc}") from exc
            self._exported = (program, time.perf_counter() - start)
        return self._exported

    def passed(self, target: Target) -> tuple[torch.export.ExportedProgram, list[str], float]:
        """The exported program after `target`'s backend's graph passes, the passes that
        changed it, and the seconds export and passes took."""
        passes = target.backend_descriptor.passes
        key = tuple(graph_pass.name for graph_pass in passes)
        if key not in self._passed:
            program, export_seconds = self.exported()
            start = time.perf_counter()
            program, fired = apply_passes(program, passes)
            self._passed[key] = (program, fired, export_seconds + time.perf_counter() - start)
        return self._passed[key]

    def reference(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Verification images, the eager model's logits on them, and their description."""
        if self._reference is None:
            if self.spec.verification_images is not None:
                images = self.spec.verification_images.detach().cpu().numpy().astype(np.float32)
                described = f"{len(images)} given images"
            else:
                images = random_inputs(self.input_shape, MIN_INPUTS, self.spec.seed)
                described = f"{len(images)} random normal images (seed {self.spec.seed})"
            self._reference = (images, eager_logits(self.original, images, self.input_shape[0]), described)
        return self._reference

    @functools.cached_property
    def output_shape(self) -> tuple[int, ...]:
        """The shape of the model's output for one example input."""
        with torch.no_grad():
            return tuple(single_output(self.original(self.example)).shape)

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
        program, fired, export_seconds = self.passed(target)
        calibrator, described = self.calibrator(target)
        folder, scratch = staging / key, staging / "shared"
        folder.mkdir()
        scratch.mkdir(exist_ok=True)
        stem = folder / f"{_file_stem(self.input.label)}-{target.backend}-{target.quant}-{key[:10]}"
        job = BuildJob(target, program, self.example, self.spec, stem, scratch,
                       self.output_shape[-1], calibrator, described, int8_elementwise=self.int8_elementwise)
        start = time.perf_counter()
        built = backend.build(job)
        built = dataclasses.replace(built, details={**built.details, "graph_passes": fired})
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
        lowered, source = self.lowered, self.input
        lowered_spec = getattr(lowered, "spec", None)
        model = ModelRecord(
            name=source.label,
            spec=lowered_spec.to_dict() if lowered_spec is not None else {},
            params=count_params(lowered),
            macs=count_macs(lowered, self.input_shape),
            weights_sha256=self.weights,
            source=source.source,
            source_kind=source.source_kind,
            source_sha256=source.source_sha256,
            preprocessing=dataclasses.asdict(source.preprocessing),
            spec_before_reparameterization=(
                self.original_spec.to_dict() if self.reparameterized and self.original_spec is not None else None),
            removed_branches=(removed_branches(self.original_spec, lowered_spec) or None
                              if self.original_spec is not None and lowered_spec is not None else None),
        )
        return Manifest(
            backend=target.backend,
            runtime=target.backend_descriptor.runtime,
            quant=target.quant,
            quantization=self.quantization_record(target, built),
            model=model,
            reparameterized=self.reparameterized,
            branches_before=self.original_spec.branches if self.original_spec is not None else 1,
            input_shape=self.input_shape,
            output_shape=self.output_shape,
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
    model: ModelInput | nn.Module,
    spec: LoweringSpec,
    source: str | None = None,
    out_dir: str | Path | None = None,
    cache: ArtifactCache | None = None,
    log: Callable[[str], None] = lambda message: None,
    label: str | None = None,
) -> list[Artifact]:
    """Lower `model` into one verified artifact per target of `spec`, in target order.

    `model` is a ModelInput (`lowering.sources.open_model`), or a registry ViT
    (`lowering.models.create`) whose `source` (checkpoint path, "random",
    "trained:<key>"; default "random") the manifests record.
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
    if not isinstance(model, ModelInput):
        if not hasattr(model, "spec"):
            raise TypeError("lower_model takes a ModelInput (lowering.sources) or a lowering.models ViT")
        model = ModelInput.from_registry_model(model, source or "random")
    elif source is not None:
        raise TypeError("a ModelInput carries its own source")
    lowering = _Lowering(model, spec, log)
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


def _file_stem(label: str) -> str:
    """`label` as a safe file-name stem."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "model"


def _reparameterized_note(label: str, before, after) -> str:
    if before is None or after is None:
        return f"reparameterized {label}: every module with reparameterize() fused"
    gates = (f"; the gates of task {before.task} (of {before.gate_tasks}) folded into the class-attention weights"
             if before.gate_tasks and not after.gate_tasks else "")
    removed = "".join(f"; training-only branch {branch} removed" for branch in removed_branches(before, after))
    return (f"reparameterized {label}: {before.depth} blocks x {before.branches} branches -> {after.depth} blocks, "
            f"{after.num_heads} heads, FFN width {after.mlp_hidden_dim}{gates}{removed}")
