"""Graph passes: exact rewrites of an exported program (ATen, as torch.export writes it)
into operators a backend takes, applied between torch.export and the backend's lowering
(for ExecuTorch before PT2E quantization, which then sees the rewritten graph).

    XNNPACK_PASSES                      ExecuTorch's passes, in the order they run
    apply_passes(program, passes)       the program after each pass in turn, and the
                                        names of those that changed it
    identity(passes)                    what the artifact cache records of them

Each pass is one module and one `GraphPass` (name, version, settings):

    fold_constants      values computed from weights and constants alone
    splits              unbind / split / chunk as slices
    views               select / squeeze / unsqueeze / expand as slices and views
    strided_slices      slices with a step as unit-step slices and views
    roll                roll as slices and a concatenation
    matmul              matmul of 3-D and higher tensors as bmm
    attention           scaled_dot_product_attention as bmm and softmax
    layer_norm          LayerNorm over the last dimension as averaging linears
    group_norm          GroupNorm: spatial means and group-averaging 1x1 convolutions (images), averaging linears otherwise
    token_reductions    means and sums XNNPACK cannot reduce, as linears
    split_linears       linears wider than 768 features in chunks, from 16 tokens on
    slice_pushdown      slices moved through permutes, reshapes and concatenations
    reshapes            chains of reshapes as one, softmax before a reshape that keeps its dimension

The passes work on the program as exported, not on `run_decompositions()`'s: PT2E
quantization consumes that form, and composite operators (`layer_norm`, `matmul`,
`scaled_dot_product_attention`, `chunk`) are still whole there. Every node a pass creates
carries the module path and source line of the node it replaces, and the pass's name in
`meta["graph_pass"]`. Numerics are exact to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.export import ExportedProgram

from lowering.export.passes.attention import ATTENTION
from lowering.export.passes.constants import FOLD_CONSTANTS
from lowering.export.passes.graph_pass import GraphPass
from lowering.export.passes.group_norm import GROUP_NORM
from lowering.export.passes.layer_norm import LAYER_NORM
from lowering.export.passes.matmul import MATMUL
from lowering.export.passes.reductions import TOKEN_REDUCTIONS
from lowering.export.passes.reshapes import RESHAPES
from lowering.export.passes.slice_pushdown import SLICE_PUSHDOWN
from lowering.export.passes.roll import ROLL
from lowering.export.passes.split_linears import SPLIT_LINEARS
from lowering.export.passes.splits import SPLITS
from lowering.export.passes.strided_slices import STRIDED_SLICES
from lowering.export.passes.views import VIEWS

XNNPACK_PASSES: tuple[GraphPass, ...] = (
    FOLD_CONSTANTS, SPLITS, VIEWS, STRIDED_SLICES, ROLL, MATMUL, ATTENTION,
    LAYER_NORM, GROUP_NORM, TOKEN_REDUCTIONS, SPLIT_LINEARS, SLICE_PUSHDOWN, RESHAPES,
)
# Nodes of these passes stay float under int8: the averaging linears of a norm are cheap,
# and quantizing a norm's means and variances made a digits-trained ViT-Tiny's int8 logits
# four times further from float (1 - cosine 0.0019 against 0.0005, PT2E simulation).
FLOAT_PASSES = frozenset({LAYER_NORM.name, GROUP_NORM.name, TOKEN_REDUCTIONS.name})


def apply_passes(program: ExportedProgram, passes: Sequence[GraphPass]) -> tuple[ExportedProgram, list[str]]:
    """`program` after each of `passes` in turn (the given program is left as it was), and
    the names of the passes that changed it."""
    fired = []
    for graph_pass in passes:
        result = graph_pass(program)
        if result is not program:
            fired.append(graph_pass.name)
        program = result
    return program, fired


def identity(passes: Sequence[GraphPass]) -> dict:
    """Each pass's name, version and settings, for the artifact cache key."""
    return {graph_pass.name: graph_pass.identity for graph_pass in passes}
