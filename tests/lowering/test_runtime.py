import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from lowering.runtime import RuntimeUnavailableError, load_artifact
from tests.manifests import write_test_manifest
from vitdeploy.manifest import ManifestError

WEIGHT = np.arange(12 * 5, dtype=np.float32).reshape(12, 5) / 60


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    """images [1, 3, 2, 2] -> flatten -> matmul -> logits [1, 5], written with onnx helpers."""
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["images"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 2, 2])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(WEIGHT, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    onnx.save(model, str(path))
    write_test_manifest(path)
    return path


@pytest.fixture(scope="module")
def pte_model(tmp_path_factory):
    """A linear layer as an ExecuTorch program on portable kernels (lowering through
    XNNPACK is covered by the export tests and slow to start)."""
    from executorch.exir import to_edge

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5)).eval()
    program = torch.export.export(module, (torch.zeros(1, 3, 2, 2),))
    manager = to_edge(program).to_executorch()
    path = tmp_path_factory.mktemp("pte") / "tiny.pte"
    path.write_bytes(manager.buffer)
    write_test_manifest(path)
    return path, module


def _images(count):
    return np.random.default_rng(0).standard_normal((count, 3, 2, 2)).astype(np.float32)


def test_onnx_runner_runs_any_batch_through_a_batch_one_model(onnx_model):
    runner = load_artifact(onnx_model, threads=1)
    assert runner.runtime == "onnxruntime" and runner.input_shape == (1, 3, 2, 2)
    images = _images(7)
    np.testing.assert_allclose(runner(images), images.reshape(7, 12) @ WEIGHT, rtol=1e-5, atol=1e-5)


def test_executorch_runner_matches_the_module(pte_model):
    path, module = pte_model
    runner = load_artifact(path)
    assert runner.runtime == "executorch" and runner.input_shape == (1, 3, 2, 2)
    images = _images(5)
    with torch.no_grad():
        expected = module(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(runner(images), expected, rtol=1e-5, atol=1e-5)


def test_executorch_thread_pool_cannot_be_resized_after_a_load(pte_model):
    from executorch.extension.pybindings import portable_lib

    load_artifact(pte_model[0])
    current = int(portable_lib._threadpool_get_thread_count())
    with pytest.raises(RuntimeUnavailableError, match="cannot be resized"):
        load_artifact(pte_model[0], threads=current + 1)
    assert load_artifact(pte_model[0], threads=current).input_shape == (1, 3, 2, 2)


def test_runtime_comes_from_the_manifest_or_is_a_clear_error(onnx_model, tmp_path):
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(onnx_model.read_bytes())
    with pytest.raises(ManifestError, match="no manifest"):
        load_artifact(bare)
    assert load_artifact(bare, runtime="onnxruntime").input_shape == (1, 3, 2, 2)
    with pytest.raises(RuntimeUnavailableError, match="unknown runtime 'tflite'"):
        load_artifact(bare, runtime="tflite")
    with pytest.raises(RuntimeUnavailableError, match="not found"):
        load_artifact(tmp_path / "gone.onnx", runtime="onnxruntime")


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML runs on macOS")
def test_coreml_needs_macos(tmp_path):
    package = tmp_path / "m.mlpackage"
    package.mkdir()
    with pytest.raises(RuntimeUnavailableError, match="needs macOS"):
        load_artifact(package, runtime="coreml")
