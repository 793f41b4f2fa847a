"""Row labels: "model/backend/quant", with models that share a name told apart.

The model is named by its manifest (`ManifestFacts.model_name`: e.g. a sweep's model
label, or the model's name), or by the artifact's file name without a manifest. Models
that share a name but differ (e.g. depth 12 against a reparameterized depth 6) get the
differing spec fields appended, e.g. "vit_tiny depth=6". A label is unique per device
and threads: where two artifacts or two harnesses would share one, it names them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Hashable, Sequence

from bench_runner.records import BenchRecord
from deploy.report.inputs import ManifestFacts

_SPEC_IGNORED = ("name", "preprocessing")
# Spec fields that name a model variant best, tried first when telling models apart.
_SPEC_PRIORITY = ("depth", "branches", "embed_dim", "img_size", "patch_size", "num_heads", "mlp_ratio")


def row_labels(records: Sequence[BenchRecord], facts: Sequence[ManifestFacts]) -> list[tuple[str, str]]:
    """(model label, row label) of each measurement, from one of its records and its manifest's facts."""
    models = _model_labels(records, facts)
    labels = [f"{model}/{record.backend}/{record.quant}" for model, record in zip(models, records)]
    clashing = _clashing(labels, records, lambda record: record.artifact_sha256)
    labels = [f"{label} @{record.artifact_sha256[:8]}" if i in clashing else label
              for i, (label, record) in enumerate(zip(labels, records))]
    clashing = _clashing(labels, records, lambda record: (record.artifact_sha256, record.harness))
    labels = [f"{label} [{record.harness}]" if i in clashing else label
              for i, (label, record) in enumerate(zip(labels, records))]
    return list(zip(models, labels))


def _clashing(labels: list[str], records: Sequence[BenchRecord], identity: Callable[[BenchRecord], Hashable]) -> set[int]:
    """Indices of the labels that, on one device at one thread count, name more than one `identity`."""
    groups: dict[tuple, list[int]] = {}
    for i, (label, record) in enumerate(zip(labels, records)):
        groups.setdefault((record.device_name, record.threads, label), []).append(i)
    return {i for members in groups.values() if len({identity(records[j]) for j in members}) > 1 for i in members}


def _model_labels(records: Sequence[BenchRecord], facts: Sequence[ManifestFacts]) -> list[str]:
    names = [str(f.model_name or Path(record.artifact_path).name) for f, record in zip(facts, records)]
    identities = [
        json.dumps([f.spec, f.weights_sha256], sort_keys=True) if f.spec or f.weights_sha256 else record.artifact_sha256
        for f, record in zip(facts, records)
    ]
    labels = list(names)
    for name in set(names):
        members = [i for i, n in enumerate(names) if n == name]
        if len({identities[i] for i in members}) < 2:
            continue
        differing = _distinguishing_keys([facts[i].spec or {} for i in members])
        for i in members:
            if differing:
                suffix = ",".join(f"{k}={(facts[i].spec or {}).get(k)}" for k in differing)
            else:
                weights = facts[i].weights_sha256
                suffix = f"weights {weights[:8]}" if weights else f"@{records[i].artifact_sha256[:8]}"
            labels[i] = f"{name} {suffix}"
    return labels


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
