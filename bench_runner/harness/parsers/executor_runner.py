"""Parse the log of ExecuTorch's `executor_runner` (and `xnn_executor_runner`, the same program).

Format source: pytorch/executorch, examples/portable/executor_runner/executor_runner.cpp
(tags v1.0.1 to v1.4.1 and main) and runtime/platform/default/posix.cpp. Everything the
runner says about timing goes through ET_LOG; only the output tensors ("OutputX 0: ...")
go to stdout. With the posix PAL a log line reads
`I 00:00:00.046754 executorch:executor_runner.cpp:624] Model loaded in 46.318772 ms.`
on stderr; with the android PAL (the `android-arm64-v8a` preset) the same message goes
to logcat under the tag "ExecuTorch", so this parser matches messages anywhere in a line.

From v1.3.0 the runner logs "Model loaded in X ms." (Program::load plus load_method)
and one "Iteration i of N: X ms" per execution (method->execute() alone, input
preparation excluded); every version logs the total, "Model executed successfully N
time(s) in X ms.". Before v1.3.0 only that total exists. All values are milliseconds
printed with "%f".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bench_runner.harness.parsers import HarnessOutputError, text_lines

TOOL = "executor_runner"

_POSIX_PREFIX = re.compile(r"^([DIEF?]) \d{2}:\d{2}:\d{2}\.\d{6} executorch:[^\]]*\] ")
_THREADS = re.compile(r"Resetting threadpool with num threads = (-?\d+)")
_LOADED = re.compile(r"Model loaded in (\d+(?:\.\d+)?) ms\.")
_ITERATION = re.compile(r"Iteration (\d+) of (\d+): (\d+(?:\.\d+)?) ms")
_EXECUTED = re.compile(r"Model executed successfully (\d+) time\(s\) in (\d+(?:\.\d+)?) ms\.")
_ASSERT = re.compile(r"In function \w+\(\), assert failed")
_UNREGISTERED = re.compile(r"Backend (\S+) is not registered\.")
_KNOWN_MESSAGES = (_THREADS, _LOADED, _ITERATION, _EXECUTED, _ASSERT, re.compile(r"Model file .* is loaded\."))

_NO_LOG_FIX = (
    "The runner logs its timings through ET_LOG: a Release build compiles the log out unless "
    "configured with -DEXECUTORCH_ENABLE_LOGGING=ON, and a build with the android PAL (the "
    "android-arm64-v8a preset) sends it to logcat under the tag 'ExecuTorch' instead of stderr"
)


@dataclass(frozen=True)
class ExecutorRunnerOutput:
    """What one executor_runner process reported; times in milliseconds.

    `iteration_ms` holds one time per execution in order (v1.3.0 and later). Older
    runners print only the total: then `iteration_ms` is empty and `from_aggregate` is
    True, meaning any statistic built from this record comes from the tool's aggregate
    (the total over `num_executions` runs), not from raw samples. `load_ms` is None
    before v1.3.0; `threads` is None when the runner was built without a thread pool.
    """

    num_executions: int
    total_ms: float
    iteration_ms: tuple[float, ...]
    load_ms: float | None
    threads: int | None
    from_aggregate: bool

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.num_executions


def is_log_line(line: str) -> bool:
    """True for a line the ExecuTorch log wrote (posix prefix, or a message the runner logs)."""
    return bool(_POSIX_PREFIX.match(line)) or any(p.search(line) for p in _KNOWN_MESSAGES)


def _is_fatal(line: str) -> bool:
    return bool(_ASSERT.search(line)) or (line.startswith("F ") and bool(_POSIX_PREFIX.match(line)))


def _fail_on_abort(lines: list[str]) -> None:
    fatal = next((line for line in lines if _is_fatal(line)), None)
    if fatal is None:
        return
    unregistered = next((line for line in lines if _UNREGISTERED.search(line)), None)
    if unregistered is not None:
        backend = _UNREGISTERED.search(unregistered).group(1)
        raise HarnessOutputError(
            TOOL,
            f"the program needs the {backend} delegate, which this runner was built without",
            unregistered,
            "Rebuild executor_runner with that backend linked in (for XNNPACK configure with "
            "-DEXECUTORCH_BUILD_XNNPACK=ON), or lower the model without it",
        )
    error = next((line for line in lines[: lines.index(fatal)] if line.startswith("E ")), None)
    problem = "the runner aborted" + (f" after logging {error.strip()!r}" if error else "")
    raise HarnessOutputError(TOOL, problem, fatal)


def _fail_without_result(lines: list[str], stderr: str) -> None:
    log_lines = [line for line in lines if is_log_line(line)]
    if not log_lines:
        first = next((line for line in text_lines(stderr) if line.strip()), None)
        raise HarnessOutputError(
            TOOL,
            "no ExecuTorch log lines" + ("; stderr starts with" if first else ""),
            first,
            _NO_LOG_FIX,
        )
    error = next((line for line in log_lines if line.startswith("E ")), None)
    if error is not None:
        raise HarnessOutputError(TOOL, "the runner failed", error)
    raise HarnessOutputError(
        TOOL,
        "the log ends before 'Model executed successfully' (the runner was killed or the log is "
        "truncated); last line",
        log_lines[-1],
    )


def _iterations(lines: list[str], num_executions: int) -> tuple[float, ...]:
    times: list[float] = []
    for line in lines:
        match = _ITERATION.search(line)
        if match is None:
            continue
        index, of, value = int(match.group(1)), int(match.group(2)), float(match.group(3))
        if index != len(times) + 1 or of != num_executions:
            raise HarnessOutputError(
                TOOL,
                f"iteration line out of sequence (expected iteration {len(times) + 1} of {num_executions})",
                line,
            )
        times.append(value)
    if times and len(times) != num_executions:
        raise HarnessOutputError(
            TOOL, f"{len(times)} iteration lines for {num_executions} executions (a truncated log?)"
        )
    return tuple(times)


def parse_executor_runner(stdout: str, stderr: str) -> ExecutorRunnerOutput:
    """Parse one executor_runner run: its stdout and its log stream.

    `stderr` is where the ExecuTorch log went: the process's stderr (posix PAL), or the
    excerpt of `logcat -v raw -s ExecuTorch:I` that belongs to this run (android PAL).
    Both texts are searched, since `adb shell` without the shell protocol merges them.
    Raises HarnessOutputError when the run aborted, failed, or the log is incomplete.
    """
    lines = text_lines(stderr) + text_lines(stdout)
    _fail_on_abort(lines)
    executed = [(line, _EXECUTED.search(line)) for line in lines if _EXECUTED.search(line)]
    if not executed:
        _fail_without_result(lines, stderr)
    if len(executed) > 1:
        raise HarnessOutputError(TOOL, "the log holds more than one run; pass one run's log", executed[1][0])
    num_executions, total_ms = int(executed[0][1].group(1)), float(executed[0][1].group(2))
    if num_executions < 1:
        raise HarnessOutputError(TOOL, "the runner executed the model zero times", executed[0][0])

    iteration_ms = _iterations(lines, num_executions)
    if iteration_ms and not math.isclose(sum(iteration_ms), total_ms, rel_tol=1e-6, abs_tol=1e-5 * num_executions):
        raise HarnessOutputError(
            TOOL,
            f"the iteration times add up to {sum(iteration_ms):f} ms, not the reported total",
            executed[0][0],
        )
    loaded = [_LOADED.search(line) for line in lines if _LOADED.search(line)]
    threads = [_THREADS.search(line) for line in lines if _THREADS.search(line)]
    return ExecutorRunnerOutput(
        num_executions=num_executions,
        total_ms=total_ms,
        iteration_ms=iteration_ms,
        load_ms=float(loaded[0].group(1)) if loaded else None,
        threads=int(threads[0].group(1)) if threads else None,
        from_aggregate=not iteration_ms,
    )
