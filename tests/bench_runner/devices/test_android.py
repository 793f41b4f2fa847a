"""AndroidDevice against the loopback adbd (adb-shell as the client), and its pure helpers."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest
from adb_shell import adb_device
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.sign_cryptography import CryptographySigner

from bench_runner.devices import android
from bench_runner.devices.android import (
    AndroidDevice,
    discover,
    marked_command,
    parse_info_report,
    parse_marked_output,
    parse_tcp_address,
)
from bench_runner.devices.base import Device, DeviceError
from bench_runner.harness.native import with_cpu_mask
from bench_runner.profiles import Connection, DeviceProfile
from tests.adb_loopback import DeviceLayout, FakeDeviceRoot, LoopbackAdbd


def test_android_device_satisfies_the_device_protocol(loopback_android):
    assert isinstance(loopback_android, Device)
    assert loopback_android.kind == "android"
    assert loopback_android.workdir == android.DEFAULT_WORKDIR


def test_run_returns_exit_code_and_keeps_stdout_and_stderr_apart(loopback_android):
    result = loopback_android.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_run_output_without_final_newline_is_kept_verbatim(loopback_android):
    result = loopback_android.run(["printf", "no newline"], timeout=10)
    assert (result.exit_code, result.stdout) == (0, "no newline")


def test_run_passes_every_argument_literally_to_the_device(loopback_android, loopback_root):
    tricky = ["two words", "$HOME", "a;b", "it's", "*", '"quoted"', "`id`", "x > injected", "$(touch injected)"]
    result = loopback_android.run(["printf", "%s\\n", *tricky], timeout=10)
    assert result.stdout.splitlines() == tricky
    assert not loopback_root.host_path("/injected").exists()


def test_push_and_pull_round_trip_a_binary_file(loopback_android, loopback_root, tmp_path):
    payload = os.urandom(3 * 1024 * 1024 + 17)
    local = tmp_path / "model.pte"
    local.write_bytes(payload)
    remote = f"{loopback_android.workdir}/models/model.pte"

    loopback_android.push(local, remote)
    assert hashlib.sha256(loopback_root.host_path(remote).read_bytes()).digest() == hashlib.sha256(payload).digest()

    back = tmp_path / "back" / "model.pte"
    loopback_android.pull(remote, back)
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(payload).digest()


def test_push_keeps_the_executable_bit_so_a_harness_can_run(loopback_android, tmp_path):
    harness = tmp_path / "fake_runner"
    harness.write_text("#!/bin/sh\necho \"ran with $# arguments\"\n")
    harness.chmod(0o755)
    remote = f"{loopback_android.workdir}/fake_runner"
    loopback_android.push(harness, remote)
    result = loopback_android.run([remote, "--model", "a b.pte"], timeout=10)
    assert (result.exit_code, result.stdout) == (0, "ran with 2 arguments\n")


def test_pull_of_a_missing_file_fails_and_leaves_nothing_behind(loopback_android, tmp_path):
    local = tmp_path / "pulled" / "result.json"
    with pytest.raises(DeviceError, match="cannot pull /data/local/tmp/vitdeploy/absent.json"):
        loopback_android.pull("/data/local/tmp/vitdeploy/absent.json", local)
    assert list(local.parent.iterdir()) == []


def test_push_of_a_missing_local_file_names_it(loopback_android, tmp_path):
    with pytest.raises(DeviceError, match="no such local file"):
        loopback_android.push(tmp_path / "nope.pte", "/data/local/tmp/vitdeploy/nope.pte")


def test_a_workdir_named_by_its_host_path_works_for_paths_inside_pushed_files(
    loopback_adbd, loopback_root, adb_key_home, tmp_path
):
    workdir = str(loopback_root.host_path("/data/local/tmp/vitdeploy"))
    device = AndroidDevice(address=loopback_adbd.address, key_dir=adb_key_home, workdir=workdir)
    (tmp_path / "weights.bin").write_bytes(b"weights")
    device.push(tmp_path / "weights.bin", f"{workdir}/weights.bin")
    (tmp_path / "plan.txt").write_text(f"{workdir}/weights.bin")
    device.push(tmp_path / "plan.txt", f"{workdir}/plan.txt")
    result = device.run(["sh", "-c", 'cat "$(cat "$1")"', "sh", f"{workdir}/plan.txt"], timeout=10)
    assert (result.exit_code, result.stdout) == (0, "weights")
    device.cleanup()
    assert not Path(workdir).exists()


def test_info_reads_properties_cores_frequencies_and_temperatures(loopback_android):
    info = loopback_android.info()
    assert info.kind == "android"
    assert info.name == "Loopback ADB device"
    assert info.abi == "arm64-v8a"
    assert info.cpu_model == "LoopbackSoC"
    assert info.os.startswith("vitdeploy/loopback/")
    assert info.cores == 4
    assert info.frequencies_khz == (1_800_000, 1_800_000, 2_400_000, 2_400_000)
    assert info.thermal_c == {"cpu-thermal": 41.5, "battery": 30.0}


def test_info_tolerates_a_device_that_hides_its_sensors(tmp_path, adb_key_home):
    bare = FakeDeviceRoot(tmp_path / "bare", DeviceLayout(props={}, frequencies_khz=(), thermal_millicelsius={}))
    public_key = (adb_key_home / "adbkey.pub").read_bytes()
    with LoopbackAdbd(bare, trusted_keys=[public_key]) as adbd:
        info = AndroidDevice(address=adbd.address, key_dir=adb_key_home).info()
    assert (info.name, info.abi, info.cpu_model, info.os) == (adbd.address, "", "", "")
    assert (info.cores, info.frequencies_khz, info.thermal_c) == (0, (), {})


def test_cleanup_removes_the_working_directory(loopback_android, loopback_root, tmp_path):
    local = tmp_path / "a.onnx"
    local.write_bytes(b"onnx")
    loopback_android.push(local, f"{loopback_android.workdir}/a.onnx")
    assert loopback_root.host_path(loopback_android.workdir).is_dir()
    loopback_android.cleanup()
    assert not loopback_root.host_path(loopback_android.workdir).exists()


def test_cpu_mask_reaches_the_device_shell(loopback_android):
    result = loopback_android.run(with_cpu_mask(["sh", "-c", "taskset -p $$"], "1"), timeout=10)
    assert result.exit_code == 0
    assert result.stdout.strip().endswith("current affinity mask: 1")


def test_a_device_that_vanishes_mid_command_raises_a_clear_error(loopback_adbd, loopback_android):
    loopback_adbd.unplug_on = "benchmark-that-never-finishes"
    with pytest.raises(DeviceError, match=r"is no longer reachable over adb .*check the cable"):
        loopback_android.run(["sh", "-c", "echo benchmark-that-never-finishes; sleep 30"], timeout=20)
    with pytest.raises(DeviceError, match="cannot connect"):
        loopback_android.run(["true"], timeout=5)


def test_a_silent_command_past_its_timeout_is_killed(loopback_adbd, loopback_android):
    with pytest.raises(DeviceError, match="did not finish within 1 s"):
        loopback_android.run(["sleep", "30"], timeout=1)
    assert loopback_adbd.wait_for_commands(timeout=15)
    assert loopback_android.run(["echo", "still usable"], timeout=10).stdout == "still usable\n"


def test_a_chatty_command_past_its_timeout_is_killed(loopback_adbd, loopback_android):
    with pytest.raises(DeviceError, match="did not finish within 1 s"):
        loopback_android.run(["sh", "-c", "while true; do echo tick; sleep 0.05; done"], timeout=1)
    assert loopback_adbd.wait_for_commands(timeout=15)


def test_an_unknown_key_gets_the_allow_prompt_hint(loopback_root, adb_key_home):
    with LoopbackAdbd(loopback_root, trusted_keys=[]) as adbd:
        device = AndroidDevice(address=adbd.address, key_dir=adb_key_home, auth_timeout_s=1)
        with pytest.raises(DeviceError, match='tap "Allow"'):
            device.connect()


def test_a_new_key_works_once_the_user_allows_it(loopback_root, adb_key_home):
    with LoopbackAdbd(loopback_root, trusted_keys=[], auto_accept=True) as adbd:
        device = AndroidDevice(address=adbd.address, key_dir=adb_key_home)
        assert device.run(["echo", "allowed"], timeout=10).stdout == "allowed\n"
    assert adbd.trusted_keys == [(adb_key_home / "adbkey.pub").read_bytes()]


def test_connecting_to_a_closed_port_names_the_device_and_the_fix(adb_key_home):
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    device = AndroidDevice(address=f"127.0.0.1:{port}", key_dir=adb_key_home, connect_timeout_s=2)
    with pytest.raises(DeviceError, match=rf"cannot connect to device 127.0.0.1:{port} .*adb devices"):
        device.connect()


def test_adb_shell_client_sees_sync_stat_and_list(loopback_adbd, loopback_root, adb_key_home):
    """Talk to the loopback with adb-shell's own AdbDeviceTcp, without AndroidDevice in between."""
    target = loopback_root.host_path("/data/local/tmp/stat-me.bin")
    target.write_bytes(b"x" * 1234)
    os.utime(target, (1_700_000_000, 1_700_000_000))
    host, port = parse_tcp_address(loopback_adbd.address)
    client = AdbDeviceTcp(host, port, default_transport_timeout_s=10)
    assert client.connect(rsa_keys=[CryptographySigner(str(adb_key_home / "adbkey"))], auth_timeout_s=5)
    try:
        mode, size, mtime = client.stat("/data/local/tmp/stat-me.bin")
        assert (mode, size, mtime) == (os.lstat(target).st_mode, 1234, 1_700_000_000)
        assert client.stat("/data/local/tmp/absent") == (0, 0, 0)
        names = [entry.filename for entry in client.list("/data/local/tmp")]
        assert b"stat-me.bin" in names
        assert client.shell("getprop ro.product.cpu.abi") == "arm64-v8a\n"
    finally:
        client.close()


