from pathlib import Path

import pytest

from bench_runner.profiles import (
    DeviceProfile,
    ProfileError,
    find_profile,
    load_profile,
    parse_profile,
    profile_paths,
)
from bench_runner.protocol import MeasurementSettings


def write(tmp_path: Path, text: str, name: str = "phone.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_shipped_profile_is_valid():
    profiles = [load_profile(path) for path in profile_paths()]
    kinds = {p.kind for p in profiles}
    assert {"host", "qemu-arm64", "android", "macos"} <= kinds
    assert all(p.name == p.source.stem for p in profiles)


def test_a_full_profile_is_read_into_frozen_data(tmp_path):
    path = write(
        tmp_path,
        """
name = "pixel"
kind = "android"
description = "test phone"
[connection]
serial = "ABC123"
[measurement]
threads = [1, 4]
cpu_mask = "f0"
warmup = 3
runs = 20
min_seconds = 1
rounds = 2
cooldown_seconds = 5.5
[lowering]
backends = ["executorch"]
quantization = ["int8"]
input_size = 160
[harness]
executor_runner = "bin/executor_runner"
python = "/data/local/tmp/python3"
""",
    )
    profile = load_profile(path)
    assert (profile.name, profile.kind, profile.connection.serial, profile.connection.address) == ("pixel", "android", "ABC123", None)
    assert profile.measurement == MeasurementSettings(
        threads=(1, 4), cpu_mask="f0", warmup=3, runs=20, min_seconds=1.0, rounds=2, cooldown_seconds=5.5
    )
    assert profile.lowering.backends == ("executorch",) and profile.lowering.input_size == 160
    assert profile.harness.executor_runner == tmp_path / "bin" / "executor_runner"
    assert profile.harness.python == "/data/local/tmp/python3"
    assert profile.qemu_cpu is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('kind = "android"\nthreads = [1]', r"phone\.toml: threads: unknown key"),
        ('kind = "android"\n[measurement]\nthread = [1]', r"phone\.toml: \[measurement\] thread: unknown key"),
        ('kind = "android"\n[measurement]\nruns = "50"', r"\[measurement\] runs: must be an integer"),
        ('kind = "android"\n[measurement]\nthreads = [0]', r"threads must be a non-empty list of positive integers"),
        ('kind = "android"\n[measurement]\ncpu_mask = "big"', r"cpu_mask must be a hexadecimal mask"),
        ('kind = "android"\n[measurement]\nwarmup = true', r"warmup: must be an integer"),
        ('kind = "phone"', r"kind: 'phone' is not one of"),
        ('name = "x"', r"kind: missing"),
        ('kind = "host"\n[qemu]\ncpu = "max"', r"\[qemu\] cpu: applies only to kind 'qemu-arm64'"),
        ('kind = "android"\nconnection = 3', r"connection: must be a table"),
        ('kind = "android"\n[measurement\n', r"not valid TOML"),
        ('kind = "host"\nbudget_ms = 0', r"budget_ms: must be a positive number of milliseconds"),
        ('kind = "host"\nbudget_ms = "25"', r"budget_ms: must be a number"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, text, message):
    with pytest.raises(ProfileError, match=message):
        load_profile(write(tmp_path, text))


def test_parsing_has_no_side_effects_on_the_file_system(tmp_path):
    profile = parse_profile({"kind": "android", "harness": {"executor_runner": "absent/runner"}}, str(tmp_path / "p.toml"), "p")
    assert profile.harness.executor_runner == tmp_path / "absent" / "runner"
    assert list(tmp_path.iterdir()) == []


def test_find_profile_by_name_path_or_kind(tmp_path):
    path = write(tmp_path, 'kind = "qemu-arm64"\n[qemu]\ncpu = "cortex-a53"', name="slow-arm.toml")
    assert find_profile("slow-arm", tmp_path).qemu_cpu == "cortex-a53"
    assert find_profile(str(path)).name == "slow-arm"
    bare = find_profile("qemu-arm64", tmp_path)
    assert bare == DeviceProfile(name="qemu-arm64", kind="qemu-arm64", qemu_cpu="cortex-a76")
    with pytest.raises(ProfileError, match="known profiles: slow-arm"):
        find_profile("pixel-9", tmp_path)


def test_a_profile_may_carry_a_latency_budget(tmp_path):
    assert load_profile(write(tmp_path, 'kind = "host"\nbudget_ms = 25')).budget_ms == 25.0
    assert load_profile(write(tmp_path, 'kind = "host"')).budget_ms is None
