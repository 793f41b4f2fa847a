import pytest
import torch

from lowering.export.forms import AveragingLayerNorm, BatchedHeadsAttention, export_form
from lowering.export.unsupported import is_operator, op_name
from lowering.reparam import reparameterize
from tests.lowering.export.conftest import tiny_vit

# Operators the XNNPACK partitioner has no node config for (DESIGN.md section 6).
NOT_XNNPACK = {"aten.layer_norm", "aten.native_layer_norm", "aten.select", "aten.expand",
               "aten.matmul", "aten.unbind", "aten.scaled_dot_product_attention"}


def _models():
    yield "plain", tiny_vit()
    yield "distilled", tiny_vit("deit_tiny_distilled")
    branched = tiny_vit(branches=3)
    yield "branched", branched
    yield "merged", reparameterize(branched)
    yield "narrow", tiny_vit(embed_dim=96, num_heads=4, depth=3, img_size=48)


@pytest.mark.parametrize("form", ["eager", "xnnpack"])
def test_export_forms_compute_what_the_model_computes(form):
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    for label, model in _models():
        x = images if model.spec.img_size == 32 else torch.randn(3, 3, 48, 48)
        rewritten = export_form(model, form)
        with torch.no_grad():
            expected, found = model(x), rewritten(x)
        assert found.shape == expected.shape, label
        assert (found - expected).abs().max().item() < 1e-5, label


def test_xnnpack_form_rewrites_norms_and_attention_and_leaves_the_model_alone():
    model = tiny_vit()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    form = export_form(model, "xnnpack")
    assert isinstance(form.blocks[0].norm1, AveragingLayerNorm)
    assert isinstance(form.blocks[1].attn, BatchedHeadsAttention)
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in form.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(isinstance(m, torch.nn.LayerNorm) for m in model.modules())


def test_merged_norms_without_affine_skip_it():
    merged = export_form(reparameterize(tiny_vit(depth=1, branches=2)), "xnnpack")
    assert merged.blocks[0].norm1.affine is None
    assert export_form(tiny_vit(), "xnnpack").blocks[0].norm1.affine is not None


@pytest.mark.parametrize("name", ["vit_tiny", "deit_tiny_distilled"])
def test_xnnpack_form_exports_only_operators_xnnpack_takes(name):
    model = export_form(tiny_vit(name), "xnnpack")
    program = torch.export.export(model, (torch.randn(1, 3, 32, 32),))
    ops = {op_name(n.target) for n in program.graph.nodes if is_operator(n)}
    assert "aten.bmm" in ops and "aten.linear" in ops
    assert not ops & NOT_XNNPACK


def test_unknown_form_is_an_error():
    with pytest.raises(ValueError, match="xnnpack"):
        export_form(tiny_vit(), "tflite")
