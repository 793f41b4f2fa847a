"""Models that differ in one structural field only, side by side: latency and parameters
against that field.

    series = field_series(across_devices, tables)   # [FieldSeries], one per such group of models

The field is `kv_heads` (grouped-query attention; a model that does not set it has one
key/value head per query head, `num_heads`). Models belong to one series when their specs
agree in everything else (the registry name, the query-head allocation and the
preprocessing aside), and a series needs two values of the field at least. Each point is
a model of the cross-device table, with its p50 per device, backend and quantization and
its ratio to the series' model with the most key/value heads there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from deploy.report.across_devices import CrossDeviceTable, DeviceColumn, ModelAcrossDevices
from deploy.report.tables import DeviceTable

# Per field: its value in a spec, and the spec fields that do not separate two models of
# one series besides the field itself.
_FIELDS = {
    "kv_heads": (lambda spec: int(spec.get("kv_heads") or spec["num_heads"]), ("name", "query_groups", "preprocessing")),
}
SERIES_FIELDS = tuple(_FIELDS)
SERIES_RULE = ("Each cell is the p50 ms of the model's fastest artifact of that backend and quantization on that "
               "device (the device tables hold its interval), and in brackets its ratio to the first model's.")


@dataclass(frozen=True)
class SeriesPoint:
    """One model of a series: its value of the field and its cross-device row."""

    value: int
    model: ModelAcrossDevices


@dataclass(frozen=True)
class FieldSeries:
    """Models that differ only in `field`, the largest value first (the reference of the
    ratios); `combinations` are the (column index, backend, quant) any of them was measured at."""

    field: str
    columns: tuple[DeviceColumn, ...]
    points: tuple[SeriesPoint, ...]
    combinations: tuple[tuple[int, str, str], ...]

    @property
    def title(self) -> str:
        return f"Latency and parameters against {self.field}"


def field_series(across: CrossDeviceTable, tables: Sequence[DeviceTable]) -> list[FieldSeries]:
    """Every series of the measured models, per field of SERIES_FIELDS (see the module docstring)."""
    specs = {row.model_label: row.spec for table in tables for row in table.rows if row.spec}
    found = []
    for field, (value_of, beside) in _FIELDS.items():
        groups: dict[str, list[SeriesPoint]] = {}
        for model in across.rows:
            spec = specs.get(model.model_label)
            if spec is None:
                continue
            rest = {key: value for key, value in spec.items() if key != field and key not in beside}
            groups.setdefault(json.dumps(rest, sort_keys=True), []).append(SeriesPoint(value_of(spec), model))
        for points in groups.values():
            if len({point.value for point in points}) > 1:
                points = sorted(points, key=lambda point: (-point.value, point.model.model_label))
                combinations = sorted({key for point in points for key in point.model.every})
                found.append(FieldSeries(field, across.columns, tuple(points), tuple(combinations)))
    return found
