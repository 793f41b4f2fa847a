"""Indexing and broadcasting on token and batch dimensions as slices and views, which
XNNPACK takes (it has no `select`, `squeeze` or `expand`, and unsqueezes only the last
dimension):

    select(x, d, i)           slice(x, d, i, i + 1), reshaped to drop d (class and
                              distillation tokens)
    squeeze, unsqueeze        reshape (an unsqueeze of the last dimension stays)
    expand, expand_as         x itself where it expands nothing (batch 1) or where every
                              user is an elementwise operation that broadcasts x the same way
"""

from __future__ import annotations

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites

aten = torch.ops.aten
_SQUEEZES = (aten.squeeze.default, aten.squeeze.dim, aten.squeeze.dims)
_EXPANDS = (aten.expand.default, aten.expand_as.default)
_BROADCASTING = (aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor)


def _reshaped(edit: Edit, x: torch.fx.Node, node: torch.fx.Node) -> torch.fx.Node:
    return edit.call(aten.reshape.default, (x, shape(node)), node)


def _select(edit: Edit, node: torch.fx.Node) -> bool:
    x, dim, index = node.args
    size = shape(x)[dim]
    index %= size
    edit.replace(node, _reshaped(edit, edit.call(aten.slice.Tensor, (x, dim, index, index + 1), node), node))
    return True


def _squeeze(edit: Edit, node: torch.fx.Node) -> bool:
    edit.replace(node, _reshaped(edit, node.args[0], node))
    return True


def _unsqueeze(edit: Edit, node: torch.fx.Node) -> bool:
    x, dim = node.args
    if dim in (-1, len(shape(x))):
        return False
    edit.replace(node, _reshaped(edit, x, node))
    return True


def _broadcasts_alike(user: torch.fx.Node, expand: torch.fx.Node) -> bool:
    if user.target not in _BROADCASTING or user.kwargs:
        return False
    others = [arg for arg in user.args if arg is not expand]
    source = expand.args[0]
    shapes = [shape(source)] + [shape(o) if isinstance(o, torch.fx.Node) else [] for o in others]
    return len(others) == len(user.args) - 1 and list(torch.broadcast_shapes(*shapes)) == shape(user)


def _expand(edit: Edit, node: torch.fx.Node) -> bool:
    source = node.args[0]
    if shape(source) != shape(node) and not all(_broadcasts_alike(user, node) for user in node.users):
        return False
    edit.replace(node, source)
    return True


def _dispatch(edit: Edit, node: torch.fx.Node) -> bool:
    if node.target == aten.select.int:
        return _select(edit, node)
    if node.target in _SQUEEZES:
        return _squeeze(edit, node)
    if node.target == aten.unsqueeze.default:
        return _unsqueeze(edit, node)
    return _expand(edit, node)


VIEWS = GraphPass("views", 1, node_rewrites(
    "views", (aten.select.int, aten.unsqueeze.default, *_SQUEEZES, *_EXPANDS), _dispatch))
