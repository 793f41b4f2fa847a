"""`vitdeploy bench` and `vitdeploy devices` end to end on the host with a tiny ONNX model."""

import pandas as pd
import pytest

from bench_runner.store import ResultsStore
from deploy.cli import main
from tests.bench_runner.tiny_artifacts import write_tiny_onnx
from tests.manifests import write_test_manifest

FAST = ["--warmup", "1", "--runs", "6", "--rounds", "2", "--min-seconds", "0", "--threads", "1,2"]


@pytest.fixture
def artifact(tmp_path):
    path = write_tiny_onnx(tmp_path / "tiny.onnx")
    write_test_manifest(path, model={"name": "tiny_mlp"}, input_shape=(1, 16))
    return path


def test_bench_appends_records_and_prints_the_table(tmp_path, artifact, capsys):
    results = tmp_path / "store"
    assert main(["bench", str(artifact), "--results", str(results), *FAST]) == 0
    out = capsys.readouterr().out
    assert "p50 ms" in out and "tiny_mlp" in out and "2 record(s) appended" in out
    records = ResultsStore(results).load()
    assert [(r.model, r.backend, r.quant, r.threads, r.device_kind) for r in records] == [
        ("tiny_mlp", "onnx", "fp32", 1, "host"),
        ("tiny_mlp", "onnx", "fp32", 2, "host"),
    ]
    assert all(r.ok and r.stats.n >= 6 and not r.emulated for r in records)


def test_resume_measures_only_what_is_missing_and_csv_exports(tmp_path, artifact, capsys):
    results = tmp_path / "store"
    assert main(["bench", str(artifact), "--results", str(results), *FAST[:-1], "1"]) == 0
    assert main(["bench", str(artifact), "--results", str(results), *FAST, "--resume", "--csv", str(tmp_path / "all.csv")]) == 0
    out = capsys.readouterr().out
    assert "1 record(s) appended" in out
    assert sorted(pd.read_csv(tmp_path / "all.csv")["threads"]) == [1, 2]


def test_a_broken_artifact_fails_its_record_and_the_exit_status(tmp_path, artifact, capsys):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"garbage")
    code = main(["bench", str(artifact), str(broken), "--input-shape", "1,16", "--results", str(tmp_path / "s"), *FAST[:-1], "1"])
    assert code == 1
    assert "failed: loading or first inference failed" in capsys.readouterr().out
    assert [r.status for r in ResultsStore(tmp_path / "s").load()] == ["ok", "failed"]


def test_user_mistakes_are_plain_errors(tmp_path, artifact, capsys):
    assert main(["bench", str(artifact), "--device", "no-such-phone", "--results", str(tmp_path)]) == 2
    assert main(["bench", str(artifact), "--runs", "0", "--results", str(tmp_path)]) == 2
    unshaped = write_tiny_onnx(tmp_path / "bare.onnx")
    assert main(["bench", str(unshaped), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no device profile named 'no-such-phone'" in err and "runs must be an integer >= 1" in err and "--input-shape" in err


def test_devices_lists_the_host_and_the_profiles(tmp_path, capsys):
    (tmp_path / "bench-box.toml").write_text('kind = "host"\ndescription = "the lab machine"\n')
    (tmp_path / "typo.toml").write_text('kind = "host"\nthread = 1\n')
    assert main(["devices", "--profiles", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "host        bench-box" in out and "ready" in out
    assert "the lab machine" in out
    assert "invalid: " in out and "typo.toml: thread: unknown key" in out


def test_devices_setup_builds_the_emulated_cpu_in_the_user_cache(tmp_path, monkeypatch, capsys):
    from bench_runner.devices import qemu_setup

    calls = []

    def fake_setup(cache_root, log=print):
        calls.append(cache_root)
        return qemu_setup.QemuEnvironment(
            root=cache_root / "qemu-arm64", qemu=tmp_path / "qemu", sysroot=tmp_path, python=tmp_path / "python",
            site_dir=tmp_path, versions={"qemu": "7.2", "python": "3.11"},
        )

    monkeypatch.setenv("VITDEPLOY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(qemu_setup, "setup_qemu_arm64", fake_setup)
    assert main(["devices", "setup", "qemu-arm64"]) == 0
    assert calls == [tmp_path / "cache"]
    assert "qemu-arm64 ready" in capsys.readouterr().out


def test_console_shows_aggregate_records_in_their_own_table_never_as_p50s():
    from dataclasses import replace

    from bench_runner.protocol import AGGREGATE_NOTE
    from deploy.commands.bench import format_table
    from tests.bench_runner.test_store import aggregate_record, make_record

    flagged = replace(aggregate_record("k-hot"), artifact_path="/a/hot.pte", stable=False,
                      stability_note=f"{AGGREGATE_NOTE}; CPU pressure 54% of the time, over 10%: other work competed")
    text = format_table([make_record("k1"), aggregate_record(), flagged])
    samples_part, aggregate_part = text.split("from the tool's aggregate on host")
    assert "p50 ms" in samples_part and len(samples_part.strip().splitlines()) == 2
    assert "p50" not in aggregate_part.split("not comparable with p50s)")[1]
    lines = aggregate_part.strip().splitlines()
    assert "mean ms" in lines[1] and "trimmed mean ms" in lines[1] and "runs" in lines[1]
    assert lines[2].split()[-3:] == ["19.200", "19.050", "50"]
    assert "unstable: CPU pressure 54%" in lines[3] and "statistics from" not in lines[3]
    assert "source: ExecuTorch benchmark app benchmark_results.json" in aggregate_part
    assert "run-weighted mean of each round's trimmed mean" in aggregate_part
