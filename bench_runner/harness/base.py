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
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

from bench_runner.devices.base import Device
from lowering.errors import VitdeployError
from lowering.manifest import RUNTIME_OF_BACKEND

RUNTIMES = tuple(RUNTIME_OF_BACKEND.values())


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
    """CPU frequencies and temperatures read `when` ("before" or "after") a round."""

    round: int
    when: str
    frequencies_khz: tuple[int, ...] = ()
    thermal_c: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "round": self.round,
            "when": self.when,
            "frequencies_khz": list(self.frequencies_khz),
            "thermal_c": dict(self.thermal_c),
        }

    @classmethod
    def from_dict(cls, data: dict) -> EnvironmentReading:
        return cls(
            round=int(data["round"]),
            when=str(data["when"]),
            frequencies_khz=tuple(int(f) for f in data.get("frequencies_khz", ())),
            thermal_c={str(k): float(v) for k, v in data.get("thermal_c", {}).items()},
        )


@dataclass(frozen=True)
class RawTiming:
    """Everything a harness measured for one variant in one configuration.

    `samples_ms[i]` was timed in round `round_index[i]`. Times are milliseconds, memory
    kilobytes; None means the harness cannot read that quantity. `peak_rss_kb` is the
    peak resident memory of the harness process (shared by the variants it measured
    together); `memory_kb` is the resident memory that loading the variant and running
    its first inference added. `error` is None when the variant ran; otherwise it says
    why not, and the samples are empty.
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

    def __post_init__(self) -> None:
        if len(self.samples_ms) != len(self.round_index):
            raise ValueError(
                f"RawTiming for {self.variant_id!r}: {len(self.samples_ms)} samples but "
                f"{len(self.round_index)} round indices"
            )

    @property
    def ok(self) -> bool:
        return self.error is None


def merge_rounds(timings: Sequence[RawTiming]) -> RawTiming:
    """Join one variant's single-round timings, in round order, into one RawTiming.

    Used for one-at-a-time harnesses: `timings[r]` came from round r. Load and first
    inference come from the first (cold) call; peak memory is the largest seen. An
    error in any round fails the whole merged timing.
    """
    if not timings:
        raise ValueError("merge_rounds needs at least one timing")
    first = timings[0]
    errors = [f"round {r}: {t.error}" for r, t in enumerate(timings) if t.error]
    if errors:
        return replace(first, samples_ms=(), round_index=(), environment=(), error="; ".join(errors))
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
