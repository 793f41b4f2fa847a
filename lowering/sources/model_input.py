"""The one value every model source yields for the rest of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lowering.models.spec import ImageFormat, ModelSpec, Preprocessing
from vitdeploy.errors import VitdeployError

SOURCE_KINDS = ("registry", "exported-program", "huggingface", "factory")


class ModelSourceError(VitdeployError):
    """A model source cannot be read: the message names the file or name and the fix."""


@dataclass(frozen=True, eq=False)
class ModelInput:
    """One model to lower, whatever it came from.

    `model`: the eager model in eval mode, called with one image tensor and returning one
    output tensor (logits, or an embedding). `example`: an input of the shape the
    artifacts take (batch included). `preprocessing`: how images become that input.
    `label`: what reports call the model. `source_kind` (one of SOURCE_KINDS), `source`
    (what the user named) and `source_sha256` (of the files it was read from, None when
    it comes from code alone) are its provenance. `spec`: the registry's description of
    a built-in ViT (reparameterization and int8 settings read it); None for other models.
    `program`: the exported program a `.pt2` held, lowered as it is.
    """

    label: str
    model: nn.Module
    example: torch.Tensor
    preprocessing: Preprocessing
    source_kind: str
    source: str
    source_sha256: str | None = None
    spec: ModelSpec | None = None
    program: torch.export.ExportedProgram | None = None

    def __post_init__(self) -> None:
        if self.source_kind not in SOURCE_KINDS:
            raise ValueError(f"source_kind must be one of {', '.join(SOURCE_KINDS)}, got {self.source_kind!r}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.example.shape)

    @property
    def image_format(self) -> ImageFormat:
        """The images this model takes; data sets are prepared square, so a non-square
        input is an error here."""
        _, channels, height, width = (tuple(self.input_shape) + (0, 0, 0, 0))[:4]
        if len(self.input_shape) != 4 or height != width:
            raise ModelSourceError(
                f"{self.label} takes input of shape {self.input_shape}; calibration and evaluation "
                "images are square N x C x S x S: lower it at a square size (--input-shape 1,3,S,S)"
            )
        return ImageFormat(self.preprocessing, int(height), int(channels))

    @classmethod
    def from_registry_model(cls, model: nn.Module, source: str = "random") -> ModelInput:
        """A built-in VisionTransformer (`lowering.models.create`) as a model input."""
        spec = model.spec
        example = torch.zeros(1, spec.in_chans, spec.img_size, spec.img_size)
        return cls(spec.name, model.eval(), example, spec.preprocessing, "registry", source, spec=spec)


def single_output(output) -> torch.Tensor:
    """The tensor a model returned: itself, the first of a tuple or list, or `logits` of a
    Hugging Face output; anything else is an error."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ModelSourceError(
        f"the model returned {type(output).__name__}, not a tensor: wrap it so that it returns its logits"
    )
