"""`roll` (shifted windows) as two slices and a concatenation per rolled dimension:
roll(x, s, d) = cat(x[n - s:], x[:n - s]) along d, n its size. XNNPACK has no roll."""

from __future__ import annotations

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites

aten = torch.ops.aten


def _rewrite(edit: Edit, node: torch.fx.Node) -> bool:
    x, shifts, *rest = node.args
    dims = rest[0] if rest else node.kwargs.get("dims", [])
    if not dims or len(dims) != len(shifts):
        return False
    for shift, dim in zip(shifts, dims):
        size = shape(x)[dim]
        cut = size - shift % size
        if cut == size:
            continue
        tail = edit.call(aten.slice.Tensor, (x, dim, cut, size), node)
        head = edit.call(aten.slice.Tensor, (x, dim, 0, cut), node)
        x = edit.call(aten.cat.default, ([tail, head], dim), node)
    edit.replace(node, x)
    return True


ROLL = GraphPass("roll", 1, node_rewrites("roll", (aten.roll.default,), _rewrite))
