"""One table per device and thread count: rows, baseline speed-ups, Pareto front, provenance.

`device_tables` builds them from the pooled, accuracy-joined rows; `table_cells` turns
one into display text, the single formatting that the Markdown and HTML pages share.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench_runner.stats import BOOTSTRAP_RESAMPLES
from deploy.report_inputs import ReportError
from deploy.report_pareto import DOMINATED, FRONT, TIE, pareto_front
from deploy.report_speedup import MIN_PAIRED_ROUNDS, SPEEDUP_SEED, speedup

FRONT_RULE = (
    "Pareto: yes = on the accuracy-latency front; tie = on the front only because a row at least as accurate "
    "has an overlapping p50 interval (the two are not ranked); no = a row at least as accurate is faster beyond "
    "both 95% intervals; n/a = no deployed top-1."
)
EMULATED_CAVEAT = "relative timings only, not a phone's latency"
_FINGERPRINT_FIELDS = ("kind", "name", "abi", "cpu_model", "cores", "os", "emulated")
_PARETO_TEXT = {FRONT: "yes", TIE: "tie", DOMINATED: "no"}
REFERENCE_KINDS = {"simulated": "top-1 % simulated (PyTorch, not deployed)", "eager": "top-1 % eager PyTorch"}


@dataclass(frozen=True)
class DeviceTable:
    """The report of one device at one thread count.

    `rows` (a DataFrame, one row per artifact x harness, fastest first) carries the
    pooled statistics, accuracy, `speedup`/`speedup_ci_low`/`speedup_ci_high`,
    `pareto` ("yes", "tie", "no", or "n/a" without deployed accuracy) and
    `pareto_others` (labels of the rows that dominate it or tie with it, fastest first). `title` names the
    device and, for an emulated one, says its timings are relative only. `provenance`
    is (what, value) pairs; `notes` explain or qualify single rows.
    """

    device_name: str
    threads: int
    emulated: bool
    title: str
    rows: pd.DataFrame
    baseline: str | None
    has_accuracy: bool
    provenance: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]

    @property
    def slug(self) -> str:
        """A file-name-safe name: device and threads."""
        return f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', self.device_name).strip('-')}-{self.threads}t"


def device_title(name: str, cpu_model: str, emulated: bool, threads: int) -> str:
    """"host, 1 thread"; an emulated device also names its CPU and says what its timings mean."""
    if emulated:
        cpu = re.sub(r"^QEMU\s+|\s*\(emulated\)$", "", cpu_model, flags=re.IGNORECASE)
        cpu = re.sub(r"\bcortex-a(\d+)", lambda m: f"Cortex-A{m.group(1)}", cpu, flags=re.IGNORECASE)
        name = f"{name} (emulated {cpu}: {EMULATED_CAVEAT})"
    return f"{name}, {threads} thread{'' if threads == 1 else 's'}"


def device_tables(
    rows: pd.DataFrame, failed: pd.DataFrame, baseline: str | None, dataset: str | None
) -> list[DeviceTable]:
    """One DeviceTable per device and thread count, in name and thread order.

    `baseline` is a row label ("model/backend/quant") or a model name (its fp32 row is
    preferred, then backends alphabetically); None takes the fp32 row of the first
    model alphabetically. A named baseline that no table holds raises ReportError.
    """
    if baseline is not None and not _matches_baseline(rows, baseline).any():
        models = ", ".join(sorted(set(rows["model_label"])))
        labels = ", ".join(sorted(set(rows["label"])))
        raise ReportError(f"baseline {baseline!r} matches no measured row; give a model name ({models}) "
                          f"or a row label ({labels})")
    tables = []
    for (device_name, threads), group in rows.groupby(["device_name", "threads"], sort=True):
        group = group.sort_values(["p50_ms", "label"]).reset_index(drop=True)
        baseline_index = _baseline_index(group, baseline)
        group = _with_speedups(group, baseline_index)
        group = _with_front(group)
        failures = failed[(failed["device_name"] == device_name) & (failed["threads"] == threads)]
        emulated = bool(group["emulated"].any())
        cpu_model = str(group["device"].iloc[0].get("cpu_model", ""))
        tables.append(DeviceTable(
            device_name=str(device_name),
            threads=int(threads),
            emulated=emulated,
            title=device_title(str(device_name), cpu_model, emulated, int(threads)),
            rows=group,
            baseline=None if baseline_index is None else group.loc[baseline_index, "label"],
            has_accuracy=bool(group["top1_pct"].notna().any()),
            provenance=_provenance(group, dataset, baseline_index),
            notes=_notes(group, failures, baseline, baseline_index),
        ))
    return tables


def _matches_baseline(rows: pd.DataFrame, baseline: str) -> pd.Series:
    return (rows["label"] == baseline) | (rows["model_label"] == baseline) | (rows["model"] == baseline)


def _baseline_index(group: pd.DataFrame, baseline: str | None) -> int | None:
    if baseline is not None and (group["label"] == baseline).any():
        return int(group.index[group["label"] == baseline][0])
    candidates = group[_matches_baseline(group, baseline)] if baseline is not None else group
    if candidates.empty:
        return None
    fp32 = candidates[candidates["quant"] == "fp32"]
    chosen = (fp32 if not fp32.empty else candidates).sort_values(["model_label", "backend", "label"])
    return int(chosen.index[0])


def _with_speedups(group: pd.DataFrame, baseline_index: int | None) -> pd.DataFrame:
    group = group.copy()
    results = []
    for index, samples in group["samples_ms"].items():
        if baseline_index is None:
            results.append((math.nan, math.nan, math.nan))
        elif index == baseline_index:
            results.append((1.0, math.nan, math.nan))
        else:
            baseline = group.loc[baseline_index]
            measured = speedup(baseline["samples_ms"], samples, baseline_rounds=baseline["sample_rounds"],
                               row_rounds=group.loc[index, "sample_rounds"])
            results.append((measured.ratio, measured.ci_low, measured.ci_high))
    group["speedup"], group["speedup_ci_low"], group["speedup_ci_high"] = zip(*results)
    return group


def _with_front(group: pd.DataFrame) -> pd.DataFrame:
    group = group.copy()
    rated = group[group["top1_pct"].notna()]
    statuses = pareto_front(rated["top1_pct"].tolist(), rated["ci95_low_ms"].tolist(), rated["ci95_high_ms"].tolist())
    by_index = dict(zip(rated.index, statuses))
    labels = rated["label"].tolist()
    group["pareto"] = [_PARETO_TEXT[by_index[i].state] if i in by_index else "n/a" for i in group.index]
    group["pareto_others"] = [
        tuple(labels[j] for j in by_index[i].others) if i in by_index else () for i in group.index
    ]
    return group


def fingerprint(device: dict) -> str:
    """A short hash of the device's identity (not of its momentary frequencies or heat)."""
    identity = json.dumps({k: device.get(k) for k in _FINGERPRINT_FIELDS}, sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def _distinct(values) -> str:
    seen = []
    for value in values:
        text = "none" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
        if text not in seen:
            seen.append(text)
    return " / ".join(seen)


def _versions(dicts) -> str:
    merged: dict[str, list[str]] = {}
    for versions in dicts:
        for name, version in sorted((versions or {}).items()):
            merged.setdefault(name, [])
            if str(version) not in merged[name]:
                merged[name].append(str(version))
    return ", ".join(f"{name} {' / '.join(v)}" for name, v in merged.items()) or "not recorded"


def _provenance(group: pd.DataFrame, dataset: str | None, baseline_index: int | None) -> tuple[tuple[str, str], ...]:
    readings = [device for devices in group["devices"] for device in devices]
    described = [
        f"{d.get('name')} [{key}]: {d.get('kind')}, {d.get('cpu_model')}, {d.get('abi')}, {d.get('cores')} cores, "
        f"{d.get('os')}{', EMULATED' if d.get('emulated') else ''}"
        for key, d in {fingerprint(d): d for d in readings}.items()
    ]
    frequencies = [f for d in readings for f in d.get("frequencies_khz") or ()]
    temperatures = [t for d in readings for t in (d.get("thermal_c") or {}).values()]
    state = []
    if frequencies:
        state.append(f"CPU {min(frequencies) / 1000:.0f}-{max(frequencies) / 1000:.0f} MHz")
    if temperatures:
        state.append(f"up to {max(temperatures):.0f} °C")
    toolchains = [t for ts in group["toolchains"] for t in ts]
    lowering = [m.get("toolchain") for m in group["manifest"] if isinstance(m.get("toolchain"), dict)]

    def setting(name: str) -> str:
        return _distinct(value for values in group[name] for value in values)

    settings = ", ".join([
        f"threads {group['threads'].iloc[0]}",
        f"warm-up {setting('warmup')} runs per round",
        f"at least {setting('runs')} timed runs and {setting('min_seconds')} s per artifact",
        f"{setting('rounds')} interleaved rounds",
        f"cool-down {setting('cooldown_seconds')} s",
        f"CPU mask {setting('cpu_mask')}",
        f"harness {_distinct(group['harness'])}",
    ])
    repetitions = sorted(set(group["repetitions"]))
    entries = [
        ("device", "; ".join(described)),
        ("device state before measuring", ", ".join(state) or "not readable on this device"),
        ("settings", settings),
        ("samples", "column n = raw samples behind each row; "
                    + ("one repetition per row" if repetitions == [1] else
                       f"{_distinct(repetitions)} repetitions per row, their raw samples pooled (each repetition's "
                       "median is in the CSV)")),
        ("measured", f"{group['first_timestamp'].min()} to {group['last_timestamp'].max()}, run {setting('run_id')}"),
        ("toolchain on the device", _versions(t.get("device") for t in toolchains)),
        ("toolchain measuring", _versions(t.get("measuring") for t in toolchains)),
        ("toolchain lowering", _versions(lowering)),
        ("accuracy", _accuracy_provenance(group, dataset)),
    ]
    if baseline_index is not None:
        entries.append(("speed-up", (
            f"against {group.loc[baseline_index, 'label']}: median(baseline) / median(row), above 1 = faster; "
            f"95% interval by bootstrap ({BOOTSTRAP_RESAMPLES} resamples, seed {SPEEDUP_SEED}) of whole rounds, "
            f"the same rounds for both rows, where they were measured interleaved in at least {MIN_PAIRED_ROUNDS} "
            "shared rounds; otherwise of both rows' single raw samples, drawn independently"
        )))
    return tuple(entries)


def _accuracy_provenance(group: pd.DataFrame, dataset: str | None) -> str:
    if not group["top1_pct"].notna().any():
        return "no deployed accuracy for these artifacts: latency only, no Pareto front"
    images = _distinct(int(n) for n in group["num_images"].dropna())
    return (f"deployed top-1 on '{dataset}', {images} images scored per artifact, each artifact run in its own "
            "runtime (`vitdeploy eval`); the front uses only deployed accuracy")


def _notes(
    group: pd.DataFrame, failures: pd.DataFrame, baseline: str | None, baseline_index: int | None
) -> tuple[str, ...]:
    notes = []
    if group["top1_pct"].notna().any():
        notes.append(FRONT_RULE)
        missing = group.loc[group["top1_pct"].isna(), "label"].tolist()
        if missing:
            notes.append("No deployed top-1 (not on the front, n/a): " + ", ".join(missing) + ".")
    for kind, header in REFERENCE_KINDS.items():
        column = f"top1_{kind}_pct"
        if column in group and group[column].notna().any():
            notes.append(f"'{header}' is a PyTorch model's accuracy, not the artifact's; it never enters the front.")
    if baseline is not None and baseline_index is None:
        notes.append(f"Baseline {baseline} was not measured here: no speed-ups.")
    for row in group[~group["stable"].astype(bool)].itertuples():
        notes.append(f"† {row.label}: unstable measurement ({row.stability_note}); measure again on a quiet machine.")
    unverified = group[group["verified"] != "passed"]
    for state, rows in unverified.groupby(unverified["verified"].fillna("not recorded in the manifest"), sort=True):
        notes.append(f"Verification against the eager model {state}: " + ", ".join(rows["label"]) + ".")
    for row in failures.itertuples():
        error = (row.error or "").strip()
        first_line = error.splitlines()[0][:200] if error else "no error text"
        notes.append(f"Failed, not in the table: {row.model}/{row.backend}/{row.quant} "
                     f"({Path(row.artifact_path).name}, repetition {row.repetition}): {first_line}")
    return tuple(notes)


def format_ms(value: float) -> str:
    """Milliseconds with three significant digits (whole numbers from 100 ms up): 27.0, 0.00912, 1234."""
    if value is None or not math.isfinite(value):
        return ""
    decimals = max(0, 2 - math.floor(math.log10(value))) if value > 0 else 0
    return f"{value:.{decimals}f}"


def format_count(value) -> str:
    """5717416 -> "5.72M"; None -> "?"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "?"
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.0f}"


def _percent(value) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.1f}"


def table_cells(table: DeviceTable) -> tuple[list[str], list[list[str]]]:
    """The display headers and cells of a table (shared by Markdown and HTML)."""
    rows = table.rows
    harnesses = rows["harness"].nunique() > 1
    references = [k for k in REFERENCE_KINDS if f"top1_{k}_pct" in rows and rows[f"top1_{k}_pct"].notna().any()]
    headers = ["model", "res.", "params", "MACs", "quant", "backend"] + (["harness"] if harnesses else [])
    headers += (["top-1 %"] if table.has_accuracy else []) + [REFERENCE_KINDS[k] for k in references]
    headers += ["p50 ms [95% CI]", "p90 ms", "speed-up [95% CI]"]
    headers += (["Pareto"] if table.has_accuracy else []) + ["n"]
    cells = []
    for index, row in rows.iterrows():
        line = [row["model_label"], row["resolution"], format_count(row["params"]), format_count(row["macs"]),
                row["quant"], row["backend"]] + ([row["harness"]] if harnesses else [])
        line += ([_percent(row["top1_pct"])] if table.has_accuracy else [])
        line += [_percent(row[f"top1_{k}_pct"]) for k in references]
        mark = "" if row["stable"] else " †"
        interval = f"[{format_ms(row['ci95_low_ms'])}, {format_ms(row['ci95_high_ms'])}]"
        is_baseline = table.baseline is not None and row["label"] == table.baseline
        line += [f"{format_ms(row['p50_ms'])} {interval}{mark}", format_ms(row["p90_ms"]), _speedup_text(row, is_baseline)]
        if table.has_accuracy:
            line.append(_pareto_text(row["pareto"], row["pareto_others"]))
        reps = int(row["repetitions"])
        line.append(f"{int(row['n'])}" + (f" ({reps} reps)" if reps > 1 else ""))
        cells.append([str(cell) for cell in line])
    return headers, cells


def _pareto_text(state: str, others: tuple[str, ...]) -> str:
    """"no (by X)" or "tie (with X, Y)", naming at most two rows (the fastest first)."""
    if not others:
        return state
    named = ", ".join(others[:2]) + (f" +{len(others) - 2} more" if len(others) > 2 else "")
    return f"{state} ({'with' if state == 'tie' else 'by'} {named})"


def _speedup_text(row: pd.Series, is_baseline: bool) -> str:
    if is_baseline:
        return "1.00 (baseline)"
    if not math.isfinite(row["speedup"]):
        return ""
    return f"{row['speedup']:.2f} [{row['speedup_ci_low']:.2f}, {row['speedup_ci_high']:.2f}]"
