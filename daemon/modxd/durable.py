"""Replacing a small file whole: readers see the old content or the new, never a part (a crash,
kill or full disk in the middle leaves the old file and no temporary one behind)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike, data: bytes | str, mode: int | None = None) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``
    (and flush the directory, so the rename itself survives a power loss). ``mode``: the new file's
    permissions (e.g. 0o600 for secrets), set before anything is written to it; without it, a new
    file's usual 0o666 less the umask."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666 if mode is None else mode)
    try:
        if mode is not None:  # exactly this, whatever the umask
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # not every filesystem lets a directory be opened; the file itself is whole
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)
