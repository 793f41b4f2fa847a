"""The native harnesses (executor_runner, onnxruntime_perf_test, the benchmark app) and their shared pieces.

The phone is a scripted test double (FakePhone) that answers with recorded tool output
from tests/fixtures/native_output.
"""

import shlex
import sys
from pathlib import Path

import pytest

from bench_runner.devices.base import CommandResult, DeviceError, DeviceInfo
from bench_runner.devices.host import HostDevice
from bench_runner.harness.base import Harness, HarnessError, RunSettings, ToolAggregate, Variant
from bench_runner.harness.benchmark_app import BenchmarkAppHarness, benchmark_app_start_argv
from bench_runner.harness.executor_runner import ExecutorRunnerHarness, executor_runner_argv
from bench_runner.harness.native import (
    MAX_RUNS_PER_PROCESS,
    Deadline,
    DeviceFiles,
    ProcessTiming,
    VariantFailed,
    killed_by_signal,
    measure_each,
    parse_cpu_pressure,
    read_environment,
    require_executable,
    runs_to_fill,
    with_cpu_mask,
)
from bench_runner.harness.ort_perf_test import OrtPerfTestHarness, perf_test_argv
from bench_runner.harness.parsers.onnxruntime_perf_test import parse_perf_test_samples
from bench_runner.profiles import parse_profile


class FakePhone:
    """A test double for a device: records pushes and commands; `answer(argv)` scripts replies.

    Commands `answer` returns None for succeed silently (mkdir, chmod, rm, log...).
    """

    name = "phone"
    workdir = "/data/local/tmp/vitdeploy"

    def __init__(self, answer=None, kind="android"):
        self.kind = kind
        self.answer = answer or (lambda argv: None)
        self.pushed = []
        self.commands = []
        self.readings = 0

    def push(self, local, remote):
        self.pushed.append((Path(local), remote))

    def run(self, argv, timeout):
        assert timeout > 0
        assert all(isinstance(a, str) for a in argv), argv
        self.commands.append(list(argv))
        return self.answer(list(argv)) or CommandResult(0, "", "")

    def pull(self, remote, local):
        raise AssertionError("native harnesses read results with cat, not pull")

    def info(self):
        self.readings += 1
        return DeviceInfo(
            kind=self.kind,
            name=self.name,
            abi="arm64-v8a",
            cpu_model="Cortex-A76",
            cores=8,
            os="Android 15",
            frequencies_khz=(1800000 + self.readings,),
            thermal_c={"cpu": 40.0 + self.readings},
        )

    def cleanup(self):
        pass


def test_cpu_mask_prefix():
    assert with_cpu_mask(["bin", "-x"], "f0") == ["taskset", "f0", "bin", "-x"]
    assert with_cpu_mask(["bin"], "0xF0") == ["taskset", "F0", "bin"]
    assert with_cpu_mask(["bin"], None) == ["bin"]


def test_runs_to_fill_meets_both_minimums():
    assert runs_to_fill(10, 0.1, 10, 200.0) is None
    needed = runs_to_fill(10, 2.0, 10, 200.0)
    assert needed * 20.0 >= 2000.0
    assert runs_to_fill(10, 1e9, 10, 10.0) == MAX_RUNS_PER_PROCESS
    assert runs_to_fill(10, 1.0, 0, 0.0) is None


UPTIME_AND_PRESSURE = (
    "8756.15 4252.56\n"
    "some avg10=0.61 avg60=16.28 avg300=15.28 total=3140732252\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
)


def test_cpu_pressure_is_read_with_the_device_clock():
    assert parse_cpu_pressure(UPTIME_AND_PRESSURE) == (8_756_150_000, 3_140_732_252)
    assert parse_cpu_pressure("8756.15 4252.56\n") is None
    assert parse_cpu_pressure("") is None
    assert parse_cpu_pressure("some avg10=0.61 total=12\n") is None


