"""The graph editing every pass shares."""

import torch
from torch import nn

from lowering.export.passes.graph import copied
from lowering.export.passes.layer_norm import LAYER_NORM
from tests.lowering.export.passes.conftest import export, same_function


def _normed():
    return nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16))  # its input placeholder is called `input`


def test_a_rewrite_adds_constants_and_keeps_the_given_program():
    x = torch.randn(1, 4, 8)
    program = export(_normed(), x)
    passed = LAYER_NORM(program)
    added = [spec for spec in passed.graph_signature.input_specs if spec.kind.name == "CONSTANT_TENSOR"]
    assert len(added) == 2 and all(spec.target in passed.constants for spec in added)
    assert not program.constants and len(program.graph_signature.input_specs) == 5
    same_function(program, passed, x)


def test_lowering_a_copy_leaves_the_programs_constants_for_the_next_target():
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    x = torch.randn(1, 4, 8)
    passed = LAYER_NORM(export(_normed(), x))
    constants = dict(passed.constants)
    to_edge_transform_and_lower(copied(passed), partitioner=[XnnpackPartitioner()])
    assert passed.constants == constants
    passed.module()(x)  # PT2E quantization starts here for an int8 target
