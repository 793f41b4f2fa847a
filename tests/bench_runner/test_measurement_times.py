"""When a record was measured: the host's clock around each harness call, kept per round and per record."""

import dataclasses
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench_runner import protocol
from bench_runner.harness.base import HarnessError
from bench_runner.protocol import run_protocol
from bench_runner.records import BenchRecord
from bench_runner.store import SCHEMA, ResultsStore
from deploy.report.provenance import provenance
from deploy.report.rows import sampled_rows
from tests.bench_runner.test_protocol import SETTINGS, FakeDevice, FakeHarness, artifact
from tests.bench_runner.test_store import make_record
from tests.deploy.report.results import bench_record, latency_samples

ONE_CONFIGURATION = SETTINGS.with_overrides(threads=(1,))
TIME_COLUMNS = ("started_at", "ended_at", "round_times")
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def clock(monkeypatch):
    """The host clock as a counter: each reading is one second after the previous one."""
    readings = []

    def now() -> str:
        readings.append(START + timedelta(seconds=len(readings)))
        return readings[-1].isoformat(timespec="milliseconds")

    monkeypatch.setattr(protocol, "_host_time", now)
    return now


def at(seconds: int) -> str:
    return (START + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


class ClockedHarness(FakeHarness):
    """A FakeHarness that reads the host clock while it measures, to show the spans enclose the call."""

    def __init__(self, clock, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.inside: list[str] = []

    def measure(self, device, variants, settings):
        self.inside.append(self.clock())
        return super().measure(device, variants, settings)


def parsed(spans):
    return [(datetime.fromisoformat(start), datetime.fromisoformat(end)) for start, end in spans]


def test_a_one_at_a_time_harness_gives_one_span_per_round_in_order(clock):
    harness = ClockedHarness(clock, interleaves=False)
    a, b = run_protocol(FakeDevice(), harness, [artifact("a"), artifact("b")], ONE_CONFIGURATION)
    assert len(a.round_times) == len(b.round_times) == ONE_CONFIGURATION.rounds
    for record in (a, b):
        spans = parsed(record.round_times)
        assert all(start <= end for start, end in spans)
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))
        assert (record.started_at, record.ended_at) == (record.round_times[0][0], record.round_times[-1][1])
    # calls alternate a b a b a b: every call's clock reading lies inside its own span
    calls = [span for pair in zip(a.round_times, b.round_times) for span in pair]
    assert all(start < inside < end for (start, end), inside in zip(calls, harness.inside))


def test_a_harness_that_runs_all_rounds_in_one_call_gives_that_call_as_the_only_span(clock):
    harness = ClockedHarness(clock)
    a, b = run_protocol(FakeDevice(), harness, [artifact("a"), artifact("b")], ONE_CONFIGURATION)
    assert a.round_times == b.round_times == ((at(0), at(2)),)
    assert harness.inside == [at(1)]
    assert (a.started_at, a.ended_at) == (at(0), at(2))


def test_a_retried_call_keeps_the_span_of_the_attempt_it_holds(clock):
    (retried,) = run_protocol(FakeDevice(), FakeHarness(failures=[HarnessError("segfault")]), [artifact("a")],
                              ONE_CONFIGURATION)
    assert retried.ok and retried.round_times == ((at(1), at(2)),)
    (failed,) = run_protocol(FakeDevice(), FakeHarness(failures=[HarnessError("segfault")] * 2), [artifact("a")],
                             ONE_CONFIGURATION)
    assert not failed.ok and failed.round_times == ((at(4), at(5)),)


def test_a_failed_round_is_the_last_span_of_a_one_at_a_time_record(clock):
    harness = FakeHarness(interleaves=False, failures=[None, HarnessError("crash"), HarnessError("crash again")])
    (record,) = run_protocol(FakeDevice(), harness, [artifact("a")], ONE_CONFIGURATION)
    assert not record.ok and record.round_times == ((at(0), at(1)), (at(3), at(4)))
    assert (record.started_at, record.ended_at) == (at(0), at(4))


def test_measurement_times_round_trip_through_the_store_and_csv(tmp_path, clock):
    store = ResultsStore(tmp_path / "store")
    harness = FakeHarness(interleaves=False)
    records = run_protocol(FakeDevice(), harness, [artifact("a")], ONE_CONFIGURATION, store=store)
    assert store.load() == records and len(records[0].round_times) == 3
    csv_text = store.export_csv(tmp_path / "records.csv").read_text(encoding="utf-8")
    assert at(0) in csv_text and at(5) in csv_text


def test_records_written_before_measurement_times_load_without_them(tmp_path):
    old_schema = pa.schema([column for column in SCHEMA if column.name not in TIME_COLUMNS])
    row = {name: value for name, value in make_record("old").to_row().items() if name not in TIME_COLUMNS}
    tmp_path.mkdir(exist_ok=True)
    old_part = tmp_path / "records-20250101T000000000000Z-old.parquet"
    pq.write_table(pa.Table.from_pylist([row], schema=old_schema), old_part)
    (old,) = ResultsStore(tmp_path).load()
    assert (old.started_at, old.ended_at, old.round_times) == (None, None, ())
    assert old == make_record("old")
    assert BenchRecord.from_row(row) == old


def measured(records) -> str:
    return dict(provenance(sampled_rows(records), None, None))["measured"]


def test_provenance_spans_the_measurements_and_counts_overlapping_calls_once():
    # a shared call (0-10 s) and two overlapping ones (20-30 s, 25-40 s): 10 s + 20 s of harness calls
    a = dataclasses.replace(bench_record("a", latency_samples(10.0, 1)), started_at=at(0), ended_at=at(30),
                            round_times=((at(0), at(10)), (at(20), at(30))))
    b = dataclasses.replace(bench_record("b", latency_samples(9.0, 2), depth=6), started_at=at(0), ended_at=at(40),
                            round_times=((at(0), at(10)), (at(25), at(40))))
    text = measured([a, b])
    assert text.startswith(f"{at(0)} to {at(40)}, 30.0 s in harness calls")
    assert "write times" not in text and "run run-1" in text


def test_provenance_of_records_without_measurement_times_says_they_are_write_times():
    timed = dataclasses.replace(bench_record("a", latency_samples(10.0, 1)), started_at=at(0), ended_at=at(1),
                                round_times=((at(0), at(1)),))
    old = bench_record("b", latency_samples(9.0, 2), depth=6)
    text = measured([timed, old])
    assert text.startswith(f"{old.timestamp} to {old.timestamp} (write times; these records predate measurement times)")