def test_environment_reading_carries_cpu_pressure_where_the_device_has_it():
    def answer(argv):
        if argv == ["cat", "/proc/uptime", "/proc/pressure/cpu"]:
            return CommandResult(0, UPTIME_AND_PRESSURE, "")
        return None

    reading = read_environment(FakePhone(answer), "before")
    assert (reading.clock_us, reading.cpu_pressure_total_us) == (8_756_150_000, 3_140_732_252)
    assert reading.frequencies_khz == (1800001,)
    without = read_environment(FakePhone(lambda argv: CommandResult(1, "8756.15 4252.56\n", "No such file")), "after")
    assert (without.clock_us, without.cpu_pressure_total_us) == (None, None)


def test_signals_other_than_abort_count_as_killed():
    assert killed_by_signal(137) and killed_by_signal(-9)
    assert not killed_by_signal(134) and not killed_by_signal(-6)
    assert not killed_by_signal(0) and not killed_by_signal(1) and not killed_by_signal(255)


def test_unexecutable_binary_is_a_harness_error():
    with pytest.raises(HarnessError, match="cannot execute /w/runner.*Exec format error"):
        require_executable(CommandResult(126, "", "/w/runner: Exec format error"), "/w/runner")
    require_executable(CommandResult(1, "", "model failed"), "/w/runner")


def test_deadline_raises_device_error_when_spent():
    now = [100.0]
    deadline = Deadline(5.0, "the test harness", clock=lambda: now[0])
    assert deadline.remaining() == pytest.approx(5.0)
    now[0] = 106.0
    with pytest.raises(DeviceError, match="timeout of 5 s"):
        deadline.remaining()


def test_files_are_pushed_once_until_they_change(tmp_path):
    device = FakePhone()
    files = DeviceFiles()
    artifact = tmp_path / "vit.pte"
    artifact.write_bytes(b"one")
    first = files.push(device, artifact)
    assert files.push(device, artifact) == first
    assert len(device.pushed) == 1
    artifact.write_bytes(b"three")
    second = files.push(device, artifact)
    assert second != first and len(device.pushed) == 2


def test_own_directory_and_executable_bit(tmp_path):
    device = FakePhone()
    binary = tmp_path / "runner"
    binary.write_bytes(b"\x7fELF")
    remote = DeviceFiles().push(device, binary, executable=True, own_directory=True)
    directory = remote.rsplit("/", 1)[0]
    assert directory.startswith(device.workdir + "/") and remote.endswith("/runner")
    assert ["mkdir", "-p", directory] in device.commands
    assert ["chmod", "755", remote] in device.commands


def test_missing_local_file_is_a_harness_error(tmp_path):
    with pytest.raises(HarnessError, match="does not exist"):
        DeviceFiles().push(FakePhone(), tmp_path / "absent.pte")


def settings(**overrides):
    values = dict(threads=1, warmup=2, runs=5, min_seconds=0.0, rounds=1)
    values.update(overrides)
    return RunSettings(**values)


def test_measure_each_builds_one_round_with_environment(tmp_path):
    device = FakePhone()
    variant = Variant(id="0:a.pte", path=tmp_path / "a.pte", runtime="executorch", input_shape=(1, 3, 8, 8))
    process = ProcessTiming(samples_ms=(1.0, 2.0, 3.0), load_ms=4.0, first_inference_ms=5.0, peak_rss_kb=6)
    (timing,) = measure_each("tool", device, [variant], settings(), {"tool": "v"}, lambda *args: process)
    assert timing.samples_ms == (1.0, 2.0, 3.0) and timing.round_index == (0, 0, 0)
    assert (timing.load_ms, timing.first_inference_ms, timing.peak_rss_kb) == (4.0, 5.0, 6)
    assert [r.when for r in timing.environment] == ["before", "after"]
    assert timing.environment[0].frequencies_khz != timing.environment[1].frequencies_khz
    assert timing.runtime_versions == {"tool": "v"}


def test_measure_each_reruns_longer_to_meet_min_seconds(tmp_path):
    variant = Variant(id="a", path=tmp_path / "a.pte", runtime="executorch", input_shape=(1,))
    asked = []

    def run(device, variant, settings, timed_runs, deadline):
        asked.append(timed_runs)
        return ProcessTiming(samples_ms=(10.0,) * timed_runs)

    (timing,) = measure_each("tool", FakePhone(), [variant], settings(runs=5, min_seconds=1.0), {}, run)
    assert asked[0] == 5 and asked[1] * 10.0 >= 1000.0
    assert len(timing.samples_ms) == asked[1]


