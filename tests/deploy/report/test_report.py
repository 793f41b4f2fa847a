"""The Pareto reporter on records built in code: join, front, speed-up, files, labels, errors."""

import dataclasses
import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from bench_runner.harness.base import ToolAggregate
from bench_runner.protocol import AGGREGATE_NOTE
from bench_runner.records import BenchRecord
from bench_runner.stats import LatencyStats
from deploy.cli import main
from deploy.report import ReportError, build_report, markdown_for_device, write_report
from tests.deploy.report.results import (
    DATASET, QEMU_CPU, accuracy_line, bench_record, latency_samples, row, sha_of, write_results,
)

@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    """Host and an emulated CPU; a dominated row, a tied pair, an int8 row, a simulated-only row."""
    root = tmp_path_factory.mktemp("results")
    base = latency_samples(10.0, seed=1)
    records = []
    for device, emulated, scale in (("host", False, 1.0), ("qemu-arm64", True, 300.0)):
        def scaled(samples):
            return [s * scale for s in samples]
        records += [
            bench_record("d12-fp32", scaled(base), depth=12, device=device, emulated=emulated),
            bench_record("d12-int8", scaled(latency_samples(5.0, seed=2)), depth=12, quant="int8", device=device,
                         emulated=emulated),
            # depth 6: the same latency samples as d12-int8, less accurate: a tie, not ranked.
            bench_record("d6-fp32", scaled(latency_samples(5.0, seed=2)), depth=6, device=device, emulated=emulated),
            # depth 3: slower than d12-int8 beyond both intervals and less accurate: off the front.
            bench_record("d3-fp32", scaled(latency_samples(8.0, seed=3)), depth=3, device=device, emulated=emulated),
            # depth 4: only simulated accuracy.
            bench_record("d4-int8", scaled(latency_samples(4.0, seed=4)), depth=4, quant="int8", device=device,
                         emulated=emulated),
        ]
    accuracy = [
        accuracy_line("d12-fp32", 0.978, unit="fraction"),
        accuracy_line("d12-int8", 97.2),
        accuracy_line("d12-int8", 97.9, kind="simulated"),
        accuracy_line("d6-fp32", 96.9),
        accuracy_line("d3-fp32", 95.0),
        accuracy_line("d4-int8", 96.0, kind="simulated"),
    ]
    return write_results(root, records, accuracy)


@pytest.fixture(scope="module")
def demo_report(demo_results):
    return build_report(demo_results)


@pytest.fixture(scope="module")
def written(demo_report, tmp_path_factory):
    return write_report(demo_report, tmp_path_factory.mktemp("report"))


def test_deployed_accuracy_is_joined_by_artifact_sha256_in_percent(demo_report):
    assert row(demo_report, "vit_tiny depth=12/onnx/fp32").deployed.value == pytest.approx(97.8)  # unit fraction
    assert row(demo_report, "vit_tiny depth=12/onnx/int8").deployed.value == pytest.approx(97.2)
    assert demo_report.dataset == DATASET


def test_simulated_accuracy_never_fills_the_deployed_column(demo_report):
    simulated_only = row(demo_report, "vit_tiny depth=4/onnx/int8")
    assert simulated_only.deployed is None
    assert simulated_only.simulated.value == pytest.approx(96.0)
    assert simulated_only.pareto == "n/a"
    both = row(demo_report, "vit_tiny depth=12/onnx/int8")
    assert both.deployed.value == pytest.approx(97.2)
    assert both.simulated.value == pytest.approx(97.9)


def test_simulated_accuracy_has_its_own_markdown_column(demo_report):
    text = markdown_for_device(demo_report, "host")
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    headers = [cell.strip() for cell in lines[0].strip("|").split("|")]
    deployed = headers.index("top-1 % [95% CI]")
    simulated = next(i for i, h in enumerate(headers) if "simulated" in h and "not deployed" in h)
    simulated_row = next(line for line in lines if line.startswith("| vit_tiny depth=4 "))
    cells = [cell.strip() for cell in simulated_row.strip("|").split("|")]
    assert cells[deployed] == ""
    assert cells[simulated] == "96.0 [93.6, 97.7]"


