"""Choosing where a sweep runs: `[executor]`, `--executor`, a missing Ray, `vitdeploy worker`."""

import json
import sys

import pytest

from deploy.cli import main
from deploy.commands.worker import ray_start_command
from deploy.config import ConfigError, ExecutorConfig, load_sweep_config

MODEL = """
[[model]]
label = "a"
name = "vit_tiny"
overrides = { depth = 1, img_size = 32, num_classes = 10 }
"""


def _write(tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_the_local_executor_is_the_default_and_ray_takes_an_address(tmp_path):
    assert load_sweep_config(_write(tmp_path, MODEL)).executor == ExecutorConfig("local", None)
    config = load_sweep_config(_write(tmp_path, MODEL + '[executor]\nkind = "ray"\naddress = "auto"\n'))
    assert config.executor == ExecutorConfig("ray", "auto")


@pytest.mark.parametrize(
    "table, message",
    [
        ('kind = "dask"', r"\[executor\] kind must be one of local, ray, got 'dask'"),
        ('kind = "ray"\nnodes = 3', r"\[executor\]: unknown key\(s\) nodes; valid: address, kind"),
        ('address = "auto"', r'\[executor\] address is for kind = "ray"'),
        ('kind = "ray"\naddress = 6379', r"\[executor\] address must be a string"),
    ],
)
def test_bad_executor_tables_are_named(tmp_path, table, message):
    with pytest.raises(ConfigError, match=message):
        load_sweep_config(_write(tmp_path, MODEL + "[executor]\n" + table + "\n"))


def test_without_ray_the_ray_executor_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    path = _write(tmp_path, MODEL)
    assert main(["sweep", str(path), "--results", str(tmp_path / "results"), "--executor", "ray"]) == 2
    assert "--executor ray needs Ray" in capsys.readouterr().err
    assert main(["worker", "--devices", "host"]) == 2
    assert "pip install 'vitdeploy[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_a_worker_declares_one_resource_per_device_and_joins_or_starts_a_head():
    head = ray_start_command(("pixel-7", "host"), None, port=6380)
    assert head[1:4] == ["-m", "ray.scripts.scripts", "start"] and "--block" in head
    assert json.loads(head[head.index("--resources") + 1]) == {"device:pixel-7": 1, "device:host": 1}
    assert head[head.index("--head") + 1:head.index("--head") + 3] == ["--port", "6380"]
    joined = ray_start_command(("host",), "10.0.0.5:6379", num_cpus=4)
    assert "--head" not in joined and joined[joined.index("--address") + 1] == "10.0.0.5:6379"
    assert joined[-2:] == ["--num-cpus", "4"]


def test_a_worker_refuses_a_device_without_a_profile(capsys):
    pytest.importorskip("ray")
    assert main(["worker", "--devices", "host,pixel-99"]) == 2
    assert "no device profile named 'pixel-99'" in capsys.readouterr().err


CLUSTER_RESOURCES = """
import json, sys
import ray
ray.init(address=sys.argv[1], logging_level="warning")
print(json.dumps(ray.cluster_resources()))
"""


@pytest.mark.slow
def test_a_worker_started_here_offers_its_devices_to_the_cluster(tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import time

    ray = pytest.importorskip("ray")
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = probe.getsockname()[1]
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "deploy.cli", "worker", "--devices", "host,qemu-arm64",
                                   "--port", str(port), "--num-cpus", "1"],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log_path.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log_path.read_text()
            time.sleep(0.2)
        # The head enables Ray's token authentication; a client naming its address must say so.
        client = subprocess.run(
            [sys.executable, "-c", CLUSTER_RESOURCES, f"{ray.util.get_node_ip_address()}:{port}"],
            env={**os.environ, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=120, check=True)
        resources = json.loads(client.stdout.strip().splitlines()[-1])
        assert resources["device:host"] == resources["device:qemu-arm64"] == 1 and resources["CPU"] == 1
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=120)
