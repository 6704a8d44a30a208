"""The daemon only reads and writes under configured roots.

Every client path is resolved (symlinks and `..`) before it is compared, so a
symlink inside a root that points outside it is refused too.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import InvalidArgument, PermissionDenied, quote
from .fields import control_char

PATH_MAX_BYTES = 4096  # Linux PATH_MAX
NAME_MAX_BYTES = 255   # one path component


def check_path_text(field: str, raw: str) -> None:
    """Refuse what no filesystem call could take (NUL bytes, over-long paths) and control characters,
    which no file a person names needs and which would reach logs and terminals raw."""
    if "\0" in raw:
        raise InvalidArgument(f"{field}: the path {quote(raw.split(chr(0))[0])}... contains a NUL byte")
    encoded = raw.encode("utf-8", "surrogateescape")
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in raw.split("/")), default=0)
    if len(encoded) > PATH_MAX_BYTES or longest > NAME_MAX_BYTES:
        raise InvalidArgument(
            f"{field}: the path {quote(raw)} is too long ({len(encoded)} bytes; at most "
            f"{PATH_MAX_BYTES} in all and {NAME_MAX_BYTES} per name)")
    found = control_char(raw)
    if found:
        raise InvalidArgument(f"{field}: the path {quote(raw)} has a control character ({quote(found[1])[1:-1]} at "
                              f"position {found[0] + 1}); rename the file or dir")


def resolve_under_roots(field: str, raw: str, roots: list[Path]) -> Path:
    """The real absolute path of `raw`, or PermissionDenied naming the field and path."""
    check_path_text(field, raw)
    if not os.path.isabs(raw):
        raise PermissionDenied(f"{field}: {quote(raw)} must be an absolute path on the daemon host")
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


def make_dir_under_roots(field: str, path: Path, roots: list[Path] | None, mode: int = 0o750) -> Path:
    """Create `path` (and missing parents) for writing without following a symlink out of a root.

    The path is resolved and checked again right before writing (it may have
    changed since the task was created); then each missing component is made
    with `mode` and re-opened with O_NOFOLLOW, so a symlink planted in the
    meantime is refused instead of followed. `roots` None: no root check.
    """
    path = Path(path)
    if roots is not None:
        resolve_under_roots(field, str(path), roots)
        real = Path(os.path.realpath(path))
        if real != path.absolute():
            raise PermissionDenied(f"{field}: {path} resolves to {real} through a symlink; "
                                   "give the real path")
    existing = nearest_existing(path)
    for part in path.relative_to(existing).parts if existing != path else ():
        existing = existing / part
        try:
            os.mkdir(existing, mode)
        except FileExistsError:
            pass
        fd = os.open(existing, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        os.close(fd)
    if path.is_symlink() or not path.is_dir():
        raise PermissionDenied(f"{field}: {path} is not a directory the daemon may write to")
    return path
