"""Tiny ViTs and inputs for the quantization tests (factories, as fixtures)."""

import pytest
import torch
from torch import nn

from lowering.models import create


def _tiny_vit(dtype: torch.dtype = torch.float32, name: str = "vit_tiny", **overrides) -> nn.Module:
    """A 2-block ViT-Tiny at 32 x 32 whose LayerNorms have strong inter-channel
    variation (as trained ViTs do), so per-channel and per-tensor quantization differ."""
    torch.manual_seed(0)
    model = create(name, depth=2, img_size=32, patch_size=8, num_classes=10, **overrides)
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            module.weight.data = torch.rand(module.weight.shape, generator=generator) * 3 + 0.1
            module.bias.data = torch.randn(module.bias.shape, generator=generator)
    return model.to(dtype).eval()


def _random_images(count: int = 8, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(count, 3, 32, 32, generator=torch.Generator().manual_seed(seed)).to(dtype)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread avoids thread-pool overhead on a shared host."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_vit():
    return _tiny_vit


@pytest.fixture
def random_images():
    return _random_images


@pytest.fixture
def model() -> nn.Module:
    return _tiny_vit()


@pytest.fixture
def images() -> torch.Tensor:
    return _random_images()
