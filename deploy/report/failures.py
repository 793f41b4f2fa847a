"""The notes that name a device table's failed records: one per distinct error, not one per record."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from bench_runner.records import BenchRecord

_MAX_ERROR_CHARS = 200


def failure_notes(failures: Sequence[BenchRecord]) -> list[str]:
    """One note per distinct error (the first line of its text), in the order the errors first occur.

    Each note names, sorted, every artifact that failed with that error (model/backend/quant
    and file name, once however many of its repetitions failed) and counts the records.
    """
    groups: dict[str, list[BenchRecord]] = {}
    for record in failures:
        groups.setdefault(_first_line(record.error), []).append(record)
    return [_note(error, records) for error, records in groups.items()]


def _first_line(error: str | None) -> str:
    text = (error or "").strip()
    return text.splitlines()[0][:_MAX_ERROR_CHARS] if text else "no error text"


def _note(error: str, records: list[BenchRecord]) -> str:
    artifacts = sorted({f"{r.model}/{r.backend}/{r.quant} ({Path(r.artifact_path).name})" for r in records})
    count = f"{len(records)} record{'' if len(records) == 1 else 's'}"
    return f"Failed, not in the table ({error}): {', '.join(artifacts)} ({count})."
