"""The harness that runs ExecuTorch's `executor_runner` (or `xnn_executor_runner`) on a device.

Why one process per measurement: from ExecuTorch v1.3.0 the runner logs one
"Iteration i of N: X ms" line per execution, timed around method->execute() alone
(examples/portable/executor_runner/executor_runner.cpp). So one process with
`--num_executions = warmup + runs` yields every raw sample: the first `warmup`
iterations are dropped, the first iteration is the first-inference time, and
"Model loaded in X ms" is the load time. Warm-up therefore happens in the same process,
with the same program, caches and thread pool, as the timed runs (ExecuTorch's own
Android benchmark script warms up in a separate process instead). Running the runner
once per sample would time a cold process each time, and timing the process from the
shell would add program loading to every sample; neither measures steady-state latency.

Runners older than v1.3.0 print only the total of all executions, warm-up included: their
timing carries a ToolAggregate (the mean over all `warmup + runs` executions, the first
of them cold) and no samples, so its record has no percentiles and no interval.
Rebuilding the runner from v1.3.0 or later gives raw samples.

Where the log goes: a posix-PAL build writes ET_LOG lines to stderr; a build with the
android PAL (the `android-arm64-v8a` CMake preset) writes them to logcat under the tag
"ExecuTorch". On a device whose kind has logcat (Android) the harness logs a unique
marker under that tag before each run and, when the process's own output holds no
ExecuTorch log, reads back the logcat lines after the marker (`logcat -d -v raw -s
ExecuTorch:I`). The runner must be built with -DEXECUTORCH_ENABLE_LOGGING=ON (Release
builds leave the log out by default).
"""

from __future__ import annotations

import uuid

from bench_runner.devices import device_kind
from bench_runner.devices.base import Device
from bench_runner.harness.base import HarnessError, RunSettings, ToolAggregate, Variant
from bench_runner.harness.native import (
    Deadline,
    ProcessTiming,
    PushedBinaryHarness,
    VariantFailed,
    killed_by_signal,
    require_executable,
    with_cpu_mask,
)
from bench_runner.harness.parsers import HarnessOutputError, text_lines
from bench_runner.harness.parsers.executor_runner import is_log_line, parse_executor_runner

HARNESS_NAME = "executor_runner"
LOG_TAG = "ExecuTorch"


def executor_runner_argv(
    binary: str, model: str, executions: int, threads: int, cpu_mask: str | None = None
) -> list[str]:
    """The device argv of one executor_runner run (flags exist in every ExecuTorch 1.x runner)."""
    return with_cpu_mask(
        [binary, f"--model_path={model}", f"--num_executions={executions}", f"--cpu_threads={threads}"], cpu_mask
    )


def logcat_after(marker: str, logcat: str) -> str:
    """The lines of a `logcat -v raw` dump that follow the last occurrence of `marker`."""
    lines = text_lines(logcat)
    starts = [i for i, line in enumerate(lines) if line.strip() == marker]
    return "\n".join(lines[starts[-1] + 1 :]) if starts else ""


class ExecutorRunnerHarness(PushedBinaryHarness):
    """Runs .pte artifacts with a user-built executor_runner pushed to the device.

    One measure call measures its variants one after another (the protocol interleaves
    variants across calls); see the module docstring for how samples are obtained.
    """

    name = HARNESS_NAME
    runtimes = frozenset({"executorch"})

    @classmethod
    def from_profile(cls, profile) -> ExecutorRunnerHarness:
        if profile.harness.executor_runner is None:
            raise HarnessError(
                f"device profile {profile.name!r} names no executor_runner: build it for the device "
                "(ExecuTorch v1.3.0 or later, -DEXECUTORCH_BUILD_EXECUTOR_RUNNER=ON -DEXECUTORCH_BUILD_XNNPACK=ON "
                "-DEXECUTORCH_ENABLE_LOGGING=ON) and set [harness] executor_runner = PATH in the profile"
            )
        return cls(profile.harness.executor_runner)

    def _run_process(
        self, device: Device, variant: Variant, settings: RunSettings, timed_runs: int, deadline: Deadline
    ) -> ProcessTiming:
        model = self._files.push(device, variant.path)
        executions = settings.warmup + timed_runs
        argv = executor_runner_argv(self._remote_binary, model, executions, settings.threads, settings.cpu_mask)
        marker = f"vitdeploy-{uuid.uuid4().hex}"
        logcat = device_kind(device.kind).logcat
        if logcat:
            device.run(["log", "-p", "i", "-t", LOG_TAG, marker], timeout=deadline.remaining())
        result = device.run(argv, timeout=deadline.remaining())
        require_executable(result, self._remote_binary)
        log = result.stderr
        own_output = text_lines(result.stdout) + text_lines(result.stderr)
        if logcat and not any(is_log_line(line) for line in own_output):
            dump = device.run(["logcat", "-d", "-v", "raw", "-s", f"{LOG_TAG}:I"], timeout=deadline.remaining())
            log = logcat_after(marker, dump.stdout)
        try:
            output = parse_executor_runner(result.stdout, log)
        except HarnessOutputError as exc:
            if killed_by_signal(result.exit_code):
                raise HarnessError(f"executor_runner was killed (exit status {result.exit_code}): {exc}") from None
            raise VariantFailed(str(exc)) from None
        if result.exit_code != 0:
            raise VariantFailed(f"executor_runner exited with status {result.exit_code} after a complete run")
        if output.num_executions != executions:
            raise VariantFailed(f"asked for {executions} executions but the log reports {output.num_executions}")
        if output.threads is not None and output.threads != settings.threads:
            raise VariantFailed(
                f"asked for {settings.threads} threads but the runner reset its thread pool to {output.threads}"
            )
        if output.from_aggregate:
            source = (
                "executor_runner before ExecuTorch v1.3 (the total time of each process's executions, "
                f"its {settings.warmup} warm-up executions included, the first one cold; "
                "rebuild from v1.3 for per-run times)"
            )
            return ProcessTiming(
                samples_ms=(),
                load_ms=output.load_ms,
                aggregate=ToolAggregate.one_round(source, runs=output.num_executions, mean_ms=output.mean_ms),
            )
        return ProcessTiming(
            samples_ms=output.iteration_ms[settings.warmup :],
            load_ms=output.load_ms,
            first_inference_ms=output.iteration_ms[0],
        )
