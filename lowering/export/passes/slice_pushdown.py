"""Slices moved towards the operators that made their input, so that pieces computed apart
stay apart: a linear split by output chunks (`split_linears`) is concatenated, viewed as
[..., 3, heads, width], permuted, and sliced into queries, keys and values again; pushed
down, each slice reads its own chunk and the concatenation goes.

    slice(permute(x, p), d, a, b)  ->  permute(slice(x, p[d], a, b), p)
    slice(reshape(x, s), d, a, b)  ->  reshape(slice(x, -1, a * w, b * w), s with b - a at d)
                                       where the reshape splits only x's last dimension and
                                       w = prod(s[d + 1:])
    slice(cat(parts, d), d, a, b)  ->  the part that spans exactly a to b

A slice moves only where every user of its input is a slice (the input then goes, and no
work is done twice), and only where it ends at a part of a concatenation (elsewhere one
permute of the whole would become one per slice, for nothing).
"""

from __future__ import annotations

import math

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites

aten = torch.ops.aten
_RESHAPES = (aten.reshape.default, aten.view.default)


def _only_sliced(node: torch.fx.Node, via: torch.fx.Node | None = None) -> bool:
    """Whether every user of `node` is a slice (or `via`, the node a slice moves down from)."""
    return all(user.target == aten.slice.Tensor or user is via for user in node.users)


def _splits_last_at(x: torch.fx.Node, sizes: list[int], dim: int) -> bool:
    """Whether reshaping x to `sizes` only splits x's last dimension, the first part at `dim`."""
    lead = shape(x)[:-1]
    return len(sizes) > len(lead) and sizes[:len(lead)] == lead and dim == len(lead)


def _pushed(edit: Edit, x: torch.fx.Node, dim: int, start: int, end: int, like: torch.fx.Node,
            via: torch.fx.Node | None = None) -> tuple[torch.fx.Node, bool]:
    """A node computing x[start:end] along `dim`, and whether it ended at a part of a
    concatenation (the nodes written otherwise are left unused)."""
    if isinstance(x, torch.fx.Node) and _only_sliced(x, via):
        if x.target == aten.permute.default:
            order = list(x.args[1])
            inner, part = _pushed(edit, x.args[0], order[dim] % len(order), start, end, like, x)
            return edit.call(aten.permute.default, (inner, order), like), part
        if x.target in _RESHAPES and _splits_last_at(x.args[0], list(x.args[1]), dim):
            sizes = shape(x)
            width = math.prod(sizes[dim + 1:])
            source = x.args[0]
            inner, part = _pushed(edit, source, len(shape(source)) - 1, start * width, end * width, like, x)
            resized = sizes[:dim] + [end - start] + sizes[dim + 1:]
            return edit.call(aten.reshape.default, (inner, resized), like), part
        if x.target == aten.cat.default and (x.args[1] if len(x.args) > 1 else 0) % len(shape(x)) == dim:
            offset = 0
            for part in x.args[0]:
                if (offset, offset + shape(part)[dim]) == (start, end):
                    return part, True
                offset += shape(part)[dim]
    return edit.call(aten.slice.Tensor, (x, dim, start, end), like), False


def _bounds(start: int | None, end: int | None, size: int) -> tuple[int, int]:
    start, end = 0 if start is None else start, size if end is None else end
    start, end = (start + size if start < 0 else start), (end + size if end < 0 else end)
    return max(0, min(start, size)), max(0, min(end, size))


def _rewrite(edit: Edit, node: torch.fx.Node) -> bool:
    x, dim, *bounds = node.args
    start, end, step = (bounds + [None, None, 1][len(bounds):])[:3]
    if step != 1 or not isinstance(x, torch.fx.Node) or not _only_sliced(x):
        return False
    dim %= len(shape(x))
    start, end = _bounds(start, end, shape(x)[dim])
    if x.target not in (aten.permute.default, aten.cat.default, *_RESHAPES) or end <= start:
        return False
    pushed, part = _pushed(edit, x, dim, start, end, node)
    if part:
        edit.replace(node, pushed)
    return part


SLICE_PUSHDOWN = GraphPass("slice_pushdown", 1, node_rewrites("slice_pushdown", (aten.slice.Tensor,), _rewrite))
