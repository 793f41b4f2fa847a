"""Factories a user might name as `package.module:callable` (imported by the source tests)."""

import torch
from torch import nn


class TinyClassifier(nn.Module):
    """A conv stem, a token mixer with softmax attention and a linear head; timm-style
    `pretrained_cfg` saying its input and preprocessing."""

    pretrained_cfg = {"input_size": (3, 16, 16), "mean": (0.4, 0.5, 0.6), "std": (0.2, 0.25, 0.3),
                      "crop_pct": 1.0, "interpolation": "bilinear"}

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, stride=4)
        self.norm = nn.LayerNorm(8)
        self.qkv = nn.Linear(8, 24)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        tokens = self.norm(self.stem(x).flatten(2).transpose(1, 2))
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        attended = torch.softmax(q @ k.transpose(1, 2) / 8 ** 0.5, dim=-1) @ v
        return self.head((tokens + attended).mean(1))


def tiny_classifier(num_classes: int = 5) -> nn.Module:
    torch.manual_seed(0)
    return TinyClassifier(num_classes)


def without_input_size() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))


def raises() -> nn.Module:
    raise RuntimeError("no weights for you")


def not_a_module():
    return 42


class PreNormEncoder(nn.Module):
    """A pre-norm transformer with separate query, key and value projections (as Hugging
    Face writes them) whose LayerNorms have a few channels of large gain and offset, as
    trained ViTs' do: the case RepQ-ViT's fold is for."""

    pretrained_cfg = {"input_size": (3, 16, 16), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}

    def __init__(self, dim: int = 32, depth: int = 2, num_classes: int = 5):
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 4, stride=4)
        self.blocks = nn.ModuleList(PreNormBlock(dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        with torch.no_grad():
            for norm in [m for m in self.modules() if isinstance(m, nn.LayerNorm)]:
                norm.weight.normal_(1.0, 0.1)
                norm.bias.normal_(0.0, 0.1)
                norm.weight[:3] *= 25.0
                norm.bias[:3] += 8.0

    def forward(self, x):
        tokens = self.stem(x).flatten(2).transpose(1, 2)
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens).mean(1))


class PreNormBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def forward(self, x):
        h = self.norm1(x)
        q, k, v = self.query(h), self.key(h), self.value(h)
        x = x + self.proj(torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1) @ v)
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm2(x))))


def pre_norm_encoder() -> nn.Module:
    torch.manual_seed(0)
    return PreNormEncoder()