def test_measure_each_reruns_an_aggregate_tool_longer_to_meet_min_seconds(tmp_path):
    variant = Variant(id="a", path=tmp_path / "a.pte", runtime="executorch", input_shape=(1,))
    asked = []

    def run(device, variant, settings, timed_runs, deadline):
        asked.append(timed_runs)
        return ProcessTiming(samples_ms=(), aggregate=ToolAggregate.one_round("tool", runs=timed_runs, mean_ms=10.0))

    (timing,) = measure_each("tool", FakePhone(), [variant], settings(runs=5, min_seconds=1.0), {}, run)
    assert asked[0] == 5 and asked[1] * 10.0 >= 1000.0
    assert timing.ok and timing.samples_ms == () and timing.aggregate.runs == asked[1]


def test_measure_each_turns_variant_failures_into_errors(tmp_path):
    variants = [Variant(id=i, path=tmp_path / f"{i}.pte", runtime="executorch", input_shape=(1,)) for i in "ab"]

    def run(device, variant, settings, timed_runs, deadline):
        if variant.id == "a":
            raise VariantFailed("bad model")
        return ProcessTiming(samples_ms=(1.0,))

    bad, good = measure_each("tool", FakePhone(), variants, settings(), {}, run)
    assert bad.error == "bad model" and not bad.samples_ms
    assert good.ok and good.samples_ms == (1.0,)


def test_measure_each_refuses_several_rounds(tmp_path):
    with pytest.raises(ValueError, match="one round"):
        measure_each("tool", FakePhone(), [], settings(rounds=3), {}, lambda *a: None)


def test_argv_survives_shell_quoting():
    argv = with_cpu_mask(["/data/local/tmp/my dir/runner", "--model_path=/tmp/it's $HOME.pte"], "f0")
    assert shlex.split(shlex.join(argv)) == argv


# --- the harnesses end to end, against a scripted phone ------------------------------------

NATIVE = Path(__file__).resolve().parents[2] / "fixtures" / "native_output"


def fixture(path: str) -> str:
    return (NATIVE / path).read_text()


def runner_log(iterations_ms, threads=4, load_ms=40.5):
    """A v1.4 posix-PAL executor_runner log for the given iteration times."""
    prefix = "I 00:00:00.000100 executorch:executor_runner.cpp:{}] "
    lines = [prefix.format(340) + f"Resetting threadpool with num threads = {threads}"]
    lines.append(prefix.format(624) + f"Model loaded in {load_ms:f} ms.")
    n = len(iterations_ms)
    lines += [prefix.format(779) + f"Iteration {i + 1} of {n}: {t:f} ms" for i, t in enumerate(iterations_ms)]
    lines.append(prefix.format(789) + f"Model executed successfully {n} time(s) in {sum(iterations_ms):f} ms.")
    return "\n".join(lines) + "\n"


def flag(argv, name):
    return next(a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}="))


@pytest.fixture
def pte(tmp_path):
    path = tmp_path / "vit tiny.pte"
    path.write_bytes(b"PTE")
    return path


@pytest.fixture
def runner(tmp_path):
    binary = tmp_path / "executor_runner"
    binary.write_bytes(b"\x7fELF")
    return binary


def pte_variant(path):
    return Variant(id="0:vit.pte", path=path, runtime="executorch", input_shape=(1, 3, 224, 224))


def test_executor_runner_argv_pins_threads_and_mask():
    argv = executor_runner_argv("/w/0-executor_runner", "/w/my dir/1-vit.pte", 12, 4, "f0")
    assert argv[:3] == ["taskset", "f0", "/w/0-executor_runner"]
    assert argv[3:] == ["--model_path=/w/my dir/1-vit.pte", "--num_executions=12", "--cpu_threads=4"]
    assert shlex.split(shlex.join(argv)) == argv


