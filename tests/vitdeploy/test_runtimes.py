import sys

import pytest

from bench_runner.harness import agent
from lowering.export import BACKENDS
from vitdeploy import runtimes


def test_every_backend_names_a_runtime_whose_files_it_writes():
    for backend in BACKENDS.values():
        runtime = runtimes.RUNTIMES[backend.runtime]
        assert backend.suffix in runtime.suffixes
        assert runtimes.runtime_of_file(f"model{backend.suffix}") is runtime


def test_the_agent_measures_with_the_same_runtime_descriptions():
    assert agent.runtimes.RUNTIMES is runtimes.RUNTIMES


def test_unknown_formats_have_no_runtime():
    assert runtimes.runtime_of_file("model.tflite") is None
    assert runtimes.runtime_of_file("pkg.mlpackage/") is runtimes.COREML


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML runs on macOS")
def test_a_runtime_bound_to_another_os_refuses_before_importing_anything(tmp_path):
    assert not runtimes.COREML.available_here()
    with pytest.raises(runtimes.RuntimeUnavailable, match="needs macOS"):
        runtimes.COREML.open(tmp_path / "m.mlpackage")
