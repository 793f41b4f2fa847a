"""The registry's ViTs through ExecuTorch's passes: only operators XNNPACK takes, the same
function, wide merged layers in chunks at their own module paths."""

import pytest
import torch

from lowering.export.passes import XNNPACK_PASSES, apply_passes, identity
from lowering.export.unsupported import is_operator, module_path, op_name
from lowering.reparam import reparameterize
from tests.lowering.export.conftest import tiny_vit
from tests.lowering.export.passes.conftest import export, ops, same_function

# Operators ExecuTorch's XNNPACK partitioner has no node config for (none among
# ALL_PARTITIONER_CONFIGS in executorch/backends/xnnpack/partition/config/__init__.py).
NOT_XNNPACK = {"aten.layer_norm", "aten.native_layer_norm", "aten.select", "aten.expand", "aten.squeeze",
               "aten.matmul", "aten.unbind", "aten.scaled_dot_product_attention", "aten.group_norm"}


def _models():
    yield "plain", tiny_vit()
    yield "distilled", tiny_vit("deit_tiny_distilled")
    yield "merged", reparameterize(tiny_vit(branches=3))
    yield "narrow", tiny_vit(embed_dim=96, num_heads=4, depth=3, img_size=48)


@pytest.mark.parametrize(("label", "model"), list(_models()), ids=lambda value: value if isinstance(value, str) else "")
def test_registry_vits_pass_into_operators_xnnpack_takes(label, model):
    x = torch.randn(1, 3, model.spec.img_size, model.spec.img_size)
    program = export(model, x)
    passed, fired = apply_passes(program, XNNPACK_PASSES)
    found = set(ops(passed))
    assert "aten.bmm" in found and "aten.linear" in found
    assert not found & NOT_XNNPACK, label
    assert {"layer_norm", "matmul", "splits"} <= set(fired)
    same_function(program, passed, x)
    with torch.no_grad():
        assert (passed.module()(x) - model(x)).abs().max().item() < 1e-5


def test_wide_merged_layers_are_split_at_their_own_module_paths():
    # qkv 2304 and hidden 3072 features wide, 17 tokens
    model = reparameterize(tiny_vit(branches=4, img_size=64))
    x = torch.randn(1, 3, 64, 64)
    program = export(model, x)
    passed, fired = apply_passes(program, XNNPACK_PASSES)
    assert "split_linears" in fired
    linears = [module_path(n) for n in passed.graph.nodes if is_operator(n) and op_name(n.target) == "aten.linear"]
    # LayerNorms become linears against an averaging weight, at the norm's path.
    layers = (torch.nn.Linear, torch.nn.LayerNorm)
    assert set(linears) <= {name for name, module in model.named_modules() if isinstance(module, layers)}
    assert linears.count("blocks.0.mlp.fc1") == 4 and linears.count("blocks.0.attn.qkv") == 3
    same_function(program, passed, x)


def test_short_sequences_stay_whole():
    model = reparameterize(tiny_vit(branches=4, img_size=32))  # 5 tokens
    _, fired = apply_passes(export(model, torch.randn(1, 3, 32, 32)), XNNPACK_PASSES)
    assert "split_linears" not in fired


def test_the_identity_names_every_pass_with_its_version():
    names = identity(XNNPACK_PASSES)
    assert list(names) == [graph_pass.name for graph_pass in XNNPACK_PASSES]
    assert all(entry["version"] >= 1 for entry in names.values())
    assert names["split_linears"]["max_width"] == 768