def test_discover_returns_only_reachable_devices(loopback_adbd, adb_key_home):
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        dead = f"127.0.0.1:{placeholder.getsockname()[1]}"
    found = discover([dead, loopback_adbd.address], key_dir=adb_key_home, timeout_s=2)
    assert [device.target for device in found] == [loopback_adbd.address]
    found[0].close()


def test_from_profile_takes_the_connection_table():
    profile = DeviceProfile(name="pixel", kind="android", connection=Connection(address="10.0.0.7:5555"))
    device = AndroidDevice.from_profile(profile)
    assert (device.name, device.target) == ("pixel", "10.0.0.7:5555")
    with pytest.raises(DeviceError, match=r"\[connection\] address"):
        AndroidDevice.from_profile(DeviceProfile(name="nothing", kind="android"))


def test_usb_without_libusb_says_what_to_install(adb_key_home):
    if adb_device.UsbTransport is not None:
        pytest.skip("libusb1 is installed here, so USB support is present")
    with pytest.raises(DeviceError, match=r"adb-shell\[usb\]"):
        AndroidDevice(serial="R58M000000", key_dir=adb_key_home).connect()


@pytest.mark.parametrize("workdir", ["/", "/data/local/tmp", "relative/dir", "/data/local/tmp/../x"])
def test_a_workdir_that_cleanup_could_not_safely_remove_is_refused(workdir):
    with pytest.raises(DeviceError, match="workdir"):
        AndroidDevice(address="10.0.0.7:5555", workdir=workdir)


