"""The two-axis front on results whose answer is known by construction, the cross-device
table built from it, and the answers to --min-accuracy and --budget-ms."""

import pandas as pd
import pytest

from deploy.cli import main
from deploy.report import build_report, write_report
from deploy.report.statistics import paired_difference, wilson_interval
from tests.deploy.report.results import accuracy_line, bench_record, latency_samples, row, write_results

IMAGES = 360


def hits(right: int, wrong_first: int = 0) -> str:
    """`right` images right out of IMAGES: the first `wrong_first` wrong, then the right ones."""
    return "0" * wrong_first + "1" * right + "0" * (IMAGES - right - wrong_first)


# On the same 360 images:
#   fast   2 ms  324 right (a subset of wide's): clearly less accurate than wide
#   near   3 ms  341 right: wide's images but one, faster than wide beyond both intervals
#   wide   5 ms  342 right
#   twin   5 ms  342 right, the same latency samples as wide: a latency tie
#   slow   8 ms  330 right: slower and less accurate than wide, dominated on both axes
MODELS = {
    "fast": (2.0, 12, hits(324)),
    "near": (3.0, 9, hits(341, wrong_first=1)),
    "wide": (5.0, 6, hits(342)),
    "twin": (5.0, 4, hits(342)),
    "slow": (8.0, 3, hits(330)),
}


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    root = tmp_path_factory.mktemp("known")
    records, accuracy = [], []
    for name, (median, depth, right) in MODELS.items():
        seed = 7 if name in ("wide", "twin") else depth
        for device, emulated, scale in (("host", False, 1.0), ("qemu-arm64", True, 50.0)):
            samples = [s * scale for s in latency_samples(median, seed=seed)]
            records.append(bench_record(name, samples, depth=depth, device=device, emulated=emulated))
        accuracy.append(accuracy_line(name, hits=right))
    return write_results(root, records, accuracy)


def label(name: str) -> str:
    return f"vit_tiny depth={MODELS[name][1]}/onnx/fp32"


def test_the_known_front_ties_and_domination(known):
    report = build_report(known)
    standing = {name: row(report, label(name)) for name in MODELS}
    assert standing["fast"].pareto == "yes"  # nothing faster
    assert standing["near"].pareto == "yes"  # the only faster row is clearly less accurate
    # wide: near is faster beyond both intervals but only one image less accurate; twin: same latency.
    assert standing["wide"].pareto == "tie" and set(standing["wide"].pareto_others) == {label("near"), label("twin")}
    assert standing["twin"].pareto == "tie" and set(standing["twin"].pareto_others) == {label("near"), label("wide")}
    assert standing["slow"].pareto == "no"
    assert {label("near"), label("wide"), label("twin")} <= set(standing["slow"].pareto_others)


def test_two_artifacts_one_image_apart_tie():
    one_image = paired_difference([c == "1" for c in hits(341, wrong_first=1)], [c == "1" for c in hits(342)])
    assert one_image.a_only == 0 and one_image.b_only == 1
    assert one_image.ci_low < 0 and one_image.ci_high == 0.0  # not less accurate beyond the interval
    many = paired_difference([c == "1" for c in hits(324)], [c == "1" for c in hits(342)])
    assert many.ci_high < 0


def test_without_per_image_results_the_front_compares_top1_alone(tmp_path):
    records = [bench_record(name, latency_samples(MODELS[name][0], seed=MODELS[name][1]), depth=MODELS[name][1])
               for name in ("near", "wide")]
    accuracy = [accuracy_line(name, 100.0 * MODELS[name][2].count("1") / IMAGES) for name in ("near", "wide")]
    report = build_report(write_results(tmp_path, records, accuracy))
    assert row(report, label("wide")).pareto == "yes"  # one image more accurate, and no pairing to say otherwise
    (table,) = report.tables
    assert any(note.startswith("Compared by top-1 alone") and label("wide") in note for note in table.notes)


