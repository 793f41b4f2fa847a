"""What the harnesses around native benchmark tools share: pushing files, argv, deadlines.

The tools themselves (executor_runner, onnxruntime_perf_test, the benchmark app) are
built by the user for the device and named in the device profile; nothing here
downloads them. Every command is an argv list: the device quotes each element on its
way to a shell, so paths with spaces or quotes stay one argument.
"""

from __future__ import annotations

import math
import posixpath
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from bench_runner.devices.base import CommandResult, Device, DeviceError
from bench_runner.harness.agent import cpu_pressure_total_us
from bench_runner.harness.base import (
    EnvironmentReading,
    HarnessError,
    RawTiming,
    RunSettings,
    ToolAggregate,
    Variant,
)
from vitdeploy.manifest import artifact_sha256

# No process gets more timed runs than this, whatever `min_seconds` asks.
MAX_RUNS_PER_PROCESS = 10000


def with_cpu_mask(argv: Sequence[str], cpu_mask: str | None) -> list[str]:
    """`argv` run under `taskset MASK` when a hexadecimal CPU mask is given (toybox and util-linux)."""
    return (["taskset", cpu_mask.removeprefix("0x")] if cpu_mask else []) + list(argv)


def runs_to_fill(runs: int, min_seconds: float, timed_runs: int, timed_ms: float) -> int | None:
    """How many timed runs one process needs for `runs` runs and `min_seconds` seconds.

    A first process made `timed_runs` timed runs lasting `timed_ms` in total. None when
    they already last `min_seconds`; otherwise a count estimated from their mean with
    10% to spare, capped at MAX_RUNS_PER_PROCESS.
    """
    if timed_runs < 1 or timed_ms >= min_seconds * 1000.0:
        return None
    mean_ms = max(timed_ms / timed_runs, 1e-6)
    return min(MAX_RUNS_PER_PROCESS, max(runs, math.ceil(1.1 * min_seconds * 1000.0 / mean_ms)))


def killed_by_signal(exit_code: int) -> bool:
    """True when a process died of a signal other than SIGABRT (a failed runtime check aborts).

    Shells report a signal N as 128 + N, Python's subprocess as -N; 255 is a program's
    own `return -1`. Such a crash may not repeat, so the protocol's retry makes sense.
    """
    signal = -exit_code if exit_code < 0 else exit_code - 128
    return 0 < signal <= 64 and signal != 6


def require_executable(result: CommandResult, binary: str) -> None:
    """Raise HarnessError when the shell could not execute `binary` at all (status 126 or 127)."""
    if result.exit_code in (126, 127):
        said = (result.stderr or result.stdout).strip().splitlines()
        raise HarnessError(
            f"the device cannot execute {binary} (status {result.exit_code}"
            + (f": {said[-1]}" if said else "")
            + "); build it for the device's ABI and point the device profile's [harness] section at it"
        )


def parse_cpu_pressure(text: str) -> tuple[int, int] | None:
    """(clock_us, cpu_pressure_total_us) from the output of `cat /proc/uptime /proc/pressure/cpu`.

    /proc/uptime's first field is seconds since boot with two decimals (so the clock
    has 10 ms steps); the pressure file's "some" line ends in `total=MICROSECONDS`.
    None when either is missing (a kernel without pressure stall information, a
    device that is not Linux).
    """
    clock_us = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2:
            try:
                clock_us = round(float(fields[0]) * 1e6)
                break
            except ValueError:
                continue
    total_us = cpu_pressure_total_us(text)
    return None if clock_us is None or total_us is None else (clock_us, total_us)


def read_environment(device: Device, when: str) -> EnvironmentReading:
    """The device's CPU frequencies, temperatures and CPU pressure now, as a reading of round 0."""
    info = device.info()
    pressure = parse_cpu_pressure(device.run(["cat", "/proc/uptime", "/proc/pressure/cpu"], timeout=30).stdout)
    clock_us, total_us = pressure if pressure is not None else (None, None)
    return EnvironmentReading(
        round=0,
        when=when,
        frequencies_khz=info.frequencies_khz,
        thermal_c=dict(info.thermal_c),
        cpu_pressure_total_us=total_us,
        clock_us=clock_us,
    )


