"""CaiT's class-attention blocks, with the per-task gates of exemplar-free continual learning.

Class attention (Touvron et al., "Going deeper with Image Transformers", ICCV 2021): only
the class token queries; keys and values come from every token, and only the class
token is updated (attention, then its MLP, each scaled by a learned per-channel
`gamma`). Keys follow timm's `LayerScaleBlockClassAttn` / `ClassAttn`
(`norm1`, `attn.q|k|v|proj`, `gamma_1`, `norm2`, `mlp.fc1|fc2`, `gamma_2`).

Gates: with `tasks` > 0 every linear of a block is a `GatedLinear`, whose output channels
are scaled by sigmoid(gate_scores[task]) for the task it serves, one learned mask per task
during training. Scaling an output channel is exact to fold into that channel's weight
row and bias, so `lowering.reparam.reparameterize` turns each into a plain `nn.Linear` for
the deployed `task` and the lowered graph has no gate arithmetic.
"""

from __future__ import annotations

import torch
from torch import nn

from lowering.models.layers import Mlp, layer_norm

# sigmoid(3) = 0.95: gates start nearly open.
GATE_INIT = 3.0
# CaiT's LayerScale starts small; 0.1 lets a briefly trained model use the blocks.
GAMMA_INIT = 0.1


class GatedLinear(nn.Linear):
    """A linear whose output channels carry one gate per task: sigmoid(gate_scores[task]) * (W x + b)."""

    def __init__(self, in_features: int, out_features: int, tasks: int, task: int = 0):
        super().__init__(in_features, out_features)
        if not 0 <= task < tasks:
            raise ValueError(f"task {task} is not one of the {tasks} gated tasks")
        self.gate_scores = nn.Parameter(torch.full((tasks, out_features), GATE_INIT))
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * torch.sigmoid(self.gate_scores[self.task])

    @torch.no_grad()
    def reparameterize(self) -> nn.Linear:
        """The plain linear of `task`: the gate folded into each output channel's row and bias."""
        gate = torch.sigmoid(self.gate_scores[self.task])
        folded = nn.Linear(self.in_features, self.out_features).to(self.weight.dtype)
        folded.weight.copy_(self.weight * gate[:, None])
        folded.bias.copy_(self.bias * gate)
        return folded


def _linear(in_features: int, out_features: int, tasks: int, task: int) -> nn.Linear:
    return GatedLinear(in_features, out_features, tasks, task) if tasks else nn.Linear(in_features, out_features)


class ClassAttention(nn.Module):
    """Multi-head attention whose one query is the class token (the first token); `cross`
    takes any queries (DCAL's global-local cross-attention, `lowering.models.dcal`)."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, tasks: int = 0, task: int = 0):
        super().__init__()
        inner = num_heads * head_dim
        self.num_heads, self.head_dim, self.scale = num_heads, head_dim, head_dim**-0.5
        self.q, self.k, self.v = (_linear(dim, inner, tasks, task) for _ in range(3))
        self.proj = _linear(inner, dim, tasks, task)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cross(x[:, :1], x)

    def cross(self, queries: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The attention of `queries` [batch, n, dim] over every token of `x`, [batch, n, dim]."""
        batch, tokens, _ = x.shape
        count = queries.shape[1]
        heads, width = self.num_heads, self.head_dim
        q = self.q(queries).reshape(batch, count, heads, width).transpose(1, 2)
        k = self.k(x).reshape(batch, tokens, heads, width).permute(0, 2, 3, 1)
        v = self.v(x).reshape(batch, tokens, heads, width).transpose(1, 2)
        weights = torch.matmul(q * self.scale, k).softmax(dim=-1)
        return self.proj(torch.matmul(weights, v).transpose(1, 2).reshape(batch, count, heads * width))


class ClassAttentionBlock(nn.Module):
    """Updates the class token from all tokens; the other tokens pass through unchanged."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_hidden_dim: int, tasks: int = 0, task: int = 0):
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = ClassAttention(dim, num_heads, head_dim, tasks, task)
        self.gamma_1 = nn.Parameter(torch.full((dim,), GAMMA_INIT))
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, mlp_hidden_dim)
        if tasks:
            self.mlp.fc1 = GatedLinear(dim, mlp_hidden_dim, tasks, task)
            self.mlp.fc2 = GatedLinear(mlp_hidden_dim, dim, tasks, task)
        self.gamma_2 = nn.Parameter(torch.full((dim,), GAMMA_INIT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = x[:, :1] + self.gamma_1 * self.attn(self.norm1(x))
        cls = cls + self.gamma_2 * self.mlp(self.norm2(cls))
        return torch.cat([cls, x[:, 1:]], dim=1)
