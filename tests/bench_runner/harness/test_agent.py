"""The portable agent, run as the separate process it is meant to be, and its loop in-process."""

import json
import os
import subprocess
import sys

import pytest

from bench_runner.harness import agent
from bench_runner.harness.python_agent import AGENT_SCRIPT


def run_agent(tmp_path, plan: dict) -> tuple[int, list[str], str]:
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    done = subprocess.run([sys.executable, str(AGENT_SCRIPT), str(plan_path)], capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout.splitlines(), done.stderr


def plan(artifacts, **overrides) -> dict:
    base = {"threads": 2, "warmup": 1, "runs": 4, "min_seconds": 0.0, "rounds": 3, "seed": 7, "artifacts": artifacts}
    return {**base, **overrides}


def spec(artifact_id, path, runtime="onnxruntime"):
    return {"id": artifact_id, "path": str(path), "runtime": runtime, "input_shape": [1, 16], "input_dtype": "float32"}


def test_onnx_artifacts_measured_with_a_broken_one_alongside(tmp_path, tiny_onnx, broken_onnx):
    code, lines, _ = run_agent(tmp_path, plan([spec("a", tiny_onnx), spec("bad", broken_onnx), spec("b", tiny_onnx)]))
    assert code == 0 and len(lines) == 1
    result = json.loads(lines[0])
    a, bad, b = result["artifacts"]
    assert bad["error"].startswith("loading or first inference failed") and bad["samples_ms"] == []
    for measured in (a, b):
        assert measured["error"] is None
        assert measured["threads_applied"] == 2
        # An ONNX Runtime session allocates: measured 10240 kB for the first, 104 kB for the second.
        assert measured["load_ms"] > 0 and measured["first_inference_ms"] > 0 and measured["memory_kb"] > 0
        assert len(measured["samples_ms"]) == len(measured["round_index"])
        for round_number in range(3):
            assert measured["round_index"].count(round_number) >= 4
    assert a["output_checksum"] == b["output_checksum"]
    assert [(e["round"], e["when"]) for e in result["environment"]] == [
        (r, w) for r in range(3) for w in ("before", "after")
    ]
    assert result["threads"] == 2 and result["peak_rss_kb"] > 0
    assert "onnxruntime" in result["runtime_versions"] and "torch" not in result["runtime_versions"]


def test_executorch_program_with_its_thread_pool_sized(tmp_path, tiny_pte, tiny_onnx):
    code, lines, stderr = run_agent(tmp_path, plan([spec("et", tiny_pte, "executorch"), spec("ort", tiny_onnx)], rounds=2))
    assert code == 0, stderr
    et, ort = json.loads(lines[0])["artifacts"]
    assert et["error"] is None and ort["error"] is None
    assert et["threads_applied"] == 2
    assert sorted(set(et["round_index"])) == [0, 1] and len(et["samples_ms"]) >= 8


def test_cpu_mask_pins_the_process(tmp_path, tiny_onnx):
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this OS")
    code, lines, _ = run_agent(tmp_path, plan([spec("a", tiny_onnx)], cpu_mask="1", rounds=1, threads=1))
    assert code == 0 and json.loads(lines[0])["affinity"] == [0]


def test_an_unreadable_plan_is_one_json_error_line(tmp_path):
    code, lines, _ = run_agent(tmp_path, {"threads": 1})
    assert code == 2 and len(lines) == 1 and "lacks" in json.loads(lines[0])["error"]


class RecordingModel:
    """Stands in for a runtime's session: records which artifact ran, in order."""

    log: list[str] = []

    def __init__(self, path, threads):
        self.path = path
        self.threads_applied = threads
        if path == "explodes-in-round-1":
            self.calls = 0

    def run(self, batch):
        RecordingModel.log.append(self.path)
        if self.path == "explodes-in-round-1":
            self.calls += 1
            if self.calls > 3:
                raise RuntimeError("boom")
        return [1.0]


RECORDING = agent.runtimes.Runtime("recording", (".rec",), "recording", (), lambda threads: None, RecordingModel)


def test_rounds_interleave_the_artifacts(monkeypatch):
    monkeypatch.setitem(agent.runtimes.RUNTIMES, "recording", RECORDING)
    RecordingModel.log = []
    artifacts = [{"id": x, "path": x, "runtime": "recording", "input_shape": [1]} for x in ("A", "B")]
    result = agent.run_plan(plan(artifacts, warmup=1, runs=2, rounds=2))
    # load + first inference each, then per round: A warm-up + 2 runs, B warm-up + 2 runs
    assert "".join(RecordingModel.log) == "AB" + "AAABBB" * 2
    assert result["artifacts"][0]["round_index"] == [0, 0, 1, 1]


def test_an_artifact_failing_mid_sweep_stops_alone(monkeypatch):
    monkeypatch.setitem(agent.runtimes.RUNTIMES, "recording", RECORDING)
    RecordingModel.log = []
    artifacts = [
        {"id": "bad", "path": "explodes-in-round-1", "runtime": "recording", "input_shape": [1]},
        {"id": "good", "path": "G", "runtime": "recording", "input_shape": [1]},
    ]
    bad, good = agent.run_plan(plan(artifacts, warmup=0, runs=1, rounds=4))["artifacts"]
    assert bad["error"].startswith("round 2 failed") and bad["samples_ms"] == []
    assert good["error"] is None and good["round_index"] == [0, 1, 2, 3]


def test_sysfs_readers_return_nothing_where_nothing_is_exposed(monkeypatch):
    monkeypatch.setattr(agent.glob, "glob", lambda pattern: [])
    assert agent.read_frequencies_khz() == [] and agent.read_thermal_c() == {}


def test_cpu_pressure_counter_is_read_from_the_some_line(tmp_path):
    pressure = tmp_path / "cpu"
    pressure.write_text(
        "some avg10=0.61 avg60=16.28 avg300=15.28 total=3140732252\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    assert agent.read_cpu_pressure_total_us(str(pressure)) == 3140732252
    assert agent.read_cpu_pressure_total_us(str(tmp_path / "absent")) is None
    pressure.write_text("full avg10=0.00 total=5\n")
    assert agent.read_cpu_pressure_total_us(str(pressure)) is None


@pytest.mark.skipif(not os.path.exists("/proc/pressure/cpu"), reason="this kernel exposes no CPU pressure")
def test_the_host_agent_reads_cpu_pressure_around_each_round(tiny_onnx):
    from bench_runner.devices.host import HostDevice
    from bench_runner.harness.base import RunSettings, Variant
    from bench_runner.harness.python_agent import PythonAgentHarness
    from bench_runner.stats import cpu_pressure

    device = HostDevice()
    try:
        (timing,) = PythonAgentHarness().measure(
            device, [Variant("a", tiny_onnx, "onnxruntime", (1, 16))],
            RunSettings(threads=1, warmup=1, runs=3, min_seconds=0.0, rounds=2),
        )
    finally:
        device.cleanup()
    assert timing.ok, timing.error
    assert all(isinstance(r.cpu_pressure_total_us, int) and isinstance(r.clock_us, int) for r in timing.environment)
    pressure = cpu_pressure(timing.environment)
    assert pressure.rounds == (0, 1) and all(0.0 <= share <= 1.0 for share in pressure.round_shares)
