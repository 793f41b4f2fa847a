"""Wide linears in chunks of at most `max_width` features, from `from_tokens` rows on:

    fc2(act(fc1 x)) = b2 + sum_c fc2[:, c] act(fc1[c] x)    a feed-forward network (a wide
                                                           linear, an elementwise activation,
                                                           a linear of its output) over
                                                           equal chunks c of its hidden features
    linear(x) = cat_c linear_c(x)                          any other wide linear, by equal
                                                           chunks of its output features

ETDump profiles of ViT-Tiny at 224 on an x86 host (1 thread): XNNPACK's fp32 GEMMs ran
10-31% slower per MAC at 1728, 2304 and 3072 output or input features than at 576-768, so
a merged 4 x 3 model ran 10% slower than the 12-layer one; chunks of 768 closed it. Split
against whole, merged 4 x 3 / 3 x 4 ViT-Tinys: 0.86 / 0.90 at 224 px, 0.92 / 0.99 at 64 px
(17 tokens), 1.04 / 1.01 at 32 px (5 tokens, intervals around 1): below 16 tokens the
split buys nothing and only adds operators. `python -m bench.split_linears` measures
whole against split for any model.
"""

from __future__ import annotations

import math

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites

aten = torch.ops.aten
MAX_LINEAR_WIDTH = 768
SPLIT_FROM_TOKENS = 16
_ACTIVATIONS = (aten.gelu.default, aten.relu.default, aten.silu.default, aten.hardswish.default)


def equal_chunks(units: int, unit_width: int, max_width: int | None = MAX_LINEAR_WIDTH) -> int:
    """The fewest equal chunks of whole units (heads, hidden features), each at most
    `max_width` wide (one unit per chunk when no count fits; one chunk when `max_width`
    is None)."""
    if max_width is None:
        return 1
    for count in range(1, units + 1):
        if units % count == 0 and units // count * unit_width <= max_width:
            return count
    return units


def _weights(edit: Edit, linear: torch.fx.Node) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    weight = edit.value(linear.args[1])
    bias = edit.value(linear.args[2]) if len(linear.args) > 2 and linear.args[2] is not None else None
    if weight is None or (len(linear.args) > 2 and linear.args[2] is not None and bias is None):
        return None
    return weight.detach(), None if bias is None else bias.detach()


def _second_linear(edit: Edit, fc1: torch.fx.Node) -> tuple[torch.fx.Node, torch.fx.Node] | None:
    """The activation and the linear after it when `fc1` starts a feed-forward network."""
    if len(fc1.users) != 1:
        return None
    (act,) = fc1.users
    if act.target not in _ACTIVATIONS or act.args[0] is not fc1 or len(act.users) != 1:
        return None
    (fc2,) = act.users
    if fc2.target != aten.linear.default or fc2.args[0] is not act or _weights(edit, fc2) is None:
        return None
    return act, fc2


def _linear(edit: Edit, x: torch.fx.Node, weight: torch.Tensor, bias: torch.Tensor | None,
            like: torch.fx.Node) -> torch.fx.Node:
    args = (x, edit.constant(weight.clone())) + (() if bias is None else (edit.constant(bias.clone()),))
    return edit.call(aten.linear.default, args, like)


def split_wide_linears(max_width: int = MAX_LINEAR_WIDTH, from_tokens: int = SPLIT_FROM_TOKENS) -> GraphPass:
    """The pass with its two parameters."""

    def rewrite(edit: Edit, fc1: torch.fx.Node) -> bool:
        x = fc1.args[0]
        weights = _weights(edit, fc1)
        if weights is None or math.prod(shape(x)[:-1]) < from_tokens:
            return False
        weight, bias = weights
        chunks = equal_chunks(weight.shape[0], 1, max_width)
        if chunks == 1:
            return False
        rows = torch.arange(weight.shape[0]).chunk(chunks)
        pick = (lambda tensor, part: None if tensor is None else tensor[part])
        network = _second_linear(edit, fc1)
        if network is None:
            parts = [_linear(edit, x, weight[part], pick(bias, part), fc1) for part in rows]
            edit.replace(fc1, edit.call(aten.cat.default, (parts, -1), fc1))
            return True
        act, fc2 = network
        weight2, bias2 = _weights(edit, fc2)
        out = None
        for index, part in enumerate(rows):
            hidden = edit.call(act.target, (_linear(edit, x, weight[part], pick(bias, part), fc1), *act.args[1:]), act)
            partial = _linear(edit, hidden, weight2[:, part], bias2 if index == 0 else None, fc2)
            out = partial if out is None else edit.call(aten.add.Tensor, (out, partial), fc2)
        fc2.replace_all_uses_with(out)
        edit.graph.erase_node(fc2)
        edit.graph.erase_node(act)
        edit.graph.erase_node(fc1)
        return True

    return GraphPass("split_linears", 1, node_rewrites("split_linears", (aten.linear.default,), rewrite),
                     {"max_width": max_width, "from_tokens": from_tokens})


SPLIT_LINEARS = split_wide_linears()
