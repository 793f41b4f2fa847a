"""Run a lowered artifact in this process with its own runtime.

    load_artifact(path, runtime=None, threads=None) -> ArtifactRunner
    runner(images: np.ndarray) -> np.ndarray        # any batch; the artifact's own batch size inside

Verification and accuracy evaluation both go through here, so an artifact is judged by
the runtime that will execute it (`vitdeploy.runtimes`, the code the benchmark agent
measures with), never by PyTorch. ExecuTorch's thread pool is process-wide: the first
ExecuTorch load fixes its size (`threads`, or the runtime's default), and asking for
another size later is an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitdeploy.errors import VitdeployError
from vitdeploy.manifest import read_manifest
from vitdeploy.runtimes import RUNTIMES, RuntimeUnavailable


class RuntimeUnavailableError(VitdeployError):
    """The artifact's runtime cannot run here (Core ML off macOS, a thread pool already sized)."""


def prepare_runtime(runtime: str, threads: int | None) -> None:
    """Make `runtime` ready for `threads` threads before anything is loaded (ExecuTorch's
    pool can be sized only once per process)."""
    try:
        RUNTIMES[runtime].prepare(threads)
    except RuntimeUnavailable as exc:
        raise RuntimeUnavailableError(str(exc)) from None


class ArtifactRunner:
    """A loaded artifact: call it with float32 NCHW images, get float32 outputs back, in
    chunks of the artifact's own batch size."""

    def __init__(self, runtime: str, session):
        self.runtime = runtime
        self.session = session
        self.input_shape: tuple[int, ...] = session.input_shape

    def __call__(self, images: np.ndarray) -> np.ndarray:
        batch = self.input_shape[0]
        if len(images) % batch:
            raise ValueError(f"the artifact takes batches of {batch}; got {len(images)} images")
        images = np.ascontiguousarray(images, dtype=np.float32)
        return np.concatenate([self.session.run(images[i : i + batch]) for i in range(0, len(images), batch)])


def load_artifact(path: str | Path, runtime: str | None = None, threads: int | None = None) -> ArtifactRunner:
    """Load the artifact at `path` into its runtime (named by its manifest unless given).

    `threads`: intra-op threads (None: the runtime's default; for ExecuTorch, whatever
    the process's pool already has).
    """
    path = Path(path)
    runtime = runtime or read_manifest(path).runtime
    if runtime not in RUNTIMES:
        raise RuntimeUnavailableError(f"unknown runtime {runtime!r} for {path}; known: {', '.join(RUNTIMES)}")
    if not path.exists():
        raise RuntimeUnavailableError(f"artifact not found: {path}")
    try:
        return ArtifactRunner(runtime, RUNTIMES[runtime].open(path, threads))
    except RuntimeUnavailable as exc:
        raise RuntimeUnavailableError(str(exc)) from None
