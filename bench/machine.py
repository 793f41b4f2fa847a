"""What a benchmark run ran on: CPU, cores, flags, load, toolchain versions, date."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench_runner.devices.host import describe_cpu

PACKAGES = ("torch", "executorch", "onnxruntime", "onnx", "numpy", "vitdeploy")


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def describe_machine() -> dict:
    """CPU model with the SIMD flags that matter, core count, OS, load and versions."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    hypervisor = "hypervisor" in cpuinfo
    return {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": describe_cpu(cpuinfo),
        "cores": os.cpu_count(),
        "virtualized": hypervisor,
        "os": platform.platform(),
        "load_average": load_average(),
        "versions": package_versions(),
    }