def test_executor_runner_end_to_end_drops_warmup_in_the_same_process(runner, pte):
    stdout, stderr = fixture("executor_runner/v1_4_xnnpack_12_runs.stdout"), fixture(
        "executor_runner/v1_4_xnnpack_12_runs.stderr"
    )

    def answer(argv):
        if "--num_executions=12" in argv:
            return CommandResult(0, stdout, stderr)
        return None

    phone = FakePhone(answer, kind="host")
    harness = ExecutorRunnerHarness(runner)
    assert isinstance(harness, Harness)
    harness.prepare(phone)
    (timing,) = harness.measure(
        phone, [pte_variant(pte)], settings(threads=4, warmup=2, runs=10, min_seconds=0.1, cpu_mask="f0")
    )
    assert timing.ok, timing.error
    run = next(a for a in phone.commands if "--num_executions=12" in a)
    assert run[:2] == ["taskset", "f0"] and flag(run, "cpu_threads") == "4"
    assert flag(run, "model_path") in [remote for _, remote in phone.pushed]
    assert len(timing.samples_ms) == 10 and timing.samples_ms[0] == pytest.approx(18.299225)
    assert timing.first_inference_ms == pytest.approx(25.272202)
    assert timing.load_ms == pytest.approx(46.318772)
    assert timing.runtime_versions["executor_runner"].startswith("sha256:")
    assert [r.when for r in timing.environment] == ["before", "after"]


def test_executor_runner_reads_logcat_after_its_marker_on_android(runner, pte):
    raw = fixture("executor_runner/android_pal_logcat_raw.txt")
    markers = []

    def answer(argv):
        if argv[:1] == ["log"]:
            markers.append(argv[-1])
            return CommandResult(0, "", "")
        if argv[:1] == ["logcat"]:
            return CommandResult(0, raw.replace("vitdeploy-7d41be09", markers[-1]), "")
        if "--num_executions=12" in argv:
            return CommandResult(0, fixture("executor_runner/android_pal.stdout"), "")
        return None

    phone = FakePhone(answer)
    (timing,) = ExecutorRunnerHarness(runner).measure(phone, [pte_variant(pte)], settings(threads=4, warmup=2, runs=10))
    assert timing.ok, timing.error
    assert timing.first_inference_ms == pytest.approx(25.258176)
    assert len(timing.samples_ms) == 10
    assert ["logcat", "-d", "-v", "raw", "-s", "ExecuTorch:I"] in phone.commands


def test_executor_runner_reruns_longer_for_min_seconds(runner, pte):
    def answer(argv):
        if any(a.startswith("--num_executions=") for a in argv):
            return CommandResult(0, "", runner_log([20.0] * int(flag(argv, "num_executions"))))
        return None

    phone = FakePhone(answer, kind="host")
    (timing,) = ExecutorRunnerHarness(runner).measure(
        phone, [pte_variant(pte)], settings(warmup=1, runs=5, min_seconds=1.0, threads=4)
    )
    executions = [
        int(flag(a, "num_executions")) for a in phone.commands if any(x.startswith("--num_executions") for x in a)
    ]
    assert executions[0] == 6 and executions[1] > 50
    assert sum(timing.samples_ms) >= 1000.0


def test_executor_runner_missing_delegate_is_a_variant_error(runner, pte):
    stderr = fixture("executor_runner/missing_delegate.stderr")
    phone = FakePhone(lambda argv: CommandResult(134, "", stderr) if "--cpu_threads=4" in argv else None, kind="host")
    (timing,) = ExecutorRunnerHarness(runner).measure(phone, [pte_variant(pte)], settings(threads=4, warmup=2, runs=8))
    assert not timing.ok and "XnnpackBackend" in timing.error and not timing.samples_ms


def test_executor_runner_before_v1_3_gives_the_total_as_an_aggregate(runner, pte):
    stderr = fixture("executor_runner/v1_2_total_only.stderr")
    phone = FakePhone(lambda argv: CommandResult(0, "", stderr) if "--cpu_threads=4" in argv else None, kind="host")
    (timing,) = ExecutorRunnerHarness(runner).measure(phone, [pte_variant(pte)], settings(threads=4, warmup=2, runs=8))
    assert timing.ok and timing.samples_ms == () and timing.round_index == ()
    aggregate = timing.aggregate
    assert aggregate.runs == 10 and aggregate.mean_ms == pytest.approx(19.3481122)
    assert aggregate.trimmed_mean_ms is None and aggregate.load_ms is None
    assert "before ExecuTorch v1.3" in aggregate.source and "2 warm-up executions included" in aggregate.source


