"""Errors that name what a backend refused: the operator and the module it came from.

torch.export records, on every node, the stack of modules that produced it
(`nn_module_stack`); the innermost entry is the module path of the user's model (export
graph passes keep module paths). Converters report a refused operator in their own words, so a
failure message is matched against the operators of the exported graph by name.
"""

from __future__ import annotations

import re
from collections import defaultdict

import torch

from vitdeploy.errors import VitdeployError

_LISTED = 4


class LoweringError(VitdeployError):
    """A backend failed to lower the model."""


class UnsupportedOpError(LoweringError):
    """A backend cannot take an operator of the model."""


def _schema(target: object):
    schema = getattr(target, "_schema", None)
    if schema is None:  # an edge-dialect operator wraps the ATen one
        schema = getattr(getattr(target, "_op", None), "_schema", None)
    return schema


def op_name(target: object) -> str:
    """"namespace.name" of an operator target (overload dropped): "aten.linear"."""
    schema = _schema(target)
    if schema is not None:
        return schema.name.replace("::", ".")
    return getattr(target, "__name__", str(target))


def is_operator(node: torch.fx.Node) -> bool:
    """True for a call of a tensor operator (not Python's getitem and the like)."""
    return node.op == "call_function" and _schema(node.target) is not None


def module_path(node: torch.fx.Node) -> str:
    """The path of the innermost module that produced `node` ("<model>" for the top)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "<model>"
    return list(stack.values())[-1][0] or "<model>"


def modules_by_op(graph: torch.fx.Graph) -> dict[str, list[str]]:
    """Each operator of `graph` with the module paths that use it, in graph order."""
    found: dict[str, list[str]] = defaultdict(list)
    for node in graph.nodes:
        if is_operator(node):
            path = module_path(node)
            if path not in found[op_name(node.target)]:
                found[op_name(node.target)].append(path)
    return dict(found)


def describe_op(op: str, paths: list[str]) -> str:
    shown = ", ".join(paths[:_LISTED]) + (f" and {len(paths) - _LISTED} more" if len(paths) > _LISTED else "")
    return f"{op} (from {shown})"


def _error_text(exc: BaseException) -> str:
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def refused_ops(text: str, graph: torch.fx.Graph) -> dict[str, list[str]]:
    """The operators of `graph` a converter's message names (by full or short name)."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    named = {}
    for op, paths in modules_by_op(graph).items():
        short = op.split(".")[-1]
        if op in text or short in words or any(short.endswith("_" + w) for w in words if len(w) > 3):
            named[op] = paths
    return named


def explain_failure(backend: str, exc: BaseException, graph: torch.fx.Graph) -> LoweringError:
    """A LoweringError for a converter's exception: an UnsupportedOpError naming the
    operator(s) and their modules when the message names ops of `graph`."""
    text = _error_text(exc)
    named = refused_ops(text, graph)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if named:
        ops = "; ".join(describe_op(op, paths) for op, paths in named.items())
        return UnsupportedOpError(
            f"{backend} cannot take operator {ops}. Rewrite that module with supported "
            f"operators or choose another backend. Converter said: {first[:300]}"
        )
    return LoweringError(f"lowering to {backend} failed: {first[:500]}")
