"""Matrix products of 3-D and higher tensors as 3-D `bmm`, the batch dimensions (heads
among them) folded into one: `matmul` of such tensors decomposes into `expand` (even of
a tensor to its own shape) and views, and XNNPACK has no `expand`.

    batched_matmul(edit, a, b, like)    a [*B, M, K] @ b [*B, K, N] through bmm
    MATMUL                              the pass: `matmul` of two tensors of rank 3 or more
                                        with the same batch dimensions
"""

from __future__ import annotations

import math

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites

aten = torch.ops.aten


def as_3d(edit: Edit, x: torch.fx.Node, like: torch.fx.Node) -> torch.fx.Node:
    """`x` [*B, M, N] as [prod(B), M, N] (itself if it is 3-D already)."""
    sizes = shape(x)
    if len(sizes) == 3:
        return x
    return edit.call(aten.reshape.default, (x, [math.prod(sizes[:-2]), *sizes[-2:]]), like)


def batched_matmul(edit: Edit, a: torch.fx.Node, b: torch.fx.Node, like: torch.fx.Node) -> torch.fx.Node:
    """a @ b for a [*B, M, K] and b [*B, K, N] with the same batch dimensions B."""
    batch = shape(a)[:-2]
    product = edit.call(aten.bmm.default, (as_3d(edit, a, like), as_3d(edit, b, like)), like)
    if len(batch) == 1:
        return product
    return edit.call(aten.reshape.default, (product, [*batch, *shape(product)[-2:]]), like)


def _rewrite(edit: Edit, node: torch.fx.Node) -> bool:
    a, b = node.args
    if min(len(shape(a)), len(shape(b))) < 3 or shape(a)[:-2] != shape(b)[:-2]:
        return False
    edit.replace(node, batched_matmul(edit, a, b, node))
    return True


MATMUL = GraphPass("matmul", 1, node_rewrites("matmul", (aten.matmul.default,), _rewrite))
