"""Structural reparameterization: fold training-time structure into a plain model.

One walker serves every module that follows timm's duck-typed convention of exposing
`reparameterize()`: a module whose method returns a new module is replaced by it in its
parent; a module whose method returns None has fused itself in place. Children of a
module that reparameterizes are not visited: the module owns their fusion.
"""

from __future__ import annotations

import copy

from torch import nn


def reparameterize(model: nn.Module) -> nn.Module:
    """Return an inference-form copy of `model` with every reparameterizable module fused.

    The input model is left untouched; the result is in eval mode.
    """
    fused = copy.deepcopy(model)
    replacement = _fuse(fused)
    if replacement is not None:
        fused = replacement
    else:
        _walk(fused)
    return fused.eval()


def _fuse(module: nn.Module) -> nn.Module | None:
    method = getattr(module, "reparameterize", None)
    if not callable(method):
        return None
    result = method()
    return result if isinstance(result, nn.Module) else module


def _walk(parent: nn.Module) -> None:
    for name, child in list(parent.named_children()):
        replacement = _fuse(child)
        if replacement is None:
            _walk(child)
        elif replacement is not child:
            setattr(parent, name, replacement)
