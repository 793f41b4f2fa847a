"""The harness that runs `.pte` files with vitdeploy's own native runner (`bench_runner.native_runner`).

The runner is built by vitdeploy against the executorch wheel of the device's
architecture (the host's installed wheel, or the aarch64 wheel of the emulated CPU), so
nothing is built by the user. Its folder (the binary and the runtime libraries it loads
from beside itself) is pushed once per session into the device's working directory; a
phone without glibc gets it as the `executorch` part of the aarch64 bundle instead
(`bench_runner.bundle`: pushed once per content, started through the bundle's loader).
One process per measurement: load, first inference, `warmup` untimed runs and the timed
runs, each timed around one execute; every timed run is a raw sample.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Sequence

from bench_runner.bundle import Bundle, build_bundle, bundle_source, install_bundle, launch_argv
from bench_runner.devices import device_kind
from bench_runner.devices.base import Device
from bench_runner.harness.base import HarnessError, RunSettings, Variant
from bench_runner.harness.native import (
    Deadline,
    ProcessTiming,
    PushedBinaryHarness,
    VariantFailed,
    binary_version,
    killed_by_signal,
    require_executable,
)
from bench_runner.harness.parsers import HarnessOutputError
from bench_runner.native_runner.build import BINARY_NAME, build_runner
from bench_runner.native_runner.output import describe_failure, parse_runner_output

HARNESS_NAME = "vitdeploy-runner"


def cpu_list(cpu_mask: str | None) -> str | None:
    """A hexadecimal CPU mask ("0x3") as the runner's CPU list ("0,1")."""
    if not cpu_mask:
        return None
    mask = int(cpu_mask, 16)
    return ",".join(str(cpu) for cpu in range(mask.bit_length()) if mask >> cpu & 1)


def runner_argv(launch: Sequence[str], model: str, warmup: int, runs: int, threads: int,
                cpu_mask: str | None) -> list[str]:
    """The device argv of one runner process; `launch` starts the runner (its path, or
    the bundle's loader and its arguments)."""
    cpus = cpu_list(cpu_mask)
    return [*launch, "--model", model, "--warmup", str(warmup), "--iterations", str(runs),
            "--threads", str(threads)] + (["--cpu-list", cpus] if cpus else [])


class VitdeployRunnerHarness(PushedBinaryHarness):
    """Runs `.pte` artifacts with the native runner built for the device's architecture."""

    name = HARNESS_NAME
    runtimes = frozenset({"executorch"})

    def __init__(self, binary: Path, bundle: Bundle | None = None) -> None:
        super().__init__(binary)
        self.bundle = bundle
        self._launch: list[str] = []

    @classmethod
    def from_profile(cls, profile) -> VitdeployRunnerHarness:
        kind = device_kind(profile.kind)
        native = kind.native_runner
        if native is None:
            raise HarnessError(
                f"device profile {profile.name!r} is of kind {profile.kind}, where vitdeploy's native runner does "
                "not run; use the Python agent or the profile's executor_runner"
            )
        binary = build_runner(native.executorch_root(profile), native.target)
        bundle = build_bundle("executorch", bundle_source(), runner=binary) if kind.aarch64_bundle else None
        return cls(binary, bundle)

    def prepare(self, device: Device) -> None:
        """Push the runner's folder (the binary and the libraries beside it) as one folder,
        or install the bundle's executorch part."""
        self._files.reset()
        if self.bundle is not None:
            self._launch = launch_argv(install_bundle(device, self.bundle), self.bundle)
            self._versions = {self.name: binary_version(self.binary), "vitdeploy-bundle": self.bundle.name}
        else:
            folder = posixpath.join(device.workdir, f"vitdeploy-runner-{self.binary.parent.name}")
            device.push(self.binary.parent, folder)
            self._launch = [posixpath.join(folder, BINARY_NAME)]
            self._versions = {self.name: binary_version(self.binary)}
        self._remote_binary = self._launch[-1]

    def _run_process(
        self, device: Device, variant: Variant, settings: RunSettings, timed_runs: int, deadline: Deadline
    ) -> ProcessTiming:
        model = self._files.push(device, variant.path)
        argv = runner_argv(self._launch, model, settings.warmup, timed_runs, settings.threads, settings.cpu_mask)
        result = device.run(argv, timeout=deadline.remaining())
        require_executable(result, self._remote_binary)
        if result.exit_code != 0:
            failure = describe_failure(result.exit_code, result.stderr)
            if killed_by_signal(result.exit_code):
                raise HarnessError(failure)
            raise VariantFailed(failure)
        try:
            output = parse_runner_output(result.stdout)
        except HarnessOutputError as exc:
            raise VariantFailed(f"{HARNESS_NAME} printed incomplete output: {exc}") from None
        if output.threads != settings.threads:
            raise VariantFailed(f"asked for {settings.threads} threads but the runner's thread pool has {output.threads}")
        self._versions.setdefault("executorch", output.version)
        return ProcessTiming(
            samples_ms=output.samples_ms,
            load_ms=output.load_ms,
            first_inference_ms=output.first_inference_ms,
            peak_rss_kb=output.peak_rss_kb,
            output_checksum=output.checksum.sum,
        )
