"""Parse what vitdeploy_et_runner (runner.cpp) prints; nothing here runs anything.

On success the runner's stdout holds these lines, in this order (format 1):

    vitdeploy-runner version format=1 executorch=1.5.1+cpu
    vitdeploy-runner setup threads=1 cpus=0,1 input_seed=0
    vitdeploy-runner load ms=2.088376
    vitdeploy-runner input index=0 shape=1x3x32x32 dtype=float32      (one per input)
    vitdeploy-runner first_inference ms=0.230244
    vitdeploy-runner sample index=0 ms=0.097946                       (one per timed run)
    vitdeploy-runner checksum sum=-1.2972737811505795 abs_sum=1.9111866392195225 elements=10
    vitdeploy-runner memory peak_rss_kb=9884
    vitdeploy-runner done warmup=2 iterations=3

Times are milliseconds; `load` is Module::load (the file mapped) plus load_method,
each sample one Module::execute (inputs copied in, Method::execute, outputs collected);
the checksum sums the first output after the last run in float64, in element order;
peak RSS is the process's VmHWM (not ru_maxrss, which carries the parent's size over
exec). Other lines (the runtime's log, when streams are merged) are skipped. A failed
run prints its error to stderr and exits with one of EXIT_STATUSES.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

from bench_runner.harness.parsers import HarnessOutputError, text_lines

TOOL = "vitdeploy_et_runner"
PREFIX = "vitdeploy-runner "
FORMAT = 1
# runner.cpp's `Exit`: what each nonzero exit status means.
EXIT_STATUSES = {
    2: "bad command line",
    3: "model file missing",
    4: "program load failed",
    5: "method load failed",
    6: "unsupported inputs or outputs",
    7: "execution failed",
    8: "the platform refused CPU affinity, the thread pool or /proc/self/status",
}
# What the runtime's log says when a method needs a kernel or a delegate the runner lacks.
_MISSING = (re.compile(r"Missing operator: \[\d+\] (\S+)"), re.compile(r"Backend (\S+) is not registered"))
_REBUILD = "Rebuild the runner (bench_runner.native_runner.build.build_runner) from this checkout's runner.cpp"


def _ints(separator: str) -> Callable[[str], tuple[int, ...]]:
    def parse(text: str) -> tuple[int, ...]:
        values = tuple(int(item) for item in text.split(separator))
        if any(value < 0 for value in values):
            raise ValueError(text)
        return values

    return parse


def _ms(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


# Every record's fields and how to read them; `input` and `sample` repeat, the rest occur once.
_RECORDS: dict[str, dict[str, Callable[[str], object]]] = {
    "version": {"format": int, "executorch": str},
    "setup": {"threads": _count, "cpus": _ints(","), "input_seed": _count},
    "load": {"ms": _ms},
    "input": {"index": _count, "shape": _ints("x"), "dtype": str},
    "first_inference": {"ms": _ms},
    "sample": {"index": _count, "ms": _ms},
    "checksum": {"sum": _finite, "abs_sum": _finite, "elements": _count},
    "memory": {"peak_rss_kb": _count},
    "done": {"warmup": _count, "iterations": _count},
}
_REPEATED = {"input", "sample"}


@dataclass(frozen=True)
class OutputChecksum:
    """Sum and sum of absolute values (float64, element order) of the first output, and its size."""

    sum: float
    abs_sum: float
    elements: int


@dataclass(frozen=True)
class RunnerResult:
    """One successful runner process; times in milliseconds.

    `version` is the ExecuTorch version the runner was built against; `threads` the
    size of ExecuTorch's thread pool and `cpus` the CPUs the process could run on;
    `samples_ms` one time per timed run, in order, after `warmup` untimed runs.
    """

    version: str
    threads: int
    cpus: tuple[int, ...]
    input_seed: int
    input_shapes: tuple[tuple[int, ...], ...]
    load_ms: float
    first_inference_ms: float
    warmup: int
    samples_ms: tuple[float, ...]
    checksum: OutputChecksum
    peak_rss_kb: int


def _read_line(line: str) -> tuple[str, dict]:
    name, *fields = line[len(PREFIX):].split()
    spec = _RECORDS.get(name)
    if spec is None:
        raise HarnessOutputError(TOOL, f"unknown record {name!r}", line)
    values = dict(field.partition("=")[::2] for field in fields)
    if len(values) != len(fields) or set(values) != set(spec):
        raise HarnessOutputError(TOOL, f"the {name} record needs the fields {', '.join(spec)}", line)
    try:
        return name, {key: spec[key](value) for key, value in values.items()}
    except ValueError:
        raise HarnessOutputError(TOOL, f"an unreadable value in the {name} record", line) from None


def _records(text: str) -> dict[str, list[dict]]:
    lines = [line for line in text_lines(text) if line.startswith(PREFIX)]
    if not lines:
        raise HarnessOutputError(TOOL, "no 'vitdeploy-runner' lines (the runner failed before it started?)")
    records: dict[str, list[dict]] = {name: [] for name in _RECORDS}
    for number, line in enumerate(lines):
        name, values = _read_line(line)
        if number == 0 and name != "version":
            raise HarnessOutputError(TOOL, "the output does not start with the version record", line)
        if name not in _REPEATED and records[name]:
            raise HarnessOutputError(TOOL, f"a second {name} record (the output of two runs?)", line)
        records[name].append(values)
    if records["version"][0]["format"] != FORMAT:
        raise HarnessOutputError(TOOL, f"output format {records['version'][0]['format']}; this parser reads "
                                 f"format {FORMAT}", lines[0], _REBUILD)
    if not records["done"] or lines[-1].split()[1] != "done":
        raise HarnessOutputError(TOOL, "the output ends before the done record (the runner was killed or the "
                                 "output is truncated); last line", lines[-1])
    missing = [name for name, found in records.items() if not found]
    if missing:
        raise HarnessOutputError(TOOL, f"no {', '.join(missing)} record", fix=_REBUILD)
    return records


def _in_sequence(records: list[dict], what: str) -> None:
    for expected, record in enumerate(records):
        if record["index"] != expected:
            raise HarnessOutputError(TOOL, f"{what} {record['index']} where {what} {expected} was due")


def parse_runner_output(text: str) -> RunnerResult:
    """Read one runner process's stdout; HarnessOutputError if it is truncated or garbled."""
    records = _records(text)
    _in_sequence(records["input"], "input")
    _in_sequence(records["sample"], "sample")
    (version,), (setup,), (done,) = records["version"], records["setup"], records["done"]
    samples = tuple(record["ms"] for record in records["sample"])
    if len(samples) != done["iterations"]:
        raise HarnessOutputError(TOOL, f"{len(samples)} samples for {done['iterations']} iterations")
    checksum = records["checksum"][0]
    return RunnerResult(
        version=version["executorch"],
        threads=setup["threads"],
        cpus=setup["cpus"],
        input_seed=setup["input_seed"],
        input_shapes=tuple(record["shape"] for record in records["input"]),
        load_ms=records["load"][0]["ms"],
        first_inference_ms=records["first_inference"][0]["ms"],
        warmup=done["warmup"],
        samples_ms=samples,
        checksum=OutputChecksum(checksum["sum"], checksum["abs_sum"], checksum["elements"]),
        peak_rss_kb=records["memory"][0]["peak_rss_kb"],
    )


def describe_failure(exit_status: int, stderr: str) -> str:
    """What a failed run's exit status means, with the runner's error line from `stderr` and
    the operators or delegates the runtime's log says are missing."""
    kind = EXIT_STATUSES.get(exit_status, "the runner crashed or was killed")
    marker = f"{TOOL}: error: "
    lines = text_lines(stderr)
    said = [line.removeprefix(marker) for line in lines if line.startswith(marker)]
    missing = sorted({match.group(1) for line in lines for pattern in _MISSING if (match := pattern.search(line))})
    return (f"{TOOL}: {kind} (exit status {exit_status})" + (f": {said[-1]}" if said else "")
            + (f"; missing: {', '.join(missing)}" if missing else ""))
