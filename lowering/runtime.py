"""Run a lowered artifact in this process with its own runtime.

    load_artifact(path, runtime=None, threads=None) -> ArtifactRunner
    runner(images: np.ndarray) -> np.ndarray        # any batch; the artifact's own batch size inside

Verification and accuracy evaluation both go through here, so an artifact is judged by
the runtime that will execute it (ExecuTorch's Python runtime, ONNX Runtime, Core ML on
macOS), never by PyTorch.

ExecuTorch's thread pool is process-wide and can only be sized before the first
program is loaded (resizing it afterwards crashed the process): the first ExecuTorch
load fixes it (to `threads`, or the runtime's default), and asking for another size
later is an error.
"""

from __future__ import annotations

import contextlib
import os

import sys
from pathlib import Path
from typing import Protocol

import numpy as np

from vitdeploy.errors import VitdeployError
from vitdeploy.manifest import read_manifest


class RuntimeUnavailableError(VitdeployError):
    """The artifact's runtime cannot run here (Core ML off macOS, a thread pool already sized)."""


class ArtifactRunner(Protocol):
    """A loaded artifact: call it with float32 NCHW images, get float32 logits back."""

    runtime: str
    input_shape: tuple[int, ...]

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


def _batched(run, batch: int, images: np.ndarray) -> np.ndarray:
    """`run` over `images` in chunks of the artifact's batch size, outputs concatenated."""
    if len(images) % batch:
        raise ValueError(f"the artifact takes batches of {batch}; got {len(images)} images")
    images = np.ascontiguousarray(images, dtype=np.float32)
    chunks = [run(images[i : i + batch]) for i in range(0, len(images), batch)]
    return np.concatenate(chunks)


class OnnxRuntimeRunner:
    """An ONNX model in an ONNX Runtime CPU session."""

    runtime = "onnxruntime"

    def __init__(self, path: Path, threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_inputs()[0]
        self.input_name = meta.name
        self.input_shape = tuple(int(d) for d in meta.shape)

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: chunk})[0]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return _batched(self._run, self.input_shape[0], images)


_executorch_threads: int | None = None  # the process's pool size, fixed by the first load


@contextlib.contextmanager
def _native_stderr_discarded():
    """Discard what native code writes to stderr meanwhile: creating ExecuTorch's thread
    pool probes ARM identification files and logs each one it cannot open (all of them,
    off ARM)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def prepare_executorch_threads(threads: int | None) -> None:
    """Size ExecuTorch's thread pool before the first program is loaded; afterwards only
    check that the request matches (resizing a pool in use crashed the process)."""
    global _executorch_threads
    from executorch.extension.pybindings import portable_lib

    if _executorch_threads is None:
        with _native_stderr_discarded():
            if threads is not None:
                portable_lib._unsafe_reset_threadpool(threads)
            _executorch_threads = int(portable_lib._threadpool_get_thread_count())
    elif threads is not None and threads != _executorch_threads:
        raise RuntimeUnavailableError(
            f"ExecuTorch's thread pool is already sized to {_executorch_threads} in this "
            f"process and cannot be resized to {threads}; use a new process"
        )


class ExecuTorchRunner:
    """An ExecuTorch program's `forward` method in ExecuTorch's Python runtime."""

    runtime = "executorch"

    def __init__(self, path: Path, threads: int | None):
        from executorch.runtime import Runtime

        prepare_executorch_threads(threads)
        self.method = Runtime.get().load_program(path).load_method("forward")
        self.input_shape = tuple(self.method.metadata.input_tensor_meta(0).sizes())

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        import torch

        return self.method.execute([torch.from_numpy(chunk)])[0].numpy()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return _batched(self._run, self.input_shape[0], images)


class CoreMLRunner:
    """A Core ML model on the CPU through coremltools; prediction needs macOS."""

    runtime = "coreml"

    def __init__(self, path: Path, threads: int | None):
        if sys.platform != "darwin":
            raise RuntimeUnavailableError(
                f"cannot run Core ML model {path} here: Core ML prediction needs macOS"
            )
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        description = self.model.get_spec().description
        self.input_name = description.input[0].name
        self.input_shape = tuple(description.input[0].type.multiArrayType.shape)

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        outputs = self.model.predict({self.input_name: chunk})
        return np.asarray(next(iter(outputs.values())), dtype=np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return _batched(self._run, self.input_shape[0], images)


RUNNERS = {runner.runtime: runner for runner in (ExecuTorchRunner, OnnxRuntimeRunner, CoreMLRunner)}


def load_artifact(
    path: str | Path, runtime: str | None = None, threads: int | None = None
) -> ArtifactRunner:
    """Load the artifact at `path` into its runtime (named by its manifest unless given).

    `threads`: intra-op threads (None: the runtime's default; for ExecuTorch, whatever
    the process's pool already has).
    """
    path = Path(path)
    runtime = runtime or read_manifest(path).get("runtime")
    if runtime not in RUNNERS:
        raise RuntimeUnavailableError(
            f"unknown runtime {runtime!r} for {path}; known: {', '.join(RUNNERS)}"
        )
    if not path.exists():
        raise RuntimeUnavailableError(f"artifact not found: {path}")
    return RUNNERS[runtime](path, threads)
