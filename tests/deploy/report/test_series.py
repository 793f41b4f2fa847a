"""Models that differ only in their key/value heads are put side by side: params, MACs and
p50 against kv_heads, each against the model with the most heads."""

from deploy.report import build_report, write_report
from deploy.report.cells import series_cells
from tests.deploy.report.results import bench_record, latency_samples, write_results


def test_models_differing_in_kv_heads_form_a_series_and_others_stay_out(tmp_path):
    records = [bench_record("heads3", latency_samples(3.0, 0)),
               bench_record("heads1", latency_samples(2.0, 1), kv_heads=1),
               bench_record("deep", latency_samples(5.0, 2), depth=6, kv_heads=1),
               bench_record("heads1-arm", latency_samples(400.0, 3), kv_heads=1, device="qemu-arm64", emulated=True),
               bench_record("heads3-arm", latency_samples(500.0, 4), device="qemu-arm64", emulated=True)]
    report = build_report(write_results(tmp_path, records))
    [series] = report.series
    assert series.field == "kv_heads" and [point.value for point in series.points] == [3, 1]
    headers, cells = series_cells(series)
    assert headers[:4] == ["kv_heads", "model", "params", "MACs"] and len(headers) == 6
    assert [line[0] for line in cells] == ["3", "1"]
    assert cells[1][4:] == ["2.00 (0.67x)", "400 (0.80x)"]  # host first, then the emulated CPU
    assert "(" not in "".join(cells[0][4:])  # the reference has no ratio
    files = write_report(report, tmp_path / "report")
    assert "## Latency and parameters against kv_heads" in files.markdown.read_text()
    assert 'id="series-kv_heads"' in files.html.read_text()


def test_no_series_without_two_values_of_the_field(tmp_path):
    records = [bench_record("a", latency_samples(3.0, 0)), bench_record("b", latency_samples(2.0, 1), depth=6)]
    assert build_report(write_results(tmp_path, records)).series == ()
