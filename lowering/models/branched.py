"""The branched Transformer block of depth reparameterization, and its exact merge.

"Rethinking Vision Transformer Depth via Structural Reparameterization" (2025) trains a
shallow ViT whose blocks hold B parallel attention branches and B parallel FFN branches,
each with its own LayerNorm, all reading the same block input and summed into the
residual stream. At inference each block merges into one ordinary pre-norm block with
B times the heads and B times the FFN width, so MACs are unchanged while the network
has fewer, wider sequential layers.

Merge (weights in PyTorch's `[out, in]` layout): the affine of branch b's LayerNorm
folds into its first linear, `W' = W diag(gamma_b)` and `c' = c + W beta_b`, leaving one
shared LayerNorm without affine. The FFN branches stack into one FFN (fc1 rows
concatenated, fc2 columns concatenated, fc2 biases summed); the attention branches stack
into one attention whose heads are all branches' heads (Q, K and V row blocks
concatenated per group, projection columns concatenated, projection biases summed).
"""

from __future__ import annotations

import torch
from torch import nn

from lowering.models.layers import Attention, Block, Mlp, layer_norm


class AttentionBranch(nn.Module):
    """One attention branch: its own LayerNorm, then multi-head self-attention."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, kind: str = "softmax"):
        super().__init__()
        self.norm = layer_norm(dim)
        self.attn = Attention(dim, num_heads, head_dim, kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.norm(x))


class MlpBranch(nn.Module):
    """One FFN branch: its own LayerNorm, then the feed-forward network."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.norm = layer_norm(dim)
        self.mlp = Mlp(dim, hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm(x))


class BranchedBlock(nn.Module):
    """A block of B parallel attention branches then B parallel FFN branches."""

    def __init__(
        self, dim: int, num_heads: int, head_dim: int, mlp_hidden_dim: int, branches: int, attention: str = "softmax"
    ):
        super().__init__()
        self.attn_branches = nn.ModuleList(
            AttentionBranch(dim, num_heads, head_dim, attention) for _ in range(branches)
        )
        self.mlp_branches = nn.ModuleList(MlpBranch(dim, mlp_hidden_dim) for _ in range(branches))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + sum(branch(x) for branch in self.attn_branches)
        return x + sum(branch(x) for branch in self.mlp_branches)

    def layout(self) -> dict:
        """The block's structural fields, in ModelSpec's terms."""
        attn = self.attn_branches[0].attn
        fc1 = self.mlp_branches[0].mlp.fc1
        return {
            "num_heads": attn.num_heads,
            "head_dim": attn.head_dim,
            "mlp_ratio": fc1.out_features / fc1.in_features,
            "branches": len(self.attn_branches),
            "attention": attn.kind,
            "query_groups": None,
        }

    @torch.no_grad()
    def reparameterize(self) -> Block:
        """Return the single-path block that computes exactly what this block computes."""
        first_attn = self.attn_branches[0].attn
        dim = first_attn.qkv.in_features
        branches = len(self.attn_branches)
        hidden = sum(b.mlp.fc1.out_features for b in self.mlp_branches)
        merged = Block(dim, first_attn.num_heads * branches, first_attn.head_dim, hidden, first_attn.kind)
        merged = merged.to(dtype=first_attn.qkv.weight.dtype, device=first_attn.qkv.weight.device)

        qkv = [_fold_norm(b.norm, b.attn.qkv) for b in self.attn_branches]
        # Keep the Q | K | V grouping: all branches' Q rows, then all K rows, then all V rows.
        qkv_weight = torch.cat([w.chunk(3, dim=0)[g] for g in range(3) for w, _ in qkv])
        qkv_bias = torch.cat([c.chunk(3)[g] for g in range(3) for _, c in qkv])
        _assign(merged.attn.qkv, qkv_weight, qkv_bias)
        _assign(
            merged.attn.proj,
            torch.cat([b.attn.proj.weight for b in self.attn_branches], dim=1),
            torch.stack([b.attn.proj.bias for b in self.attn_branches]).sum(0),
        )

        fc1 = [_fold_norm(b.norm, b.mlp.fc1) for b in self.mlp_branches]
        _assign(merged.mlp.fc1, torch.cat([w for w, _ in fc1]), torch.cat([c for _, c in fc1]))
        _assign(
            merged.mlp.fc2,
            torch.cat([b.mlp.fc2.weight for b in self.mlp_branches], dim=1),
            torch.stack([b.mlp.fc2.bias for b in self.mlp_branches]).sum(0),
        )
        for norm in (merged.norm1, merged.norm2):
            norm.eps = self.attn_branches[0].norm.eps
            nn.init.ones_(norm.weight)
            nn.init.zeros_(norm.bias)
        return merged


def _fold_norm(norm: nn.LayerNorm, linear: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold the LayerNorm's affine into the linear that follows it (computed in float64)."""
    weight = linear.weight.double()
    folded_weight = weight * norm.weight.double()
    folded_bias = linear.bias.double() + weight @ norm.bias.double()
    return folded_weight, folded_bias


def _assign(linear: nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> None:
    linear.weight.copy_(weight.to(linear.weight.dtype))
    linear.bias.copy_(bias.to(linear.bias.dtype))
