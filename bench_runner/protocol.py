"""The measurement protocol: what to run, in which order, and how raw timings become records.

For each repetition and each thread count the protocol runs every variant under the
same settings, interleaved in rounds (A B C A B C ...) so that drift and heat hit all
variants alike, waits `cooldown_seconds` between configurations, and turns the raw
timings into BenchRecords, each with the host's wall-clock times around the harness
calls that measured it (see BenchRecord). With a store, every configuration's records
are appended as soon as they are measured, so an interrupted sweep loses nothing and a
resumed one measures nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from typing import Callable, Sequence

from bench_runner.devices.base import Device, DeviceError
from bench_runner.harness.base import (
    Harness,
    HarnessError,
    RawTiming,
    RunSettings,
    Variant,
    merge_rounds,
)
from bench_runner.records import ArtifactInfo, BenchRecord, toolchain_versions
from bench_runner.stats import (
    LatencyStats,
    check_round_means,
    check_stability,
    cpu_pressure,
    cpu_pressure_note,
)
from bench_runner.store import ResultsStore
from vitdeploy.errors import VitdeployError

_HEX_MASK = re.compile(r"^(0x)?[0-9a-fA-F]+$")

# (start, end) of one harness call: the host's wall clock, ISO 8601 UTC.
Span = tuple[str, str]


class SettingsError(VitdeployError):
    """A measurement setting is out of range."""


@dataclass(frozen=True)
class MeasurementSettings:
    """How to measure: defaults come from the device profile, overridable per run.

    `runs` and `min_seconds` are minimums per variant summed over all `rounds` (each
    round takes its share); every round starts with `warmup` untimed runs. `threads`
    is the thread sweep; `cpu_mask` a hexadecimal affinity mask ("f0" = cores 4-7).
    `cooldown_seconds` is the idle time between configurations; `repetitions` repeats
    the whole sweep. A record is flagged unstable when its coefficient of variation
    exceeds `max_cv`, its per-round medians spread more than `max_drift` of the
    overall median, or in some round runnable tasks waited for a CPU more than
    `max_cpu_pressure` of the time (Linux's CPU pressure, where the device exposes it).
    `timeout_seconds` bounds one harness call.
    """

    threads: tuple[int, ...] = (1,)
    cpu_mask: str | None = None
    warmup: int = 10
    runs: int = 50
    min_seconds: float = 2.0
    rounds: int = 5
    cooldown_seconds: float = 0.0
    repetitions: int = 1
    seed: int = 0
    timeout_seconds: float = 600.0
    max_cv: float = 0.10
    max_drift: float = 0.05
    max_cpu_pressure: float = 0.10

    def __post_init__(self) -> None:
        threads = tuple(self.threads)
        object.__setattr__(self, "threads", threads)
        if not threads or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in threads):
            raise SettingsError(f"threads must be a non-empty list of positive integers, got {list(threads)}")
        if len(set(threads)) != len(threads):
            raise SettingsError(f"threads lists a thread count twice: {list(threads)}")
        if self.cpu_mask is not None and not _HEX_MASK.match(self.cpu_mask):
            raise SettingsError(f"cpu_mask must be a hexadecimal mask such as 'f0', got {self.cpu_mask!r}")
        for name, minimum in (("warmup", 0), ("runs", 1), ("rounds", 1), ("repetitions", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise SettingsError(f"{name} must be an integer >= {minimum}, got {value!r}")
        for name in ("min_seconds", "cooldown_seconds"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("timeout_seconds", "max_cv", "max_drift", "max_cpu_pressure"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be > 0, got {getattr(self, name)!r}")

    def with_overrides(self, **overrides) -> MeasurementSettings:
        """A copy with the given fields replaced; None values leave a field as it is."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise SettingsError(f"unknown measurement setting(s) {unknown}; known: {sorted(known)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def for_threads(self, threads: int) -> RunSettings:
        """The harness-level settings of one configuration (per-round minimums)."""
        return RunSettings(
            threads=threads,
            warmup=self.warmup,
            runs=math.ceil(self.runs / self.rounds),
            min_seconds=self.min_seconds / self.rounds,
            rounds=self.rounds,
            seed=self.seed,
            cpu_mask=self.cpu_mask,
            timeout_seconds=self.timeout_seconds,
        )


@dataclass(frozen=True)
class Progress:
    """Where a sweep is: configuration `configuration` of `configurations` (1-based).

    `round` is None when the harness runs all rounds in one call; `artifact` names what
    is being measured; `message` says what is happening ("measuring", "skipped: already
    stored", "retrying once after: ...", "cooling down 30 s").
    """

    device: str
    configuration: int
    configurations: int
    repetition: int
    threads: int
    round: int | None
    rounds: int
    artifact: str
    message: str


ProgressCallback = Callable[[Progress], None]


def record_key(
    artifact: ArtifactInfo, device_name: str, harness_name: str, settings: MeasurementSettings, threads: int, repetition: int
) -> str:
    """The identity of one measurement: same artifact, device, harness, settings and repetition."""
    identity = {
        "artifact_sha256": artifact.sha256,
        "device": device_name,
        "harness": harness_name,
        "threads": threads,
        "cpu_mask": settings.cpu_mask,
        "warmup": settings.warmup,
        "runs": settings.runs,
        "min_seconds": settings.min_seconds,
        "rounds": settings.rounds,
        "seed": settings.seed,
        "repetition": repetition,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def run_protocol(
    device: Device,
    harness: Harness,
    artifacts: Sequence[ArtifactInfo],
    settings: MeasurementSettings,
    *,
    store: ResultsStore | None = None,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    run_id: str | None = None,
) -> list[BenchRecord]:
    """Measure every artifact at every thread count and repetition; return the new records.

    With `store`, each configuration's records are appended as soon as they exist; with
    `resume`, measurements whose key the store already holds as "ok" are skipped. A
    harness that crashes or times out is retried once; if it fails again its variants get
    "failed" records and the sweep goes on, unless the device itself stopped answering,
    which raises DeviceError (the records so far are already stored).
    """
    unsupported = sorted({a.runtime for a in artifacts} - harness.runtimes)
    if unsupported:
        raise HarnessError(
            f"the {harness.name} harness cannot run {', '.join(unsupported)} artifacts; "
            f"it runs {', '.join(sorted(harness.runtimes))}: choose another harness"
        )
    sweep = _Sweep(device, harness, settings, store, progress, run_id or uuid.uuid4().hex[:12])
    done = store.completed_keys() if store is not None and resume else set()
    configurations = [(rep, threads) for rep in range(settings.repetitions) for threads in settings.threads]
    variants = [artifact.variant(f"{i}:{artifact.path.name}") for i, artifact in enumerate(artifacts)]
    prepared = False
    records: list[BenchRecord] = []
    for number, (repetition, threads) in enumerate(configurations, 1):
        sweep.position = (number, len(configurations), repetition, threads)
        keys = [record_key(a, device.name, harness.name, settings, threads, repetition) for a in artifacts]
        pending = [i for i, key in enumerate(keys) if key not in done]
        if not pending:
            sweep.notify(None, "all artifacts", "skipped: already stored")
            continue
        if records and settings.cooldown_seconds > 0:
            sweep.notify(None, "-", f"cooling down {settings.cooldown_seconds:g} s")
            time.sleep(settings.cooldown_seconds)
        if not prepared:
            sweep.call(lambda: harness.prepare(device), "preparing the harness")
            prepared = True
        device_info = sweep.call(device.info, "reading the device's state").to_dict()
        timings = sweep.measure([variants[i] for i in pending], settings.for_threads(threads))
        if len(timings) != len(pending):
            raise HarnessError(f"the {harness.name} harness returned {len(timings)} timings for {len(pending)} artifacts")
        batch = [
            _record(artifacts[i], timing, spans, keys[i], sweep.run_id, device_info, harness.name, settings, threads,
                    repetition)
            for i, (timing, spans) in zip(pending, timings)
        ]
        if store is not None:
            store.append(batch)
        sweep.stored += len(batch)
        records.extend(batch)
    return records


def run_on_profile(
    device: Device,
    profile,
    artifacts: Sequence[ArtifactInfo],
    settings: MeasurementSettings,
    *,
    harness_name: str | None = None,
    store: ResultsStore | None = None,
    resume: bool = False,
    progress: ProgressCallback | None = None,
) -> list[BenchRecord]:
    """`run_protocol` with the harness each artifact needs on the device `profile`
    describes (`harness_name` forces one for all): the profile's native tool per runtime
    where it names one, else the Python agent. Artifacts sharing a harness are
    interleaved together; the groups are measured one after another."""
    from bench_runner.harness import harness_class, harness_for

    groups: dict[str, list[ArtifactInfo]] = {}
    for artifact in artifacts:
        groups.setdefault(harness_name or harness_for(profile, artifact.runtime), []).append(artifact)
    records: list[BenchRecord] = []
    for name, group in groups.items():
        harness = harness_class(name).from_profile(profile)
        records += run_protocol(device, harness, group, settings, store=store, resume=resume, progress=progress)
    return records


class _Sweep:
    """The state one run_protocol call shares between configurations: retries and progress."""

    def __init__(self, device, harness, settings, store, progress, run_id) -> None:
        self.device = device
        self.harness = harness
        self.settings = settings
        self.store = store
        self.progress = progress
        self.run_id = run_id
        self.position = (0, 0, 0, 0)
        self.stored = 0

    def notify(self, round_number: int | None, artifact: str, message: str) -> None:
        if self.progress is None:
            return
        number, total, repetition, threads = self.position
        self.progress(
            Progress(
                device=self.device.name,
                configuration=number,
                configurations=total,
                repetition=repetition,
                threads=threads,
                round=round_number,
                rounds=self.settings.rounds,
                artifact=artifact,
                message=message,
            )
        )

    def call(self, action: Callable, what: str):
        """Run a device action; a lost device becomes an error that says how to go on."""
        try:
            return action()
        except DeviceError as exc:
            raise self.device_lost(exc, what) from None

    def device_lost(self, exc: Exception, what: str) -> DeviceError:
        kept = (
            f"the {self.stored} record(s) measured in this run are stored in {self.store.root}; "
            "run the same command again with --resume to finish the sweep"
            if self.store is not None
            else "nothing was stored (no results store was given)"
        )
        return DeviceError(
            f"device {self.device.name!r} ({self.device.kind}) stopped answering while {what}: {exc}. "
            f"Reconnect it (check with `vitdeploy devices`); {kept}."
        )

    def measure(
        self, variants: Sequence[Variant], run_settings: RunSettings
    ) -> list[tuple[RawTiming, tuple[Span, ...]]]:
        """Each variant's timing with the spans of the harness calls it came from, in order."""
        if self.harness.interleaves:
            names = ", ".join(v.path.name for v in variants)
            timings, span = self._measure_with_retry(variants, run_settings, None, names)
            return [(timing, (span,)) for timing in timings]
        per_round = replace(run_settings, rounds=1)
        rounds: dict[str, list[RawTiming]] = {v.id: [] for v in variants}
        spans: dict[str, list[Span]] = {v.id: [] for v in variants}
        for round_number in range(run_settings.rounds):
            for variant in variants:
                if rounds[variant.id] and not rounds[variant.id][-1].ok:
                    continue
                (timing,), span = self._measure_with_retry([variant], per_round, round_number, variant.path.name)
                rounds[variant.id].append(timing)
                spans[variant.id].append(span)
        return [(merge_rounds(rounds[v.id]), tuple(spans[v.id])) for v in variants]

    def _measure_with_retry(
        self, variants: Sequence[Variant], run_settings: RunSettings, round_number: int | None, label: str
    ) -> tuple[list[RawTiming], Span]:
        """The harness's timings and the span of the attempt they came from (the second after a failure)."""
        self.notify(round_number, label, "measuring")
        started = _host_time()
        try:
            timings = self.harness.measure(self.device, variants, run_settings)
            return timings, (started, _host_time())
        except (HarnessError, DeviceError) as exc:
            self.notify(round_number, label, f"retrying once after: {exc}")
        started = _host_time()
        try:
            timings = self.harness.measure(self.device, variants, run_settings)
            return timings, (started, _host_time())
        except (HarnessError, DeviceError) as exc:
            failure, span = exc, (started, _host_time())
        self.call(self.device.info, f"measuring {label}")
        reason = f"failed twice: {failure}"
        self.notify(round_number, label, reason)
        return [RawTiming(variant_id=v.id, harness=self.harness.name, error=reason) for v in variants], span


def _host_time() -> str:
    """The host's wall clock now, ISO 8601 UTC with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


AGGREGATE_NOTE = "statistics from the tool's aggregate, not from raw samples: no percentiles, no confidence interval"


def aggregate_problems(stability_note: str) -> str:
    """The problems an aggregate record's stability note names, without the AGGREGATE_NOTE it starts with."""
    return stability_note.removeprefix(AGGREGATE_NOTE).removeprefix("; ")


@dataclass(frozen=True)
class _Judgement:
    """Whether to trust a measurement: `stable` (None = cannot be judged), why, and the rounds' medians."""

    stable: bool | None
    note: str
    round_medians_ms: tuple[float, ...] = ()


def _judge(timing: RawTiming, stats: LatencyStats | None, settings: MeasurementSettings) -> _Judgement:
    """Judge a measured timing: raw samples (with `stats`) by CV, drift and CPU pressure; a
    tool's aggregate by the drift of its rounds' means and CPU pressure, which can show a
    problem (stable False) but never that it is stable (None)."""
    pressure = cpu_pressure_note(cpu_pressure(timing.environment), settings.max_cpu_pressure)
    if stats is not None:
        stability = check_stability(timing.samples_ms, timing.round_index, stats, settings.max_cv, settings.max_drift)
        notes = [note for note in (stability.note, pressure) if note]
        return _Judgement(stability.stable and not pressure, "; ".join(notes), stability.round_medians_ms)
    aggregate = timing.aggregate
    drift = check_round_means(aggregate.round_means_ms, aggregate.mean_ms, settings.max_drift)
    problems = [note for note in (drift, pressure) if note]
    return _Judgement(False if problems else None, "; ".join([AGGREGATE_NOTE, *problems]))


def _record(
    artifact: ArtifactInfo,
    timing: RawTiming,
    spans: tuple[Span, ...],
    key: str,
    run_id: str,
    device_info: dict,
    harness_name: str,
    settings: MeasurementSettings,
    threads: int,
    repetition: int,
) -> BenchRecord:
    sampled = timing.ok and bool(timing.samples_ms)
    aggregated = timing.ok and timing.aggregate is not None
    measured = sampled or aggregated
    stats = LatencyStats.from_samples(timing.samples_ms, seed=settings.seed) if sampled else None
    judgement = _judge(timing, stats, settings) if measured else _Judgement(None, "")
    return BenchRecord(
        key=key,
        run_id=run_id,
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        status="ok" if measured else "failed",
        error=None if measured else (timing.error or "the harness returned no samples"),
        artifact_path=str(artifact.path),
        artifact_sha256=artifact.sha256,
        artifact_size_bytes=artifact.size_bytes,
        manifest_path=str(artifact.manifest_path) if artifact.manifest_path else None,
        manifest=artifact.manifest.to_dict() if artifact.manifest else {},
        model=artifact.model,
        backend=artifact.backend,
        quant=artifact.quant,
        runtime=artifact.runtime,
        input_shape=artifact.input_shape,
        input_dtype=artifact.input_dtype,
        device_name=device_info["name"],
        device_kind=device_info["kind"],
        emulated=bool(device_info["emulated"]),
        device=device_info,
        harness=harness_name,
        toolchain={"measuring": toolchain_versions(), "device": dict(timing.runtime_versions)},
        threads=threads,
        cpu_mask=settings.cpu_mask,
        warmup=settings.warmup,
        runs=settings.runs,
        min_seconds=settings.min_seconds,
        rounds=settings.rounds,
        cooldown_seconds=settings.cooldown_seconds,
        repetition=repetition,
        seed=settings.seed,
        stats=stats,
        stable=judgement.stable,
        stability_note=judgement.note,
        round_medians_ms=judgement.round_medians_ms,
        load_ms=timing.load_ms,
        first_inference_ms=timing.first_inference_ms,
        peak_rss_kb=timing.peak_rss_kb,
        memory_kb=timing.memory_kb,
        output_checksum=timing.output_checksum,
        environment=timing.environment,
        samples_ms=timing.samples_ms if sampled else (),
        round_index=timing.round_index if sampled else (),
        aggregate=timing.aggregate if aggregated else None,
        started_at=spans[0][0] if spans else None,
        ended_at=spans[-1][1] if spans else None,
        round_times=spans,
    )