def test_accuracy_carries_its_wilson_interval_in_cells_and_csv(known, tmp_path):
    report = build_report(known)
    files = write_report(report, tmp_path / "report")
    low, high = (100 * bound for bound in wilson_interval(342, IMAGES))
    assert f"95.0 [{low:.1f}, {high:.1f}]" in files.markdown.read_text()
    frame = pd.read_csv(files.csv)
    wide = frame[frame.label == label("wide")].iloc[0]
    assert (wide.accuracy_ci95_low, wide.accuracy_ci95_high) == pytest.approx((low, high))


def test_the_cross_device_table_has_a_model_per_row_and_a_device_per_column(known, tmp_path):
    report = build_report(known)
    across = report.across_devices
    assert [column.header for column in across.columns] == ["host, 1 thread", "qemu-arm64 (emulated), 1 thread"]
    assert [model.model_label for model in across.rows] == [f"vit_tiny depth={d}" for d in (12, 3, 4, 6, 9)]
    by_model = {model.model_label: model for model in across.rows}
    wide = by_model["vit_tiny depth=6"]
    assert [best.pareto for best in wide.best] == ["tie", "tie"]
    assert wide.accuracy.value == pytest.approx(95.0)
    files = write_report(report, tmp_path / "report")
    long = pd.read_csv(files.across_csv)
    assert len(long) == 2 * len(MODELS) and set(long.device_name) == {"host", "qemu-arm64"}
    wide_form = pd.read_csv(files.across_all_csv)
    assert list(wide_form.columns[2:]) == ["host|1t|onnx|fp32|p50_ms", "qemu-arm64|1t|onnx|fp32|p50_ms"]
    text = files.markdown.read_text()
    assert "## All devices: each model's best artifact per device" in text
    assert "| qemu-arm64 (emulated), 1 thread |" in text
    assert 'id="across-devices"' in files.html.read_text()


def test_the_best_artifact_keeps_the_models_accuracy(tmp_path):
    """An int8 artifact faster than fp32 but clearly less accurate does not stand for the model."""
    records = [bench_record("m-fp32", latency_samples(5.0, seed=1)),
               bench_record("m-int8", latency_samples(2.0, seed=2), quant="int8"),
               bench_record("m-int8-good", latency_samples(3.0, seed=3), quant="int8", backend="executorch")]
    accuracy = [accuracy_line("m-fp32", hits=hits(342)), accuracy_line("m-int8", hits=hits(300)),
                accuracy_line("m-int8-good", hits=hits(341, wrong_first=1))]
    report = build_report(write_results(tmp_path, records, accuracy))
    (model,) = report.across_devices.rows
    (best,) = model.best
    assert (best.backend, best.quant) == ("executorch", "int8")


def test_fastest_at_an_accuracy_lists_ties_and_says_when_none_reaches_it(known, capsys):
    report = build_report(known, min_top1_pct=94.0)
    host = next(answer for answer in report.fastest if answer.table.device_name == "host")
    assert [r.label for r in host.rows] == [label("near")]
    tied = build_report(known, min_top1_pct=95.0)
    host = next(answer for answer in tied.fastest if answer.table.device_name == "host")
    assert [r.label for r in host.rows] == sorted([label("wide"), label("twin")])
    none = build_report(known, min_top1_pct=99.0)
    assert all(not answer.rows and "no artifact reaches top-1 99 %" in answer.text for answer in none.fastest)
    assert main(["report", str(known), "--min-accuracy", "95", "--out", str(known / "answer")]) == 0
    out = capsys.readouterr().out
    assert "## Fastest at top-1 ≥ 95 %" in out and "tied with" in out


def test_budget_marks_rows_within_over_and_at_it(known):
    report = build_report(known, budget_ms=5.0)
    host = {name: row(report, label(name)).budget for name in MODELS}
    assert host["fast"] == host["near"] == "within" and host["slow"] == "over"
    assert host["wide"] == "at budget"  # its p50 interval straddles 5 ms
    assert all(r.budget == "over" for r in next(t for t in report.tables if t.device_name == "qemu-arm64").rows)
