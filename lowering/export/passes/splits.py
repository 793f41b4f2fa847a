"""`unbind`, `split`, `split_with_sizes` and `chunk` as one slice per piece used (XNNPACK
has no node for the multi-output operators; an unbound piece is also reshaped to drop
the dimension)."""

from __future__ import annotations

import operator

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites

aten = torch.ops.aten
_SPLITS = (aten.unbind.int, aten.split.Tensor, aten.split_with_sizes.default, aten.chunk.default)


def _dim(node: torch.fx.Node) -> int:
    if node.target == aten.unbind.int:
        given = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    else:
        given = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
    return given % len(shape(node.args[0]))


def _rewrite(edit: Edit, node: torch.fx.Node) -> bool:
    if not all(user.target is operator.getitem for user in node.users):
        return False
    x, dim = node.args[0], _dim(node)
    unbind = node.target == aten.unbind.int
    pieces = node.meta["val"]
    starts = [0]
    for piece in pieces:
        starts.append(starts[-1] + (1 if unbind else piece.shape[dim]))
    for user in list(node.users):
        index = user.args[1]
        piece = edit.call(aten.slice.Tensor, (x, dim, starts[index], starts[index + 1]), user)
        if unbind:
            piece = edit.call(aten.reshape.default, (piece, shape(user)), user)
        edit.replace(user, piece)
    edit.graph.erase_node(node)
    return True


SPLITS = GraphPass("splits", 1, node_rewrites("splits", _SPLITS, _rewrite))
