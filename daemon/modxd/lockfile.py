"""Exclusive lock files: what makes a second modxd refuse instead of sharing a state dir or a socket.

An flock(2) lock dies with its holder (a killed daemon leaves no stale lock behind), and the
holder's pid is written into the file so the refusal can name it. The file itself stays: removing
a lock file while another process may have it open would let two holders lock two different files.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import FailedPrecondition


class AlreadyRunning(FailedPrecondition):
    """Another live modxd holds the lock."""


def hold_lock(path: Path, holds: str) -> int:
    """Lock `path` (created if needed) for this process; returns the fd to keep open while it holds.

    `holds` completes the refusal: "another modxd (pid N) already {holds}".
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        raise AlreadyRunning(f"another modxd (pid {other or '?'}) already {holds}") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd
