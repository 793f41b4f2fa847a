"""`vitdeploy demo --quick` runs the whole pipeline: train, lower, verify, evaluate,
measure on the host and the emulated ARM64 CPU, report; a second run resumes."""

import csv
import json

import pytest

from bench_runner.store import ResultsStore
from deploy.cli import main

pytestmark = [pytest.mark.qemu, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    results = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--results", str(results)]) == 0
    return results


def test_every_artifact_is_verified_and_evaluated(demo_results):
    manifests = sorted((demo_results / "artifacts").glob("*/*.manifest.json"))
    assert {m.parent.name for m in manifests} == {"vit-12x1", "rep-3x4"}
    assert len(manifests) == 4
    accuracy = [json.loads(line) for line in (demo_results / "accuracy.jsonl").read_text().splitlines()]
    for path in manifests:
        manifest = json.loads(path.read_text())
        assert manifest["verification"]["passed"] is True
        assert manifest["model"]["label"] == path.parent.name
        assert [row["kind"] for row in accuracy if row["artifact_sha256"] == manifest["sha256"]] == ["deployed"]
    merged = json.loads(next((demo_results / "artifacts" / "rep-3x4").glob("*.onnx.manifest.json")).read_text())
    assert merged["reparameterized"] and merged["model"]["spec"]["branches"] == 1


def test_report_has_host_and_labelled_emulated_tables(demo_results):
    markdown = (demo_results / "report" / "report.md").read_text()
    assert "## host, 1 thread" in markdown
    assert "qemu-arm64 (emulated" in markdown and "not a phone's latency" in markdown
    assert (demo_results / "report" / "report.html").stat().st_size > 0


def test_every_number_traces_to_raw_samples(demo_results):
    records = [r for r in ResultsStore(demo_results / "store").load() if r.ok]
    assert {r.device_name for r in records} == {"host", "qemu-arm64"}
    # ExecuTorch runs on the emulated CPU through vitdeploy's native runner, beside ONNX.
    emulated = {(r.backend, r.harness) for r in records if r.device_name == "qemu-arm64"}
    assert emulated == {("executorch", "vitdeploy-runner"), ("onnx", "python-agent")}
    with (demo_results / "report" / "raw_samples.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sum(len(r.samples_ms) for r in records)
    assert all(r.stats.n == len(r.samples_ms) for r in records)


def test_second_run_resumes_without_measuring_again(demo_results):
    before = len(ResultsStore(demo_results / "store").load())
    assert main(["demo", "--quick", "--results", str(demo_results)]) == 0
    assert len(ResultsStore(demo_results / "store").load()) == before
    assert len((demo_results / "accuracy.jsonl").read_text().splitlines()) == 4