def test_front_on_records_dominated_tie_and_front(demo_report):
    assert row(demo_report, "vit_tiny depth=12/onnx/fp32").pareto == "yes"  # most accurate
    assert row(demo_report, "vit_tiny depth=12/onnx/int8").pareto == "yes"
    tied = row(demo_report, "vit_tiny depth=6/onnx/fp32")
    assert tied.pareto == "tie"
    assert tied.pareto_others == ("vit_tiny depth=12/onnx/int8",)
    dominated = row(demo_report, "vit_tiny depth=3/onnx/fp32")
    assert dominated.pareto == "no"
    assert "vit_tiny depth=12/onnx/int8" in dominated.pareto_others


def test_speedup_against_the_default_baseline_the_first_models_fp32_row(demo_report):
    table = next(t for t in demo_report.tables if t.device_name == "host")
    assert table.baseline == "vit_tiny depth=12/onnx/fp32"
    assert row(demo_report, "vit_tiny depth=12/onnx/fp32").speedup == 1.0
    faster = row(demo_report, "vit_tiny depth=12/onnx/int8")
    expected = np.median([s for s in latency_samples(10.0, seed=1)]) / np.median(latency_samples(5.0, seed=2))
    assert faster.speedup == pytest.approx(expected)
    assert faster.speedup_ci_low < faster.speedup < faster.speedup_ci_high


def test_named_baseline_by_label_or_model_and_unknown_baseline(demo_results):
    by_label = build_report(demo_results, baseline="vit_tiny depth=3/onnx/fp32")
    assert row(by_label, "vit_tiny depth=3/onnx/fp32").speedup == 1.0
    assert row(by_label, "vit_tiny depth=12/onnx/fp32").speedup < 1.0
    by_model = build_report(demo_results, baseline="vit_tiny depth=4")
    assert by_model.tables[0].baseline == "vit_tiny depth=4/onnx/int8"  # no fp32 row: the model's only row
    with pytest.raises(ReportError, match="matches no measured row"):
        build_report(demo_results, baseline="resnet50")


def test_emulated_devices_are_labelled_in_every_table_heading(demo_report):
    qemu = markdown_for_device(demo_report, "qemu-arm64")
    assert qemu.startswith("## qemu-arm64 (emulated Cortex-A76: relative timings only, not a phone's latency), 1 thread")
    host = markdown_for_device(demo_report, "host")
    assert "emulated" not in host.splitlines()[0]


def test_report_files_md_csv_html_and_plots_are_written(written):
    assert written.markdown.read_text().count("## ") == 4  # two devices, the cross-device table's two forms
    assert "vit_tiny depth=6/onnx/fp32" in written.csv.read_text()
    assert written.samples_csv.read_text().count("\n") == 1 + 2 * (5 * 60)
    assert sorted(p.name for p in written.plots) == ["host-1t.png", "host-1t.svg", "qemu-arm64-1t.png", "qemu-arm64-1t.svg"]
    for path in written.plots:
        data = path.read_bytes()
        assert len(data) > 1000
        assert data.startswith(b"\x89PNG") if path.suffix == ".png" else b"<svg" in data


def test_emulated_label_is_in_markdown_html_and_plot_titles(written):
    label = "emulated Cortex-A76: relative timings only, not a phone's latency"
    assert label in written.markdown.read_text()
    assert label.replace("'", "&#x27;") in written.html.read_text()
    svg = next(p for p in written.plots if p.name == "qemu-arm64-1t.svg").read_text()
    assert "emulated Cortex-A76: relative timings only, not a phone" in svg.replace("&#x27;", "'")
    assert "emulated" not in next(p for p in written.plots if p.name == "host-1t.svg").read_text()


class _References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.references = []
        self.tags = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.references += [value for name, value in attrs if name in ("src", "href", "xlink:href", "data", "action")]


