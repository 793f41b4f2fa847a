"""The command a standalone benchmark records beside its results."""

from __future__ import annotations

import shlex
import sys


def command_line(prog: str, argv: list[str] | None) -> str:
    """`prog` (e.g. "python -m bench.dcal") and its arguments, `sys.argv`'s when `argv` is
    None, as a user would type them again."""
    return (prog + " " + shlex.join(sys.argv[1:] if argv is None else argv)).strip()
