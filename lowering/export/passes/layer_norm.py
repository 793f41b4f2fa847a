"""LayerNorm over the last dimension as linears against a constant 1/D row (XNNPACK has no
LayerNorm node): the mean, then the variance of the centred input, a reciprocal square
root and the affine (each half skipped where it is absent)."""

from __future__ import annotations

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites
from lowering.export.passes.reductions import reduce_last

aten = torch.ops.aten


def normalize_last(edit: Edit, x: torch.fx.Node, eps: float, like: torch.fx.Node) -> torch.fx.Node:
    """`x` normalized over its last dimension: (x - mean) / sqrt(variance + eps)."""
    width = shape(x)[-1]
    centred = edit.call(aten.sub.Tensor, (x, reduce_last(edit, x, 1.0 / width, like)), like)
    squares = edit.call(aten.mul.Tensor, (centred, centred), like)
    variance = reduce_last(edit, squares, 1.0 / width, like)
    scale = edit.call(aten.rsqrt.default, (edit.call(aten.add.Tensor, (variance, eps), like),), like)
    return edit.call(aten.mul.Tensor, (centred, scale), like)


def affine(edit: Edit, x: torch.fx.Node, weight, bias, like: torch.fx.Node) -> torch.fx.Node:
    """x * weight + bias, either left out where it is None."""
    if weight is not None:
        x = edit.call(aten.mul.Tensor, (x, weight), like)
    if bias is not None:
        x = edit.call(aten.add.Tensor, (x, bias), like)
    return x


def _unless(edit: Edit, node: torch.fx.Node | None, identity: float) -> torch.fx.Node | None:
    """`node`, or None where it holds a constant that is `identity` everywhere (a merged
    norm's affine)."""
    value = None if node is None else edit.value(node)
    return None if value is not None and bool(torch.all(value == identity)) else node


def _rewrite(edit: Edit, node: torch.fx.Node) -> bool:
    x, normalized_shape, *rest = node.args
    weight, bias, eps = (rest + [None, None, 1e-5][len(rest):])[:3]
    if len(normalized_shape) != 1 or node.kwargs or not x.meta["val"].dtype.is_floating_point:
        return False
    normalized = normalize_last(edit, x, eps, node)
    edit.replace(node, affine(edit, normalized, _unless(edit, weight, 1.0), _unless(edit, bias, 0.0), node))
    return True


LAYER_NORM = GraphPass("layer_norm", 1, node_rewrites("layer_norm", (aten.layer_norm.default,), _rewrite))
