import pytest
import torch

from lowering.export.forms import AveragingLayerNorm, BatchedHeadsAttention, ChunkedMlp, equal_chunks, export_form
from lowering.export.unsupported import is_operator, module_path, op_name
from lowering.reparam import reparameterize
from tests.lowering.export.conftest import tiny_vit

# Operators ExecuTorch's XNNPACK partitioner has no node config for (none among
# ALL_PARTITIONER_CONFIGS in executorch/backends/xnnpack/partition/config/__init__.py),
# so the "xnnpack" form of lowering/export/forms.py must not emit them.
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


@pytest.mark.parametrize(
    ("units", "unit_width", "chunks"),
    [(768, 1, 1), (2304, 1, 3), (3072, 1, 4), (1000, 1, 2), (3, 192, 1), (9, 192, 3), (12, 192, 3), (7, 192, 7)],
)
def test_equal_chunks_are_the_fewest_within_the_width(units, unit_width, chunks):
    assert equal_chunks(units, unit_width, max_width=768) == chunks


def test_wide_merged_layers_are_split_at_their_own_module_paths():
    # qkv 2304 and hidden 3072 features wide, 17 tokens
    model = reparameterize(tiny_vit(branches=4, img_size=64))
    form = export_form(model, "xnnpack")
    mlp, attn = form.blocks[0].mlp, form.blocks[0].attn
    assert isinstance(mlp, ChunkedMlp) and mlp.chunks == 4
    assert (attn.groups, attn.num_heads) == (3, 4)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (form(images) - model(images)).abs().max().item() < 1e-5
    program = torch.export.export(form, (images[:1],))
    linears = [module_path(n) for n in program.graph.nodes if is_operator(n) and op_name(n.target) == "aten.linear"]
    # LayerNorms become linears against an averaging weight, at the norm's path.
    layers = (torch.nn.Linear, torch.nn.LayerNorm)
    original = {name for name, module in model.named_modules() if isinstance(module, layers)}
    assert set(linears) <= original
    assert linears.count("blocks.0.mlp.fc1") == 4 and linears.count("blocks.0.attn.qkv") == 3


@pytest.mark.parametrize(("label", "model"), [
    ("narrow", tiny_vit(img_size=64)),
    ("wide, 5 tokens", reparameterize(tiny_vit(branches=4, img_size=32))),
])
def test_narrow_layers_and_short_sequences_stay_whole(label, model):
    form = export_form(model, "xnnpack")
    assert not isinstance(form.blocks[0].mlp, ChunkedMlp) and form.blocks[0].attn.groups == 1, label


def test_unknown_form_is_an_error():
    with pytest.raises(ValueError, match="xnnpack"):
        export_form(tiny_vit(), "tflite")
