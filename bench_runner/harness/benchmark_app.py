"""The harness that drives ExecuTorch's Android benchmark app (minibench) over adb.

Source: pytorch/executorch extension/benchmark/android/benchmark (README.md, the device
farm spec android-llm-device-farm-test-spec.yml.j2, BenchmarkActivity.kt,
ModelRunner.kt; v1.0.1 to v1.4.1 and main). The activity
org.pytorch.minibench.BenchmarkActivity reads the string extra `model_dir` (it loads
the first .pte in that directory) and the int extras `num_iter` (default 50) and
`num_warm_up_iter` (default 10), runs forward() with the module's default inputs, and
writes benchmark_results.json into its internal files directory, read back with
`run-as PACKAGE cat files/benchmark_results.json` (the app must be a debuggable build,
as `./gradlew installDebug` makes). `am start -W` returns once the activity is up, not
when it is done, so the harness polls for the file.

Limits of the app, which the harness reports instead of hiding: it writes only the mean
and the trimmed mean of its runs, never the runs themselves; it picks its own thread
count (ExecuTorch's default, the number of performant cores) and cannot be pinned with
a CPU mask; with num_iter = 1 its trimmed mean is the mean of nothing, NaN, which Gson
refuses to write, so at least 2 runs are requested. A run of the app therefore gives a
timing with a ToolAggregate (mean, trimmed mean, runs, load time) and no samples: its
record has no percentiles and no confidence interval, and its `source` says that the
thread count was the app's own. A CPU mask is refused as a variant error.
"""

from __future__ import annotations

import json
import time
from typing import Callable, Sequence

from bench_runner.devices.base import Device
from bench_runner.harness.base import HarnessError, RawTiming, RunSettings, ToolAggregate, Variant
from bench_runner.harness.native import Deadline, DeviceFiles, ProcessTiming, VariantFailed, measure_each
from bench_runner.harness.parsers import HarnessOutputError
from bench_runner.harness.parsers.executorch_benchmark_app import parse_benchmark_app

HARNESS_NAME = "executorch-benchmark-app"
PACKAGE = "org.pytorch.minibench"
ACTIVITY = "org.pytorch.minibench.BenchmarkActivity"
RESULT_FILE = "files/benchmark_results.json"
MIN_ITERATIONS = 2
SOURCE = (
    "ExecuTorch benchmark app benchmark_results.json (avg and trimmean inference latency; "
    "thread count chosen by the app, not the record's threads)"
)


def benchmark_app_start_argv(package: str, model_dir: str, iterations: int, warmup: int) -> list[str]:
    """The `am start` argv that runs the benchmark activity on the .pte in `model_dir`."""
    component = f"{package}/{ACTIVITY}"
    extras = ["--es", "model_dir", model_dir, "--ei", "num_iter", str(max(iterations, MIN_ITERATIONS))]
    return ["am", "start", "-W", "-S", "-n", component, *extras, "--ei", "num_warm_up_iter", str(warmup)]


class BenchmarkAppHarness:
    """Runs .pte artifacts through an installed ExecuTorch benchmark app (Android only).

    `package` is the app's package name (the profile's [harness] benchmark_app);
    `poll_seconds` the wait between looks for the result file.
    """

    name = HARNESS_NAME
    runtimes = frozenset({"executorch"})
    interleaves = False

    def __init__(
        self, package: str = PACKAGE, poll_seconds: float = 1.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.package = package
        self.poll_seconds = poll_seconds
        self._sleep = sleep
        self._files = DeviceFiles()
        self._prepared = False

    @classmethod
    def from_profile(cls, profile) -> BenchmarkAppHarness:
        if profile.harness.benchmark_app is None:
            raise HarnessError(
                f"device profile {profile.name!r} names no benchmark app: install ExecuTorch's "
                "extension/benchmark/android/benchmark app (./gradlew installDebug) and set "
                f'[harness] benchmark_app = "{PACKAGE}"'
            )
        return cls(profile.harness.benchmark_app)

    def prepare(self, device: Device) -> None:
        if device.kind != "android":
            raise HarnessError(f"the ExecuTorch benchmark app runs on Android devices, not on {device.kind!r}")
        installed = device.run(["pm", "path", self.package], timeout=60)
        if not installed.stdout.strip().startswith("package:"):
            raise HarnessError(
                f"{self.package} is not installed on {device.name}: build ExecuTorch's "
                "extension/benchmark/android/benchmark and install it with ./gradlew installDebug"
            )
        self._files.reset()
        self._prepared = True

    def measure(self, device: Device, variants: Sequence[Variant], settings: RunSettings) -> list[RawTiming]:
        if not self._prepared:
            self.prepare(device)
        return measure_each(self.name, device, variants, settings, {}, self._run_process)

    def _run_process(
        self, device: Device, variant: Variant, settings: RunSettings, timed_runs: int, deadline: Deadline
    ) -> ProcessTiming:
        if settings.cpu_mask:
            raise VariantFailed(
                f"the benchmark app cannot be pinned to CPU mask {settings.cpu_mask} (the activity manager "
                "starts it); measure without a cpu_mask, or with executor_runner"
            )
        model = self._files.push(device, variant.path, own_directory=True)
        model_dir = model.rsplit("/", 1)[0]
        for mode, path in (("a+x", device.workdir), ("755", model_dir), ("644", model)):
            device.run(["chmod", mode, path], timeout=deadline.remaining())
        device.run(["run-as", self.package, "rm", "-f", RESULT_FILE], timeout=deadline.remaining())
        started = device.run(
            benchmark_app_start_argv(self.package, model_dir, timed_runs, settings.warmup), timeout=deadline.remaining()
        )
        if started.exit_code != 0 or "Error" in started.stdout:
            raise HarnessError(
                f"could not start {self.package}/{ACTIVITY}: {(started.stdout + started.stderr).strip()}"
            )
        try:
            result = parse_benchmark_app(self._wait_for_results(device, deadline))
        except HarnessOutputError as exc:
            raise VariantFailed(str(exc)) from None
        return ProcessTiming(
            samples_ms=(),
            load_ms=result.model_load_ms,
            aggregate=ToolAggregate.one_round(
                SOURCE,
                runs=max(timed_runs, MIN_ITERATIONS),
                mean_ms=result.avg_inference_ms,
                trimmed_mean_ms=result.trimmed_mean_inference_ms,
                load_ms=result.model_load_ms,
            ),
        )

    def _wait_for_results(self, device: Device, deadline: Deadline) -> str:
        """Poll until the app has written complete JSON; DeviceError when the deadline passes."""
        while True:
            read = device.run(["run-as", self.package, "cat", RESULT_FILE], timeout=deadline.remaining())
            said = (read.stdout + read.stderr).strip()
            if "not debuggable" in said or "unknown package" in said:
                raise HarnessError(f"cannot read {self.package}'s results with run-as: {said}")
            if read.exit_code == 0 and said:
                try:
                    json.loads(read.stdout)
                    return read.stdout
                except ValueError:
                    pass
            self._sleep(self.poll_seconds)
