"""`scaled_dot_product_attention` as the products XNNPACK takes: softmax(q k^T * scale + mask) v
with the batch dimensions (heads among them) folded into one and 3-D `bmm`s. Its own
decomposition builds the mask arithmetic (`logical_not`, `where`) even when there is no
mask, and multiplies 4-D tensors through `expand`; XNNPACK takes neither.

Fires on attention without dropout, causal masking or grouped-query heads, whose mask is
absent or a float tensor (added to the scores); a boolean mask is left as it is.
"""

from __future__ import annotations

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites
from lowering.export.passes.matmul import as_3d

aten = torch.ops.aten
_DEFAULTS = {"attn_mask": None, "dropout_p": 0.0, "is_causal": False, "scale": None, "enable_gqa": False}


def _arguments(node: torch.fx.Node) -> dict:
    named = dict(zip(_DEFAULTS, node.args[3:]))
    return {**_DEFAULTS, **named, **node.kwargs}


def _rewrite(edit: Edit, node: torch.fx.Node) -> bool:
    q, k, v = node.args[:3]
    options = _arguments(node)
    mask = options["attn_mask"]
    batch = shape(q)[:-2]
    if (options["dropout_p"] or options["is_causal"] or options["enable_gqa"] or len(batch) < 1
            or shape(k)[:-2] != batch or shape(v)[:-2] != batch
            or (mask is not None and not mask.meta["val"].dtype.is_floating_point)):
        return False
    scale = options["scale"] if options["scale"] is not None else shape(q)[-1] ** -0.5
    queries = as_3d(edit, edit.call(aten.mul.Tensor, (q, scale), node), node)
    keys = edit.call(aten.transpose.int, (as_3d(edit, k, node), 1, 2), node)
    scores = edit.call(aten.bmm.default, (queries, keys), node)
    if mask is not None:
        full = edit.call(aten.reshape.default, (scores, [*batch, *shape(scores)[-2:]]), node)
        scores = as_3d(edit, edit.call(aten.add.Tensor, (full, mask), node), node)
    weights = edit.call(aten.softmax.int, (scores, -1), node)
    out = edit.call(aten.bmm.default, (weights, as_3d(edit, v, node)), node)
    if len(batch) > 1:
        out = edit.call(aten.reshape.default, (out, shape(node)), node)
    edit.replace(node, out)
    return True


ATTENTION = GraphPass("attention", 1, node_rewrites(
    "attention", (aten.scaled_dot_product_attention.default,), _rewrite))
