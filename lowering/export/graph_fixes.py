"""Exact rewrites of exported graphs that let a backend take them as they are.

    remove_no_ops(program)              no `aten.alias` nodes (coremltools has no converter
                                        for them) and no zero-width pads (XNNPACK's int8 pad
                                        refuses them at load time)
    make_softmax_layout_safe(program)   ExecuTorch/XNNPACK: no softmax over a 4-D tensor,
                                        which the delegate may hold channels-last

Each returns a new program and leaves the given one as it was; the program computes the
same function, bit for bit. (Constant folding, which Core ML needs too, is a graph pass:
`passes.constants.fold_constants`.)

XNNPACK's delegate keeps a 4-D tensor channels-last (NHWC) from a convolution (or pooling,
upsampling, mean) through every operator its `ChannelsLastTaggedReshapePass` takes as
layout-agnostic, softmax among them, and serializes softmax with no axis: XNNPACK
normalizes over the innermost dimension in memory, which for an NHWC tensor is the channel
and not the last dimension of the NCHW tensor. A 5-D view of the same tensor is never laid
out channels-last (the pass converts only 4-D tensors, and a reshape takes its input
NCHW), so the softmax of that view normalizes the right dimension.
"""

from __future__ import annotations

import torch
from torch.export import ExportedProgram

from lowering.export.passes.graph import PROVENANCE, Edit, calls, rewritten

# Part of the artifact cache key: bump it when a rewrite here changes what it writes.
GRAPH_FIXES_VERSION = 3
aten = torch.ops.aten
_ALIASES = (aten.alias.default, aten.alias_copy.default)
_PADS = (aten.pad.default, aten.constant_pad_nd.default)
_SOFTMAXES = (aten.softmax.int, aten._softmax.default)


def _no_ops(graph: torch.fx.Graph) -> list[torch.fx.Node]:
    pads = [node for node in calls(graph, _PADS) if not any(node.args[1])]
    return calls(graph, _ALIASES) + pads


def remove_no_ops(program: ExportedProgram) -> ExportedProgram:
    """`program` with every node that returns its input unchanged replaced by that input:
    `aten.alias` / `aten.alias_copy`, and pads of zero width on every side.

    torch.export writes a no-op slice such as `x[:, :H, :W]` (H, W the full sizes) as
    `aten.alias`, and `run_decompositions` keeps it; coremltools refuses the node. A
    window attention that pads to a multiple of its window pads by zero when the size is
    one already (EfficientViT-M), and XNNPACK's quantized pad then fails to load
    ("Failed to create StaticConstantPad node"). Apply this to the program a backend
    converts (for Core ML after `run_decompositions({})`). A program without such nodes is
    returned as it is.
    """
    if not _no_ops(program.graph):
        return program

    def bypass(edit: Edit) -> None:
        graph = edit.graph
        for node in _no_ops(graph):
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)

    return rewritten(program, bypass)


def _over_last_of_4d(softmax: torch.fx.Node) -> bool:
    rank = softmax.args[0].meta["val"].dim()
    return rank == 4 and softmax.args[1] in (-1, rank - 1)


def make_softmax_layout_safe(program: ExportedProgram) -> ExportedProgram:
    """`program` with each softmax over the last dimension of a 4-D tensor computed on a
    5-D view of it: view(x, (1, *x.shape)) -> softmax(-1) -> view back.

    Call it on the program given to `to_edge_transform_and_lower` with XNNPACK's
    partitioner. The views are delegated like the softmax, so the partition does not
    change; inside the delegate, a softmax whose input is channels-last gets a transpose to
    NCHW before it (and one back after it if a convolution follows), a softmax whose input
    is NCHW only two reshapes. A program without such softmaxes is returned as it is.
    """
    if not any(_over_last_of_4d(node) for node in calls(program.graph, _SOFTMAXES)):
        return program

    def widen(edit: Edit) -> None:
        graph = edit.graph
        for softmax in filter(_over_last_of_4d, calls(graph, _SOFTMAXES)):
            source, result = softmax.args[0], softmax.meta["val"]
            shape = list(source.meta["val"].shape)
            provenance = {key: softmax.meta[key] for key in PROVENANCE if key in softmax.meta}
            with graph.inserting_before(softmax):
                wide = graph.call_function(aten.view.default, (source, [1, *shape]))
            with graph.inserting_after(softmax):
                narrow = graph.call_function(aten.view.default, (softmax, shape))
            softmax.replace_all_uses_with(narrow, delete_user_cb=lambda user: user is not narrow)
            softmax.args = (wide, -1, *softmax.args[2:])
            wide.meta = {**provenance, "val": source.meta["val"].view(1, *shape)}
            softmax.meta["val"] = result.view(1, *shape)
            narrow.meta = {**provenance, "val": result}

    return rewritten(program, widen)
