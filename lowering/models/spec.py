"""What defines a ViT: its structure, the number of classes and its preprocessing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from vitdeploy.metrics import Metric, metric_for_output

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input: resize so that the centre crop of
    `crop_pct` of the short side is `img_size`, then normalize with `mean` and `std`."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop_pct: float = 0.875
    interpolation: str = "bicubic"


@dataclass(frozen=True)
class ImageFormat:
    """What a model's input is made of: `in_chans` x `img_size` x `img_size` images, made
    with `preprocessing`. A ModelSpec has the same three fields, so either serves where
    images are prepared for a model (calibration, evaluation)."""

    preprocessing: Preprocessing
    img_size: int
    in_chans: int = 3

    @classmethod
    def from_dict(cls, preprocessing: dict, input_shape: tuple[int, ...]) -> "ImageFormat":
        """From a manifest's model preprocessing and input shape (batch, channels, height, width)."""
        pre = {k: tuple(v) if isinstance(v, list) else v for k, v in preprocessing.items()}
        return cls(Preprocessing(**pre), int(input_shape[-1]), int(input_shape[1]))


@dataclass(frozen=True)
class ModelSpec:
    """A complete description of one ViT instance; `create(spec.name, **spec.overrides())`
    rebuilds the same architecture.

    `head_dim` is the width of one attention head; a merged (reparameterized) model keeps
    the branches' head width while its head count grows, so it is stored, not derived.
    `attention` names each block's attention (`lowering.models.layers.ATTENTION_KINDS`),
    one name for every block or one per block. `kv_heads` (None: as many as `num_heads`)
    makes attention grouped-query; `query_groups` then holds each block's query heads
    per key/value head where they are not equal (a key-norm allocation), else is empty.
    `class_attention_blocks` CaiT class-attention blocks follow the `depth` blocks; with
    `gate_tasks` > 0 their linears carry per-task gates, folded for `task` at lowering
    (`lowering.models.class_attention`). `glca_blocks` > 0 makes the model DCAL's: that many
    global-local cross-attention blocks read the `local_ratio` of patch tokens that attention
    rollout ranks highest, with their own head; `pair_wise` adds DCAL's training-only
    pair-wise cross-attention, removed at lowering (`lowering.models.dcal`).
    `pre_norm` puts a LayerNorm before the blocks
    and `head_bias=False` makes the head a plain projection, as CLIP's image encoder has
    them; `output` says what the head gives: "logits", an "embedding" (CLIP's) or one
    "regression" value; it decides the `metric` the model is judged by.
    """

    name: str
    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 192
    depth: int = 12
    num_heads: int = 3
    head_dim: int = 64
    mlp_ratio: float = 4.0
    branches: int = 1
    attention: tuple[str, ...] = ("softmax",)
    kv_heads: int | None = None
    query_groups: tuple[tuple[int, ...], ...] = ()
    class_attention_blocks: int = 0
    gate_tasks: int = 0
    task: int = 0
    glca_blocks: int = 0
    local_ratio: float = 0.1
    pair_wise: bool = False
    pre_norm: bool = False
    head_bias: bool = True
    output: str = "logits"
    distilled: bool = False
    preprocessing: Preprocessing = field(default_factory=Preprocessing)

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    @property
    def num_prefix_tokens(self) -> int:
        return 2 if self.distilled else 1

    @property
    def mlp_hidden_dim(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    @property
    def has_training_structure(self) -> bool:
        """Whether lowering must fold something first: parallel branches, gates, or the
        pair-wise cross-attention branch."""
        return self.branches > 1 or self.gate_tasks > 0 or self.pair_wise

    @property
    def metric(self) -> Metric | None:
        """What the model's quality is measured by (`vitdeploy.metrics`); None for an embedding."""
        return metric_for_output(self.output)

    def block_attention(self, index: int) -> str:
        """The attention of block `index`."""
        return self.attention[0] if len(self.attention) == 1 else self.attention[index]

    def block_query_groups(self, index: int) -> tuple[int, ...] | None:
        """Block `index`'s query heads per key/value head; None for multi-head attention."""
        if self.kv_heads is None:
            return None
        if self.query_groups:
            return self.query_groups[index]
        return (self.num_heads // self.kv_heads,) * self.kv_heads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        fields = dict(data)
        pre = fields.pop("preprocessing", None) or {}
        pre = {k: tuple(v) if isinstance(v, list) else v for k, v in pre.items()}
        if "attention" in fields:
            fields["attention"] = tuple(fields["attention"])
        if "query_groups" in fields:
            fields["query_groups"] = tuple(tuple(groups) for groups in fields["query_groups"])
        return cls(preprocessing=Preprocessing(**pre), **fields)

    def overrides(self) -> dict:
        """The structural fields as keyword overrides for `lowering.models.create`."""
        data = self.to_dict()
        for key in ("name", "distilled", "preprocessing"):
            data.pop(key)
        return data
