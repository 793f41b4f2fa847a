"""Accuracy joined to report rows by artifact sha256, on one data set.

Deployed accuracy (the artifact run in its own runtime) becomes a row's `deployed`, the
only accuracy that decides the Pareto front; a simulated (fake-quant) or eager PyTorch
model's accuracy becomes its `simulated` / `eager`, shown in a column of its own.
`AccuracyComparison` compares deployed records image by image for the front.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from deploy.report.inputs import ACCURACY_KINDS, AccuracyRecord, ReportError
from deploy.report.rows import ReportRow
from deploy.report.statistics import AccuracyDifference, paired_difference

# The accuracy of a PyTorch model rather than of the artifact: what its column header says
# after the metric's heading, and where a row holds it.
REFERENCE_ACCURACY: tuple[tuple[str, Callable[[ReportRow], AccuracyRecord | None]], ...] = (
    ("simulated (PyTorch, not deployed)", lambda row: row.simulated),
    ("eager PyTorch", lambda row: row.eager),
)


def choose_dataset(accuracy: Sequence[AccuracyRecord], measured_sha256: set[str], dataset: str | None) -> str | None:
    """The data set whose accuracy the report shows.

    `dataset` if given (it must occur in the accuracy records); otherwise the only data
    set among the records of measured artifacts; None without such records. Several
    data sets and no choice raise ReportError listing them.
    """
    if dataset is not None:
        known = sorted({record.dataset for record in accuracy})
        if dataset not in known:
            raise ReportError(f"no accuracy record is on data set {dataset!r}; "
                              f"the records hold: {', '.join(known) or 'none'}")
        return dataset
    relevant = sorted({record.dataset for record in accuracy if record.artifact_sha256 in measured_sha256})
    if len(relevant) > 1:
        raise ReportError("the accuracy records cover several data sets; choose the one to report with "
                          "--dataset: " + "; ".join(repr(d) for d in relevant))
    return relevant[0] if relevant else None


def attach_accuracy(
    rows: Sequence[ReportRow], accuracy: Sequence[AccuracyRecord], dataset: str | None
) -> tuple[list[ReportRow], list[str]]:
    """The rows with their accuracy records on `dataset`, and notes about the records.

    Records that name no artifact join nothing; a note lists them. Where one artifact
    has several records of a kind, the last one read wins and a note says so.
    """
    notes: list[str] = []
    on_dataset = [record for record in accuracy if record.dataset == dataset] if dataset is not None else []
    anonymous = [record.source for record in on_dataset if record.artifact_sha256 is None]
    if anonymous:
        notes.append(f"{len(anonymous)} accuracy record(s) name no artifact and are not shown: " + ", ".join(anonymous))
    measured = {row.artifact_sha256 for row in rows}
    latest: dict[str, dict[str, AccuracyRecord]] = {}
    for kind in ACCURACY_KINDS:
        latest[kind], repeated = _latest_per_artifact([r for r in on_dataset if r.kind == kind])
        for sha in sorted(repeated & measured):
            notes.append(f"artifact {sha[:12]} has several {kind} accuracy records; the report uses the last one "
                         f"read ({latest[kind][sha].source})")
    joined = []
    for row in rows:
        found = {kind: latest[kind].get(row.artifact_sha256) for kind in ACCURACY_KINDS}
        for kind, record in found.items():
            if record is not None and record.metric is not row.metric:
                declared = "no metric (an embedding)" if row.metric is None else row.metric.title
                notes.append(f"{record.source}: a {record.metric.title} record, but {row.label} declares "
                             f"{declared}; it is not shown (evaluate the artifact again with `vitdeploy eval`)")
                found[kind] = None
        joined.append(replace(row, **found))
    return joined, notes


def _latest_per_artifact(accuracy: Sequence[AccuracyRecord]) -> tuple[dict[str, AccuracyRecord], set[str]]:
    """The last record per artifact, and the artifacts that have several."""
    latest: dict[str, AccuracyRecord] = {}
    repeated: set[str] = set()
    for record in accuracy:
        if record.artifact_sha256 is not None:
            if record.artifact_sha256 in latest:
                repeated.add(record.artifact_sha256)
            latest[record.artifact_sha256] = record
    return latest, repeated


class AccuracyComparison:
    """Pairwise accuracy of records on one data set: `clearly_less_accurate(j, i)` is the
    front rule's "less accurate beyond the paired interval" for `records[j]` against
    `records[i]`, by the records' metric oriented so that higher is better. Records that
    do not score the same images image by image are compared by their values alone;
    `unpaired` lists those pairs (as index pairs)."""

    def __init__(self, records: Sequence[AccuracyRecord]):
        self.records = list(records)
        self.unpaired: set[tuple[int, int]] = set()
        self._differences: dict[tuple[int, int], AccuracyDifference | None] = {}

    def difference(self, a: int, b: int) -> AccuracyDifference | None:
        """records[a] - records[b] (oriented scores) paired image by image, or None if they cannot be paired."""
        if (a, b) not in self._differences:
            first, second = self.records[a], self.records[b]
            paired = None
            if (first.image_scores and second.image_scores and first.metric is second.metric
                    and set(first.image_ids) == set(second.image_ids)):
                by_id = dict(zip(second.image_ids, second.oriented_scores))
                paired = paired_difference(first.oriented_scores, [by_id[image] for image in first.image_ids])
            self._differences[(a, b)] = paired
        return self._differences[(a, b)]

    def clearly_less_accurate(self, j: int, i: int) -> bool:
        difference = self.difference(j, i)
        if difference is None:
            self.unpaired.add((min(i, j), max(i, j)))
            return self.records[j].goodness < self.records[i].goodness
        return difference.ci_high < 0