def test_html_page_is_self_contained(written):
    page = written.html.read_text()
    parser = _References()
    parser.feed(page)
    assert parser.references, "the page should embed its plots"
    assert all(ref.startswith(("data:", "#")) for ref in parser.references)
    assert not parser.tags & {"link", "script", "iframe"}
    assert "url(" not in page and "@import" not in page
    assert "<table>" in page and page.count('src="data:image/svg+xml;base64,') == 2


def test_provenance_names_device_settings_toolchain_and_samples(demo_report):
    text = markdown_for_device(demo_report, "qemu-arm64")
    assert QEMU_CPU in text and "EMULATED" in text
    assert "warm-up 3 runs per round" in text and "3 interleaved rounds" in text
    assert "onnxruntime 1.23.0" in text and "torch 2.13.0" in text
    assert "| 60 |" in text


def test_repetitions_are_pooled_from_raw_samples(tmp_path):
    first, second = latency_samples(10.0, seed=5, n=40), latency_samples(11.0, seed=6, n=50)
    write_results(tmp_path, [bench_record("a", first), bench_record("a", second, repetition=1)])
    pooled = row(build_report(tmp_path), "vit_tiny/onnx/fp32")
    reference = LatencyStats.from_samples(first + second)
    assert (pooled.stats.n, pooled.repetitions) == (90, 2)
    assert pooled.stats.p50_ms == reference.p50_ms
    assert (pooled.stats.ci95_low_ms, pooled.stats.ci95_high_ms) == (reference.ci95_low_ms, reference.ci95_high_ms)
    assert "(2 reps)" in markdown_for_device(build_report(tmp_path), "host")


def test_without_accuracy_the_table_is_latency_only_and_unplotted(tmp_path):
    write_results(tmp_path, [bench_record("a", latency_samples(10.0, 1)), bench_record("b", latency_samples(5.0, 2), depth=6)])
    report = build_report(tmp_path)
    text = markdown_for_device(report, "host")
    assert "Pareto" not in text.splitlines()[2] and "top-1" not in text.splitlines()[2]
    assert "latency only, no Pareto front" in text
    assert write_report(report, tmp_path / "out").plots == ()


def test_failed_records_are_listed_not_tabled(tmp_path):
    write_results(tmp_path, [bench_record("a", latency_samples(10.0, 1)),
                             bench_record("b", (), status="failed", error="XNNPACK delegate crashed\ntrace")])
    text = markdown_for_device(build_report(tmp_path), "host")
    assert "Failed, not in the table" in text and "XNNPACK delegate crashed" in text and "trace" not in text


def test_unverified_artifacts_are_named(tmp_path):
    write_results(tmp_path, [bench_record("a", latency_samples(10.0, 1)),
                             bench_record("b", latency_samples(9.0, 2), depth=6, verified=False)])
    text = markdown_for_device(build_report(tmp_path), "host")
    assert "Verification against the eager model failed: vit_tiny depth=6/onnx/fp32." in text
    assert "depth=12/onnx/fp32." not in text


def test_manifest_facts_come_from_the_typed_manifest_or_not_at_all():
    from deploy.report.inputs import manifest_facts

    record = bench_record("a", latency_samples(10.0, 1))
    facts = manifest_facts(record.manifest)
    assert (facts.model_name, facts.params, facts.verified) == ("vit_tiny", 1_350_012, "passed")
    pending = {**record.manifest, "verification": {"status": "pending-macos", "passed": None,
                                                  "spec_check": {"passed": True, "problems": []}}}
    assert manifest_facts(pending).verified == "pending-macos"
    incomplete = {key: value for key, value in record.manifest.items() if key != "sha256"}
    assert manifest_facts(incomplete) == manifest_facts({})
    assert manifest_facts({}).params is None and manifest_facts({}).model_name is None


def test_a_results_dir_without_records_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="holds no benchmark records"):
        build_report(tmp_path)
    with pytest.raises(ReportError, match="does not exist"):
        build_report(tmp_path / "missing")


