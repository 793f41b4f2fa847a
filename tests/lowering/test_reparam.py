"""Depth reparameterization merges branched blocks exactly; the walker fuses any module."""

import itertools

import pytest
import torch
from torch import nn

from lowering.models import count_macs, count_params, create
from lowering.models.branched import BranchedBlock
from lowering.models.layers import Attention, Block, Mlp
from lowering.reparam import reparameterize


def _randomize_norms(model: nn.Module, generator: torch.Generator) -> None:
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            weight, bias = module.weight, module.bias
            weight.data = torch.rand(weight.shape, generator=generator, dtype=weight.dtype) + 0.5
            bias.data = torch.randn(bias.shape, generator=generator, dtype=bias.dtype) * 0.3


def _branched(depth: int, branches: int, img_size: int = 32) -> nn.Module:
    model = create("vit_tiny", depth=depth, branches=branches, img_size=img_size, num_classes=10)
    _randomize_norms(model, torch.Generator().manual_seed(depth * 10 + branches))
    return model


@pytest.mark.parametrize("branches,depth", list(itertools.product([1, 2, 3, 4], [12, 6, 4, 3])))
def test_merged_model_equals_branched_model(branches, depth):
    model = _branched(depth, branches)
    merged = reparameterize(model)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(merged(images), model(images), atol=1e-4, rtol=0)
    assert len(merged.blocks) == depth
    assert all(type(block) is Block for block in merged.blocks)
    assert sum(isinstance(m, Attention) for m in merged.modules()) == depth
    assert sum(isinstance(m, Mlp) for m in merged.modules()) == depth
    assert merged.spec.branches == 1
    assert merged.spec.num_heads == 3 * branches
    assert merged.spec.mlp_hidden_dim == 768 * branches


def test_merge_is_exact_to_float64_rounding_per_block():
    block = BranchedBlock(dim=192, num_heads=3, head_dim=64, mlp_hidden_dim=768, branches=3).double()
    _randomize_norms(block, torch.Generator().manual_seed(1))
    tokens = torch.randn(2, 17, 192, dtype=torch.float64)
    with torch.no_grad():
        error = (block.reparameterize()(tokens) - block(tokens)).abs().max().item()
    assert error < 1e-8


def test_reparameterize_leaves_the_input_model_untouched():
    model = _branched(3, 2)
    reparameterize(model)
    assert all(isinstance(block, BranchedBlock) for block in model.blocks)


def test_merge_keeps_macs_and_removes_only_branch_norms_and_summed_biases():
    depth, branches, dim = 3, 4, 192
    model = _branched(depth, branches, img_size=64)
    merged = reparameterize(model)
    shape = (1, 3, 64, 64)
    assert count_macs(merged, shape) == count_macs(model, shape)
    norms_removed = (2 * branches - 2) * 2 * dim
    biases_removed = 2 * (branches - 1) * dim
    assert count_params(model) - count_params(merged) == depth * (norms_removed + biases_removed)


def test_merged_checkpoint_loads_as_a_plain_vit(tmp_path):
    merged = reparameterize(_branched(3, 4))
    path = tmp_path / "merged.pth"
    torch.save(merged.state_dict(), path)
    loaded = create("vit_tiny", checkpoint=path)
    assert loaded.spec == merged.spec
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), merged(images))


def test_branched_checkpoint_infers_branches(tmp_path):
    model = _branched(4, 3)
    path = tmp_path / "branched.pth"
    torch.save(model.state_dict(), path)
    assert create("vit_tiny", checkpoint=path).spec.branches == 3


class _Doubler(nn.Module):
    """A toy reparameterizable module that returns its fused replacement."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x):
        return self.a(x) + self.b(x)

    def reparameterize(self):
        fused = nn.Linear(4, 4)
        fused.weight.data = self.a.weight.data + self.b.weight.data
        fused.bias.data = self.a.bias.data + self.b.bias.data
        return fused


class _InPlace(nn.Module):
    """A toy module fused in place, as timm's reparameterizable layers are."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.fused = False

    def forward(self, x):
        return x * self.scale

    def reparameterize(self):
        self.fused = True


def test_walker_fuses_any_module_exposing_reparameterize():
    model = nn.Sequential(_Doubler(), nn.ReLU(), nn.Sequential(_InPlace(), _Doubler()))
    fused = reparameterize(model)
    assert type(fused[0]) is nn.Linear and type(fused[2][1]) is nn.Linear
    assert fused[2][0].fused
    x = torch.randn(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x))
