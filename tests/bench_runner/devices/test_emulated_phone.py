"""A phone with nothing built for it: vitdeploy pushes its aarch64 bundle over the real ADB
protocol and measures through the bundle's loader, on the emulated phone (tests.adb_loopback),
whose shell runs aarch64 programs under QEMU and has no Python."""

from __future__ import annotations

import posixpath
import shutil
from pathlib import Path

import pytest

from bench_runner.bundle import DEVICE_DIR_NAME, STAMP_NAME, build_bundle, install_bundle
from bench_runner.devices.android import AndroidDevice
from bench_runner.harness.base import HarnessError
from bench_runner.native_runner.build import build_runner
from bench_runner.records import ArtifactInfo
from bench_runner.store import ResultsStore
from deploy.cli import main
from tests.adb_loopback import LoopbackAdbd
from tests.adb_loopback.device_root import DEFAULT_PROPS, DeviceLayout, FakeDeviceRoot
from tests.bench_runner.tiny_artifacts import TINY_INPUT_SHAPE, write_missing_operator_pte

pytestmark = pytest.mark.qemu
FAST = ["--warmup", "1", "--runs", "3", "--rounds", "1", "--min-seconds", "0", "--threads", "1",
        "--input-shape", ",".join(map(str, TINY_INPUT_SHAPE))]


@pytest.fixture(scope="module")
def runner_bundle(qemu_arm64):
    return build_bundle("executorch", qemu_arm64,
                        runner=build_runner(qemu_arm64.executorch_root, "aarch64", log=lambda line: None),
                        log=lambda line: None)


def _phone_profile(folder, adbd: LoopbackAdbd):
    folder.mkdir(exist_ok=True)
    (folder / "phone.toml").write_text(
        f'name = "phone"\nkind = "android"\n[connection]\naddress = "{adbd.address}"\n', encoding="utf-8"
    )
    return folder


def _device(adbd: LoopbackAdbd, adb_key_home) -> AndroidDevice:
    return AndroidDevice(address=adbd.address, key_dir=adb_key_home, name="phone").connect()


def test_the_emulated_phones_shell_has_no_python_and_runs_aarch64_programs(
    emulated_phone_adbd, adb_key_home, runner_bundle
):
    device = _device(emulated_phone_adbd, adb_key_home)
    try:
        assert device.run(["sh", "-c", "command -v python3 python || echo none"], timeout=30).stdout.strip() == "none"
        remote = install_bundle(device, runner_bundle, log=lambda line: None)
        version = device.run([f"{remote}/lib/ld-linux-aarch64.so.1", "--library-path", f"{remote}/lib",
                              f"{remote}/{runner_bundle.program}", "--version"], timeout=60)
    finally:
        device.close()
    assert version.exit_code == 0 and "executorch" in version.stdout.lower()


def test_bench_measures_pte_and_onnx_on_a_phone_with_nothing_on_it_pushing_the_bundle_once(
    emulated_phone_adbd, adb_key_home, tiny_pte, tiny_onnx, tmp_path, capsys
):
    profiles = _phone_profile(tmp_path / "profiles", emulated_phone_adbd)
    results = tmp_path / "store"
    argv = ["bench", str(tiny_pte), str(tiny_onnx), "--device", "phone", "--profiles", str(profiles),
            "--results", str(results), *FAST]
    assert main(argv) == 0, capsys.readouterr()
    bundle_pushes = [path.rsplit("/", 1)[-1] for path in emulated_phone_adbd.pushed if f"/{DEVICE_DIR_NAME}/" in path]
    assert sorted(name.split("-")[0] for name in bundle_pushes if name.endswith(".tar")) == ["executorch", "onnxruntime"]
    assert bundle_pushes.count(STAMP_NAME) == 2
    first = {record.backend: record for record in ResultsStore(results).load()}
    assert set(first) == {"executorch", "onnx"}
    assert {(r.harness, r.device["abi"]) for r in first.values()} == {("vitdeploy-runner", "arm64-v8a"),
                                                                      ("python-agent", "arm64-v8a")}
    for record in first.values():
        assert record.ok, record.error
        assert len(record.samples_ms) == 3 and record.output_checksum is not None
        assert record.toolchain["device"]["vitdeploy-bundle"].startswith(("executorch-", "onnxruntime-"))

    pushed_before = len(emulated_phone_adbd.pushed)
    assert main(argv) == 0
    again = [path for path in emulated_phone_adbd.pushed[pushed_before:] if f"/{DEVICE_DIR_NAME}/" in path]
    assert again == []
    second = ResultsStore(results).load()[2:]
    assert len(second) == 2 and all(r.ok for r in second)
    assert {r.output_checksum for r in second} == {r.output_checksum for r in first.values()}


