"""Programs saved by `torch.export.save` (`.pt2`), the input ExecuTorch and every
exporting framework share."""

from __future__ import annotations

from pathlib import Path

import torch

from lowering.models.spec import Preprocessing
from lowering.sources.model_input import ModelInput, ModelSourceError
from vitdeploy.errors import first_line
from vitdeploy.manifest import artifact_sha256

SUFFIX = ".pt2"


def _load(path: Path) -> torch.export.ExportedProgram:
    if not path.is_file():
        raise ModelSourceError(f"exported program not found: {path}")
    try:
        return torch.export.load(str(path))
    except Exception as exc:  # torch.export.load raises many types for foreign or broken files
        raise ModelSourceError(
            f"{path} is not a program this torch ({torch.__version__}) can load ({type(exc).__name__}: "
            f"{first_line(exc)[:200]}): it is truncated, not made by torch.export.save, or saved by another "
            f"torch version; save it again with torch.export.save under torch {torch.__version__}"
        ) from exc


def _image_input(program: torch.export.ExportedProgram, path: Path):
    """The placeholder node of the program's one user input."""
    names = program.graph_signature.user_inputs
    placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    described = ", ".join(f"{name} {tuple(getattr(placeholders[name].meta.get('val'), 'shape', ()))}" for name in names)
    if len(names) != 1:
        raise ModelSourceError(
            f"{path} takes {len(names)} inputs ({described}); vitdeploy lowers image models with one "
            "input: export a wrapper whose forward takes only the image tensor"
        )
    value = placeholders[names[0]].meta.get("val")
    if not isinstance(value, torch.Tensor):
        raise ModelSourceError(f"{path}: its input {names[0]} is not a tensor; export a model that takes an image tensor")
    if value.dtype != torch.float32:
        raise ModelSourceError(f"{path}: its input {names[0]} is {value.dtype}, not float32 images")
    return value


def open_exported_program(
    path: str | Path, preprocessing: Preprocessing, input_shape: tuple[int, ...] | None = None
) -> ModelInput:
    """The program in `path` as a model input.

    A program exported with dynamic shapes needs `input_shape` (it is exported again at
    that shape); a static one must match it if given. `preprocessing` is how images
    become its input (a `.pt2` does not say).
    """
    path = Path(path)
    program = _load(path)
    value = _image_input(program, path)
    dynamic = [i for i, d in enumerate(value.shape) if not isinstance(d, int)]
    shape = tuple(int(d) for d in input_shape) if input_shape else None
    if dynamic and shape is None:
        raise ModelSourceError(
            f"{path} has dynamic input dimension(s) {', '.join(map(str, dynamic))} "
            f"(shape {tuple(str(d) for d in value.shape)}): give the shape to lower it at, "
            "e.g. --input-shape 1,3,224,224"
        )
    if dynamic:
        program = torch.export.export(program.module(), (torch.zeros(shape),))
    elif shape is not None and shape != tuple(value.shape):
        raise ModelSourceError(
            f"{path} was exported for input shape {tuple(value.shape)}, not {shape}: "
            "export it again with dynamic shapes or at that shape"
        )
    example = torch.zeros(shape or tuple(value.shape))
    return ModelInput(path.stem, program.module(), example, preprocessing, "exported-program", str(path),
                      source_sha256=artifact_sha256(path), program=program)
