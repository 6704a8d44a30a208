"""Durable checkpoints: staged, fsynced, renamed into place, then rotated.

A checkpoint is first written to ``<output_dir>/checkpoints/.tmp-checkpoint-N``,
every file and directory is fsynced, and only then is it renamed to
``checkpoints/checkpoint-N`` with ``os.replace`` (atomic on one filesystem). The
``checkpoint`` event is emitted after the rename, so the daemon debits quota and
records only complete checkpoints. Retention (``save_total_limit``) is done here,
not by ``Trainer``, so every deletion is reported with a ``checkpoint_deleted``
event, oldest step first.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from typing import Callable

__all__ = ["CheckpointStore", "DiskFull", "fsync_tree", "replace_dir", "dir_size", "list_checkpoints",
           "CHECKPOINT_RE", "is_disk_full", "free_bytes"]

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
log = logging.getLogger("modxd.engine")

_DISK_FULL_MARKERS = ("no space left on device", "disk quota exceeded", "storagefull")
NEARLY_FULL_BYTES = 1 << 20  # a failed write with less than this free is blamed on a full disk


class DiskFull(Exception):
    """A save failed for lack of space; ``str()`` is the sentence for people."""

    disk_full = True


def free_bytes(path: str) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def is_disk_full(exc: BaseException, path: str | None = None) -> bool:
    """ENOSPC/EDQUOT anywhere in the exception chain (safetensors and torch.save hide the
    errno in their message), or a failed write on a filesystem that is (nearly) full."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(m in str(current).lower() for m in _DISK_FULL_MARKERS):
            return True
        current = current.__cause__ or current.__context__
    free = free_bytes(path) if path else None
    return free is not None and free < NEARLY_FULL_BYTES and isinstance(exc, (OSError, RuntimeError))


def _human(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _fsync_path(path: str) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def fsync_tree(root: str) -> None:
    """fsync every file and directory under ``root`` (files first, then dirs)."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            _fsync_path(os.path.join(dirpath, name))
        _fsync_path(dirpath)


def replace_dir(staging: str, final: str) -> None:
    """Rename a complete ``staging`` dir to ``final``, replacing an old one."""
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(staging, final)
    _fsync_path(os.path.dirname(os.path.abspath(final)))


def dir_size(root: str) -> int:
    """Total bytes of the regular files under ``root``."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


def list_checkpoints(checkpoints_dir: str) -> list[tuple[int, str]]:
    """Complete checkpoints as ``(step, path)``, oldest step first."""
    if not os.path.isdir(checkpoints_dir):
        return []
    found = []
    for name in os.listdir(checkpoints_dir):
        match = CHECKPOINT_RE.match(name)
        path = os.path.join(checkpoints_dir, name)
        if match and os.path.isdir(path):
            found.append((int(match.group(1)), path))
    return sorted(found)


class CheckpointStore:
    """Owns ``<output_dir>/checkpoints``: staging, commit, events and retention."""

    def __init__(self, output_dir: str, save_total_limit: int, emit: Callable[[dict], None]):
        self.dir = os.path.join(output_dir, "checkpoints")
        self.limit = save_total_limit if save_total_limit and save_total_limit > 0 else 0
        self.emit = emit
        self.last_saved_step: int | None = None
        self.saves_disabled = False
        self.saved: list[str] = []
        os.makedirs(self.dir, exist_ok=True)
        for name in os.listdir(self.dir):
            if name.startswith((".tmp-checkpoint-", ".deleting-checkpoint-")):
                log.warning("removing the incomplete checkpoint %s left by an earlier run", name)
                shutil.rmtree(os.path.join(self.dir, name), ignore_errors=True)

    def should_skip(self, step: int) -> bool:
        """True when saving now would duplicate the last save or saving is off (stop without save)."""
        return self.saves_disabled or self.last_saved_step == step

    def staging_dir(self, step: int) -> str:
        """A fresh ``.tmp-checkpoint-N`` dir; ``Trainer`` writes ``checkpoint-N`` inside it."""
        staging = os.path.join(self.dir, f".tmp-checkpoint-{step}")
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        return staging

    def discard(self, step: int, staging: str, exc: BaseException) -> BaseException:
        """Remove the staging dir of a save that failed; returns the error to raise.

        Nothing was emitted for it, so the daemon records nothing and debits nothing.
        A full disk becomes :class:`DiskFull` with a sentence saying what to do.
        """
        full = is_disk_full(exc, self.dir)
        free = free_bytes(self.dir)
        shutil.rmtree(staging, ignore_errors=True)
        if not full:
            return exc
        kept = len(list_checkpoints(self.dir))
        return DiskFull(
            f"could not save the checkpoint of step {step} in {self.dir}: no space left on device "
            f"({_human(free)} free); the incomplete checkpoint was removed and the {kept} earlier "
            f"checkpoint(s) are intact: free some space, then resume the task")

    def commit(self, step: int, staging: str, written: str, epoch: float | None, loss: float | None,
               hold_id: str = "") -> str:
        """Make the written checkpoint durable and visible, emit it (with the quota hold that pays
        for it, engine/quota.py), apply retention."""
        fsync_tree(written)
        final = os.path.join(self.dir, f"checkpoint-{step}")
        replace_dir(written, final)
        shutil.rmtree(staging, ignore_errors=True)
        self.last_saved_step = step
        self.saved.append(final)
        self.emit({"type": "checkpoint", "step": step, "epoch": epoch, "loss": loss,
                   "path": final, "size_bytes": dir_size(final), "hold_id": hold_id})
        log.info("checkpoint saved at step %d: %s", step, final)
        self.apply_retention()
        return final

    def apply_retention(self) -> list[str]:
        """Delete the oldest checkpoints beyond ``save_total_limit``; report each."""
        if not self.limit:
            return []
        existing = list_checkpoints(self.dir)
        deleted = []
        for step, path in existing[: max(len(existing) - self.limit, 0)]:
            # Renamed away first (atomic), so a crash mid-delete never leaves a
            # half-deleted dir under a checkpoint's name.
            doomed = os.path.join(self.dir, f".deleting-checkpoint-{step}")
            shutil.rmtree(doomed, ignore_errors=True)
            try:
                os.replace(path, doomed)
            except OSError:
                doomed = path
            shutil.rmtree(doomed, ignore_errors=True)
            deleted.append(path)
            self.emit({"type": "checkpoint_deleted", "step": step, "path": path})
            log.info("checkpoint %s deleted (save_total_limit %d)", path, self.limit)
        return deleted
