"""The backends lowering builds for, each described once, and the targets they accept.

    BACKENDS: name -> Backend            # executorch, onnx, coreml
    Target("onnx", "int8")               # one artifact to build; validated against BACKENDS
    parse_targets(backends, modes) -> (targets, skipped notes)

A backend's module (`lowering/export/<name>.py`) declares its `BACKEND`: the runtime
that executes its artifacts (`vitdeploy.runtimes`), its graph passes, its quantization
modes with their verification thresholds, which modes calibrate, the packages whose
versions shape its artifacts, how it builds an artifact, and how an artifact is checked
where its runtime cannot run. Adding a backend is one module and one line below.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from lowering.export.backend import Backend
from lowering.export.settings import UnknownTargetError
from lowering.verify import Thresholds

# Packages that shape every artifact, whatever the backend.
COMMON_TOOLCHAIN = ("torch",)


def _registry() -> dict[str, Backend]:
    from lowering.export import coreml, executorch, onnx

    return {backend.name: backend for backend in (executorch.BACKEND, onnx.BACKEND, coreml.BACKEND)}


BACKENDS: dict[str, Backend] = _registry()
QUANT_MODES: dict[str, tuple[str, ...]] = {name: tuple(b.modes) for name, b in BACKENDS.items()}
ALL_QUANT_MODES = tuple(dict.fromkeys(mode for modes in QUANT_MODES.values() for mode in modes))
TOOLCHAIN_PACKAGES = tuple(dict.fromkeys(COMMON_TOOLCHAIN + tuple(
    package for backend in BACKENDS.values() for package in backend.toolchain_packages)))


def toolchain_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape an artifact (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in TOOLCHAIN_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@dataclass(frozen=True)
class Target:
    """One artifact to build: a backend and one of its quantization modes."""

    backend: str
    quant: str

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UnknownTargetError(f"unknown backend {self.backend!r}; valid backends: {', '.join(BACKENDS)}")
        if self.quant not in QUANT_MODES[self.backend]:
            raise UnknownTargetError(
                f"backend {self.backend} has no quantization mode {self.quant!r}; "
                f"its modes: {', '.join(QUANT_MODES[self.backend])}"
            )

    @property
    def backend_descriptor(self) -> Backend:
        """This target's backend."""
        return BACKENDS[self.backend]

    @property
    def calibrated(self) -> bool:
        """Whether this target needs calibration (static activation ranges)."""
        return self.quant in BACKENDS[self.backend].calibrated_modes

    @property
    def thresholds(self) -> Thresholds:
        """What this target's artifact must meet against the eager model."""
        return BACKENDS[self.backend].modes[self.quant]

    def __str__(self) -> str:
        return f"{self.backend}/{self.quant}"


def parse_targets(backends: list[str], modes: list[str]) -> tuple[tuple[Target, ...], list[str]]:
    """The targets for every backend x mode pair a backend supports, and notes on the
    pairs skipped. Unknown names, or a mode that no chosen backend has, are errors."""
    for backend in backends:
        if backend not in BACKENDS:
            raise UnknownTargetError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    for mode in modes:
        if mode not in ALL_QUANT_MODES:
            raise UnknownTargetError(
                f"unknown quantization mode {mode!r}; valid modes: "
                + "; ".join(f"{b}: {', '.join(m)}" for b, m in QUANT_MODES.items())
            )
        if not any(mode in QUANT_MODES[b] for b in backends):
            raise UnknownTargetError(
                f"quantization mode {mode!r} applies to none of {', '.join(backends)}; "
                + "; ".join(f"{b}: {', '.join(QUANT_MODES[b])}" for b in backends)
            )
    targets, skipped = [], []
    for backend in backends:
        for mode in modes:
            if mode in QUANT_MODES[backend]:
                targets.append(Target(backend, mode))
            else:
                skipped.append(f"{backend} has no {mode} mode (its modes: {', '.join(QUANT_MODES[backend])})")
    return tuple(dict.fromkeys(targets)), skipped
