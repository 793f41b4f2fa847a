"""What a backend declares: one `Backend` value in each backend's module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from lowering.export.passes import GraphPass
from lowering.verify import Thresholds
from vitdeploy.runtimes import RUNTIMES, Runtime


@dataclass(frozen=True)
class Backend:
    """One backend.

    `modes`: its quantization modes, in the order users see them, with the thresholds
    its artifacts must meet against the eager model. `calibrated_modes`: those that need
    calibration (static activation ranges). `hook_method`: the method of a
    PreparedCalibrator its static quantizer calls (a hook without it is not used);
    `observes_images`: whether that quantizer runs the calibration images itself even
    when a hook fixes ranges (ONNX Runtime), rather than the hook replacing them (PT2E).
    `passes`: the graph passes (`lowering.export.passes`) run on every model's exported
    program before `build` sees it (none: the program as torch.export wrote it).
    `key_settings`: LoweringSpec fields that shape its artifacts (they key the cache).
    `build(BuildJob) -> Built`; `check_spec(path, job) -> verification dict` stands in
    for the numerical check where the runtime cannot run (None: it always can).
    """

    name: str
    runtime: str
    modes: Mapping[str, Thresholds]
    calibrated_modes: tuple[str, ...]
    toolchain_packages: tuple[str, ...]
    build: Callable
    hook_method: str = "__call__"
    observes_images: bool = False
    key_settings: tuple[str, ...] = ()
    check_spec: Callable | None = None
    passes: tuple[GraphPass, ...] = ()

    @property
    def runs(self) -> Runtime:
        """The runtime that executes this backend's artifacts."""
        return RUNTIMES[self.runtime]

    @property
    def suffix(self) -> str:
        """The file suffix of this backend's artifacts."""
        return self.runs.suffixes[0]
