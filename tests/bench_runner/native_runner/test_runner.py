"""The native runner built with the system compiler against the installed executorch wheel,
run on tiny ViTs lowered by vitdeploy (no timing assertions)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from bench_runner.devices.qemu_setup import find_qemu_arm64
from bench_runner.elf import elf_machine
from bench_runner.native_runner import build
from bench_runner.native_runner.build import RunnerBuildError, build_runner, installed_executorch
from bench_runner.native_runner.inputs import runner_inputs
from bench_runner.native_runner.output import EXIT_STATUSES, describe_failure, parse_runner_output
from lowering.cache import ArtifactCache
from lowering.export import CalibrationSet, LoweringSpec, Target, lower_model
from lowering.models import create
from lowering.runtime import load_artifact
from tests.bench_runner.tiny_artifacts import write_missing_operator_pte
from vitdeploy.user_cache import user_cache_dir

# Where the aarch64 test finds an aarch64 executorch package directory besides the
# emulated environment's (`vitdeploy devices setup qemu-arm64`).
AARCH64_WHEEL_ENV = "VITDEPLOY_AARCH64_EXECUTORCH"
STATUS = {kind: status for status, kind in EXIT_STATUSES.items()}


@pytest.fixture(scope="session")
def runner_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("runner-cache")


@pytest.fixture(scope="session")
def host_runner(runner_cache):
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed (apt-get install -y g++): the native runner cannot be built")
    return build_runner(installed_executorch(), "host", runner_cache, log=lambda message: None)


@pytest.fixture(scope="session")
def tiny_programs(tmp_path_factory):
    """{quant: .pte} of a 1-block ViT-Tiny at 32 px with 8 px patches, fp32 and int8 (XNNPACK)."""
    torch.manual_seed(0)
    model = create("vit_tiny", depth=1, img_size=32, patch_size=8, num_classes=10).eval()
    images = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    spec = LoweringSpec(targets=(Target("executorch", "fp32"), Target("executorch", "int8")),
                        calibration=CalibrationSet(images, "random normal x16, seed 3"), keep_failed=True)
    artifacts = lower_model(model, spec, cache=ArtifactCache(tmp_path_factory.mktemp("artifacts")))
    return {artifact.target.quant: artifact.path for artifact in artifacts}


@pytest.fixture(scope="session")
def missing_operator_program(tmp_path_factory):
    return write_missing_operator_pte(tmp_path_factory.mktemp("custom-op") / "twice.pte")


def _run(runner: Path, model: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(runner), "--model", str(model), *options], capture_output=True, text=True, timeout=120)


def _sequential_sums(values: np.ndarray) -> tuple[float, float]:
    """Sums in element order, as the runner adds (numpy's own sum pairs terms up)."""
    flat = values.astype(np.float64).ravel()
    return float(np.cumsum(flat)[-1]), float(np.cumsum(np.abs(flat))[-1])


@pytest.mark.parametrize("quant", ["fp32", "int8"])
def test_the_runner_times_a_program_and_its_checksum_matches_the_python_runtime(host_runner, tiny_programs, quant):
    options = ("--warmup", "2", "--iterations", "5", "--threads", "1", "--cpu-list", "0", "--input-seed", "3")
    runs = [_run(host_runner, tiny_programs[quant], *options) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr
    first, second = (parse_runner_output(run.stdout) for run in runs)
    assert len(first.samples_ms) == 5 and first.warmup == 2
    assert (first.threads, first.cpus, first.input_seed) == (1, (0,), 3)
    assert first.input_shapes == ((1, 3, 32, 32),)
    assert first.checksum == second.checksum
    (image,) = runner_inputs(first.input_shapes, seed=3)
    expected = _sequential_sums(load_artifact(tiny_programs[quant], "executorch")(image))
    assert (first.checksum.sum, first.checksum.abs_sum) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert first.checksum.elements == 10


def test_another_seed_feeds_other_inputs(host_runner, tiny_programs):
    sums = {parse_runner_output(_run(host_runner, tiny_programs["fp32"], "--warmup", "0", "--iterations", "1",
                                     "--input-seed", seed).stdout).checksum.sum for seed in ("0", "1")}
    assert len(sums) == 2


def test_a_second_build_is_a_cache_hit(host_runner, runner_cache):
    notes = []
    before = host_runner.stat().st_mtime_ns
    assert build_runner(installed_executorch(), "host", runner_cache, log=notes.append) == host_runner
    assert notes == [] and host_runner.stat().st_mtime_ns == before


def test_the_runner_directory_carries_the_libraries_it_links(host_runner):
    names = {path.name for path in host_runner.parent.iterdir()}
    assert {"libexecutorch.so", "libexecutorch_backend_xnnpack.so", "libexecutorch_kernels_quantized.so"} <= names
    assert elf_machine(host_runner) == elf_machine(installed_executorch() / "lib" / "libexecutorch.so")


@pytest.mark.parametrize("target, package", [("host", "g++"), ("aarch64", "g++-aarch64-linux-gnu")])
def test_a_missing_compiler_names_its_debian_package(tmp_path, monkeypatch, target, package):
    monkeypatch.setenv("PATH", str(tmp_path))
    fix = f"install the Debian package {package} (sudo apt-get install -y {package})"
    with pytest.raises(RunnerBuildError, match=re.escape(fix)):
        build_runner(installed_executorch(), target, tmp_path / "cache")


def test_host_libraries_for_the_aarch64_target_are_refused(tmp_path):
    if shutil.which("aarch64-linux-gnu-g++") is None:
        pytest.skip("aarch64-linux-gnu-g++ is not installed (apt-get install -y g++-aarch64-linux-gnu)")
    with pytest.raises(RunnerBuildError, match="built for x86_64, not aarch64"):
        build_runner(installed_executorch(), "aarch64", tmp_path)


@pytest.mark.parametrize("content, kind, said", [
    (b"", "program load failed", "cannot load the program"),
    (b"not a program" * 100, "program load failed", "cannot load the program"),
    (None, "model file missing", "does not exist"),
])
def test_a_corrupt_or_missing_program_fails_with_its_exit_status(host_runner, tmp_path, content, kind, said):
    model = tmp_path / "model.pte"
    if content is not None:
        model.write_bytes(content)
    run = _run(host_runner, model, "--warmup", "1", "--iterations", "1")
    assert run.returncode == STATUS[kind]
    assert kind in describe_failure(run.returncode, run.stderr) and said in run.stderr


def test_an_operator_the_kernels_lack_fails_the_method_load(host_runner, missing_operator_program):
    run = _run(host_runner, missing_operator_program, "--warmup", "0", "--iterations", "1")
    assert run.returncode == STATUS["method load failed"]
    message = describe_failure(run.returncode, run.stderr)
    assert "OperatorMissing" in message and message.endswith("missing: vitdeploy_runner_test::twice.out")


def test_the_thread_count_is_applied_and_an_impossible_cpu_list_refused(host_runner, tiny_programs):
    run = _run(host_runner, tiny_programs["fp32"], "--warmup", "0", "--iterations", "1", "--threads", "3")
    assert parse_runner_output(run.stdout).threads == 3
    run = _run(host_runner, tiny_programs["fp32"], "--warmup", "0", "--iterations", "1", "--cpu-list", "1023")
    assert run.returncode == STATUS["the platform refused CPU affinity, the thread pool or /proc/self/status"]
    assert "cannot pin to the CPUs of --cpu-list" in run.stderr


def test_a_bad_command_line_is_a_usage_error(host_runner, tiny_programs):
    run = _run(host_runner, tiny_programs["fp32"], "--warmup", "1", "--iterations", "-3")
    assert run.returncode == STATUS["bad command line"] and "--iterations takes a non-negative integer" in run.stderr


def _aarch64_executorch() -> Path | None:
    if os.environ.get(AARCH64_WHEEL_ENV):
        return Path(os.environ[AARCH64_WHEEL_ENV])
    emulated = find_qemu_arm64(user_cache_dir())
    return emulated.executorch_root if emulated else None


def test_the_aarch64_runner_is_an_aarch64_binary(tmp_path):
    if shutil.which("aarch64-linux-gnu-g++") is None:
        pytest.skip("aarch64-linux-gnu-g++ is not installed (apt-get install -y g++-aarch64-linux-gnu)")
    wheel = _aarch64_executorch()
    if wheel is None:
        pytest.skip(f"no aarch64 executorch wheel: set {AARCH64_WHEEL_ENV} to an unpacked wheel's executorch/ "
                    "directory or run `vitdeploy devices setup qemu-arm64`")
    runner = build_runner(wheel, "aarch64", tmp_path, log=lambda message: None)
    assert elf_machine(runner) == "aarch64"


def test_a_compile_failure_shows_the_compilers_error(tmp_path, monkeypatch):
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed (apt-get install -y g++)")
    broken = tmp_path / "runner.cpp"
    broken.write_text("int main() { return undeclared_name; }\n")
    monkeypatch.setattr(build, "SOURCE", broken)
    with pytest.raises(RunnerBuildError, match="(?s)compiling the native runner failed.*undeclared_name"):
        build_runner(installed_executorch(), "host", tmp_path / "cache", log=lambda message: None)
    assert not any((tmp_path / "cache" / "native-runner").iterdir())
