"""Tiny artifacts for the bench-runner tests: built in a few milliseconds (ONNX) or seconds (.pte)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

TINY_INPUT_SHAPE = (1, 16)


def write_tiny_onnx(path: Path, seed: int = 0) -> Path:
    """A 16 -> 8 linear layer with ReLU, built with onnx's helper API."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(seed).standard_normal((16, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(TINY_INPUT_SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_tiny_pte(path: Path) -> Path:
    """A two-layer MLP lowered to ExecuTorch with the XNNPACK delegate."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8)).eval()
    exported = torch.export.export(model, (torch.randn(*TINY_INPUT_SHAPE),))
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    path.write_bytes(program.buffer)
    return path


@functools.cache
def _missing_operator_library():
    """`vitdeploy_runner_test::twice`, defined once per process (a second definition fails)
    and kept alive: programs exported with it refer to it."""
    import torch

    library = torch.library.Library("vitdeploy_runner_test", "DEF")
    library.define("twice(Tensor x) -> Tensor")
    library.define("twice.out(Tensor x, *, Tensor(a!) out) -> Tensor(a!)")
    library.impl("twice", lambda x: x * 2, "CompositeExplicitAutograd")
    library.impl("twice.out", lambda x, out: out.copy_(x * 2), "CompositeExplicitAutograd")
    return library


def write_missing_operator_pte(path: Path) -> Path:
    """A program calling `vitdeploy_runner_test::twice`, an operator defined only in this
    Python process: no ExecuTorch runtime has a kernel for it."""
    import torch
    from executorch.exir import to_edge

    _missing_operator_library()

    class Twice(torch.nn.Module):
        def forward(self, x):
            return torch.ops.vitdeploy_runner_test.twice(x) + 1

    exported = torch.export.export(Twice(), (torch.randn(*TINY_INPUT_SHAPE),))
    path.write_bytes(to_edge(exported).to_executorch().buffer)
    return path
