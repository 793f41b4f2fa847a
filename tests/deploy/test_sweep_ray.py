"""`vitdeploy sweep --executor ray` on a real local Ray cluster: the same records as the
local executor, and no record lost or repeated when a worker or the driver dies."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from bench_runner.store import ResultsStore  # noqa: E402
from deploy.config import load_sweep_config  # noqa: E402
from deploy.sweep import run_sweep  # noqa: E402
from tests.deploy.test_sweep import GOOD_MODEL, SETTINGS  # noqa: E402

# Declared by this module's cluster: the host, and an iPhone that no Linux node can open.
DEVICES = {"device:host": 1, "device:iphone-15": 1}

# test_sweep's one-block model and settings, with both backends and the Ray executor.
CONFIG = (GOOD_MODEL.replace('name = "two"', 'name = "ray"')
          + SETTINGS.replace('backends = ["onnx"]', 'backends = ["onnx", "executorch"]')
          + '\n[executor]\nkind = "ray"\n')

# Two configurations with an idle gap between them: a process killed in the gap has
# stored the first one and not the second.
TWO_CONFIGURATIONS = CONFIG.replace("threads = [1]", "threads = [1, 2]\ncooldown_seconds = 4")


@pytest.fixture(scope="module")
def cluster():
    context = ray.init(address="local", num_cpus=2, resources=DEVICES, include_dashboard=False, logging_level="warning")
    yield context.address_info["address"]
    ray.shutdown()


def _config(tmp_path: Path, text: str = CONFIG, name: str = "results", **changes):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return replace(load_sweep_config(path), results=tmp_path / name, **changes)


def _keys(results: Path) -> list[str]:
    return [record.key for record in ResultsStore(results / "store").load()]


def _quiet(line: str) -> None:
    pass


@pytest.mark.slow
def test_ray_and_local_executors_store_the_same_records(cluster, tmp_path):
    local_config = _config(tmp_path, name="local")
    local = run_sweep(replace(local_config, executor=replace(local_config.executor, kind="local")), log=_quiet)
    remote = run_sweep(_config(tmp_path, name="ray"), log=_quiet)
    assert local.failures == remote.failures == ()
    assert [p.name for p in remote.artifacts] == [p.name for p in local.artifacts]
    assert all(p.parent == tmp_path / "ray" / "artifacts" / "good" and p.is_file() for p in remote.artifacts)
    keys = _keys(tmp_path / "ray")
    assert len(keys) == len(set(keys)) == 2 and set(keys) == set(_keys(tmp_path / "local"))
    for record in ResultsStore(tmp_path / "ray" / "store").load():
        assert record.ok and Path(record.artifact_path) in remote.artifacts
        assert record.manifest_path == record.artifact_path + ".manifest.json"
    accuracy = [json.loads(line) for line in (tmp_path / "ray" / "accuracy.jsonl").read_text().splitlines()]
    assert sorted(Path(row["artifact_path"]) for row in accuracy) == sorted(remote.artifacts)
    assert "| good |" in remote.report_markdown["host"]


@pytest.mark.slow
def test_a_failing_device_and_an_undeclared_one_are_reported_and_the_host_is_measured(cluster, tmp_path):
    config = _config(tmp_path, CONFIG.replace('devices = ["host"]', 'devices = ["iphone-15", "qemu-arm64", "host"]'))
    outcome = run_sweep(config, log=_quiet)
    failures = {f.what: f.error for f in outcome.failures}
    assert set(failures) == {"iphone-15", "qemu-arm64"}
    assert "cannot drive iOS devices" in failures["iphone-15"]
    assert "no node of the Ray cluster declares device 'qemu-arm64'" in failures["qemu-arm64"]
    assert "`vitdeploy worker --devices qemu-arm64" in failures["qemu-arm64"]
    assert len(set(_keys(config.results))) == 2


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _running_task(name: str) -> int | None:
    """The pid of this test's Ray worker running task `name` (its title is ray::NAME)."""
    for pid in _descendants(os.getpid()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title == f"ray::{name}".encode():
            return pid
    return None


def _wait_for_records(results: Path, running, deadline_s: float = 300) -> None:
    deadline = time.monotonic() + deadline_s
    while not list((results / "store").glob("records-*")) and running() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.slow
def test_a_device_worker_killed_mid_task_is_retried_and_stores_each_record_once(cluster, tmp_path):
    config = _config(tmp_path, TWO_CONFIGURATIONS)
    outcome = {}
    sweep = threading.Thread(target=lambda: outcome.update(result=run_sweep(config, log=_quiet)))
    sweep.start()
    _wait_for_records(config.results, sweep.is_alive)
    worker = _running_task("_measure_device")
    assert worker is not None, "the device task was not running between its two configurations"
    os.kill(worker, signal.SIGKILL)
    sweep.join(timeout=300)
    assert outcome["result"].failures == ()
    records = ResultsStore(config.results / "store").load()
    keys = [record.key for record in records]
    assert len(keys) == len(set(keys)) == 2 * 2
    assert len({record.run_id for record in records}) == 2, "the second configuration was not measured by a retry"


@pytest.mark.slow
def test_a_killed_driver_started_again_continues_without_losing_or_repeating_records(cluster, tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(TWO_CONFIGURATIONS)
    results = tmp_path / "results"
    command = [sys.executable, "-m", "deploy.cli", "sweep", str(path), "--results", str(results)]
    environment = {**os.environ, "RAY_ADDRESS": cluster}
    driver = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_records(results, lambda: driver.poll() is None)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = set(_keys(results))
    assert 0 < len(before) < 2 * 2

    subprocess.run(command, env=environment, check=True, capture_output=True, timeout=300)
    keys = _keys(results)
    assert len(keys) == len(set(keys)) == 2 * 2
    assert before <= set(keys)
