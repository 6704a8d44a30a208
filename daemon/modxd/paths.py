"""The daemon only reads and writes under configured roots.

Every client path is resolved (symlinks and `..`) before it is compared, so a
symlink inside a root that points outside it is refused too.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import PermissionDenied


def resolve_under_roots(field: str, raw: str, roots: list[Path]) -> Path:
    """The real absolute path of `raw`, or PermissionDenied naming the field and path."""
    if not os.path.isabs(raw):
        raise PermissionDenied(f"{field}: {raw!r} must be an absolute path on the daemon host")
    real = Path(os.path.realpath(raw))
    for root in roots:
        if real == root or root in real.parents:
            return real
    shown = ", ".join(str(r) for r in roots)
    raise PermissionDenied(f"{field}: {raw} is outside the allowed roots ({shown})")


def nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
