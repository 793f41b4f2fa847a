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