class Deadline:
    """The time left for one `measure` call; running out raises DeviceError, as a device timeout does."""

    def __init__(self, seconds: float, what: str, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.monotonic
        self._end = self._clock() + seconds
        self._seconds = seconds
        self._what = what

    def remaining(self) -> float:
        left = self._end - self._clock()
        if left <= 0:
            raise DeviceError(f"{self._what} took longer than its timeout of {self._seconds:g} s")
        return left


class DeviceFiles:
    """Pushes local files into a device's working directory once per session.

    A file is pushed again only when it changed locally (size or modification time) or
    the harness was prepared again; each gets a name of its own under `device.workdir`.
    """

    def __init__(self) -> None:
        self._pushed: dict[tuple[str, str, Path], tuple[tuple[int, int], str]] = {}
        self._count = 0

    def reset(self) -> None:
        """Forget what was pushed (a new session: the device may have been cleaned up)."""
        self._pushed = {}

    def push(self, device: Device, local: Path, *, executable: bool = False, own_directory: bool = False) -> str:
        """Push `local` (once) and return its device path.

        With `own_directory` the file goes alone into a new directory of the workdir
        (the benchmark app loads whichever .pte its directory holds).
        """
        local = Path(local).resolve()
        if not local.is_file():
            raise HarnessError(f"{local} does not exist or is not a file")
        stat = local.stat()
        key = (device.name, device.workdir, local)
        version = (stat.st_size, stat.st_mtime_ns)
        known = self._pushed.get(key)
        if known is not None and known[0] == version:
            return known[1]
        number = self._count
        self._count += 1
        if own_directory:
            directory = posixpath.join(device.workdir, f"artifact-{number}")
            device.run(["mkdir", "-p", directory], timeout=30)
            remote = posixpath.join(directory, local.name)
        else:
            remote = posixpath.join(device.workdir, f"{number}-{local.name}")
        device.push(local, remote)
        if executable:
            device.run(["chmod", "755", remote], timeout=30)
        self._pushed[key] = (version, remote)
        return remote


def binary_version(path: Path) -> str:
    """What identifies a user-built binary in a record: its sha256 (the tools print no version)."""
    return f"sha256:{artifact_sha256(Path(path))[:16]}"


class VariantFailed(Exception):
    """One variant cannot be measured (bad model, missing delegate...); the message says why.

    It becomes that variant's RawTiming.error; the protocol does not retry it.
    """


@dataclass(frozen=True)
class ProcessTiming:
    """What one process of a native tool measured, in milliseconds.

    `samples_ms` are its timed runs after warm-up, in order; the rest is what it reported
    about loading the model and its first inference, and a checksum of its output where
    it prints one. A tool that prints no per-run times leaves `samples_ms` empty and
    reports its `aggregate` instead.
    """

    samples_ms: tuple[float, ...]
    load_ms: float | None = None
    first_inference_ms: float | None = None
    peak_rss_kb: int | None = None
    aggregate: ToolAggregate | None = None
    output_checksum: float | None = None

    def timed(self) -> tuple[int, float]:
        """How many timed runs the process made and how long they lasted in total (ms)."""
        if self.aggregate is not None:
            return self.aggregate.runs, self.aggregate.runs * self.aggregate.mean_ms
        return len(self.samples_ms), sum(self.samples_ms)


RunProcess = Callable[[Device, Variant, RunSettings, int, Deadline], ProcessTiming]


def measure_each(
    harness_name: str,
    device: Device,
    variants: Sequence[Variant],
    settings: RunSettings,
    runtime_versions: dict[str, str],
    run_process: RunProcess,
) -> list[RawTiming]:
    """Measure `variants` one after another, one tool process each, as one round (round 0).

    `run_process(device, variant, settings, timed_runs, deadline)` runs the tool once
    with `settings.warmup` untimed and `timed_runs` timed runs. When the first process's
    runs last less than `settings.min_seconds`, a second process with enough runs
    replaces it, so the samples of a record always come from one process. CPU
    frequencies, temperatures and CPU pressure are read before and after each variant.
    """
    if settings.rounds != 1:
        raise ValueError(
            f"{harness_name} measures one round per call (the protocol interleaves rounds), got {settings.rounds}"
        )
    deadline = Deadline(settings.timeout_seconds, f"the {harness_name} harness")
    timings = []
    for variant in variants:
        before = read_environment(device, "before")
        try:
            process = run_process(device, variant, settings, settings.runs, deadline)
            more_runs = runs_to_fill(settings.runs, settings.min_seconds, *process.timed())
            if more_runs is not None:
                process = run_process(device, variant, settings, more_runs, deadline)
        except VariantFailed as failure:
            timings.append(
                RawTiming(
                    variant_id=variant.id, harness=harness_name, runtime_versions=runtime_versions, error=str(failure)
                )
            )
            continue
        after = read_environment(device, "after")
        timings.append(
            RawTiming(
                variant_id=variant.id,
                harness=harness_name,
                samples_ms=process.samples_ms,
                round_index=(0,) * len(process.samples_ms),
                load_ms=process.load_ms,
                first_inference_ms=process.first_inference_ms,
                peak_rss_kb=process.peak_rss_kb,
                output_checksum=process.output_checksum,
                runtime_versions=runtime_versions,
                environment=(before, after),
                aggregate=process.aggregate,
            )
        )
    return timings


class PushedBinaryHarness:
    """A harness that pushes one user-built binary to the device and runs it once per
    measurement. Subclasses set `name` and `runtimes`, implement `_run_process` (see
    `measure_each`), and push anything else the binary needs in `_push_more`."""

    interleaves = False

    def __init__(self, binary: Path) -> None:
        self.binary = Path(binary)
        self._files = DeviceFiles()
        self._remote_binary: str | None = None
        self._versions: dict[str, str] = {}

    def prepare(self, device: Device) -> None:
        if not self.binary.is_file():
            raise HarnessError(f"{self.name} binary {self.binary} does not exist; check the device profile")
        self._files.reset()
        self._remote_binary = self._files.push(device, self.binary, executable=True)
        self._push_more(device)
        self._versions = {self.name: binary_version(self.binary)}

    def _push_more(self, device: Device) -> None:
        """Push what the binary needs besides itself (nothing by default)."""

    def measure(self, device: Device, variants: Sequence[Variant], settings: RunSettings) -> list[RawTiming]:
        if self._remote_binary is None:
            self.prepare(device)
        return measure_each(self.name, device, variants, settings, self._versions, self._run_process)
