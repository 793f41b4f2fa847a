"""The results store: a directory of Parquet part files, one per append, never rewritten.

Each append writes a new part file under a hidden temporary name, flushes it to disk and
renames it into place, so a reader sees a part completely or not at all and an
interrupted run never damages earlier results. Every part is written with SCHEMA, so
the directory reads as one table (`pandas.read_parquet(store.root, schema=SCHEMA)`;
hidden temporary files are skipped). Parts written before the `aggregate` column or
the measurement times (`started_at`, `ended_at`, `round_times`) existed lack them:
`load` and a read with `schema=SCHEMA` give them as empty there, while a read without
the schema may take an old part's columns for all. `completed_keys` lets a resumed
sweep skip what is already measured.
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from bench_runner.records import BenchRecord

PART_PREFIX = "records-"
PART_SUFFIX = ".parquet"

_FLOAT = pa.float64()
_INT = pa.int64()
_TEXT = pa.string()
SCHEMA = pa.schema(
    [
        ("key", _TEXT), ("run_id", _TEXT), ("timestamp", _TEXT), ("status", _TEXT), ("error", _TEXT),
        ("artifact_path", _TEXT), ("artifact_sha256", _TEXT), ("artifact_size_bytes", _INT),
        ("manifest_path", _TEXT), ("manifest", _TEXT), ("model", _TEXT), ("backend", _TEXT), ("quant", _TEXT),
        ("runtime", _TEXT), ("input_shape", pa.list_(_INT)), ("input_dtype", _TEXT),
        ("device_name", _TEXT), ("device_kind", _TEXT), ("emulated", pa.bool_()), ("device", _TEXT),
        ("harness", _TEXT), ("toolchain", _TEXT),
        ("threads", _INT), ("cpu_mask", _TEXT), ("warmup", _INT), ("runs", _INT), ("min_seconds", _FLOAT),
        ("rounds", _INT), ("cooldown_seconds", _FLOAT), ("repetition", _INT), ("seed", _INT),
        ("n", _INT), ("min_ms", _FLOAT), ("p50_ms", _FLOAT), ("p90_ms", _FLOAT), ("p99_ms", _FLOAT),
        ("mean_ms", _FLOAT), ("trimmed_mean_ms", _FLOAT), ("std_ms", _FLOAT), ("cv", _FLOAT),
        ("ci95_low_ms", _FLOAT), ("ci95_high_ms", _FLOAT),
        ("stable", pa.bool_()), ("stability_note", _TEXT), ("round_medians_ms", pa.list_(_FLOAT)),
        ("load_ms", _FLOAT), ("first_inference_ms", _FLOAT), ("peak_rss_kb", _INT), ("memory_kb", _INT),
        ("output_checksum", _FLOAT), ("environment", _TEXT),
        ("samples_ms", pa.list_(_FLOAT)), ("round_index", pa.list_(_INT)),
        ("aggregate", _TEXT),
        ("started_at", _TEXT), ("ended_at", _TEXT), ("round_times", pa.list_(pa.list_(_TEXT))),
    ]
)


class ResultsStore:
    """Append-only BenchRecord storage under `root` (created on first append)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def parts(self) -> list[Path]:
        """The finished part files, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(self.root.glob(f"{PART_PREFIX}*{PART_SUFFIX}"))

    def append(self, records: Iterable[BenchRecord]) -> Path | None:
        """Write `records` as one new part file, atomically; returns it (None if no records)."""
        rows = [record.to_row() for record in records]
        if not rows:
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{PART_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}{PART_SUFFIX}"
        temporary = self.root / f".{name}.tmp"
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        try:
            with temporary.open("wb") as handle:
                pq.write_table(table, handle)
                handle.flush()
                os.fsync(handle.fileno())
            final = self.root / name
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_directory(self.root)
        return final

    def load(self) -> list[BenchRecord]:
        """Every stored record, in the order they were appended."""
        records = []
        for part in self.parts():
            records.extend(BenchRecord.from_row(row) for row in _read_part(part).to_pylist())
        return records

    def completed_keys(self) -> set[str]:
        """Keys of the records measured successfully (failed ones may be measured again)."""
        keys: set[str] = set()
        for part in self.parts():
            table = pq.read_table(part, columns=["key", "status"])
            keys.update(k for k, s in zip(table["key"].to_pylist(), table["status"].to_pylist()) if s == "ok")
        return keys

    def export_csv(self, path: Path) -> Path:
        """Write every record as one CSV row (lists and nested data as JSON text)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=SCHEMA.names)
            writer.writeheader()
            for record in self.load():
                row = record.to_row()
                writer.writerow({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in row.items()})
        os.replace(temporary, path)
        return path


def _read_part(part: Path) -> pa.Table:
    """A part file as a SCHEMA table; columns an older part lacks are filled with nulls."""
    table = pq.read_table(part)
    for column in SCHEMA:
        if column.name not in table.column_names:
            table = table.append_column(column, pa.nulls(len(table), column.type))
    return table.select(SCHEMA.names).cast(SCHEMA)


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