def test_marked_command_quotes_each_argument():
    line = marked_command(["./run", "a b", "$(reboot)"], "/data/local/tmp/vitdeploy", "MARK")
    assert "./run 'a b' '$(reboot)' 2>/data/local/tmp/vitdeploy/.stderr-MARK </dev/null &" in line


def test_parse_marked_output_handles_crlf_and_interleaved_pid_line():
    raw = b"partial MARKpid=4242\r\nrest\r\nMARKexit=7\r\nwarning: slow\r\n"
    parsed = parse_marked_output(raw, "MARK")
    assert (parsed.pid, parsed.exit_code) == (4242, 7)
    assert (parsed.stdout, parsed.stderr) == ("partial rest\r\n", "warning: slow\r\n")


def test_parse_marked_output_without_exit_status_reports_none():
    parsed = parse_marked_output(b"MARKpid=12\nhalf a line", "MARK")
    assert (parsed.pid, parsed.exit_code, parsed.stdout) == (12, None, "half a line")


def test_parse_info_report_from_a_phone_like_report():
    report = (
        "prop ro.product.model=Pixel 7\r\n"
        "prop ro.product.cpu.abi=arm64-v8a\n"
        "prop ro.build.fingerprint=google/panther/panther:14/AP2A/1:user/release-keys\n"
        "prop ro.soc.model=\n"
        "prop ro.board.platform=gs201\n"
        "possible=0-3,4-7\n"
        "cpu cpu0=300000\n"
        "cpu cpu1=\n"
        "cpu cpu10=2850000\n"
        "cpu cpu2=1800000\n"
        "thermal skin-therm=38250\n"
        "thermal skin-therm=39000\n"
        "thermal battery=31\n"
        "thermal disabled-sensor=\n"
    )
    info = parse_info_report(report, "10.0.0.7:5555")
    assert (info.name, info.abi, info.cpu_model, info.cores) == ("Pixel 7", "arm64-v8a", "gs201", 8)
    assert info.frequencies_khz == (300000, 1800000, 2850000)
    assert info.thermal_c == {"skin-therm": 38.25, "skin-therm#2": 39.0, "battery": 31.0}


def test_parse_info_report_counts_core_folders_when_possible_is_hidden():
    info = parse_info_report("possible=\ncpu cpu0=\ncpu cpu1=\n", "dev")
    assert (info.cores, info.frequencies_khz, info.name) == (2, (), "dev")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("192.168.1.20:5555", ("192.168.1.20", 5555)),
        ("phone.local", ("phone.local", 5555)),
        ("[::1]:5037", ("::1", 5037)),
    ],
)
def test_parse_tcp_address(address, expected):
    assert parse_tcp_address(address) == expected