@pytest.mark.parametrize("damaged, replacement", [
    ("runner/libexecutorch.so", lambda original: original.read_bytes()[:4096]),  # a cut-short copy
    ("lib/ld-linux-aarch64.so.1", lambda original: Path(shutil.which("true")).read_bytes()),  # the host's CPU
])
def test_a_damaged_or_foreign_bundle_on_the_phone_is_pushed_again(
    emulated_phone_adbd, emulated_phone_root, adb_key_home, runner_bundle, damaged, replacement
):
    device = _device(emulated_phone_adbd, adb_key_home)
    lines = []
    try:
        remote = install_bundle(device, runner_bundle, log=lines.append)
        on_phone = emulated_phone_root.host_path(posixpath.join(remote, damaged))
        on_phone.write_bytes(replacement(on_phone))
        assert install_bundle(device, runner_bundle, log=lines.append) == remote
    finally:
        device.close()
    assert any("does not start" in line and "pushing it again" in line for line in lines)
    assert on_phone.read_bytes() == (runner_bundle.path / damaged).read_bytes()


def test_a_phone_that_cannot_start_the_bundle_gets_the_fallback_named(tmp_path, adb_key_home, runner_bundle):
    # A plain loopback device: its shell has no QEMU, so an aarch64 loader cannot start.
    root = FakeDeviceRoot(tmp_path / "device")
    public_key = (adb_key_home / "adbkey.pub").read_bytes()
    with LoopbackAdbd(root, trusted_keys=[public_key]) as adbd:
        device = _device(adbd, adb_key_home)
        try:
            with pytest.raises(HarnessError, match=r"does not start on device phone.*executor_runner.*\[harness\]"):
                install_bundle(device, runner_bundle, log=lambda line: None)
        finally:
            device.close()


def test_a_phone_of_another_abi_is_refused_before_anything_is_pushed(tmp_path, adb_key_home, runner_bundle):
    root = FakeDeviceRoot(tmp_path / "device", DeviceLayout(props={**DEFAULT_PROPS, "ro.product.cpu.abi": "x86_64"}))
    public_key = (adb_key_home / "adbkey.pub").read_bytes()
    with LoopbackAdbd(root, trusted_keys=[public_key]) as adbd:
        device = _device(adbd, adb_key_home)
        try:
            with pytest.raises(HarnessError, match="ABI x86_64.*arm64-v8a only"):
                install_bundle(device, runner_bundle, log=lambda line: None)
        finally:
            device.close()
        assert adbd.pushed == []


def test_a_pte_with_an_operator_the_runner_lacks_fails_alone_on_the_phone(
    emulated_phone_adbd, adb_key_home, tiny_pte, tmp_path
):
    from bench_runner.profiles import parse_profile
    from bench_runner.protocol import run_on_profile
    custom = write_missing_operator_pte(tmp_path / "custom.pte")
    profile = parse_profile({"name": "phone", "kind": "android", "connection": {"address": emulated_phone_adbd.address},
                             "measurement": {"threads": [1], "warmup": 1, "runs": 3, "min_seconds": 0.0, "rounds": 1}},
                            "test profile", "phone")
    device = _device(emulated_phone_adbd, adb_key_home)
    try:
        records = run_on_profile(device, profile, [ArtifactInfo.from_path(p, input_shape=TINY_INPUT_SHAPE)
                                                   for p in (tiny_pte, custom)], profile.measurement)
    finally:
        device.cleanup()
    good, bad = records
    assert good.ok, good.error
    assert not bad.ok and "vitdeploy_runner_test::twice" in bad.error
