"""A graph pass: a named, versioned rewrite of an exported program.

    GraphPass(name, version, apply, settings)    apply(program) -> program
    node_rewrites(name, targets, rewrite_node)   an `apply` that offers every node calling
                                                 one of `targets` to `rewrite_node(edit, node)`

A pass that finds nothing to rewrite returns the program it was given, unchanged; one that
does returns a new program and leaves the given one as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch.export import ExportedProgram

from lowering.export.passes.graph import Edit, calls, rewritten


@dataclass(frozen=True)
class GraphPass:
    """One rewrite. Bump `version` when what it writes changes: the artifact cache keys on
    it, and on `settings` (the parameters it was built with)."""

    name: str
    version: int
    apply: Callable[[ExportedProgram], ExportedProgram]
    settings: Mapping[str, object] = field(default_factory=dict)

    def __call__(self, program: ExportedProgram) -> ExportedProgram:
        return self.apply(program)

    @property
    def identity(self) -> dict:
        """What the cache key records of this pass."""
        return {"version": self.version, **self.settings}


def node_rewrites(name: str, targets, rewrite_node: Callable[[Edit, torch.fx.Node], bool]):
    """An `apply` that calls `rewrite_node(edit, node)` for each node calling one of
    `targets` (new nodes go before `node`); `rewrite_node` replaces the node through
    `edit` and says whether it did."""

    def apply(program: ExportedProgram) -> ExportedProgram:
        if not calls(program.graph, targets):
            return program
        fired = []

        def rewrite(edit: Edit) -> None:
            for node in calls(edit.graph, targets):
                if getattr(node, "_erased", False):  # removed by an earlier rewrite of this pass
                    continue
                with edit.graph.inserting_before(node):
                    fired.append(rewrite_node(edit, node))

        result = rewritten(program, rewrite, name)
        return result if any(fired) else program

    return apply
