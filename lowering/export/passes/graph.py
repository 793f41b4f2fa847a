"""Editing an exported program's graph: the one place that copies a program, adds nodes
with their provenance and values, and adds constants.

    calls(graph, targets)               the call_function nodes of `targets`, in order
    rewritten(program, rewrite)         a copy of `program` after `rewrite(edit)` changed it
    copied(program)                     a copy with its own graph and dicts of weights and constants
    Edit.call(target, args, like)       a new node computing `target`, inserted at the
                                        graph's insertion point, with `like`'s provenance
    Edit.constant(tensor)               a new lifted constant (a placeholder) holding `tensor`
    Edit.value(node)                    the tensor a parameter, buffer or constant holds

Every node an edit creates carries the replaced node's module path and source line
(`nn_module_stack`, `stack_trace`): int8 ranges and error messages name modules by them.
It also records the pass that made it under `meta["graph_pass"]`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence

import torch
from torch._guards import detect_fake_mode
from torch.export import ExportedProgram
from torch.export.graph_signature import (
    ExportGraphSignature,
    InputKind,
    InputSpec,
    OutputSpec,
    TensorArgument,
)
from torch.fx.node import map_arg

# Node metadata a replacement inherits from the node it replaces: module path and source line.
PROVENANCE = ("nn_module_stack", "stack_trace")
PASS_KEY = "graph_pass"
_CONSTANT_PREFIX = "_graph_pass_constant"


def calls(graph: torch.fx.Graph, targets) -> list[torch.fx.Node]:
    """The nodes of `graph` that call one of `targets`, in graph order."""
    return [node for node in graph.nodes if node.op == "call_function" and node.target in targets]


def shape(node: torch.fx.Node) -> list[int]:
    """The static shape of the tensor `node` computes."""
    return list(node.meta["val"].shape)


class Edit:
    """A graph being rewritten, with the program it belongs to; see the module docstring."""

    def __init__(self, program: ExportedProgram, module: torch.fx.GraphModule, pass_name: str):
        self.graph = module.graph
        self.pass_name = pass_name
        self.constants = dict(program.constants)
        self._program = program
        # The copy may rename placeholders (an input called `input` becomes `input_1`).
        placeholders = zip(program.graph.find_nodes(op="placeholder"), self.graph.find_nodes(op="placeholder"))
        by_name = {spec.arg.name: spec for spec in program.graph_signature.input_specs}
        self.input_specs: dict[str, InputSpec] = {
            twin.name: dataclasses.replace(by_name[original.name], arg=TensorArgument(twin.name))
            if isinstance(by_name[original.name].arg, TensorArgument) else by_name[original.name]
            for original, twin in placeholders
        }
        self._fake_mode = detect_fake_mode(
            tuple(node.meta["val"] for node in self.graph.nodes if node.op == "placeholder" and "val" in node.meta))

    def call(self, target, args: Sequence, like: torch.fx.Node) -> torch.fx.Node:
        """A node computing `target(*args)` at the insertion point, with `like`'s provenance."""
        node = self.graph.call_function(target, tuple(args))
        node.meta.update({key: like.meta[key] for key in PROVENANCE if key in like.meta})
        node.meta[PASS_KEY] = self.pass_name
        node.meta["val"] = target(*map_arg(tuple(args), lambda arg: arg.meta["val"]))
        return node

    def constant(self, tensor: torch.Tensor) -> torch.fx.Node:
        """A new lifted constant holding `tensor`, placed before the user inputs."""
        index = len(self.constants)
        while f"{_CONSTANT_PREFIX}{index}" in self.constants:
            index += 1
        target = f"{_CONSTANT_PREFIX}{index}"
        self.constants[target] = tensor
        with self.graph.inserting_before(self._first_user_input()):
            node = self.graph.placeholder(f"c{target}")
        node.meta[PASS_KEY] = self.pass_name
        node.meta["val"] = self._fake_mode.from_tensor(tensor, static_shapes=True)
        self.input_specs[node.name] = InputSpec(InputKind.CONSTANT_TENSOR, TensorArgument(node.name), target)
        return node

    def set_constant(self, node: torch.fx.Node, tensor: torch.Tensor) -> None:
        """The lifted constant `node` now holds `tensor` (of the same shape and type)."""
        self.constants[self.input_specs[node.name].target] = tensor
        node.meta["val"] = self._fake_mode.from_tensor(tensor, static_shapes=True)

    def value(self, node: torch.fx.Node) -> torch.Tensor | None:
        """The tensor `node` holds if it is a parameter, buffer or lifted constant."""
        spec = self.input_specs.get(node.name) if node.op == "placeholder" else None
        if spec is None or spec.kind == InputKind.USER_INPUT:
            return None
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER) and spec.target in self._program.state_dict:
            return self._program.state_dict[spec.target]
        return self.constants.get(spec.target)

    def replace(self, node: torch.fx.Node, replacement: torch.fx.Node) -> None:
        """Every use of `node` now uses `replacement`; `node` is erased."""
        node.replace_all_uses_with(replacement)
        self.graph.erase_node(node)

    def _first_user_input(self) -> torch.fx.Node:
        return next(node for node in self.graph.find_nodes(op="placeholder")
                    if self.input_specs[node.name].kind == InputKind.USER_INPUT)


def rewritten(program: ExportedProgram, rewrite: Callable[[Edit], None], pass_name: str = "") -> ExportedProgram:
    """A copy of `program` whose graph `rewrite` changed in place (the given program is left
    as it was); dead nodes are removed, input specs follow the placeholders (constants the
    rewrite added included) and output specs follow the output nodes."""
    module = copy.deepcopy(program.graph_module)
    edit = Edit(program, module, pass_name)
    rewrite(edit)
    module.graph.eliminate_dead_code()
    module.graph.lint()
    module.recompile()
    signature = program.graph_signature
    input_specs = [edit.input_specs[node.name] for node in module.graph.find_nodes(op="placeholder")]
    output_specs = [
        OutputSpec(spec.kind, TensorArgument(node.name), spec.target) if isinstance(spec.arg, TensorArgument) else spec
        for spec, node in zip(signature.output_specs, module.graph.output_node().args[0])
    ]
    return ExportedProgram(
        root=module,
        graph=module.graph,
        graph_signature=ExportGraphSignature(input_specs, output_specs),
        state_dict=dict(program.state_dict),
        range_constraints=program.range_constraints,
        module_call_graph=program.module_call_graph,
        example_inputs=program.example_inputs,
        constants=edit.constants,
        verifiers=program.verifiers,
    )


def copied(program: ExportedProgram) -> ExportedProgram:
    """A copy of `program` with its own graph and its own dicts of weights and constants
    (the tensors are shared): ExecuTorch's lowering deletes from the program it is given the
    constants it moves into a delegate."""
    return rewritten(program, lambda edit: None)
