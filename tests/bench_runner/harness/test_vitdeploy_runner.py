"""vitdeploy's native runner as a harness: chosen for `.pte` on the emulated CPU, run for
real on the host and under QEMU through the protocol."""

import shutil

import pytest

from bench_runner.harness import harness_for
from bench_runner.harness.vitdeploy_runner import HARNESS_NAME, cpu_list, runner_argv
from bench_runner.profiles import find_profile
from bench_runner.protocol import MeasurementSettings, run_on_profile
from bench_runner.records import ArtifactInfo
from tests.bench_runner.tiny_artifacts import TINY_INPUT_SHAPE, write_tiny_onnx, write_tiny_pte

SETTINGS = MeasurementSettings(threads=(1,), warmup=1, runs=4, min_seconds=0.0, rounds=2, timeout_seconds=600)
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed (apt-get install -y g++)")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("artifacts")
    pte, onnx = write_tiny_pte(folder / "tiny.pte"), write_tiny_onnx(folder / "tiny.onnx")
    return [ArtifactInfo.from_path(path, input_shape=TINY_INPUT_SHAPE) for path in (pte, onnx)]


def test_a_cpu_mask_becomes_the_runners_cpu_list():
    assert cpu_list(None) is None and cpu_list("0x3") == "0,1" and cpu_list("f0") == "4,5,6,7"
    assert runner_argv(["r"], "m.pte", 2, 5, 1, "0x2")[-2:] == ["--cpu-list", "1"]


def test_the_emulated_cpu_runs_pte_with_the_native_runner_the_host_with_the_agent():
    assert harness_for(find_profile("qemu-arm64"), "executorch") == HARNESS_NAME
    assert harness_for(find_profile("qemu-arm64"), "onnxruntime") == "python-agent"
    assert harness_for(find_profile("host"), "executorch") == "python-agent"


@needs_gxx
def test_the_host_measures_a_pte_with_the_native_runner_when_asked(artifacts):
    from bench_runner.devices import open_device

    profile = find_profile("host")
    device = open_device(profile)
    try:
        (record,) = run_on_profile(device, profile, artifacts[:1], SETTINGS, harness_name=HARNESS_NAME)
    finally:
        device.cleanup()
    assert record.ok, record.error
    assert record.harness == HARNESS_NAME and len(record.samples_ms) == 4 and record.round_index == (0, 0, 1, 1)
    assert record.load_ms > 0 and record.peak_rss_kb > 0 and record.output_checksum is not None


@pytest.mark.qemu
def test_the_emulated_cpu_measures_pte_and_onnx(artifacts, tmp_path):
    from bench_runner.devices import open_device
    from bench_runner.devices.qemu_setup import setup_qemu_arm64
    from vitdeploy.user_cache import user_cache_dir

    env = setup_qemu_arm64(user_cache_dir(), log=lambda line: None)
    if env.executorch_root is None:
        pytest.skip("no aarch64 cross compiler: install g++-aarch64-linux-gnu and run `vitdeploy devices setup qemu-arm64`")
    broken = tmp_path / "broken.pte"
    broken.write_bytes(b"not a program")
    profile = find_profile("qemu-arm64")
    device = open_device(profile)
    assert "executorch" in device.runtimes
    try:
        records = run_on_profile(device, profile, artifacts + [ArtifactInfo.from_path(broken, input_shape=TINY_INPUT_SHAPE)],
                                 SETTINGS)
    finally:
        device.cleanup()
    by_file = {record.artifact_path.rsplit("/", 1)[-1]: record for record in records}
    assert by_file["tiny.pte"].ok and by_file["tiny.pte"].harness == HARNESS_NAME
    assert by_file["tiny.onnx"].ok and by_file["tiny.onnx"].harness == "python-agent"
    assert by_file["tiny.pte"].emulated and len(by_file["tiny.pte"].samples_ms) == 4
    assert not by_file["broken.pte"].ok and "program load failed" in by_file["broken.pte"].error
