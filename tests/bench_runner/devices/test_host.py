import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench_runner.devices.base import Device, DeviceError
from bench_runner.devices.host import HostDevice, describe_cpu, read_frequencies_khz, read_thermal_c

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni amx_tile
"""
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes asimddp
CPU implementer\t: 0x41
Hardware\t: Qualcomm Technologies, Inc SM8550
"""


def test_cpu_description_names_model_and_vector_extensions():
    assert describe_cpu(X86_CPUINFO) == "Intel(R) Xeon(R) Platinum 8480+ (avx2, fma, avx512f, avx512_vnni, amx_tile)"
    assert describe_cpu(ARM_CPUINFO) == "Qualcomm Technologies, Inc SM8550 (asimd, asimddp)"


def test_frequencies_and_temperatures_from_sysfs(tmp_path):
    for cpu, khz in ((10, "900000"), (2, "1800000"), (0, "2400000")):
        freq = tmp_path / f"devices/system/cpu/cpu{cpu}/cpufreq"
        freq.mkdir(parents=True)
        (freq / "scaling_cur_freq").write_text(khz + "\n")
    for zone, kind, millidegrees in ((0, "cpu-thermal", "45500"), (1, "cpu-thermal", "47000"), (2, "battery", "bad")):
        path = tmp_path / f"class/thermal/thermal_zone{zone}"
        path.mkdir(parents=True)
        (path / "type").write_text(kind + "\n")
        (path / "temp").write_text(millidegrees + "\n")
    assert read_frequencies_khz(tmp_path) == (2400000, 1800000, 900000)
    assert read_thermal_c(tmp_path) == {"cpu-thermal": 45.5, "cpu-thermal@thermal_zone1": 47.0}
    assert read_frequencies_khz(tmp_path / "absent") == () and read_thermal_c(tmp_path / "absent") == {}


def test_push_run_pull_cleanup(tmp_path):
    device = HostDevice()
    assert isinstance(device, Device)
    local = tmp_path / "in.txt"
    local.write_text("hello")
    remote = f"{device.workdir}/sub/in.txt"
    try:
        device.push(local, remote)
        result = device.run([sys.executable, "-c", f"import sys; print(open({remote!r}).read()); sys.exit(3)"], timeout=60)
        assert (result.exit_code, result.stdout.strip()) == (3, "hello")
        device.pull(remote, tmp_path / "back.txt")
        assert (tmp_path / "back.txt").read_text() == "hello"
        assert device.run([sys.executable, "-c", "import os; print(os.getpid())"], timeout=60).stdout.strip() != str(os.getpid())
    finally:
        device.cleanup()
    assert not Path(device.workdir).exists()


def test_missing_files_and_programs_are_device_errors(tmp_path):
    device = HostDevice(name="bench-box")
    with pytest.raises(DeviceError, match="bench-box: cannot push"):
        device.push(tmp_path / "absent", f"{device.workdir}/x")
    with pytest.raises(DeviceError, match="cannot pull"):
        device.pull(f"{device.workdir}/absent", tmp_path / "x")
    with pytest.raises(DeviceError, match="cannot start"):
        device.run([str(tmp_path / "no-such-program")], timeout=5)


def test_a_hanging_command_is_killed_with_its_children(tmp_path):
    marker = tmp_path / "child-survived"
    child = f"import time; time.sleep(1.5); open({str(marker)!r}, 'w').close()"
    parent = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(60)"
    device = HostDevice()
    started = time.monotonic()
    with pytest.raises(DeviceError, match="did not finish within 0.5 s"):
        device.run([sys.executable, "-c", parent], timeout=0.5)
    assert time.monotonic() - started < 30
    time.sleep(2.5)
    assert not marker.exists()


def test_info_describes_this_machine():
    info = HostDevice(name="bench-box").info()
    assert (info.kind, info.name, info.emulated) == ("host", "bench-box", False)
    assert info.cores == os.cpu_count() and info.cpu_model and info.os


def test_an_interrupted_caller_takes_its_command_down(tmp_path, monkeypatch):
    marker = tmp_path / "still-running"
    program = f"import time; time.sleep(1.5); open({str(marker)!r}, 'w').close()"
    original = subprocess.Popen.communicate

    def interrupted(self, *args, **kwargs):
        if kwargs.get("timeout"):
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        HostDevice().run([sys.executable, "-c", program], timeout=60)
    time.sleep(2.5)
    assert not marker.exists()
