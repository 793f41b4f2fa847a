"""Folding: every value computed from weights and constants alone (relative-position
bias tables indexed by constant indices, attention-bias gathers, an `expand` of a class
token) replaced by its value, through ExecuTorch's constant propagation. XNNPACK has no
`index`; Core ML has no converter for `where` with a scalar, which exported Hugging Face
models use to build their all-true attention mask at run time (Core ML folds the program
after `run_decompositions({})`)."""

from __future__ import annotations

import torch
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind

from lowering.export.passes.graph import Edit, copied, rewritten
from lowering.export.passes.graph_pass import GraphPass


def _writes_a_constant(program: ExportedProgram) -> bool:
    """Whether an in-place operator writes a value computed from constants alone (Hugging
    Face BEiT builds its relative-position index with `zeros` and in-place additions):
    folding would turn that value into a lifted constant that the graph then mutates."""
    weights = {spec.arg.name for spec in program.graph_signature.input_specs if spec.kind != InputKind.USER_INPUT}
    constant: set[str] = set()
    for node in program.graph.nodes:
        inputs = node.all_input_nodes
        if node.op == "placeholder":
            if node.name in weights:
                constant.add(node.name)
        elif node.op == "call_function" and all(arg.name in constant for arg in inputs):
            schema = getattr(node.target, "_schema", None)
            if schema is not None and schema.is_mutable:
                return True
            constant.add(node.name)
    return False


def fold_constants(program: ExportedProgram) -> ExportedProgram:
    """`program` with every node whose inputs are all constants replaced by its value; the
    given program is left as it was, and returned as it is when nothing folds or when the
    graph writes in place to such a value."""
    from executorch.exir.passes.constant_prop_pass import constant_prop_pass

    if _writes_a_constant(program):
        return program
    folded = constant_prop_pass(copied(program))
    operators = [sum(node.op == "call_function" for node in p.graph.nodes) for p in (program, folded)]
    return program if operators[0] == operators[1] else rewritten(folded, _with_row_major_strides, "fold_constants")


def _with_row_major_strides(edit: Edit) -> None:
    """Folded values keep the strides of the view that made them (a [1, 1, 49, 49] bias with
    strides (1, 1, 49, 1)); ExecuTorch derives a dimension order from those, and XNNPACK
    then failed to run Swin ("Propagating input shapes failed"). Rewritten row-major."""
    for node in edit.graph.find_nodes(op="placeholder"):
        if edit.input_specs[node.name].kind != InputKind.CONSTANT_TENSOR:
            continue
        value = edit.value(node)
        if value.stride() != torch.empty(value.shape).stride():
            edit.set_constant(node, value.new_empty(value.shape).copy_(value))


FOLD_CONSTANTS = GraphPass("fold_constants", 1, fold_constants)
