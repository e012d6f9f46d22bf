"""Where r53sigma keeps what it may recompute: ``$R53SIGMA_CACHE_DIR``, else ``$XDG_CACHE_HOME/r53sigma``,
else ``~/.cache/r53sigma``; ``R53SIGMA_CACHE_DIR=off`` disables every cache (None)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path | None:
    configured = os.environ.get("R53SIGMA_CACHE_DIR")
    if configured == "off":
        return None
    return Path(configured) if configured else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "r53sigma"