def test_only_failed_records_is_a_clear_error(tmp_path):
    write_results(tmp_path, [bench_record("b", (), status="failed", error="device vanished")])
    with pytest.raises(ReportError, match="failed, nothing to report: device vanished"):
        build_report(tmp_path)


def test_malformed_accuracy_line_names_file_and_line(tmp_path):
    write_results(tmp_path, [bench_record("a", latency_samples(10.0, 1))],
                  [accuracy_line("a", 97.0), json.dumps({"artifact_sha256": sha_of("a"), "kind": "deployed"})])
    with pytest.raises(ReportError, match=r"accuracy.jsonl:2: accuracy record lacks dataset"):
        build_report(tmp_path)


def test_deployed_accuracy_must_name_its_artifact_but_simulated_may_not(tmp_path):
    anonymous = json.loads(accuracy_line("a", 96.0, kind="simulated"))
    anonymous["artifact_sha256"] = None
    write_results(tmp_path, [bench_record("a", latency_samples(10.0, 1))], [accuracy_line("a", 97.0), json.dumps(anonymous)])
    report = build_report(tmp_path)
    assert row(report, "vit_tiny/onnx/fp32").simulated is None
    assert any("name no artifact" in note and "accuracy.jsonl:2" in note for note in report.notes)
    anonymous["kind"] = "deployed"
    (tmp_path / "accuracy.jsonl").write_text(json.dumps(anonymous) + "\n")
    with pytest.raises(ReportError, match="must name its artifact_sha256"):
        build_report(tmp_path)


def test_several_data_sets_need_a_choice(tmp_path):
    write_results(tmp_path, [bench_record("a", latency_samples(10.0, 1))],
                  [accuracy_line("a", 97.0), accuracy_line("a", 71.0, dataset="imagenet val (50000 images)")])
    with pytest.raises(ReportError, match="--dataset"):
        build_report(tmp_path)
    chosen = build_report(tmp_path, dataset="imagenet val (50000 images)")
    assert row(chosen, "vit_tiny/onnx/fp32").deployed.value == pytest.approx(71.0)


def test_accuracy_file_outside_the_results_dir(tmp_path):
    results = write_results(tmp_path / "results", [bench_record("a", latency_samples(10.0, 1))])
    extra = tmp_path / "eval.jsonl"
    extra.write_text(accuracy_line("a", 0.5, unit="fraction") + "\n")
    assert row(build_report(results, accuracy=[extra]), "vit_tiny/onnx/fp32").deployed.value == pytest.approx(50.0)


def test_cli_writes_the_report_and_prints_the_tables(tmp_path, capsys):
    write_results(tmp_path, [bench_record("a", latency_samples(10.0, 1))], [accuracy_line("a", 97.0)])
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "## host, 1 thread" in printed and "97.0" in printed
    assert (tmp_path / "out" / "report.html").is_file()


def test_cli_reports_an_empty_results_dir_as_an_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "holds no benchmark records" in capsys.readouterr().err


def aggregate_bench_record(artifact: str, means, *, device="host", threads=1, repetition=0, stable=None,
                           note=AGGREGATE_NOTE) -> BenchRecord:
    """A record of a tool that printed only a mean and trimmed mean per round (e.g. the benchmark app)."""
    aggregate = ToolAggregate(source="ExecuTorch benchmark app benchmark_results.json", round_runs=(10,) * len(means),
                              round_means_ms=tuple(means), round_trimmed_means_ms=tuple(m - 0.5 for m in means),
                              load_ms=52.0)
    base = bench_record(artifact, latency_samples(1.0, seed=0), backend="executorch", repetition=repetition,
                        device=device, threads=threads)
    return dataclasses.replace(
        base, harness="executorch-benchmark-app", stats=None, stable=stable, stability_note=note, samples_ms=(),
        round_index=(), load_ms=52.0, aggregate=aggregate,
    )


