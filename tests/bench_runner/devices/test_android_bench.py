"""A phone named by its profile is measured end to end over the real ADB protocol:
the loopback device runs what `adb shell` would run on a phone with Python."""

import sys

from bench_runner.devices.android import DEFAULT_WORKDIR, AndroidDevice
from bench_runner.profiles import parse_profile
from bench_runner.protocol import run_on_profile
from bench_runner.records import ArtifactInfo
from bench_runner.store import ResultsStore


def test_profile_of_an_android_device_gives_records_through_adb(
    loopback_adbd, loopback_root, adb_key_home, tiny_onnx, tmp_path
):
    profile = parse_profile(
        {
            "name": "phone",
            "kind": "android",
            "connection": {"address": loopback_adbd.address},
            "harness": {"python": sys.executable},
            "measurement": {"threads": [1], "warmup": 1, "runs": 6, "min_seconds": 0.0, "rounds": 2},
        },
        "test profile",
        "phone",
    )
    # Device paths inside pushed files (the agent's plan) must mean the same folder on
    # both sides of the loopback, so the workdir is the fake root's own path.
    device = AndroidDevice(
        address=loopback_adbd.address, key_dir=adb_key_home, name="phone",
        workdir=str(loopback_root.host_path(DEFAULT_WORKDIR)),
    ).connect()
    store = ResultsStore(tmp_path / "store")
    try:
        records = run_on_profile(
            device, profile, [ArtifactInfo.from_path(tiny_onnx, input_shape=(1, 16))],
            profile.measurement, store=store,
        )
    finally:
        device.cleanup()
        device.close()
    (record,) = records
    assert record.ok, record.error
    assert (record.device_kind, record.harness) == ("android", "python-agent")
    assert len(record.samples_ms) >= 6 and sorted(set(record.round_index)) == [0, 1]
    assert record.device["abi"] == "arm64-v8a"
    assert any("agent.py" in command for command in loopback_adbd.shell_commands)
    assert [r.key for r in store.load()] == [record.key]