def test_executor_runner_thread_mismatch_fails_the_variant(runner, pte):
    phone = FakePhone(
        lambda argv: CommandResult(0, "", runner_log([20.0] * 7, threads=8)) if "--cpu_threads=4" in argv else None,
        kind="host",
    )
    (timing,) = ExecutorRunnerHarness(runner).measure(phone, [pte_variant(pte)], settings(threads=4, warmup=2, runs=5))
    assert "reset its thread pool to 8" in timing.error


def test_executor_runner_killed_by_a_signal_raises_for_a_retry(runner, pte):
    killed = fixture("executor_runner/killed_mid_run.stderr")
    phone = FakePhone(lambda argv: CommandResult(137, "", killed) if "--cpu_threads=4" in argv else None, kind="host")
    with pytest.raises(HarnessError, match="killed"):
        ExecutorRunnerHarness(runner).measure(phone, [pte_variant(pte)], settings(threads=4, warmup=2, runs=10))


def test_executor_runner_that_cannot_execute_raises(runner, pte):
    phone = FakePhone(
        lambda argv: CommandResult(126, "", "Exec format error") if "--cpu_threads=1" in argv else None, kind="host"
    )
    with pytest.raises(HarnessError, match="cannot execute"):
        ExecutorRunnerHarness(runner).measure(phone, [pte_variant(pte)], settings())


def test_harness_from_profile_without_binary_says_what_to_set():
    profile = parse_profile({"kind": "android"}, "phone.toml", "phone")
    with pytest.raises(HarnessError, match=r"\[harness\] executor_runner"):
        ExecutorRunnerHarness.from_profile(profile)
    with pytest.raises(HarnessError, match=r"\[harness\] onnxruntime_perf_test"):
        OrtPerfTestHarness.from_profile(profile)
    with pytest.raises(HarnessError, match=r"\[harness\] benchmark_app"):
        BenchmarkAppHarness.from_profile(profile)


@pytest.fixture
def perf_test(tmp_path):
    binary = tmp_path / "onnxruntime_perf_test"
    binary.write_bytes(b"\x7fELF")
    return binary


@pytest.fixture
def onnx(tmp_path):
    path = tmp_path / "vit.onnx"
    path.write_bytes(b"ONNX")
    return path


def onnx_variant(path):
    return Variant(id="1:vit.onnx", path=path, runtime="onnxruntime", input_shape=(1, 3, 224, 224))


def perf_test_phone(stdout_fixture, csv_fixture, exit_code=0, stderr=""):
    files = {}

    def answer(argv):
        if argv[:2] == ["rm", "-f"]:
            files.pop(argv[2], None)
            return CommandResult(0, "", "")
        if "-r" in argv:
            files[argv[-1]] = fixture(csv_fixture) if csv_fixture else ""
            return CommandResult(exit_code, fixture(stdout_fixture) if stdout_fixture else "", stderr)
        if argv[0] == "cat":
            return CommandResult(0 if argv[1] in files else 1, files.get(argv[1], ""), "")
        return None

    return FakePhone(answer)


def test_perf_test_argv():
    argv = perf_test_argv(
        "/w/0-onnxruntime_perf_test", "/w/1-vit.onnx", "/w/1-vit.onnx.perf_test.csv", 20, 4, 0, "f0", "/w/lib"
    )
    assert argv[:4] == ["env", "LD_LIBRARY_PATH=/w/lib", "taskset", "f0"]
    assert argv[4] == "/w/0-onnxruntime_perf_test"
    assert argv[-2:] == ["/w/1-vit.onnx", "/w/1-vit.onnx.perf_test.csv"]
    options = argv[5:-2]
    assert options[options.index("-r") + 1] == "20"
    assert options[options.index("-m") + 1] == "times" and options[options.index("-x") + 1] == "4"
    assert options[options.index("-e") + 1] == "cpu" and "-I" in options
    assert perf_test_argv("b", "m", "r", 5, 1, 0)[0] == "b"


