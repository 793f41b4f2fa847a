"""The interface between the measurement protocol and whatever executes an artifact.

A harness knows how to run artifacts of some runtimes on a device and how to read the
raw timings back. The protocol (bench_runner/protocol.py) decides what to measure, in
which order, and turns raw timings into statistics; a harness only measures.

Two kinds of harness exist:

- interleaving harnesses (`interleaves = True`, e.g. the Python agent) take every
  variant of a configuration in one `measure` call and alternate them in rounds
  themselves (A B C A B C ...);
- one-at-a-time harnesses (`interleaves = False`, e.g. native benchmark binaries) measure
  one variant per call with `settings.rounds == 1`; the protocol then interleaves the
  calls in rounds and merges their timings with `merge_rounds`.

A harness returns raw samples wherever its tool prints one time per run. Some tools
print only aggregates (ExecuTorch's Android benchmark app, executor_runner before
ExecuTorch v1.3): their timing carries a `ToolAggregate` instead, and nothing pretends
those numbers are samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

from bench_runner.devices.base import Device
from vitdeploy.errors import VitdeployError
from vitdeploy.runtimes import RUNTIMES


class HarnessError(VitdeployError):
    """A harness failed as a whole: it crashed, printed nothing readable, or is missing.

    A failure of one variant is not a HarnessError: it is reported in that variant's
    `RawTiming.error` so the other variants still get measured.
    """


@dataclass(frozen=True)
class Variant:
    """One artifact to measure, as the harness needs it.

    `id` is unique within one `measure` call; `path` is the artifact on the local
    machine (the harness pushes it); `runtime` is one of RUNTIMES.
    """

    id: str
    path: Path
    runtime: str
    input_shape: tuple[int, ...]
    input_dtype: str = "float32"


@dataclass(frozen=True)
class RunSettings:
    """One configuration as a harness executes it.

    `runs` and `min_seconds` are minimums per variant per round; every round starts
    with `warmup` untimed runs. `cpu_mask` is a hexadecimal affinity mask ("f0" = cores
    4-7) or None for no pinning. `timeout_seconds` bounds one whole `measure` call.
    """

    threads: int
    warmup: int
    runs: int
    min_seconds: float
    rounds: int
    seed: int = 0
    cpu_mask: str | None = None
    timeout_seconds: float = 600.0


@dataclass(frozen=True)
class EnvironmentReading:
    """The device's state read `when` ("before" or "after") a round.

    CPU frequencies and temperatures where the OS exposes them. `cpu_pressure_total_us`
    is Linux's CPU pressure counter (`/proc/pressure/cpu`, line "some", field `total`):
    microseconds since boot in which at least one runnable task waited for a CPU.
    `clock_us` is a monotonic clock of the device at the same moment, in microseconds;
    only differences between the readings of one timing mean anything. Both are None
    where the device has no such counter.
    """

    round: int
    when: str
    frequencies_khz: tuple[int, ...] = ()
    thermal_c: dict[str, float] = field(default_factory=dict)
    cpu_pressure_total_us: int | None = None
    clock_us: int | None = None

    def to_dict(self) -> dict:
        return {
            "round": self.round,
            "when": self.when,
            "frequencies_khz": list(self.frequencies_khz),
            "thermal_c": dict(self.thermal_c),
            "cpu_pressure_total_us": self.cpu_pressure_total_us,
            "clock_us": self.clock_us,
        }

    @classmethod
    def from_dict(cls, data: dict) -> EnvironmentReading:
        """Inverse of to_dict; readings stored before the pressure fields existed read as None."""
        pressure, clock = data.get("cpu_pressure_total_us"), data.get("clock_us")
        return cls(
            round=int(data["round"]),
            when=str(data["when"]),
            frequencies_khz=tuple(int(f) for f in data.get("frequencies_khz", ())),
            thermal_c={str(k): float(v) for k, v in data.get("thermal_c", {}).items()},
            cpu_pressure_total_us=None if pressure is None else int(pressure),
            clock_us=None if clock is None else int(clock),
        )


@dataclass(frozen=True)
class ToolAggregate:
    """What a benchmark tool reported about its timed runs when it prints no single run.

    One entry per round (a one-at-a-time harness runs the tool once per round):
    `round_runs[r]` timed runs had the mean `round_means_ms[r]` and, where the tool
    prints one, the trimmed mean `round_trimmed_means_ms[r]` (empty when it prints
    none). `load_ms` is the model load time the tool reported in the first (cold) round.
    `source` names the tool and what it printed, and says what the tool decided by
    itself (e.g. its own thread count).

    Pooling rounds: `mean_ms` is the run-weighted mean of the round means, which is
    exactly the mean of all runs. A trimmed mean of all runs cannot be rebuilt from
    per-round trimmed means, so `trimmed_mean_ms` of several rounds is the run-weighted
    mean of the rounds' trimmed means (`trimmed_mean_is_pooled` says so) and the
    per-round values are kept.
    """

    source: str
    round_runs: tuple[int, ...]
    round_means_ms: tuple[float, ...]
    round_trimmed_means_ms: tuple[float, ...] = ()
    load_ms: float | None = None

    def __post_init__(self) -> None:
        rounds = len(self.round_runs)
        if rounds == 0 or len(self.round_means_ms) != rounds:
            raise ValueError(
                f"ToolAggregate needs one run count and one mean per round, got {self.round_runs} "
                f"and {self.round_means_ms}"
            )
        if self.round_trimmed_means_ms and len(self.round_trimmed_means_ms) != rounds:
            raise ValueError(f"ToolAggregate has {rounds} rounds but {len(self.round_trimmed_means_ms)} trimmed means")
        if any(runs < 1 for runs in self.round_runs):
            raise ValueError(f"every round of a ToolAggregate has at least one run, got {self.round_runs}")

    @classmethod
    def one_round(
        cls, source: str, runs: int, mean_ms: float, trimmed_mean_ms: float | None = None, load_ms: float | None = None
    ) -> ToolAggregate:
        """What one tool process reported: `runs` timed runs with their mean (and trimmed mean)."""
        trimmed = () if trimmed_mean_ms is None else (float(trimmed_mean_ms),)
        return cls(source=source, round_runs=(int(runs),), round_means_ms=(float(mean_ms),),
                   round_trimmed_means_ms=trimmed, load_ms=load_ms)

    @property
    def runs(self) -> int:
        """Timed runs over all rounds."""
        return sum(self.round_runs)

    @property
    def mean_ms(self) -> float:
        """The mean of all timed runs."""
        return _run_weighted(self.round_means_ms, self.round_runs)

    @property
    def trimmed_mean_ms(self) -> float | None:
        """The tool's trimmed mean (of one round), or the run-weighted mean of the rounds' trimmed means."""
        return _run_weighted(self.round_trimmed_means_ms, self.round_runs) if self.round_trimmed_means_ms else None

    @property
    def trimmed_mean_is_pooled(self) -> bool:
        """True when `trimmed_mean_ms` averages several rounds' trimmed means (not one trimmed mean of all runs)."""
        return bool(self.round_trimmed_means_ms) and len(self.round_runs) > 1

    def to_dict(self) -> dict:
        """The per-round data, and the pooled figures for a reader of the stored JSON."""
        return {
            "source": self.source,
            "round_runs": list(self.round_runs),
            "round_means_ms": list(self.round_means_ms),
            "round_trimmed_means_ms": list(self.round_trimmed_means_ms),
            "load_ms": self.load_ms,
            "runs": self.runs,
            "mean_ms": self.mean_ms,
            "trimmed_mean_ms": self.trimmed_mean_ms,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ToolAggregate:
        """Inverse of to_dict (the pooled figures are recomputed, not read)."""
        return cls(
            source=str(data["source"]),
            round_runs=tuple(int(n) for n in data["round_runs"]),
            round_means_ms=tuple(float(m) for m in data["round_means_ms"]),
            round_trimmed_means_ms=tuple(float(m) for m in data.get("round_trimmed_means_ms", ())),
            load_ms=None if data.get("load_ms") is None else float(data["load_ms"]),
        )


def _run_weighted(values: Sequence[float], runs: Sequence[int]) -> float:
    return sum(v * n for v, n in zip(values, runs)) / sum(runs)


@dataclass(frozen=True)
class RawTiming:
    """Everything a harness measured for one variant in one configuration.

    `samples_ms[i]` was timed in round `round_index[i]`. Times are milliseconds, memory
    kilobytes; None means the harness cannot read that quantity. `peak_rss_kb` is the
    peak resident memory of the harness process (shared by the variants it measured
    together); `memory_kb` is the resident memory that loading the variant and running
    its first inference added. `error` is None when the variant ran; otherwise it says
    why not, and the samples are empty. `aggregate` holds what a tool that prints no
    per-run times reported; a timing with an aggregate has no samples and no error.
    """

    variant_id: str
    harness: str
    samples_ms: tuple[float, ...] = ()
    round_index: tuple[int, ...] = ()
    load_ms: float | None = None
    first_inference_ms: float | None = None
    peak_rss_kb: int | None = None
    memory_kb: int | None = None
    output_checksum: float | None = None
    runtime_versions: dict[str, str] = field(default_factory=dict)
    environment: tuple[EnvironmentReading, ...] = ()
    error: str | None = None
    aggregate: ToolAggregate | None = None

    def __post_init__(self) -> None:
        if len(self.samples_ms) != len(self.round_index):
            raise ValueError(
                f"RawTiming for {self.variant_id!r}: {len(self.samples_ms)} samples but "
                f"{len(self.round_index)} round indices"
            )
        if self.aggregate is not None and (self.samples_ms or self.error is not None):
            raise ValueError(f"RawTiming for {self.variant_id!r}: a tool's aggregate comes without samples or error")

    @property
    def ok(self) -> bool:
        return self.error is None


def merge_rounds(timings: Sequence[RawTiming]) -> RawTiming:
    """Join one variant's single-round timings, in round order, into one RawTiming.

    Used for one-at-a-time harnesses: `timings[r]` came from round r. Load and first
    inference come from the first (cold) call; peak memory is the largest seen. An
    error in any round fails the whole merged timing. Rounds that reported a tool's
    aggregate are pooled into one ToolAggregate (see there); rounds that mix raw
    samples and aggregates fail the merged timing.
    """
    if not timings:
        raise ValueError("merge_rounds needs at least one timing")
    first = timings[0]
    errors = [f"round {r}: {t.error}" for r, t in enumerate(timings) if t.error]
    aggregated = [t.aggregate is not None for t in timings]
    if any(aggregated) and not all(aggregated):
        errors.append(
            "the tool reported per-run times in some rounds and only an aggregate in others "
            f"(aggregate in rounds {[r for r, a in enumerate(aggregated) if a]}); it changed during the sweep"
        )
    if errors:
        return replace(
            first, samples_ms=(), round_index=(), environment=(), aggregate=None, error="; ".join(errors)
        )
    samples: list[float] = []
    rounds: list[int] = []
    environment: list[EnvironmentReading] = []
    for r, timing in enumerate(timings):
        samples.extend(timing.samples_ms)
        rounds.extend([r] * len(timing.samples_ms))
        environment.extend(replace(reading, round=r) for reading in timing.environment)
    peaks = [t.peak_rss_kb for t in timings if t.peak_rss_kb is not None]
    return replace(
        first,
        samples_ms=tuple(samples),
        round_index=tuple(rounds),
        peak_rss_kb=max(peaks) if peaks else None,
        environment=tuple(environment),
        aggregate=pool_aggregates([t.aggregate for t in timings]) if all(aggregated) else None,
    )


def pool_aggregates(aggregates: Sequence[ToolAggregate]) -> ToolAggregate:
    """One aggregate holding the rounds of `aggregates` in order; load time from the first (cold) one.

    The trimmed means are kept only when every aggregate has them; distinct sources are joined.
    """
    trimmed = [a.round_trimmed_means_ms for a in aggregates]
    return ToolAggregate(
        source=" / ".join(dict.fromkeys(a.source for a in aggregates)),
        round_runs=tuple(n for a in aggregates for n in a.round_runs),
        round_means_ms=tuple(m for a in aggregates for m in a.round_means_ms),
        round_trimmed_means_ms=tuple(m for values in trimmed for m in values) if all(trimmed) else (),
        load_ms=aggregates[0].load_ms,
    )


@runtime_checkable
class Harness(Protocol):
    """Executes artifacts on a device and returns raw timings.

    `name` identifies the harness in records ("python-agent", "executor_runner", ...);
    `runtimes` lists the RUNTIMES it can execute; `interleaves` says whether one
    `measure` call alternates all variants in `settings.rounds` rounds itself.
    """

    name: str
    runtimes: frozenset[str]
    interleaves: bool

    def prepare(self, device: Device) -> None:
        """Push what the harness needs (scripts, binaries) to the device, once per session."""

    def measure(
        self, device: Device, variants: Sequence[Variant], settings: RunSettings
    ) -> list[RawTiming]:
        """Measure `variants` under `settings`; return one RawTiming per variant, in order.

        Raise HarnessError when the harness fails as a whole, DeviceError when the device
        is lost or the call exceeds `settings.timeout_seconds`.
        """
