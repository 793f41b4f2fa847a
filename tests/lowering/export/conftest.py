"""Tiny ViTs and one shared lowering run for the export tests."""

import pytest
import torch

from lowering.export import LoweringSpec, Target, lower_model
from lowering.export.unsupported import is_operator, op_name
from lowering.models import create

TINY = dict(depth=2, img_size=32, num_classes=10)
FP32_TARGETS = (Target("executorch", "fp32"), Target("onnx", "fp32"), Target("coreml", "fp32"))


def tiny_vit(name: str = "vit_tiny", seed: int = 0, **overrides):
    """A 2-block ViT-Tiny at 32 x 32 (4 patches) with random LayerNorm affines."""
    torch.manual_seed(seed)
    model = create(name, **{**TINY, **overrides})
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    return model.eval()


def run_on_xnnpack(program: torch.export.ExportedProgram, x: torch.Tensor):
    """ExecuTorch's output for `x`, the number of XNNPACK delegates and the operators
    left outside them."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    nodes = edge.exported_program().graph.nodes
    delegates = sum(node.op == "get_attr" and node.name.startswith("lowered_module") for node in nodes)
    outside = [op_name(node.target) for node in nodes if is_operator(node)]
    buffer = edge.to_executorch().buffer  # the loaded program reads it: keep it alive
    program = Runtime.get().load_program(buffer)
    return program.load_method("forward").execute([x])[0], delegates, outside


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny tensors: one intra-op thread avoids thread-pool overhead on a shared host."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fp32_lowering(tmp_path_factory, artifact_cache):
    """The tiny ViT lowered to fp32 on every backend (shared: ExecuTorch lowering is slow)."""
    model = tiny_vit()
    out = tmp_path_factory.mktemp("fp32-out")
    notes = []
    artifacts = lower_model(model, LoweringSpec(targets=FP32_TARGETS), out_dir=out,
                            cache=artifact_cache, log=notes.append)
    return model, {a.target.backend: a for a in artifacts}, out, notes
