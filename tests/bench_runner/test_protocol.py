from dataclasses import replace
from pathlib import Path

import pytest

from bench_runner import protocol
from bench_runner.devices.base import DeviceError, DeviceInfo
from bench_runner.harness.base import EnvironmentReading, HarnessError, RawTiming, RunSettings, ToolAggregate
from bench_runner.protocol import MeasurementSettings, SettingsError, record_key, run_protocol
from bench_runner.records import ArtifactInfo
from bench_runner.store import ResultsStore


def artifact(name: str, runtime: str = "onnxruntime") -> ArtifactInfo:
    return ArtifactInfo(
        path=Path(f"/artifacts/{name}"), sha256=name * 4, size_bytes=10, runtime=runtime, input_shape=(1, 16),
        input_dtype="float32", model=name, backend="onnx", quant="fp32",
    )


class FakeDevice:
    kind = "android"
    workdir = "/data/local/tmp/vitdeploy"

    def __init__(self, name: str = "phone-1") -> None:
        self.name = name
        self.gone = False

    def info(self) -> DeviceInfo:
        if self.gone:
            raise DeviceError("connection reset")
        return DeviceInfo(kind=self.kind, name=self.name, abi="arm64-v8a", cpu_model="X1", cores=8, os="Android 14")


class FakeHarness:
    """Returns 1 ms per run per round; `failures` lists exceptions to raise on successive calls."""

    name = "fake"
    runtimes = frozenset({"onnxruntime"})

    def __init__(self, interleaves: bool = True, failures=()) -> None:
        self.interleaves = interleaves
        self.failures = list(failures)
        self.calls: list[tuple[tuple[str, ...], RunSettings]] = []
        self.prepared = 0

    def prepare(self, device) -> None:
        self.prepared += 1

    def measure(self, device, variants, settings):
        self.calls.append((tuple(v.id for v in variants), settings))
        if self.failures:
            failure = self.failures.pop(0)
            if failure is not None:
                raise failure
        timings = []
        for i, variant in enumerate(variants):
            n = settings.runs * settings.rounds
            samples = tuple(1.0 + 0.01 * (k % 3) + i for k in range(n))
            rounds = tuple(k // settings.runs for k in range(n))
            timings.append(RawTiming(variant_id=variant.id, harness=self.name, samples_ms=samples, round_index=rounds, load_ms=5.0))
        return timings


SETTINGS = MeasurementSettings(threads=(1, 2), warmup=1, runs=6, min_seconds=0.3, rounds=3)


def test_settings_split_minimums_over_rounds():
    run = SETTINGS.for_threads(2)
    assert (run.threads, run.runs, run.min_seconds, run.rounds, run.warmup) == (2, 2, pytest.approx(0.1), 3, 1)
    assert MeasurementSettings(runs=50, rounds=3).for_threads(1).runs == 17


def test_settings_reject_nonsense_and_unknown_overrides():
    with pytest.raises(SettingsError, match="runs"):
        MeasurementSettings(runs=0)
    with pytest.raises(SettingsError, match="twice"):
        MeasurementSettings(threads=(1, 1))
    with pytest.raises(SettingsError, match="unknown measurement setting"):
        SETTINGS.with_overrides(iterations=3)
    assert SETTINGS.with_overrides(runs=None, warmup=4).warmup == 4


def test_interleaving_harness_gets_all_variants_per_thread_count(tmp_path):
    harness = FakeHarness()
    store = ResultsStore(tmp_path)
    records = run_protocol(FakeDevice(), harness, [artifact("a"), artifact("b")], SETTINGS, store=store)
    assert [(ids, s.threads) for ids, s in harness.calls] == [(("0:a", "1:b"), 1), (("0:a", "1:b"), 2)]
    assert [(r.model, r.threads) for r in records] == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert all(r.ok and r.stats.n == 6 and r.device_name == "phone-1" and r.harness == "fake" for r in records)
    assert records[1].stats.p50_ms == pytest.approx(2.01)
    assert len(store.parts()) == 2 and store.load() == records
    assert harness.prepared == 1


def test_one_at_a_time_harness_is_interleaved_in_rounds_by_the_protocol():
    harness = FakeHarness(interleaves=False)
    settings = SETTINGS.with_overrides(threads=(1,))
    records = run_protocol(FakeDevice(), harness, [artifact("a"), artifact("b")], settings)
    assert [ids for ids, _ in harness.calls] == [("0:a",), ("1:b",)] * 3
    assert all(s.rounds == 1 for _, s in harness.calls)
    assert records[0].round_index == (0, 0, 1, 1, 2, 2)
    assert records[0].round_medians_ms == pytest.approx((1.005, 1.005, 1.005))


def test_a_crash_is_retried_once(tmp_path):
    harness = FakeHarness(failures=[HarnessError("segfault")])
    records = run_protocol(FakeDevice(), harness, [artifact("a")], SETTINGS.with_overrides(threads=(1,)))
    assert len(harness.calls) == 2 and records[0].ok


def test_two_crashes_fail_the_records_and_the_sweep_goes_on(tmp_path):
    harness = FakeHarness(failures=[HarnessError("segfault"), DeviceError("timed out")])
    store = ResultsStore(tmp_path)
    records = run_protocol(FakeDevice(), harness, [artifact("a"), artifact("b")], SETTINGS, store=store)
    assert [(r.threads, r.status) for r in records] == [(1, "failed"), (1, "failed"), (2, "ok"), (2, "ok")]
    assert "timed out" in records[0].error and records[0].stats is None and records[0].samples_ms == ()
    assert len(store.completed_keys()) == 2


def test_a_vanished_device_stops_the_sweep_keeping_what_was_measured(tmp_path):
    device = FakeDevice()

    class VanishingHarness(FakeHarness):
        def measure(self, device_, variants, settings):
            if settings.threads == 2:
                device.gone = True
                raise DeviceError("adb: connection reset")
            return super().measure(device_, variants, settings)

    store = ResultsStore(tmp_path)
    with pytest.raises(DeviceError, match=r"device 'phone-1' \(android\) stopped answering.*--resume") as caught:
        run_protocol(device, VanishingHarness(), [artifact("a")], SETTINGS, store=store)
    assert "the 1 record(s) measured in this run are stored" in str(caught.value)
    assert [r.threads for r in store.load()] == [1]


def test_resume_skips_what_the_store_holds(tmp_path):
    store = ResultsStore(tmp_path)
    run_protocol(FakeDevice(), FakeHarness(), [artifact("a")], SETTINGS.with_overrides(threads=(1,)), store=store)
    harness = FakeHarness()
    records = run_protocol(FakeDevice(), harness, [artifact("a"), artifact("b")], SETTINGS, store=store, resume=True)
    assert [ids for ids, _ in harness.calls] == [("1:b",), ("0:a", "1:b")]
    assert [(r.model, r.threads) for r in records] == [("b", 1), ("a", 2), ("b", 2)]
    assert len(store.load()) == 4
    again = FakeHarness()
    assert run_protocol(FakeDevice(), again, [artifact("a"), artifact("b")], SETTINGS, store=store, resume=True) == []
    assert again.calls == [] and again.prepared == 0


def test_keys_separate_settings_devices_and_repetitions():
    a = artifact("a")
    base = record_key(a, "phone-1", "fake", SETTINGS, 1, 0)
    assert base == record_key(a, "phone-1", "fake", SETTINGS.with_overrides(cooldown_seconds=9.0), 1, 0)
    others = {
        record_key(a, "phone-2", "fake", SETTINGS, 1, 0),
        record_key(a, "phone-1", "other", SETTINGS, 1, 0),
        record_key(a, "phone-1", "fake", SETTINGS, 2, 0),
        record_key(a, "phone-1", "fake", SETTINGS, 1, 1),
        record_key(a, "phone-1", "fake", SETTINGS.with_overrides(runs=7), 1, 0),
        record_key(artifact("b"), "phone-1", "fake", SETTINGS, 1, 0),
    }
    assert base not in others and len(others) == 6


def test_cooldown_between_configurations_and_repetitions(monkeypatch):
    slept = []
    monkeypatch.setattr(protocol.time, "sleep", slept.append)
    settings = SETTINGS.with_overrides(cooldown_seconds=30.0, repetitions=2)
    records = run_protocol(FakeDevice(), FakeHarness(), [artifact("a")], settings)
    assert [(r.repetition, r.threads) for r in records] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert slept == [30.0, 30.0, 30.0]


def test_progress_names_device_configuration_and_artifacts():
    events = []
    run_protocol(FakeDevice(), FakeHarness(), [artifact("a")], SETTINGS, progress=events.append)
    assert [(e.device, e.configuration, e.configurations, e.threads, e.artifact) for e in events] == [
        ("phone-1", 1, 2, 1, "a"),
        ("phone-1", 2, 2, 2, "a"),
    ]


def test_unstable_measurements_are_flagged_in_the_record():
    class DriftingHarness(FakeHarness):
        def measure(self, device, variants, settings):
            (timing,) = super().measure(device, variants, settings)
            samples = tuple(s * (1 + 0.2 * r) for s, r in zip(timing.samples_ms, timing.round_index))
            return [RawTiming(variant_id=timing.variant_id, harness="fake", samples_ms=samples, round_index=timing.round_index)]

    (record,) = run_protocol(FakeDevice(), DriftingHarness(), [artifact("a")], SETTINGS.with_overrides(threads=(1,)))
    assert record.ok and record.stable is False and "drift" in record.stability_note


def test_a_runtime_the_harness_cannot_run_is_refused_up_front():
    harness = FakeHarness()
    with pytest.raises(HarnessError, match="cannot run executorch"):
        run_protocol(FakeDevice(), harness, [artifact("a", runtime="executorch")], SETTINGS)
    assert harness.calls == []


class AggregateHarness(FakeHarness):
    """A one-at-a-time tool that prints only its mean and trimmed mean; `means` per call in turn."""

    def __init__(self, means) -> None:
        super().__init__(interleaves=False)
        self.means = list(means)

    def measure(self, device, variants, settings):
        self.calls.append((tuple(v.id for v in variants), settings))
        mean = self.means.pop(0)
        return [
            RawTiming(
                variant_id=v.id, harness=self.name, load_ms=50.0,
                aggregate=ToolAggregate.one_round("the tool's JSON", runs=settings.runs, mean_ms=mean,
                                                  trimmed_mean_ms=mean - 0.1, load_ms=50.0),
            )
            for v in variants
        ]


def test_an_aggregate_only_tool_gives_ok_records_without_statistics(tmp_path):
    settings = SETTINGS.with_overrides(threads=(1,))
    store = ResultsStore(tmp_path)
    (record,) = run_protocol(FakeDevice(), AggregateHarness([20.0, 20.2, 20.1]), [artifact("a")], settings, store=store)
    assert record.ok and record.error is None and record.stats is None and record.samples_ms == ()
    assert record.stable is None and record.stability_note == protocol.AGGREGATE_NOTE
    assert "no percentiles" in record.stability_note and "no confidence interval" in record.stability_note
    assert record.aggregate.round_runs == (2, 2, 2) and record.aggregate.mean_ms == pytest.approx(20.1)
    assert record.aggregate.trimmed_mean_is_pooled and record.load_ms == 50.0
    assert store.load() == [record] and store.completed_keys() == {record.key}


def test_an_aggregate_whose_rounds_drift_is_flagged_unstable():
    settings = SETTINGS.with_overrides(threads=(1,))
    (record,) = run_protocol(FakeDevice(), AggregateHarness([20.0, 24.0, 20.0]), [artifact("a")], settings)
    assert record.ok and record.stable is False
    assert record.stability_note.startswith(protocol.AGGREGATE_NOTE)
    assert "drift between the rounds' means" in record.stability_note


class ContendedHarness(FakeHarness):
    """Raw samples as FakeHarness, with CPU pressure readings: `waited_us` of each 1 s round spent waiting."""

    def __init__(self, waited_us) -> None:
        super().__init__()
        self.waited_us = waited_us

    def measure(self, device, variants, settings):
        readings = []
        for r in range(settings.rounds):
            readings += [EnvironmentReading(r, "before", cpu_pressure_total_us=0, clock_us=r * 2_000_000),
                         EnvironmentReading(r, "after", cpu_pressure_total_us=self.waited_us,
                                            clock_us=r * 2_000_000 + 1_000_000)]
        return [replace(t, environment=tuple(readings)) for t in super().measure(device, variants, settings)]


def test_cpu_pressure_over_the_limit_marks_the_record_unstable():
    settings = SETTINGS.with_overrides(threads=(1,))
    (contended,) = run_protocol(FakeDevice(), ContendedHarness(540_000), [artifact("a")], settings)
    assert contended.ok and contended.stats is not None and contended.stable is False
    assert contended.stability_note.startswith("CPU pressure 54% of the time")
    (quiet,) = run_protocol(FakeDevice(), ContendedHarness(20_000), [artifact("a")], settings)
    assert quiet.stable is True and quiet.stability_note == ""
    (tolerated,) = run_protocol(FakeDevice(), ContendedHarness(540_000), [artifact("a")],
                                settings.with_overrides(max_cpu_pressure=0.6))
    assert tolerated.stable is True


def test_cpu_pressure_limit_must_be_positive():
    with pytest.raises(SettingsError, match="max_cpu_pressure"):
        MeasurementSettings(max_cpu_pressure=0)
