import json
from pathlib import Path

import pytest

from bench_runner.devices.base import CommandResult
from bench_runner.devices.host import HostDevice
from bench_runner.harness.base import HarnessError, RunSettings, Variant
from bench_runner.harness.python_agent import PythonAgentHarness, parse_agent_result

VARIANTS = [Variant("a", Path("a.onnx"), "onnxruntime", (1, 16)), Variant("b", Path("b.onnx"), "onnxruntime", (1, 16))]


def agent_line(**overrides) -> str:
    output = {
        "agent": 1,
        "threads": 1,
        "peak_rss_kb": 5000,
        "runtime_versions": {"onnxruntime": "1.2.3"},
        "environment": [{"round": 0, "when": "before", "frequencies_khz": [1800000], "thermal_c": {"cpu": 40.5}}],
        "artifacts": [
            {"id": "a", "runtime": "onnxruntime", "samples_ms": [1.5, 1.25], "round_index": [0, 0], "load_ms": 3.0,
             "first_inference_ms": 2.0, "memory_kb": 700, "output_checksum": 0.5, "threads_applied": 1, "error": None},
            {"id": "b", "runtime": "onnxruntime", "samples_ms": [], "round_index": [], "error": "bad model"},
        ],
    }
    return json.dumps({**output, **overrides})


def test_parse_maps_each_variant_to_its_timing():
    noisy_stdout = "device banner\n" + agent_line() + "\n"
    a, b = parse_agent_result(CommandResult(0, noisy_stdout, ""), VARIANTS, threads=1)
    assert a.ok and a.samples_ms == (1.5, 1.25) and a.round_index == (0, 0)
    assert (a.load_ms, a.first_inference_ms, a.peak_rss_kb, a.memory_kb) == (3.0, 2.0, 5000, 700)
    assert a.environment[0].frequencies_khz == (1800000,) and a.environment[0].thermal_c == {"cpu": 40.5}
    assert a.runtime_versions == {"onnxruntime": "1.2.3"} and a.harness == "python-agent"
    assert not b.ok and b.error == "bad model" and b.samples_ms == ()


def test_a_variant_the_agent_left_out_is_a_failed_timing():
    extra = [*VARIANTS, Variant("c", Path("c.onnx"), "onnxruntime", (1, 16))]
    assert parse_agent_result(CommandResult(0, agent_line(), ""), extra, threads=1)[2].error == "the agent did not report it"


def test_a_thread_count_the_runtime_did_not_take_fails_the_variant():
    a, _ = parse_agent_result(CommandResult(0, agent_line(), ""), VARIANTS, threads=4)
    assert a.error == "asked the runtime for 4 threads but it uses 1" and a.samples_ms == ()


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (CommandResult(139, "", "Traceback\nSegmentation fault\n"), r"(?s)printed no result \(exit code 139\).*Segmentation fault"),
        (CommandResult(1, '{"error": "agent failed: OSError"}', ""), "the Python agent failed: agent failed: OSError"),
        (CommandResult(0, "{not json", ""), "unreadable JSON"),
    ],
)
def test_a_failed_agent_is_a_harness_error(result, message):
    with pytest.raises(HarnessError, match=message):
        parse_agent_result(result, VARIANTS, threads=1)


def test_measures_on_the_host_in_a_separate_process(tiny_onnx, broken_onnx):
    device = HostDevice()
    harness = PythonAgentHarness()
    variants = [Variant("ok", tiny_onnx, "onnxruntime", (1, 16)), Variant("bad", broken_onnx, "onnxruntime", (1, 16))]
    settings = RunSettings(threads=1, warmup=1, runs=3, min_seconds=0.0, rounds=2)
    try:
        harness.prepare(device)
        ok, bad = harness.measure(device, variants, settings)
        again, _ = harness.measure(device, variants, settings)
        pushed = sorted(p.name for p in Path(device.workdir).iterdir())
    finally:
        device.cleanup()
    assert ok.ok and len(ok.samples_ms) >= 6 and set(ok.round_index) == {0, 1}
    assert not bad.ok and "broken.onnx" in bad.error
    assert again.ok
    # the agent, its runtimes module and each artifact are pushed once; every call has its own plan
    assert pushed == ["agent.py", "artifact-0-tiny.onnx", "artifact-1-broken.onnx", "plan-1.json", "plan-2.json",
                      "vitdeploy_runtimes.py"]
    assert not Path(device.workdir).exists()
