"""Where vitdeploy keeps what it builds once per user: lowered artifacts, trained weights, emulator environments."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """Return vitdeploy's cache directory (not created here).

    `$VITDEPLOY_CACHE` wins; otherwise `$XDG_CACHE_HOME/vitdeploy`; otherwise
    `~/.cache/vitdeploy`.
    """
    explicit = os.environ.get("VITDEPLOY_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "vitdeploy"
