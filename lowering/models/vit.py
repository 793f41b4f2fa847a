"""Vision Transformer (ViT) and data-efficient image Transformer (DeiT), key-compatible
with timm's `VisionTransformer` and `VisionTransformerDistilled`.

ViT: Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale", ICLR 2021. DeiT: Touvron et al., "Training data-efficient image
transformers & distillation through attention", ICML 2021.

Numerics follow timm: LayerNorm with eps 1e-6, exact (erf) GELU, qkv with bias, class
(and distillation) tokens prepended before the position embedding is added. The
distilled model averages its class and distillation heads; a DCAL model
(`spec.glca_blocks`, `lowering.models.dcal`) its SA and GLCA heads.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from lowering.models.branched import BranchedBlock
from lowering.models.class_attention import ClassAttentionBlock, GatedLinear
from lowering.models.dcal import GlobalLocalCrossAttention, PairWiseCrossAttention, blocks_with_attention
from lowering.models.layers import Block, PatchEmbed, layer_norm
from lowering.models.spec import ModelSpec


class VisionTransformer(nn.Module):
    """A ViT (or, with `spec.distilled`, a distilled DeiT) built from a ModelSpec."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self._built_spec = spec
        dim = spec.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(
            torch.randn(1, spec.num_patches + spec.num_prefix_tokens, dim) * 0.02
        )
        if spec.distilled:
            self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.patch_embed = PatchEmbed(spec.img_size, spec.patch_size, spec.in_chans, dim)
        self.norm_pre = layer_norm(dim) if spec.pre_norm else nn.Identity()
        block_args = (dim, spec.num_heads, spec.head_dim, spec.mlp_hidden_dim)
        if spec.branches == 1:
            blocks = [Block(*block_args, spec.block_attention(i), spec.block_query_groups(i))
                      for i in range(spec.depth)]
        else:
            blocks = [BranchedBlock(*block_args, spec.branches, spec.block_attention(i)) for i in range(spec.depth)]
        self.blocks = nn.Sequential(*blocks)
        if spec.class_attention_blocks:
            self.blocks_token_only = nn.Sequential(*(
                ClassAttentionBlock(*block_args, spec.gate_tasks, spec.task) for _ in range(spec.class_attention_blocks)
            ))
        if spec.glca_blocks:
            self.glca = GlobalLocalCrossAttention(spec)
        if spec.pair_wise:
            self.pair_wise = PairWiseCrossAttention()
        self.norm = layer_norm(dim)
        self.head = nn.Linear(dim, spec.num_classes, bias=spec.head_bias)
        if spec.distilled:
            self.head_dist = nn.Linear(dim, spec.num_classes, bias=spec.head_bias)
        self.apply(_init_weights)

    @property
    def spec(self) -> ModelSpec:
        """The model as it is now: the block layout is read from the blocks, so a model
        whose blocks were merged by `lowering.reparam` describes the merged structure."""
        layouts = [block.layout() for block in self.blocks]
        kinds = tuple(layout["attention"] for layout in layouts)
        groups = tuple(layout.pop("query_groups") for layout in layouts)
        grouped = {"kv_heads": None, "query_groups": ()}
        if groups[0] is not None:
            uniform = all(len(set(block_groups)) == 1 for block_groups in groups)
            grouped = {"kv_heads": len(groups[0]), "query_groups": () if uniform else groups}
        gated = any(isinstance(module, GatedLinear) for module in self.modules())
        return replace(self._built_spec, depth=len(self.blocks), gate_tasks=self._built_spec.gate_tasks if gated else 0,
                       pair_wise=self.has_pair_wise_branch,
                       **{**layouts[0], "attention": kinds[:1] if len(set(kinds)) == 1 else kinds, **grouped})

    def prefix_tokens(self, batch: int) -> torch.Tensor:
        tokens = [self.cls_token]
        if self._built_spec.distilled:
            tokens.append(self.dist_token)
        return torch.cat(tokens, dim=1).expand(batch, -1, -1)

    @property
    def has_pair_wise_branch(self) -> bool:
        """Whether the model still has DCAL's training-only pair-wise cross-attention."""
        return isinstance(getattr(self, "pair_wise", None), PairWiseCrossAttention)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The tokens entering the first block."""
        x = self.patch_embed(images)
        return self.norm_pre(torch.cat([self.prefix_tokens(x.shape[0]), x], dim=1) + self.pos_embed)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.embed(images))
        if self._built_spec.class_attention_blocks:
            x = self.blocks_token_only(x)
        return self.norm(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.head(features[:, 0])
        if self._built_spec.distilled:
            logits = (logits + self.head_dist(features[:, 1])) * 0.5  # a float factor: no integer cast to lower
        return logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self._built_spec.glca_blocks:
            return self.forward_head(self.forward_features(images))
        tokens, maps = blocks_with_attention(self.blocks, self.embed(images))
        return (self.forward_head(self.norm(tokens)) + self.glca(tokens, maps)) * 0.5

    def forward_pair(self, images: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
        """DCAL's pair-wise cross-attention (training only): the SA head's logits for
        `images` whose blocks also attend to the tokens of `pair` (as many images)."""
        if not self.has_pair_wise_branch:
            raise ValueError("this model has no pair-wise cross-attention branch (built without pair_wise, "
                             "or removed by lowering.reparam.reparameterize)")
        return self.forward_head(self.norm(self.pair_wise(self.blocks, self.embed(images), self.embed(pair))))


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
