"""ViT and DeiT models, key-compatible with timm, and the branched ViT of depth
reparameterization.

    create(name, checkpoint=None, **overrides) -> VisionTransformer
    list_models() -> list[str]
"""

from lowering.models.checkpoint import CheckpointError
from lowering.models.counting import count_macs, count_params
from lowering.models.registry import (
    InvalidSpecError,
    UnknownModelError,
    create,
    list_models,
    resolve_spec,
)
from lowering.models.spec import ModelSpec, Preprocessing
from lowering.models.vit import VisionTransformer

__all__ = [
    "CheckpointError",
    "InvalidSpecError",
    "ModelSpec",
    "Preprocessing",
    "UnknownModelError",
    "VisionTransformer",
    "count_macs",
    "count_params",
    "create",
    "list_models",
    "resolve_spec",
]
