"""A model judged by its own metric: a regression model's mean absolute error (lower is
better) gets a table, a front and a budget column of its own, apart from the classifiers'."""

import numpy as np
import pytest

from deploy.report import build_report, write_report
from deploy.report.statistics import mean_interval, paired_difference
from tests.deploy.report.results import accuracy_line, bench_record, error_line, latency_samples, write_results

IMAGES = 360


def _errors(mean: float, seed: int) -> np.ndarray:
    return np.abs(mean + 0.05 * np.random.default_rng(seed).standard_normal(IMAGES))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A classifier and three regression models: fast and fair (d6), slow and best (d4),
    slowest and worst (d3)."""
    records = [
        bench_record("classifier", latency_samples(2.0, 0)),
        bench_record("fair", latency_samples(1.0, 1), depth=6, output="regression"),
        bench_record("best", latency_samples(3.0, 2), depth=4, output="regression"),
        bench_record("worst", latency_samples(5.0, 3), depth=3, output="regression"),
    ]
    lines = [accuracy_line("classifier", 97.0), error_line("fair", _errors(0.5, 1)),
             error_line("best", _errors(0.3, 2)), error_line("worst", _errors(0.8, 3))]
    return write_results(tmp_path_factory.mktemp("mixed"), records, lines)


def _table(report, metric):
    return next(table for table in report.tables if table.metric.name == metric)


def test_each_metric_gets_its_own_table_on_a_device(mixed):
    report = build_report(mixed)
    assert [(t.device_name, t.metric.name, t.slug) for t in report.tables] == [
        ("host", "top1", "host-1t"), ("host", "mae", "host-1t-mae")]
    assert [row.artifact_path for row in _table(report, "top1").rows] == ["/artifacts/classifier.onnx"]
    assert len(_table(report, "mae").rows) == 3


def test_the_error_front_prefers_the_lower_error(mixed):
    table = _table(build_report(mixed), "mae")
    standing = {row.artifact_path.split("/")[-1]: row.pareto for row in table.rows}
    assert standing == {"fair.onnx": "yes", "best.onnx": "yes", "worst.onnx": "no"}
    worst = next(row for row in table.rows if row.artifact_path.endswith("worst.onnx"))
    assert worst.deployed.value == pytest.approx(np.mean(_errors(0.8, 3)))
    low, high = worst.deployed.ci95
    assert low < worst.deployed.value < high


@pytest.mark.parametrize("budgets", [{"budget_ms": 2.0}, {"budget_ms": 100.0, "device_budgets_ms": {"host": 2.0}}])
def test_the_budget_marks_the_regression_rows(mixed, budgets):
    table = _table(build_report(mixed, **budgets), "mae")
    assert table.budget_ms == 2.0
    assert {row.artifact_path.split("/")[-1]: row.budget for row in table.rows} == {
        "fair.onnx": "within", "best.onnx": "over", "worst.onnx": "over"}


def test_the_written_report_heads_the_error_column_and_plots_it(mixed, tmp_path):
    files = write_report(build_report(mixed, budget_ms=2.0), tmp_path)
    markdown = files.markdown.read_text()
    assert "MAE (lower is better) [95% CI]" in markdown and "top-1 % [95% CI]" in markdown
    assert "budget 2.00 ms" in markdown
    assert {path.name for path in files.plots} >= {"host-1t.png", "host-1t-mae.png"}
    frame = files.csv.read_text().splitlines()
    assert "metric,accuracy,accuracy_ci95_low,accuracy_ci95_high" in frame[0]
    assert sum(line.count(",mae,") for line in frame[1:]) == 3


def test_a_record_of_another_metric_is_not_joined(tmp_path):
    results = write_results(tmp_path, [bench_record("fair", latency_samples(1.0, 1), depth=6, output="regression")],
                            [accuracy_line("fair", 90.0)])
    report = build_report(results)
    assert report.tables[0].rows[0].deployed is None
    assert any("a top-1 record, but" in note and "declares MAE" in note for note in report.notes)


def test_paired_errors_are_compared_image_by_image():
    lower, higher = _errors(0.3, 2), _errors(0.5, 1)
    difference = paired_difference(-lower, -higher)
    assert difference.difference == pytest.approx(np.mean(higher) - np.mean(lower))
    assert 0 < difference.ci_low < difference.difference < difference.ci_high
    same = paired_difference(-lower, -lower)
    assert same.difference == same.ci_low == same.ci_high == 0


def test_the_mean_interval_narrows_with_more_images():
    few, many = mean_interval(_errors(0.5, 0)[:40]), mean_interval(_errors(0.5, 0))
    assert few[1] - few[0] > many[1] - many[0] > 0
