"""Assembling the phone bundle's parts from the emulated CPU's sysroot (bench_runner.bundle)."""

import pytest

from bench_runner.bundle import LOADER, STAMP_NAME, build_bundle, bundle_source, launch_argv, read_bundle
from bench_runner.elf import elf_machine, needed_libraries
from bench_runner.harness.base import HarnessError
from bench_runner.native_runner.build import build_runner

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def env():
    from bench_runner.devices.qemu_setup import setup_qemu_arm64
    from vitdeploy.user_cache import user_cache_dir

    setup_qemu_arm64(user_cache_dir(), log=lambda line: None)
    return bundle_source()


@pytest.mark.parametrize("part", ["executorch", "onnxruntime"])
def test_a_part_holds_every_library_its_programs_need_and_a_second_build_is_a_cache_hit(env, part, tmp_path):
    runner = build_runner(env.executorch_root, "aarch64", log=lambda line: None) if part == "executorch" else None
    bundle = build_bundle(part, env, runner=runner, cache_root=tmp_path, log=lambda line: None)
    held = {path.name for path in bundle.path.rglob("*") if path.is_file()}
    elf_files = [path for path in bundle.path.rglob("*") if path.is_file() and elf_machine(path) is not None]
    assert {elf_machine(path) for path in elf_files} == {"aarch64"}
    assert {name for path in elf_files for name in needed_libraries(path)} - held == set()
    assert (bundle.path / LOADER).is_file() and (bundle.path / bundle.program).is_file()
    assert launch_argv("/d/x", bundle) == ["/d/x/lib/ld-linux-aarch64.so.1", "--library-path", "/d/x/lib",
                                           f"/d/x/{bundle.program}"]
    again = build_bundle(part, env, runner=runner, cache_root=tmp_path, log=lambda line: pytest.fail(line))
    assert again == bundle == read_bundle(bundle.path)
    assert (bundle.path / STAMP_NAME).read_text() == bundle.stamp()


def test_an_unknown_part_or_a_runner_part_without_runner_is_refused(env, tmp_path):
    with pytest.raises(HarnessError, match="unknown bundle part 'tensorflow'"):
        build_bundle("tensorflow", env, cache_root=tmp_path)
    with pytest.raises(HarnessError, match="needs the aarch64 native runner"):
        build_bundle("executorch", env, cache_root=tmp_path)