def test_perf_test_end_to_end_reads_samples_from_the_result_file(perf_test, onnx):
    phone = perf_test_phone(
        "onnxruntime_perf_test/result_file_with_percentiles.stdout",
        "onnxruntime_perf_test/result_file_with_percentiles.csv",
    )
    harness = OrtPerfTestHarness(perf_test)
    assert isinstance(harness, Harness)
    (timing,) = harness.measure(phone, [onnx_variant(onnx)], settings(threads=4, warmup=1, runs=20, cpu_mask="f0"))
    assert timing.ok, timing.error
    run = next(a for a in phone.commands if "-r" in a)
    assert run[:2] == ["taskset", "f0"] and run[run.index("-r") + 1] == "20"
    assert ["rm", "-f", run[-1]] in phone.commands
    assert len(timing.samples_ms) == 20
    assert timing.samples_ms[0] == pytest.approx(17.2694)
    assert timing.load_ms == pytest.approx(179.806)
    assert timing.first_inference_ms == 25
    assert timing.peak_rss_kb == 78401536 // 1024


def test_perf_test_extra_warmup_runs_are_dropped(perf_test, onnx):
    phone = perf_test_phone(
        "onnxruntime_perf_test/older_average_no_percentiles.stdout",
        "onnxruntime_perf_test/older_average_no_percentiles.csv",
    )
    (timing,) = OrtPerfTestHarness(perf_test).measure(
        phone, [onnx_variant(onnx)], settings(threads=1, warmup=3, runs=8)
    )
    assert timing.ok, timing.error
    every_run = parse_perf_test_samples(fixture("onnxruntime_perf_test/older_average_no_percentiles.csv"))
    assert timing.samples_ms == every_run[2:]


def test_perf_test_run_count_mismatch_fails_the_variant(perf_test, onnx):
    phone = perf_test_phone(
        "onnxruntime_perf_test/older_average_no_percentiles.stdout",
        "onnxruntime_perf_test/older_average_no_percentiles.csv",
    )
    (timing,) = OrtPerfTestHarness(perf_test).measure(
        phone, [onnx_variant(onnx)], settings(threads=1, warmup=1, runs=12)
    )
    assert "asked for 12 timed runs" in timing.error


def test_perf_test_missing_model_quotes_stderr(perf_test, onnx):
    phone = perf_test_phone(None, None, exit_code=255, stderr=fixture("onnxruntime_perf_test/missing_model.stderr"))
    (timing,) = OrtPerfTestHarness(perf_test).measure(phone, [onnx_variant(onnx)], settings())
    assert "File doesn't exist" in timing.error


def test_perf_test_pushes_shared_libraries_and_sets_the_library_path(tmp_path, perf_test, onnx):
    library = tmp_path / "libonnxruntime.so"
    library.write_bytes(b"\x7fELF")
    phone = perf_test_phone(
        "onnxruntime_perf_test/result_file_with_percentiles.stdout",
        "onnxruntime_perf_test/result_file_with_percentiles.csv",
    )
    harness = OrtPerfTestHarness(perf_test, [library])
    harness.measure(phone, [onnx_variant(onnx)], settings(threads=4, warmup=1, runs=20))
    assert (library, f"{phone.workdir}/lib/libonnxruntime.so") in phone.pushed
    run = next(a for a in phone.commands if "-r" in a)
    assert run[:2] == ["env", f"LD_LIBRARY_PATH={phone.workdir}/lib"]


def app_phone(results, installed=True):
    reads = iter(results)

    def answer(argv):
        if argv[:2] == ["pm", "path"]:
            return CommandResult(0, "package:/data/app/org.pytorch.minibench/base.apk\n" if installed else "", "")
        if argv[:2] == ["am", "start"]:
            return CommandResult(
                0, "Starting: Intent { cmp=org.pytorch.minibench/.BenchmarkActivity }\nStatus: ok\n", ""
            )
        if argv[:1] == ["run-as"] and argv[2] == "cat":
            return next(reads)
        return None

    return FakePhone(answer)


def test_benchmark_app_start_argv():
    argv = benchmark_app_start_argv("org.pytorch.minibench", "/w/artifact-0", 50, 10)
    assert argv[:6] == [
        "am",
        "start",
        "-W",
        "-S",
        "-n",
        "org.pytorch.minibench/org.pytorch.minibench.BenchmarkActivity",
    ]
    extras = argv[6:]
    assert extras[extras.index("model_dir") - 1 : extras.index("model_dir") + 2] == [
        "--es",
        "model_dir",
        "/w/artifact-0",
    ]
    assert extras[extras.index("num_iter") + 1] == "50" and extras[extras.index("num_warm_up_iter") + 1] == "10"
    one = benchmark_app_start_argv("p", "/d", 1, 0)
    assert one[one.index("num_iter") + 1] == "2"


