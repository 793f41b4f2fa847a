"""The harness that runs the portable Python agent (agent.py) on any device with Python,
or on a phone with none, with the Python of vitdeploy's aarch64 bundle (`bench_runner.bundle`)."""

from __future__ import annotations

import json
import posixpath
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from bench_runner.bundle import Bundle, build_bundle, bundle_source, install_bundle, launch_argv
from bench_runner.devices.base import CommandResult, Device
from bench_runner.harness.base import EnvironmentReading, HarnessError, RawTiming, RunSettings, Variant
from vitdeploy import runtimes

AGENT_SCRIPT = Path(__file__).with_name("agent.py")
# What the agent imports from its own folder on the device.
AGENT_MODULES = {"vitdeploy_runtimes.py": Path(runtimes.__file__)}
HARNESS_NAME = "python-agent"


def parse_agent_result(result: CommandResult, variants: Sequence[Variant], threads: int) -> list[RawTiming]:
    """Turn the agent's one JSON line into one RawTiming per variant, in variant order.

    Raises HarnessError when the agent failed as a whole; a variant the agent did not
    report, or whose runtime did not take `threads` threads, becomes a failed RawTiming.
    """
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise HarnessError(
            f"the Python agent printed no result (exit code {result.exit_code}); its last error output:\n{tail}"
        )
    try:
        output = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise HarnessError(f"the Python agent printed unreadable JSON: {exc}") from None
    if "error" in output:
        raise HarnessError(f"the Python agent failed: {output['error']}")

    environment = tuple(EnvironmentReading.from_dict(reading) for reading in output.get("environment", ()))
    versions = {str(k): str(v) for k, v in output.get("runtime_versions", {}).items()}
    reported = {artifact["id"]: artifact for artifact in output.get("artifacts", ())}
    timings = []
    for variant in variants:
        artifact = reported.get(variant.id)
        if artifact is None:
            timings.append(RawTiming(variant_id=variant.id, harness=HARNESS_NAME, error="the agent did not report it"))
            continue
        error = artifact.get("error")
        applied = artifact.get("threads_applied")
        if not error and applied is not None and applied != threads:
            error = f"asked the runtime for {threads} threads but it uses {applied}"
        if error:
            timings.append(RawTiming(variant_id=variant.id, harness=HARNESS_NAME, runtime_versions=versions, error=error))
            continue
        timings.append(
            RawTiming(
                variant_id=variant.id,
                harness=HARNESS_NAME,
                samples_ms=tuple(float(s) for s in artifact["samples_ms"]),
                round_index=tuple(int(r) for r in artifact["round_index"]),
                load_ms=artifact.get("load_ms"),
                first_inference_ms=artifact.get("first_inference_ms"),
                peak_rss_kb=output.get("peak_rss_kb"),
                memory_kb=artifact.get("memory_kb"),
                output_checksum=artifact.get("output_checksum"),
                runtime_versions=versions,
                environment=environment,
            )
        )
    return timings


class PythonAgentHarness:
    """Pushes agent.py (with the modules it imports) and the artifacts, runs one plan per
    configuration, reads the result.

    The interpreter is the `bundle`'s Python if given (its onnxruntime part, installed
    on the device in `prepare`), else `python` if given, else the device's own `python`
    attribute (the host's is the caller's interpreter), else "python3" on the device's PATH.
    """

    name = HARNESS_NAME
    runtimes = frozenset(runtimes.RUNTIMES)
    interleaves = True

    def __init__(self, python: str | None = None, bundle: Bundle | None = None) -> None:
        self.python = python
        self.bundle = bundle
        self._launch: list[str] = []
        self._agent_path: str | None = None
        self._pushed: dict[Path, str] = {}
        self._plans = 0

    @classmethod
    def from_profile(cls, profile) -> PythonAgentHarness:
        from bench_runner.devices import device_kind

        if profile.harness.python is None and device_kind(profile.kind).aarch64_bundle:
            return cls(bundle=build_bundle("onnxruntime", bundle_source()))
        return cls(python=profile.harness.python)

    def prepare(self, device: Device) -> None:
        if self.bundle is not None:
            self._launch = launch_argv(install_bundle(device, self.bundle), self.bundle)
        else:
            self._launch = [self.python or getattr(device, "python", None) or "python3"]
        self._agent_path = posixpath.join(device.workdir, "agent.py")
        device.push(AGENT_SCRIPT, self._agent_path)
        for name, local in AGENT_MODULES.items():
            device.push(local, posixpath.join(device.workdir, name))
        self._pushed = {}

    def measure(self, device: Device, variants: Sequence[Variant], settings: RunSettings) -> list[RawTiming]:
        if self._agent_path is None:
            self.prepare(device)
        plan = {
            "threads": settings.threads,
            "warmup": settings.warmup,
            "runs": settings.runs,
            "min_seconds": settings.min_seconds,
            "rounds": settings.rounds,
            "seed": settings.seed,
            "cpu_mask": settings.cpu_mask,
            "artifacts": [
                {
                    "id": variant.id,
                    "path": self._push_artifact(device, variant.path),
                    "runtime": variant.runtime,
                    "input_shape": list(variant.input_shape),
                    "input_dtype": variant.input_dtype,
                }
                for variant in variants
            ],
        }
        self._plans += 1
        plan_path = posixpath.join(device.workdir, f"plan-{self._plans}.json")
        with tempfile.TemporaryDirectory(prefix="vitdeploy-plan-") as scratch:
            local_plan = Path(scratch) / "plan.json"
            local_plan.write_text(json.dumps(plan), encoding="utf-8")
            device.push(local_plan, plan_path)
        result = device.run([*self._launch, self._agent_path, plan_path], timeout=settings.timeout_seconds)
        timings = parse_agent_result(result, variants, settings.threads)
        if self.bundle is None:
            return timings
        return [replace(timing, runtime_versions={**timing.runtime_versions, "vitdeploy-bundle": self.bundle.name})
                for timing in timings]

    def _push_artifact(self, device: Device, local: Path) -> str:
        local = Path(local).resolve()
        if local not in self._pushed:
            remote = posixpath.join(device.workdir, f"artifact-{len(self._pushed)}-{local.name}")
            device.push(local, remote)
            self._pushed[local] = remote
        return self._pushed[local]
