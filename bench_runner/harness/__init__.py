"""How an artifact is executed on a device and how its timings are read back.

`base` holds the Harness interface every harness implements; `agent.py` is the portable
Python agent (a standalone script that only its tests import); `python_agent` drives it on any
device; the native tools' harnesses run ExecuTorch's executor_runner, ONNX Runtime's
onnxruntime_perf_test, ExecuTorch's Android benchmark app and vitdeploy's own native
runner (`vitdeploy_runner`). `HARNESSES` maps a
harness name to its class as "module:Class"; each class has `from_profile(profile) ->
Harness`, and its module is imported only when it is chosen.
"""

from __future__ import annotations

import importlib

from bench_runner.harness.base import HarnessError

HARNESSES: dict[str, str] = {
    "python-agent": "bench_runner.harness.python_agent:PythonAgentHarness",
    "executor_runner": "bench_runner.harness.executor_runner:ExecutorRunnerHarness",
    "onnxruntime_perf_test": "bench_runner.harness.ort_perf_test:OrtPerfTestHarness",
    "executorch-benchmark-app": "bench_runner.harness.benchmark_app:BenchmarkAppHarness",
    "vitdeploy-runner": "bench_runner.harness.vitdeploy_runner:VitdeployRunnerHarness",
}
DEFAULT_HARNESS = "python-agent"


def harness_class(name: str) -> type:
    """The class of the harness called `name`; HarnessError if there is none."""
    if name not in HARNESSES:
        raise HarnessError(f"unknown harness {name!r}; known harnesses: {', '.join(HARNESSES)}")
    module_name, class_name = HARNESSES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


# The native tool a profile may name for each runtime, as (harness, HarnessPaths field).
NATIVE_HARNESS_OF_RUNTIME = {
    "executorch": ("executor_runner", "executor_runner"),
    "onnxruntime": ("onnxruntime_perf_test", "onnxruntime_perf_test"),
}


def harness_for(profile, runtime: str) -> str:
    """The harness that runs `runtime` artifacts on the device `profile` describes: the
    native tool the profile names for that runtime (phones rarely have Python), else, for
    ExecuTorch, vitdeploy's native runner where the device kind runs it by default (the
    emulated CPU, whose Python has no aarch64 torch) or where a phone gets vitdeploy's
    aarch64 bundle (its profile names no device Python), else the Python agent (on such a
    phone, the bundle's Python)."""
    from bench_runner.devices import device_kind

    native = NATIVE_HARNESS_OF_RUNTIME.get(runtime)
    if native is not None and getattr(profile.harness, native[1]) is not None:
        return native[0]
    kind = device_kind(profile.kind)
    bundled = kind.aarch64_bundle and profile.harness.python is None
    if runtime == "executorch" and kind.native_runner is not None and (kind.native_runner.default or bundled):
        return "vitdeploy-runner"
    return DEFAULT_HARNESS