def test_benchmark_app_end_to_end_reports_the_aggregate_without_pretending(pte):
    results = [
        CommandResult(1, "", "cat: files/benchmark_results.json: No such file or directory"),
        CommandResult(0, fixture("executorch_benchmark_app/truncated.json"), ""),
        CommandResult(0, fixture("executorch_benchmark_app/vit_tiny_xnnpack_fp32.json"), ""),
    ]
    phone = app_phone(results)
    sleeps = []
    harness = BenchmarkAppHarness(sleep=sleeps.append)
    assert isinstance(harness, Harness)
    (timing,) = harness.measure(phone, [pte_variant(pte)], settings(warmup=10, runs=50))
    assert len(sleeps) == 2
    assert timing.ok and timing.samples_ms == () and timing.first_inference_ms is None
    aggregate = timing.aggregate
    assert isinstance(aggregate, ToolAggregate) and aggregate.runs == 50
    assert aggregate.mean_ms == pytest.approx(19.01818714413692)
    assert aggregate.trimmed_mean_ms == pytest.approx(18.991688941727336)
    assert aggregate.load_ms == timing.load_ms == pytest.approx(52.871344)
    assert "benchmark_results.json" in aggregate.source and "thread count chosen by the app" in aggregate.source
    assert [r.when for r in timing.environment] == ["before", "after"]
    model = next(remote for local, remote in phone.pushed if local == pte.resolve())
    start = next(a for a in phone.commands if a[:2] == ["am", "start"])
    assert start[start.index("model_dir") + 1] == model.rsplit("/", 1)[0]
    assert ["run-as", "org.pytorch.minibench", "rm", "-f", "files/benchmark_results.json"] in phone.commands


def test_benchmark_app_rounds_become_one_aggregate_record(pte):
    from bench_runner.protocol import MeasurementSettings, run_protocol
    from bench_runner.records import ArtifactInfo

    results = fixture("executorch_benchmark_app/vit_tiny_xnnpack_fp32.json")
    phone = app_phone([CommandResult(0, results, "")] * 2)
    artifact = ArtifactInfo.from_path(pte, input_shape=(1, 3, 224, 224))
    settings = MeasurementSettings(threads=(1,), warmup=1, runs=20, min_seconds=0.0, rounds=2)
    (record,) = run_protocol(phone, BenchmarkAppHarness(sleep=lambda s: None), [artifact], settings)
    assert record.ok and record.stats is None and record.samples_ms == ()
    assert record.harness == "executorch-benchmark-app" and record.aggregate.round_runs == (10, 10)
    assert record.aggregate.mean_ms == pytest.approx(19.01818714413692)
    assert "thread count chosen by the app" in record.aggregate.source
    assert [(r.round, r.when) for r in record.environment] == [(0, "before"), (0, "after"), (1, "before"), (1, "after")]


def test_benchmark_app_load_failure_is_the_variant_error(pte):
    phone = app_phone([CommandResult(0, fixture("executorch_benchmark_app/load_failed.json"), "")])
    (timing,) = BenchmarkAppHarness(sleep=lambda s: None).measure(phone, [pte_variant(pte)], settings())
    assert "load_status 32" in timing.error


def test_benchmark_app_refuses_a_cpu_mask_and_missing_installs(pte):
    phone = app_phone([])
    (timing,) = BenchmarkAppHarness().measure(phone, [pte_variant(pte)], settings(cpu_mask="f0"))
    assert "cannot be pinned" in timing.error
    with pytest.raises(HarnessError, match="not installed"):
        BenchmarkAppHarness().prepare(app_phone([], installed=False))
    with pytest.raises(HarnessError, match="Android"):
        BenchmarkAppHarness().prepare(FakePhone(lambda argv: None, kind="host"))


