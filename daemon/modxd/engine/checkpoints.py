"""Durable checkpoints: staged, fsynced, renamed into place, then rotated.

A checkpoint is first written to a fresh ``<output_dir>/checkpoints/.tmp-checkpoint-N``
(reached through the open ``checkpoints`` dir, never through a symlink),
every file and directory is fsynced, and only then is it renamed to
``checkpoints/checkpoint-N`` with ``os.replace`` (atomic on one filesystem). The
``checkpoint`` event is emitted after the rename, so the daemon debits quota and
records only complete checkpoints. Retention (``save_total_limit``) is done here,
not by ``Trainer``, so every deletion is reported with a ``checkpoint_deleted``
event, oldest step first.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import stat
from .. import files
from ..paths import Pinned, pin_output_dir
from ..protocol import Checkpoint, CheckpointDeleted, Emit
from .finite import checkpoint_weights_problem
from .safetensors_header import safetensors_header_problem

__all__ = ["CheckpointStore", "DiskFull", "fsync_tree", "dir_size", "list_checkpoints",
           "CHECKPOINT_RE", "is_disk_full", "free_bytes", "commit_dir", "remove_entry", "resume_problem",
           "checkpoint_kind"]

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
log = logging.getLogger("modxd.engine")

_DISK_FULL_MARKERS = ("no space left on device", "disk quota exceeded", "storagefull")
NEARLY_FULL_BYTES = 1 << 20  # a failed write with less than this free is blamed on a full disk


def resume_problem(directory: str, max_weight_bytes: int | None = None) -> str:
    """What keeps a training run from resuming from `directory` (a sentence to follow its name), or ''.

    The one rule of a resumable checkpoint, applied at create (validation.py), at ResumeTask (app.py)
    and by the worker to the dir it opened (engine/train.py): it holds trainer_state.json (with the
    optimizer, scheduler, RNG and data position beside it), and its weights are finite. Weights above
    `max_weight_bytes` are not read here; the worker reads them all.
    """
    if not os.path.isfile(os.path.join(directory, "trainer_state.json")):
        return "is not a training checkpoint (no trainer_state.json in it)"
    problem = checkpoint_weights_problem(directory, max_weight_bytes)
    if problem:
        return (f"cannot be resumed: {problem}: the run had diverged when it was saved (or the file is damaged); "
                "resume from an earlier checkpoint")
    return checkpoint_kind(directory)[1]  # and the model or adapter in it loads at all


ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def _json_object_problem(path: str) -> str:
    """'' when `path` holds a JSON object, else why not, as the end of a sentence about its directory."""
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"has {name}, which cannot be read as JSON ({exc})"
    return "" if isinstance(data, dict) else f"has {name}, which is not a JSON object"


def checkpoint_kind(directory: str) -> tuple[bool, str]:
    """(lora, problem): whether `directory` holds a LoRA adapter (else a full model), and what keeps a
    worker from loading it ('' when nothing: a sentence to follow the directory's name).

    The one rule of a checkpoint that chat, evaluation and packaging hand to a worker (chat.py,
    evaluations.py, packages.py): a damaged adapter_config.json, missing adapter weights or a broken
    safetensors header is refused before any work, not left to a library's exception in the worker."""
    adapter_config = os.path.join(directory, "adapter_config.json")
    if os.path.isfile(adapter_config):
        problem = _json_object_problem(adapter_config)
        if problem:
            return True, problem
        weights = [os.path.join(directory, n) for n in ADAPTER_WEIGHTS if os.path.isfile(os.path.join(directory, n))]
        if not weights:
            return True, f"has adapter_config.json but no adapter weights ({ADAPTER_WEIGHTS[0]} is missing)"
        problem = safetensors_header_problem(weights[0]) if weights[0].endswith(".safetensors") else ""
        return True, f"has a damaged {os.path.basename(weights[0])} ({problem})" if problem else ""
    config_path = os.path.join(directory, "config.json")
    if not os.path.isfile(config_path):
        return False, "holds neither a LoRA adapter (adapter_config.json) nor a model (config.json)"
    problem = _json_object_problem(config_path)
    if problem:
        return False, problem
    weights = sorted(n for n in os.listdir(directory) if n.endswith(".safetensors"))
    if not weights:
        return False, "holds a config.json but no *.safetensors weights"
    for name in weights:
        problem = safetensors_header_problem(os.path.join(directory, name))
        if problem:
            return False, f"has a damaged {name} ({problem})"
    return False, ""


def adapter_start_problem(directory: str, max_weight_bytes: int | None = None) -> str:
    """What keeps a preference run from continuing the LoRA adapter in `directory` (start_from_checkpoint),
    or '' (a sentence to follow its name): it holds adapter_config.json and finite weights. Applied at
    create (validation.py) and by the worker to the dir it opened (engine/preference.py)."""
    if not os.path.isfile(os.path.join(directory, "adapter_config.json")):
        full = os.path.isfile(os.path.join(directory, "config.json"))
        return ("is not a LoRA checkpoint (no adapter_config.json)"
                + ("; it is a full model: set model_dir to it instead" if full else ""))
    problem = checkpoint_weights_problem(directory, max_weight_bytes)
    if problem:
        return f"holds {problem}; start from another checkpoint"
    return ""


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


def remove_entry(parent: Pinned, name: str) -> bool:
    """Remove ``name`` from a pinned dir, never following a symlink (a symlink itself is unlinked).
    True when something was removed."""
    try:
        st = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=parent.fd, ignore_errors=True)
    else:
        os.unlink(name, dir_fd=parent.fd)
    return True


