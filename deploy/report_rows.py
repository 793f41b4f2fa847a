"""Report rows: one per artifact x device x threads x harness, with its accuracy attached.

Repetitions of the same measurement are pooled: their raw samples are concatenated and
every statistic (p50, its 95% bootstrap interval, p90, ...) is recomputed from the pool
with `LatencyStats.from_samples`; each repetition's own median is kept alongside.
Records that carry only a tool's aggregate have no raw samples and make no row here
(deploy/report_aggregates.py shows them).
Model facts (params, MACs, resolution, verification) come from the artifact's manifest
as the BenchRecord carries it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench_runner.stats import LatencyStats
from deploy.report_inputs import ACCURACY_KINDS, ReportError

ROW_KEY = ["device_name", "threads", "artifact_sha256", "harness"]
_SPEC_IGNORED = ("name", "preprocessing")
# Spec fields that name a model variant best, tried first when telling models apart.
_SPEC_PRIORITY = ("depth", "branches", "embed_dim", "img_size", "patch_size", "num_heads", "mlp_ratio")


def pool_repetitions(latency: pd.DataFrame) -> pd.DataFrame:
    """One row per successful artifact x device x threads x harness with raw samples, repetitions pooled.

    Columns: the record fields that identify the measurement, `samples_ms` (the pool, in
    run and repetition order), `sample_rounds` (per sample: run, harness, repetition and
    round, the round it was measured in), `records` (per record: key, repetition, samples,
    round_index), `repetitions`, `repetition_p50_ms`, the pooled statistics
    (`n`, `p50_ms`, `ci95_low_ms`, `ci95_high_ms`, `p90_ms`, ...), `stable` (all
    repetitions stable) and `stability_note`.
    """
    ok = latency[(latency["status"] == "ok") & latency["aggregate"].isna()]
    rows = []
    for _, group in ok.groupby(ROW_KEY, sort=True):
        group = group.sort_values(["timestamp", "run_id", "repetition"])
        first = group.iloc[0]
        samples = tuple(s for record_samples in group["samples_ms"] for s in record_samples)
        stats = LatencyStats.from_samples(samples, seed=int(first["seed"]))
        notes = sorted({note for note in group["stability_note"] if note})
        rows.append({
            **{name: first[name] for name in (
                "device_name", "device_kind", "emulated", "device", "harness", "threads", "artifact_sha256",
                "artifact_path", "manifest", "model", "backend", "quant", "runtime", "input_shape", "seed",
            )},
            **{name: tuple(sorted(set(group[name]), key=str)) for name in (
                "warmup", "runs", "min_seconds", "rounds", "cooldown_seconds", "cpu_mask", "run_id",
            )},
            "toolchains": tuple(group["toolchain"]),
            "devices": tuple(group["device"]),
            "first_timestamp": group["timestamp"].min(),
            "last_timestamp": group["timestamp"].max(),
            "samples_ms": samples,
            # Artifacts measured by one harness in the same run, repetition and round ran
            # interleaved, side by side: speed-ups pair them round by round.
            "sample_rounds": tuple(
                (record.run_id, record.harness, int(record.repetition), int(r))
                for record in group.itertuples() for r in record.round_index
            ),
            "records": tuple(
                (record.key, int(record.repetition), tuple(record.samples_ms), tuple(record.round_index))
                for record in group.itertuples()
            ),
            "repetitions": len(group),
            "repetition_p50_ms": tuple(float(record_stats.p50_ms) for record_stats in group["stats"]),
            **{name: getattr(stats, name) for name in (
                "n", "min_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "trimmed_mean_ms", "std_ms", "cv",
                "ci95_low_ms", "ci95_high_ms",
            )},
            "stable": bool(all(group["stable"])),
            "stability_note": "; ".join(notes),
        })
    return pd.DataFrame(rows)


def describe_artifacts(rows: pd.DataFrame) -> pd.DataFrame:
    """Add what the manifests say: `model_label`, `resolution`, `params`, `macs`, `verified`,
    `reparameterized`, and a `label` ("model/backend/quant") unique per device and threads.

    The model is named by the manifest's `model.label` (e.g. a sweep's model label) or
    `model.name`, or by the artifact's file name without a manifest. Models that share a
    name but differ (e.g. depth 12 against a reparameterized depth 6) get the differing
    spec fields appended, e.g. "vit_tiny depth=6".
    """
    rows = rows.copy()
    model = rows["manifest"].map(lambda m: m.get("model") if isinstance(m.get("model"), dict) else {})
    rows["params"] = model.map(lambda m: m.get("params"))
    rows["macs"] = model.map(lambda m: m.get("macs"))
    rows["resolution"] = rows["input_shape"].map(_resolution)
    rows["verified"] = rows["manifest"].map(_verification)
    rows["reparameterized"] = rows["manifest"].map(lambda m: m.get("reparameterized"))
    rows["model_label"] = _model_labels(rows, model)
    rows["label"] = rows["model_label"] + "/" + rows["backend"] + "/" + rows["quant"]
    rows["label"] = _unique_labels(rows)
    return rows


def _resolution(shape) -> str:
    if len(shape) < 2:
        return "?"
    height, width = shape[-2], shape[-1]
    return str(height) if height == width else f"{height}x{width}"


def _verification(manifest: dict) -> str | None:
    verification = manifest.get("verification")
    if not isinstance(verification, dict):
        return None
    if "passed" in verification:
        return "passed" if verification["passed"] else "failed"
    return str(verification.get("status")) if verification.get("status") else None


def _model_labels(rows: pd.DataFrame, model: pd.Series) -> pd.Series:
    names = [str(m.get("label") or m.get("name") or Path(path).name) for m, path in zip(model, rows["artifact_path"])]
    specs = [m.get("spec") if isinstance(m.get("spec"), dict) else None for m in model]
    identities = [
        json.dumps([spec, m.get("weights_sha256")], sort_keys=True) if spec or m.get("weights_sha256") else sha
        for spec, m, sha in zip(specs, model, rows["artifact_sha256"])
    ]
    labels = list(names)
    for name in set(names):
        members = [i for i, n in enumerate(names) if n == name]
        if len({identities[i] for i in members}) < 2:
            continue
        differing = _distinguishing_keys([specs[i] or {} for i in members])
        for i in members:
            if differing:
                suffix = ",".join(f"{k}={(specs[i] or {}).get(k)}" for k in differing)
            else:
                weights = model.iloc[i].get("weights_sha256")
                suffix = f"weights {weights[:8]}" if weights else f"@{rows['artifact_sha256'].iloc[i][:8]}"
            labels[i] = f"{name} {suffix}"
    return pd.Series(labels, index=rows.index)


def _distinguishing_keys(specs: list[dict]) -> list[str]:
    """Spec fields that tell `specs` apart, added in `_SPEC_PRIORITY` order until they do."""
    keys = [k for k in _SPEC_PRIORITY if any(k in s for s in specs)]
    keys += sorted({k for s in specs for k in s} - set(keys) - set(_SPEC_IGNORED))
    distinct = len({json.dumps([s.get(k) for k in keys], default=str) for s in specs})
    chosen: list[str] = []
    for key in keys:
        if len({json.dumps([s.get(k) for k in chosen], default=str) for s in specs}) == distinct:
            break
        if len({json.dumps(s.get(key), default=str) for s in specs}) > 1:
            chosen.append(key)
    return chosen


def _unique_labels(rows: pd.DataFrame) -> pd.Series:
    labels = rows["label"].copy()
    for _, group in rows.groupby(["device_name", "threads", "label"]):
        if group["artifact_sha256"].nunique() > 1:
            labels[group.index] = group["label"] + " @" + group["artifact_sha256"].str[:8]
    for _, group in rows.assign(label=labels).groupby(["device_name", "threads", "label"]):
        if len(group) > 1:
            labels[group.index] = group["label"] + " [" + group["harness"] + "]"
    return labels


def choose_dataset(accuracy: pd.DataFrame, measured_sha256: set[str], dataset: str | None) -> str | None:
    """The data set whose top-1 the report shows.

    `dataset` if given (it must occur in the accuracy records); otherwise the only data
    set among the records of measured artifacts; None without such records. Several
    data sets and no choice raise ReportError listing them.
    """
    if dataset is not None:
        known = sorted(set(accuracy["dataset"]))
        if dataset not in known:
            raise ReportError(f"no accuracy record is on data set {dataset!r}; "
                              f"the records hold: {', '.join(known) or 'none'}")
        return dataset
    relevant = sorted(set(accuracy.loc[accuracy["artifact_sha256"].isin(measured_sha256), "dataset"]))
    if len(relevant) > 1:
        raise ReportError("the accuracy records cover several data sets; choose the one to report with "
                          "--dataset: " + "; ".join(repr(d) for d in relevant))
    return relevant[0] if relevant else None


def attach_accuracy(rows: pd.DataFrame, accuracy: pd.DataFrame, dataset: str | None) -> tuple[pd.DataFrame, list[str]]:
    """Join accuracy on `dataset` by artifact sha256; return the rows and notes.

    Records that name no artifact join nothing; a note lists them.

    Deployed accuracy (the artifact run in its own runtime) fills `top1_pct`,
    `top5_pct`, `num_images`, `accuracy_source`; each other kind fills its own columns
    (`top1_simulated_pct`, `top1_eager_pct`), never the deployed ones. Where one
    artifact has several records of a kind, the last one read wins and a note says so.
    """
    rows = rows.copy()
    notes: list[str] = []
    on_dataset = accuracy[accuracy["dataset"] == dataset] if dataset is not None else accuracy.iloc[0:0]
    anonymous = on_dataset[on_dataset["artifact_sha256"].isna()]
    if not anonymous.empty:
        notes.append(f"{len(anonymous)} accuracy record(s) name no artifact and are not shown: "
                     + ", ".join(anonymous["source"]))
    on_dataset = on_dataset[on_dataset["artifact_sha256"].notna()]
    for kind in ACCURACY_KINDS:
        records = on_dataset[on_dataset["kind"] == kind]
        repeated = records[records.duplicated("artifact_sha256", keep="last")]
        for sha in sorted(set(repeated["artifact_sha256"]) & set(rows["artifact_sha256"])):
            kept = records[records["artifact_sha256"] == sha].iloc[-1]
            notes.append(f"artifact {sha[:12]} has several {kind} accuracy records; the report uses the last one read "
                         f"({kept['source']})")
        latest = records.drop_duplicates("artifact_sha256", keep="last").set_index("artifact_sha256")
        if kind == "deployed":
            rows["top1_pct"] = rows["artifact_sha256"].map(latest["top1_pct"])
            rows["top5_pct"] = rows["artifact_sha256"].map(latest["top5_pct"])
            rows["num_images"] = rows["artifact_sha256"].map(latest["num_images"])
            rows["accuracy_source"] = rows["artifact_sha256"].map(latest["source"])
        else:
            rows[f"top1_{kind}_pct"] = rows["artifact_sha256"].map(latest["top1_pct"])
    return rows, notes