def test_benchmark_app_that_never_writes_times_out(pte):
    now = [0.0]
    phone = app_phone([CommandResult(1, "", "No such file")] * 100)

    def sleep(seconds):
        now[0] += seconds

    harness = BenchmarkAppHarness(poll_seconds=2.0, sleep=sleep)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bench_runner.harness.native.time.monotonic", lambda: now[0])
        with pytest.raises(DeviceError, match="timeout of 10 s"):
            harness.measure(phone, [pte_variant(pte)], settings(timeout_seconds=10.0))


# --- through real processes on the host, with stand-ins for the native tools ---------------

RUNNER_STAND_IN = """
import os, sys
flags = dict(a[2:].split("=", 1) for a in sys.argv[1:])
log = lambda line, msg: print(f"I 00:00:00.000100 executorch:executor_runner.cpp:{line}] {msg}", file=sys.stderr)
log(340, f"Resetting threadpool with num threads = {flags['cpu_threads']}")
if open(flags["model_path"], "rb").read().startswith(b"NOXNN"):
    print("E 00:00:00.000150 executorch:method.cpp:85] Backend XnnpackBackend is not registered.", file=sys.stderr)
    print("F 00:00:00.000200 executorch:executor_runner.cpp:617] In function main(), assert failed "
          "(method.ok()): Loading of method forward failed with status 0x20", file=sys.stderr)
    sys.stderr.flush()
    os.abort()
n = int(flags["num_executions"])
times = [2.0 + 0.25 * i for i in range(n)]
log(624, "Model loaded in 3.500000 ms.")
for i, t in enumerate(times):
    log(779, f"Iteration {i + 1} of {n}: {t:f} ms")
log(789, f"Model executed successfully {n} time(s) in {sum(times):f} ms.")
print("OutputX 0: tensor(sizes=[1, 2], [0.5, -0.5])")
"""

PERF_TEST_STAND_IN = """
import sys
args = sys.argv[1:]
runs = int(args[args.index("-r") + 1])
model, result = args[-2], args[-1]
times = [0.002 + 0.0001 * i for i in range(runs)]
with open(result, "a") as out:
    for i, t in enumerate(times):
        out.write(f"standin,{t:g},1048576,50,{i}\\n")
print("Session creation time cost: 0.0125 s")
print("First inference time cost: 3 ms")
print(f"Total inference time cost: {sum(times):g} s")
print(f"Total inference requests: {runs}")
print(f"Average inference time cost total: {sum(times) / runs * 1000:f} ms")
print("Peak working set size: 1048576 bytes")
"""


def stand_in(tmp_path, name, source):
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{source}")
    return path


@pytest.fixture
def host():
    device = HostDevice(name="host-test")
    yield device
    device.cleanup()


def test_executor_runner_through_a_real_process(tmp_path, host, pte):
    harness = ExecutorRunnerHarness(stand_in(tmp_path, "executor_runner", RUNNER_STAND_IN))
    harness.prepare(host)
    (timing,) = harness.measure(host, [pte_variant(pte)], settings(threads=2, warmup=3, runs=4, cpu_mask="1"))
    assert timing.ok, timing.error
    assert timing.samples_ms == pytest.approx((2.75, 3.0, 3.25, 3.5))
    assert timing.first_inference_ms == pytest.approx(2.0) and timing.load_ms == pytest.approx(3.5)


def test_executor_runner_abort_through_a_real_process(tmp_path, host):
    needs_xnnpack = tmp_path / "needs_xnnpack.pte"
    needs_xnnpack.write_bytes(b"NOXNN")
    harness = ExecutorRunnerHarness(stand_in(tmp_path, "executor_runner", RUNNER_STAND_IN))
    (timing,) = harness.measure(host, [pte_variant(needs_xnnpack)], settings())
    assert not timing.ok and "XnnpackBackend" in timing.error


def test_perf_test_through_a_real_process_twice(tmp_path, host, onnx):
    harness = OrtPerfTestHarness(stand_in(tmp_path, "onnxruntime_perf_test", PERF_TEST_STAND_IN))
    for _ in range(2):
        (timing,) = harness.measure(host, [onnx_variant(onnx)], settings(threads=1, warmup=2, runs=3))
        assert timing.ok, timing.error
        assert timing.samples_ms == pytest.approx((2.1, 2.2, 2.3))
    assert timing.load_ms == pytest.approx(12.5) and timing.peak_rss_kb == 1024
