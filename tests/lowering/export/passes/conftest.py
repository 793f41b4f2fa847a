"""What every pass test checks: the rewritten program computes what the given one does,
and every node a pass wrote names the module of the node it replaced."""

import torch
from torch import nn

from lowering.export.passes.graph import PASS_KEY
from lowering.export.unsupported import is_operator, op_name


def export(model: nn.Module, *inputs: torch.Tensor) -> torch.export.ExportedProgram:
    """`model` exported as the pipeline exports it (training IR, not decomposed)."""
    return torch.export.export(model.eval(), inputs, strict=False)


def ops(program: torch.export.ExportedProgram) -> list[str]:
    """The program's operators, in graph order, one entry per call."""
    return [op_name(node.target) for node in program.graph.nodes if is_operator(node)]


def same_function(given: torch.export.ExportedProgram, rewritten: torch.export.ExportedProgram,
                  *inputs: torch.Tensor, atol: float = 1e-5) -> float:
    """The largest difference between the two programs' outputs; asserts it is at most `atol`."""
    with torch.no_grad():
        expected, found = given.module()(*inputs), rewritten.module()(*inputs)
    assert found.shape == expected.shape
    error = (found - expected).abs().max().item()
    assert error <= atol, error
    return error


def written_by(program: torch.export.ExportedProgram, name: str) -> list[torch.fx.Node]:
    """The operator nodes pass `name` wrote, each checked to carry a module path."""
    nodes = [n for n in program.graph.nodes if n.op == "call_function" and n.meta.get(PASS_KEY) == name]
    assert all(n.meta.get("nn_module_stack") for n in nodes), "pass nodes carry the replaced node's module"
    return nodes


def module_paths(nodes: list[torch.fx.Node]) -> set[str]:
    """The innermost module path of each node."""
    return {list(n.meta["nn_module_stack"].values())[-1][0] for n in nodes}
