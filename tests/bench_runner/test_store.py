import dataclasses
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench_runner.harness.base import EnvironmentReading, ToolAggregate
from bench_runner.records import BenchRecord
from bench_runner.stats import LatencyStats
from bench_runner.store import SCHEMA, ResultsStore


def make_record(key: str = "k1", status: str = "ok", threads: int = 1) -> BenchRecord:
    samples = (1.0, 1.2, 0.9, 1.1)
    ok = status == "ok"
    return BenchRecord(
        key=key, run_id="run", timestamp="2026-01-01T00:00:00+00:00", status=status,
        error=None if ok else "harness crashed",
        artifact_path="/a/model.onnx", artifact_sha256="ab" * 32, artifact_size_bytes=123,
        manifest_path=None, manifest={"backend": "onnx", "model": {"name": "m"}},
        model="m", backend="onnx", quant="fp32", runtime="onnxruntime", input_shape=(1, 16), input_dtype="float32",
        device_name="host", device_kind="host", emulated=False,
        device={"kind": "host", "thermal_c": {"cpu": 41.0}}, harness="python-agent",
        toolchain={"measuring": {"python": "3.11"}, "device": {"onnxruntime": "1.0"}},
        threads=threads, cpu_mask="f0", warmup=1, runs=4, min_seconds=0.0, rounds=2, cooldown_seconds=0.0,
        repetition=0, seed=0,
        stats=LatencyStats.from_samples(samples) if ok else None,
        stable=True if ok else None, stability_note="", round_medians_ms=(1.1, 1.0) if ok else (),
        load_ms=2.0 if ok else None, first_inference_ms=1.5 if ok else None,
        peak_rss_kb=1000 if ok else None, memory_kb=10 if ok else None, output_checksum=3.5 if ok else None,
        environment=(EnvironmentReading(0, "before", (1800000,), {"cpu": 40.0}),) if ok else (),
        samples_ms=samples if ok else (), round_index=(0, 0, 1, 1) if ok else (),
    )


def test_row_columns_are_the_schema():
    assert list(make_record().to_row()) == SCHEMA.names
    assert list(make_record(status="failed").to_row()) == SCHEMA.names


def test_round_trip_keeps_every_field(tmp_path):
    store = ResultsStore(tmp_path / "store")
    records = [make_record("k1"), make_record("k2", status="failed"), make_record("k3", threads=2)]
    store.append(records[:2])
    store.append(records[2:])
    assert store.load() == records
    assert store.completed_keys() == {"k1", "k3"}


def test_the_store_reads_as_one_table(tmp_path):
    store = ResultsStore(tmp_path)
    store.append([make_record("k1")])
    store.append([make_record("k2", status="failed")])
    frame = pd.read_parquet(tmp_path)
    assert sorted(frame["key"]) == ["k1", "k2"]
    assert frame.loc[frame["key"] == "k1", "p50_ms"].item() == pytest.approx(1.05)


def test_an_interrupted_append_leaves_earlier_parts_and_no_debris(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    first = store.append([make_record("k1")])
    before = first.read_bytes()

    def crash(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        store.append([make_record("k2")])
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]
    assert first.read_bytes() == before
    assert [r.key for r in store.load()] == ["k1"]


def test_empty_and_missing_store(tmp_path):
    store = ResultsStore(tmp_path / "never-written")
    assert store.append([]) is None
    assert store.load() == [] and store.completed_keys() == set()
    assert not store.root.exists()


def test_csv_export_has_one_row_per_record_with_lists_as_json(tmp_path):
    store = ResultsStore(tmp_path / "store")
    store.append([make_record("k1"), make_record("k2", status="failed")])
    frame = pd.read_csv(store.export_csv(tmp_path / "records.csv"))
    assert list(frame.columns) == SCHEMA.names
    assert json.loads(frame.loc[0, "samples_ms"]) == [1.0, 1.2, 0.9, 1.1]
    assert frame.loc[1, "status"] == "failed"


def aggregate_record(key: str = "k-app") -> BenchRecord:
    """A record of a tool that printed only aggregates: no samples, no stats."""
    aggregate = ToolAggregate(
        source="ExecuTorch benchmark app benchmark_results.json", round_runs=(25, 25),
        round_means_ms=(19.0, 19.4), round_trimmed_means_ms=(18.9, 19.2), load_ms=52.9,
    )
    return dataclasses.replace(
        make_record(key), harness="executorch-benchmark-app", stats=None, stable=None,
        stability_note="statistics from the tool's aggregate", round_medians_ms=(), samples_ms=(), round_index=(),
        environment=(EnvironmentReading(0, "before", cpu_pressure_total_us=5, clock_us=7),), aggregate=aggregate,
    )


def test_aggregate_records_round_trip_through_parquet_and_csv(tmp_path):
    store = ResultsStore(tmp_path / "store")
    records = [aggregate_record(), make_record("k1")]
    store.append(records)
    loaded = store.load()
    assert loaded == records
    assert loaded[0].aggregate.mean_ms == pytest.approx(19.2) and loaded[0].stats is None
    assert loaded[1].aggregate is None
    assert store.completed_keys() == {"k-app", "k1"}
    frame = pd.read_csv(store.export_csv(tmp_path / "records.csv"))
    exported = json.loads(frame.loc[0, "aggregate"])
    assert exported["round_means_ms"] == [19.0, 19.4] and exported["mean_ms"] == pytest.approx(19.2)
    assert exported["source"].startswith("ExecuTorch benchmark app")
    assert pd.isna(frame.loc[0, "p50_ms"]) and pd.isna(frame.loc[1, "aggregate"])


def test_a_store_written_before_the_aggregate_column_still_loads(tmp_path):
    store = ResultsStore(tmp_path)
    record = make_record("old")
    old_schema = SCHEMA.remove(SCHEMA.get_field_index("aggregate"))
    row = {name: value for name, value in record.to_row().items() if name != "aggregate"}
    row["environment"] = json.dumps([{"round": 0, "when": "before", "frequencies_khz": [1800000], "thermal_c": {}}])
    tmp_path.mkdir(exist_ok=True)
    old_part = tmp_path / "records-20250101T000000000000Z-old.parquet"
    pq.write_table(pa.Table.from_pylist([row], schema=old_schema), old_part)
    store.append([aggregate_record("new")])
    old, new = store.load()
    assert old.aggregate is None and old.stats == record.stats
    assert old.environment[0].cpu_pressure_total_us is None
    assert new.aggregate is not None and store.completed_keys() == {"old", "new"}


def test_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_record().threads = 4
