"""The runtimes that execute vitdeploy's artifacts, each described once.

    RUNTIMES: name -> Runtime           # executorch, onnxruntime, coreml
    runtime_of_file(path) -> Runtime | None
    session = RUNTIMES["onnxruntime"].open(path, threads)
    session.run(batch) -> np.ndarray    # one batch of the artifact's input shape

A Runtime says which artifact files it runs, which packages make it up (for version
records), how to make it ready for a thread count before anything is loaded, and how to
open an artifact in a session. Verification and accuracy evaluation (in this process)
and the portable benchmark agent (on any device with Python) all go through it, so an
artifact is checked by the same code that measures it.

This module is portable: at module level it imports only the standard library and
numpy, each runtime's own package only when that runtime is used, and nothing of
vitdeploy, so the agent carries it to a device beside itself.
"""

import contextlib
import os
import sys
from dataclasses import dataclass

import numpy as np


class RuntimeUnavailable(RuntimeError):
    """A runtime cannot run here: not installed, wrong OS, or a thread pool already sized."""


@contextlib.contextmanager
def _native_stderr_discarded():
    """Discard what native code writes to stderr meanwhile (creating ExecuTorch's thread
    pool probes ARM identification files and logs each one it cannot open)."""
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


class OnnxRuntimeSession:
    """An ONNX model in an ONNX Runtime CPU session (sequential, all graph optimizations)."""

    def __init__(self, path, threads):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        meta = self.session.get_inputs()[0]
        self.input_name = meta.name
        self.input_shape = tuple(int(d) for d in meta.shape)
        self.threads_applied = self.session.get_session_options().intra_op_num_threads or None

    def run(self, batch):
        return self.session.run(None, {self.input_name: batch})[0]


class ExecuTorchSession:
    """An ExecuTorch program's `forward` method in ExecuTorch's Python runtime."""

    def __init__(self, path, threads):
        import torch
        from executorch.runtime import Runtime

        EXECUTORCH.prepare(threads)
        self._from_numpy = torch.from_numpy
        self.method = Runtime.get().load_program(str(path)).load_method("forward")
        self.input_shape = tuple(self.method.metadata.input_tensor_meta(0).sizes())
        self.threads_applied = _ExecuTorchPool.size

    def run(self, batch):
        return self.method.execute([self._from_numpy(batch)])[0].numpy()


class CoreMLSession:
    """A Core ML model on the CPU through coremltools; prediction needs macOS."""

    def __init__(self, path, threads):
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        description = self.model.get_spec().description
        self.input_name = description.input[0].name
        self.input_shape = tuple(description.input[0].type.multiArrayType.shape)
        self.threads_applied = None

    def run(self, batch):
        outputs = self.model.predict({self.input_name: batch})
        return np.asarray(next(iter(outputs.values())), dtype=np.float32)


class _ExecuTorchPool:
    """ExecuTorch's thread pool is process-wide and can be sized only before the first
    program is loaded (resizing a pool in use crashed the process)."""

    size = None

    @classmethod
    def prepare(cls, threads):
        """Size the pool (first call) or check that `threads` matches it; also imports
        the runtime, so that no artifact's load time includes the import."""
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime as ExecuTorchRuntime

        ExecuTorchRuntime.get()
        if cls.size is None:
            with _native_stderr_discarded():
                if threads is not None:
                    portable_lib._unsafe_reset_threadpool(threads)
                cls.size = int(portable_lib._threadpool_get_thread_count())
        elif threads is not None and threads != cls.size:
            raise RuntimeUnavailable(
                f"ExecuTorch's thread pool is already sized to {cls.size} in this process "
                f"and cannot be resized to {threads}; use a new process"
            )


def _import_only(*modules):
    def prepare(threads):
        for module in modules:
            __import__(module)

    return prepare


@dataclass(frozen=True)
class Runtime:
    """One runtime: `suffixes` of the files it runs (the first is what lowering writes),
    `artifact_format` (what the report calls an artifact of it that no manifest
    describes), `packages` whose versions identify it, `prepare(threads)` to run once
    before any load (imports, thread pools), `session` opening one artifact, and the
    operating system it needs (`sys.platform` and what users call it), if only one can run it."""

    name: str
    suffixes: tuple
    artifact_format: str
    packages: tuple
    prepare: object
    session: type
    only_on: object = None
    only_on_name: str = ""

    def available_here(self):
        """Whether this machine can execute this runtime's artifacts at all."""
        return self.only_on is None or sys.platform == self.only_on

    def open(self, path, threads=None):
        """Open the artifact at `path` with `threads` intra-op threads (None: the
        runtime's default; for ExecuTorch, whatever the process's pool already has)."""
        if not self.available_here():
            raise RuntimeUnavailable(f"cannot run {path} here: {self.name} prediction needs {self.only_on_name}")
        return self.session(path, threads)


EXECUTORCH = Runtime("executorch", (".pte",), "executorch", ("executorch", "torch"),
                     _ExecuTorchPool.prepare, ExecuTorchSession)
ONNXRUNTIME = Runtime("onnxruntime", (".onnx",), "onnx", ("onnxruntime",),
                      _import_only("onnxruntime"), OnnxRuntimeSession)
COREML = Runtime("coreml", (".mlpackage", ".mlmodel"), "coreml", ("coremltools",),
                 _import_only("coremltools"), CoreMLSession, only_on="darwin", only_on_name="macOS")

RUNTIMES = {runtime.name: runtime for runtime in (EXECUTORCH, ONNXRUNTIME, COREML)}


def runtime_of_file(path):
    """The runtime that runs a file of this suffix, or None."""
    suffix = os.path.splitext(str(path).rstrip("/"))[1]
    return next((r for r in RUNTIMES.values() if suffix in r.suffixes), None)
