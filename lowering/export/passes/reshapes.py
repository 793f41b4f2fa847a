"""Chains of reshapes as one, after the other passes wrote them: each reshape (or view) of
a reshape reads the first one's input, one to its input's own shape is dropped, and a
softmax over the last dimension of a reshape that keeps that dimension runs before it
(so a softmax between two 3-D `bmm`s stays 3-D). Each view left is a copy in XNNPACK."""

from __future__ import annotations

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites

aten = torch.ops.aten
_RESHAPES = (aten.reshape.default, aten.view.default)
_SOFTMAXES = (aten.softmax.int, aten._softmax.default)


def _mutated(node: torch.fx.Node) -> bool:
    """Whether an in-place operator writes through `node` (a view must then stay a view)."""
    return any(getattr(user.target, "_schema", None) is not None and user.target._schema.is_mutable
               for user in node.users)


def _reshape(edit: Edit, node: torch.fx.Node) -> bool:
    source = node.args[0]
    while isinstance(source, torch.fx.Node) and source.target in _RESHAPES and not _mutated(source):
        source = source.args[0]
    if _mutated(node) or source is node.args[0] and shape(source) != shape(node):
        return False
    replacement = source if shape(source) == shape(node) else edit.call(
        aten.reshape.default, (source, shape(node)), node)
    edit.replace(node, replacement)
    return True


def _softmax(edit: Edit, node: torch.fx.Node) -> bool:
    reshaped, dim = node.args[0], node.args[1]
    if reshaped.target not in _RESHAPES or dim not in (-1, len(shape(node)) - 1) or len(reshaped.users) != 1:
        return False
    source = reshaped.args[0]
    if shape(source)[-1] != shape(node)[-1]:
        return False
    softmax = edit.call(node.target, (source, -1, *node.args[2:]), node)
    edit.replace(node, edit.call(aten.reshape.default, (softmax, shape(node)), node))
    return True


def _rewrite(edit: Edit, node: torch.fx.Node) -> bool:
    return _softmax(edit, node) if node.target in _SOFTMAXES else _reshape(edit, node)


RESHAPES = GraphPass("reshapes", 1, node_rewrites("reshapes", (*_SOFTMAXES, *_RESHAPES), _rewrite))