@pytest.fixture(scope="module")
def mixed_report(tmp_path_factory):
    """Two sampled rows with accuracy, and an aggregate-only record that is faster than both and more accurate."""
    root = tmp_path_factory.mktemp("mixed")
    records = [
        bench_record("a", latency_samples(10.0, seed=1)),
        bench_record("b", latency_samples(8.0, seed=2), depth=6),
        aggregate_bench_record("app", (2.0, 2.2)),
        aggregate_bench_record("app", (2.4,), repetition=1),
    ]
    write_results(root, records, [accuracy_line("a", 97.0), accuracy_line("b", 96.0), accuracy_line("app", 99.0)])
    report = build_report(root)
    return report, write_report(report, root / "out")


def test_aggregate_records_stay_out_of_the_pareto_table(mixed_report):
    report, _ = mixed_report
    (table,) = report.tables
    assert sha_of("app") not in {r.artifact_sha256 for r in table.rows}
    # "app" is faster and more accurate than both: had it been ranked, neither would be on the front.
    assert [r.pareto for r in table.rows] == ["yes", "yes"]
    (aggregates,) = report.aggregate_tables
    (row_,) = aggregates.rows
    pooled = row_.aggregate
    assert pooled.runs == 30 and pooled.mean_ms == pytest.approx((10 * 2.0 + 10 * 2.2 + 10 * 2.4) / 30)
    assert pooled.trimmed_mean_ms == pytest.approx(pooled.mean_ms - 0.5)
    assert row_.repetitions == 2 and report.devices == ("host",)


def test_aggregate_table_in_markdown_and_html_says_what_it_is(mixed_report):
    report, files = mixed_report
    text = markdown_for_device(report, "host")
    pareto_part, aggregate_part = text.split("## host: from the tool's aggregate")
    assert "vit_tiny/executorch" not in pareto_part and "2.20" not in pareto_part
    assert "| mean ms | trimmed mean ms | runs | load ms |" in aggregate_part
    assert "| 2.20 | 1.70 | 30 | 52.0 |" in aggregate_part
    assert "p50" not in aggregate_part.split("- ")[0]
    assert "no raw samples, no interval" in aggregate_part and "run-weighted mean" in aggregate_part
    assert "Source: ExecuTorch benchmark app benchmark_results.json." in aggregate_part
    page = files.html.read_text()
    assert 'id="host-aggregates"' in page and "from the tool&#x27;s aggregate" in page
    assert files.markdown.read_text().count("## ") == 4  # the device table, the aggregates, the two across devices


def test_report_csv_carries_aggregates_apart_from_p50s(mixed_report):
    _, files = mixed_report
    frame = pd.read_csv(files.csv)
    app = frame[frame["latency_from"] == "tool aggregate"]
    assert len(app) == 1 and app["pareto"].item() == "not ranked"
    assert app["aggregate_mean_ms"].item() == pytest.approx(2.2) and app["aggregate_runs"].item() == 30
    assert bool(app["aggregate_trimmed_mean_pooled"].item())
    assert app[["p50_ms", "ci95_low_ms", "mean_ms", "n", "speedup"]].isna().all(axis=None)
    assert set(frame.loc[frame["latency_from"] == "raw samples", "aggregate_mean_ms"].isna()) == {True}


def test_a_report_of_aggregates_only_and_a_flagged_one(tmp_path):
    write_results(tmp_path, [
        aggregate_bench_record("app", (2.0,)),
        aggregate_bench_record("app2", (3.0,), stable=False,
                               note=f"{AGGREGATE_NOTE}; CPU pressure 54% of the time, over 10%: other work competed"),
    ])
    report = build_report(tmp_path)
    assert report.tables == () and len(report.aggregate_tables) == 1
    text = markdown_for_device(report, "host")
    assert "3.00 †" in text and "† vit_tiny/executorch/fp32 @" in text
    assert "fp32 @" + sha_of("app2")[:8] + ": CPU pressure 54% of the time" in text
    assert "2.00 †" not in text
    with pytest.raises(ReportError, match=r"host \(tool aggregates\)"):
        markdown_for_device(report, "phone")
    files = write_report(report, tmp_path / "out")
    assert files.plots == () and "from the tool's aggregate" in files.markdown.read_text()