def commit_dir(src: Pinned, name: str, dst: Pinned, final: str) -> Pinned:
    """Move the complete dir ``name`` of ``src`` to ``final`` in ``dst`` (replacing an old one), durably;
    returns the committed dir, open."""
    fsync_tree(src.join(name))
    remove_entry(dst, final)
    os.rename(name, final, src_dir_fd=src.fd, dst_dir_fd=dst.fd)
    _fsync_fd(dst.fd)
    return dst.subdir(final, create=False)[0]


def _fsync_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:
        pass


def dir_size(root: str) -> int:
    """Total bytes of the regular files under ``root``."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


def list_checkpoints(checkpoints_dir: str | Pinned) -> list[tuple[int, str]]:
    """Complete checkpoints as ``(step, path)``, oldest step first (a symlink is never one)."""
    if isinstance(checkpoints_dir, Pinned):
        fd, real = checkpoints_dir.fd, checkpoints_dir.real
    elif os.path.isdir(checkpoints_dir):
        fd, real = None, checkpoints_dir
    else:
        return []
    found = []
    for name in os.listdir(real if fd is None else fd):
        match = CHECKPOINT_RE.match(name)
        if not match:
            continue
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False) if fd is not None else os.lstat(
                os.path.join(real, name))
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            found.append((int(match.group(1)), os.path.join(real, name)))
    return sorted(found)


class CheckpointStore:
    """Owns ``<output_dir>/checkpoints``: staging, commit, events, retention and the manifest.

    The dir is opened once (never through a symlink, see modxd/paths.py) and everything is
    written through it: a fresh ``.tmp-checkpoint-N`` that the Trainer fills, renamed into place.
    Every dir and file is reported in a ``files`` message (modxd/files.py) so that deleting the
    task deletes exactly them.
    """

    FIELD = "parameter output_dir"

    def __init__(self, output_dir: str | Pinned, save_total_limit: int, emit: Emit,
                 owner: bool = True):
        out = output_dir if isinstance(output_dir, Pinned) else pin_output_dir(self.FIELD, output_dir)[0]
        self.pin, made = out.subdir("checkpoints", self.FIELD)
        if out is not output_dir:
            out.close()
        self.dir = self.pin.real
        self.limit = save_total_limit if save_total_limit and save_total_limit > 0 else 0
        self.emit = emit
        self.last_saved_step: int | None = None
        self.saves_disabled = False
        self.saved: list[str] = []
        self.staging: Pinned | None = None
        if not owner:  # another rank of the same run: rank 0 cleans, reports and rotates
            return
        if made:
            emit(files.message([files.entry(self.dir, "dir")]))
        for name in sorted(os.listdir(self.pin.fd)):
            if name.startswith((".tmp-checkpoint-", ".deleting-checkpoint-")):
                log.warning("removing the incomplete checkpoint %s left by an earlier run", name)
                if remove_entry(self.pin, name):
                    emit(files.message(removed=[self.pin.real_join(name)]))

    def should_skip(self, step: int) -> bool:
        """True when saving now would duplicate the last save or saving is off (stop without save)."""
        return self.saves_disabled or self.last_saved_step == step

    def staging_dir(self, step: int) -> str:
        """A fresh ``.tmp-checkpoint-N`` dir; ``Trainer`` writes ``checkpoint-N`` inside it.

        Recorded before it exists, so a crash mid-save leaves nothing the manifest does not name."""
        name = f".tmp-checkpoint-{step}"
        self.pin.check_in_place()
        remove_entry(self.pin, name)
        self.emit(files.message([files.entry(self.pin.real_join(name), "scratch")]))
        self.staging = self.pin.subdir(name, fresh=True)[0]
        return self.staging.path

    def _close_staging(self, step: int) -> None:
        if self.staging is not None:
            self.staging.close()
            self.staging = None
        name = f".tmp-checkpoint-{step}"
        if remove_entry(self.pin, name):
            self.emit(files.message(removed=[self.pin.real_join(name)]))

    def discard(self, step: int, staging: str, exc: BaseException) -> BaseException:
        """Remove the staging dir of a save that failed; returns the error to raise.

        Nothing was emitted for it, so the daemon records nothing and debits nothing.
        A full disk becomes :class:`DiskFull` with a sentence saying what to do.
        """
        full = is_disk_full(exc, self.dir)
        free = free_bytes(self.dir)
        self._close_staging(step)
        if not full:
            return exc
        kept = len(list_checkpoints(self.pin))
        return DiskFull(
            f"could not save the checkpoint of step {step} in {self.dir}: no space left on device "
            f"({_human(free)} free); the incomplete checkpoint was removed and the {kept} earlier "
            f"checkpoint(s) are intact: free some space, then resume the task")

    def commit(self, step: int, staging: str, written: str, epoch: float | None, loss: float | None,
               hold_id: str = "") -> str:
        """Make the written checkpoint durable and visible, emit it (with the quota hold that pays
        for it, engine/quota.py), apply retention."""
        name = f"checkpoint-{step}"
        if self.staging is None:
            raise RuntimeError(f"checkpoint {step} was committed without a staging dir")
        self.pin.check_in_place()
        with commit_dir(self.staging, name, self.pin, name) as committed:
            final = committed.real
            entries = [files.entry(final, "dir"), *files.tree(committed)]
            size = dir_size(committed.path)
        self._close_staging(step)
        self.emit(files.message(entries))
        self.last_saved_step = step
        self.saved.append(final)
        self.emit(Checkpoint(step=step, path=final, size_bytes=size, epoch=epoch, loss=loss, hold_id=hold_id))
        log.info("checkpoint saved at step %d: %s", step, final)
        self.apply_retention()
        return final

    def apply_retention(self) -> list[str]:
        """Delete the oldest checkpoints beyond ``save_total_limit``; report each."""
        if not self.limit:
            return []
        existing = list_checkpoints(self.pin)
        deleted = []
        for step, path in existing[: max(len(existing) - self.limit, 0)]:
            # Renamed away first (atomic), so a crash mid-delete never leaves a
            # half-deleted dir under a checkpoint's name.
            doomed = f".deleting-checkpoint-{step}"
            remove_entry(self.pin, doomed)
            self.emit(files.message([files.entry(self.pin.real_join(doomed), "scratch")], removed=[path]))
            try:
                os.rename(os.path.basename(path), doomed, src_dir_fd=self.pin.fd, dst_dir_fd=self.pin.fd)
            except OSError:
                doomed = os.path.basename(path)
            remove_entry(self.pin, doomed)
            self.emit(files.message(removed=[self.pin.real_join(doomed)]))
            deleted.append(path)
            self.emit(CheckpointDeleted(step, path))
            log.info("checkpoint %s deleted (save_total_limit %d)", path, self.limit)
        return deleted
