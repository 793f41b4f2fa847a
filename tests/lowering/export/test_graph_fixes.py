import contextlib
import io

import pytest
import torch
from torch import nn

from lowering.export.graph_fixes import make_softmax_layout_safe, remove_no_ops
from lowering.export.unsupported import is_operator, op_name
from tests.lowering.export.conftest import run_on_xnnpack

ALIASES = {"aten.alias", "aten.alias_copy"}


def _export(model: nn.Module, x: torch.Tensor) -> torch.export.ExportedProgram:
    return torch.export.export(model.eval(), (x,), strict=False)


def _ops(program: torch.export.ExportedProgram) -> list[str]:
    return [op_name(node.target) for node in program.graph.nodes if is_operator(node)]


class NoOpCrop(nn.Module):
    """efficientvit's `x[:, :H, :W].contiguous()` with H, W the full sizes: an alias."""

    def forward(self, x):
        y = x * 2
        return y[:, :, : y.shape[2]].contiguous() + 1, y[:, : y.shape[1]]


def test_remove_no_ops_bypasses_them_and_keeps_the_rest():
    x = torch.randn(1, 3, 5, 5)
    program = _export(NoOpCrop(), x).run_decompositions({})
    assert ALIASES & set(_ops(program))

    fixed = remove_no_ops(program)

    assert not ALIASES & set(_ops(fixed))
    assert ALIASES & set(_ops(program)), "the given program is left as it was"
    originals = {node.name: node for node in program.graph.nodes}
    assert all(node.meta == originals[node.name].meta for node in fixed.graph.nodes)
    for found, expected in zip(fixed.module()(x), program.module()(x)):
        assert torch.equal(found, expected)


def test_remove_no_ops_returns_a_program_without_them_as_it_is():
    program = _export(nn.Conv2d(3, 4, 1), torch.randn(1, 3, 5, 5))
    assert remove_no_ops(program) is program


class WindowPad(nn.Module):
    """Window attention's padding to a multiple of the window: zero wide when the size is one."""

    def forward(self, x):
        return nn.functional.pad(x, (0, 0, 0, 0)) * 2 + nn.functional.pad(x, (1, 1, 0, 0))[..., 1:-1]


def test_zero_width_pads_go_and_real_pads_stay():
    x = torch.randn(1, 3, 4, 4)
    program = _export(WindowPad(), x)
    fixed = remove_no_ops(program)
    assert _ops(program).count("aten.pad") == 2 and _ops(fixed).count("aten.pad") == 1
    assert torch.equal(fixed.module()(x), program.module()(x))


def test_core_ml_converts_a_program_that_had_aliases():
    ct = pytest.importorskip("coremltools")
    x = torch.randn(1, 3, 5, 5)
    program = remove_no_ops(_export(NoOpCrop(), x).run_decompositions({}))
    with contextlib.redirect_stderr(io.StringIO()):  # progress bars
        model = ct.convert(program, inputs=[ct.TensorType(name="images", shape=x.shape)],
                           convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17)
    assert len(model.get_spec().description.output) == 2


class ConvSoftmaxConv(nn.Module):
    """EfficientFormerV2's talking heads: 1x1 convolutions over the heads of the
    attention map around its softmax."""

    def __init__(self, heads: int = 4):
        super().__init__()
        self.before, self.after = nn.Conv2d(heads, heads, 1), nn.Conv2d(heads, heads, 1)

    def forward(self, scores):
        return self.after(self.before(scores).softmax(dim=-1))


class Attention3d(nn.Module):
    """Attention with the heads folded into the batch, as ExecuTorch's passes write it:
    3-D scores between `bmm`s."""

    def forward(self, q):
        return torch.bmm(torch.bmm(q, q.transpose(1, 2)).softmax(dim=-1), q)


class PermutedSoftmax(nn.Module):
    """A softmax of a non-contiguous 4-D tensor, given as the last dimension's index,
    as the program's output."""

    def forward(self, x):
        return x.permute(0, 2, 1, 3).softmax(dim=3)


@pytest.mark.parametrize("model", [ConvSoftmaxConv(), PermutedSoftmax()], ids=type)
def test_layout_safe_softmax_computes_the_same_in_eager(model):
    x = torch.randn(1, 4, 9, 7)
    program = _export(model, x)
    fixed = make_softmax_layout_safe(program)
    assert "aten.view" in _ops(fixed) and "aten.view" not in _ops(program)
    with torch.no_grad():
        assert torch.equal(fixed.module()(x), program.module()(x))


def test_softmax_between_convolutions_is_right_in_one_xnnpack_delegate():
    torch.manual_seed(0)
    model, x = ConvSoftmaxConv(), torch.randn(1, 4, 49, 49)
    found, delegates, outside = run_on_xnnpack(make_softmax_layout_safe(_export(model, x)), x)
    with torch.no_grad():
        assert (found - model(x)).abs().max().item() < 1e-5
    assert (delegates, outside) == (1, [])


def test_attention_softmax_over_3d_scores_is_left_alone_and_delegated():
    model, q = Attention3d(), torch.randn(2, 16, 8)
    program = _export(model, q)
    assert make_softmax_layout_safe(program) is program
    found, delegates, outside = run_on_xnnpack(program, q)
    assert (found - model(q)).abs().max().item() < 1e-5
    assert (delegates, outside) == (1, [])
