"""What a task wrote: the manifest workers report, and the deletion that uses it.

A worker reports what it creates with one message, ``files`` (protocol.Files, built by :func:`message`),
before a library fills it where a crash could leave it behind; the daemon stores the entries
(store/files.py) and ``DeleteTask`` with files deletes exactly them (:func:`delete_entries`),
never a directory blindly. Entries (real paths, under an allowed root):

* ``file``: deleted while it is still the file written: a regular file (never a symlink) with
  the recorded device and inode when they were recorded;
* ``dir``: a directory the task made; removed once empty, deepest first, after its files;
* ``scratch``: a staging directory modx made fresh (exclusively, mode 0750) for a library to
  fill (a checkpoint being saved, a merge, a distributed run's files): it is removed whole, with
  the fd-based ``shutil.rmtree`` that never follows a symlink.

Every removal reaches its directory by walking down from the root with O_NOFOLLOW
(paths.pin_output_dir), so a symlink planted anywhere on the way is never followed.
Stdlib only: workers import it.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import FailedPrecondition, ModxError
from .paths import Pinned, open_written_file, pin_output_dir
from .protocol import Files

KINDS = ("file", "dir", "scratch")


def entry(path: str, kind: str, st: os.stat_result | None = None) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown manifest entry kind {kind!r}")
    out: dict[str, Any] = {"path": os.path.normpath(path), "kind": kind}
    if st is not None and kind == "file":
        out.update(dev=int(st.st_dev), ino=int(st.st_ino))
    return out


def message(wrote: Iterable[dict[str, Any]] = (), removed: Iterable[str] = ()) -> Files:
    """The ``files`` message: entries written, and paths (with everything under them) gone again."""
    return Files(list(wrote), [os.path.normpath(p) for p in removed])


def file_in(pin: Pinned, name: str) -> dict[str, Any]:
    """The entry of the file `name` just written in the pinned dir (its inode, not a symlink's)."""
    return entry(pin.real_join(name), "file", os.stat(name, dir_fd=pin.fd, follow_symlinks=False))


def tree(pin: Pinned) -> list[dict[str, Any]]:
    """Entries of everything in a pinned directory modx made: its subdirs and files, without
    following a symlink (a symlink in it is not the task's file and is not listed)."""
    out: list[dict[str, Any]] = []

    def walk(fd: int, real: str) -> None:
        for name in sorted(os.listdir(fd)):
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            path = os.path.join(real, name)
            if stat.S_ISREG(st.st_mode):
                out.append(entry(path, "file", st))
            elif stat.S_ISDIR(st.st_mode):
                out.append(entry(path, "dir"))
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                try:
                    walk(child, path)
                finally:
                    os.close(child)

    walk(pin.fd, pin.real)
    return out


# ----- reading back (daemon side) -----------------------------------------------------------------

def open_recorded(field: str, path: str, entries: Iterable[dict[str, Any]], roots: list[Path]) -> int:
    """Open for reading a file the task's manifest records (a job's output served to a client):
    only a ``file`` entry, reached without following a symlink (paths.open_written_file), and
    still the inode that was written where the worker recorded it. Returns the fd."""
    wanted = os.path.normpath(path)
    item = next((e for e in entries if e["kind"] == "file" and e["path"] == wanted), None)
    if item is None:
        raise FailedPrecondition(f"{field}: {wanted} is not recorded as a file the task wrote; it is not served")
    fd = open_written_file(field, wanted, roots)
    st = os.fstat(fd)
    if item.get("ino") is not None and (st.st_dev, st.st_ino) != (item.get("dev"), item["ino"]):
        os.close(fd)
        raise FailedPrecondition(f"{field}: {wanted} was replaced by another file since the task wrote it; "
                                 "it is not served")
    return fd


# ----- deletion (daemon side) ---------------------------------------------------------------------

@dataclass
class Deleted:
    removed: int = 0
    kept: list[str] = field(default_factory=list)  # one sentence per entry left alone


def delete_entries(entries: Iterable[dict[str, Any]], roots: list[Path]) -> Deleted:
    """Delete a task's manifest: files and scratch dirs, then its dirs deepest first when empty."""
    report = Deleted()
    parents: dict[str, Pinned | str] = {}  # parent dir -> its pin, or why it cannot be reached
    order = {"file": 0, "scratch": 1, "dir": 2}
    ordered = sorted(entries, key=lambda e: (order.get(e["kind"], 3), -len(Path(e["path"]).parts), e["path"]))
    try:
        for item in ordered:
            path = item["path"]
            parent, name = os.path.split(path)
            pin = parents.get(parent)
            if pin is None:
                try:
                    pin = pin_output_dir("task file", parent, create=False, roots=roots)[0]
                except (ModxError, OSError) as exc:
                    pin = str(exc)
                parents[parent] = pin
            if isinstance(pin, str):
                if "does not exist" not in pin:
                    report.kept.append(f"{path}: {pin}")
                continue
            why = _delete_one(pin, name, item)
            if why is None:
                report.removed += 1
            elif why:
                report.kept.append(f"{path}: {why}")
    finally:
        for pin in parents.values():
            if isinstance(pin, Pinned):
                pin.close()
    return report


def _delete_one(pin: Pinned, name: str, item: dict[str, Any]) -> str | None:
    """Remove one entry; None when removed, '' when already gone, else why it was left alone."""
    try:
        st = os.stat(name, dir_fd=pin.fd, follow_symlinks=False)
    except FileNotFoundError:
        return ""
    kind = item["kind"]
    if stat.S_ISLNK(st.st_mode):
        return "now a symlink, which the task did not write: left alone, not followed"
    try:
        if kind == "file":
            if not stat.S_ISREG(st.st_mode):
                return "no longer a regular file: left alone"
            if item.get("ino") is not None and (st.st_dev, st.st_ino) != (item.get("dev"), item["ino"]):
                return "replaced by another file since the task wrote it: left alone"
            os.unlink(name, dir_fd=pin.fd)
        elif not stat.S_ISDIR(st.st_mode):
            return "no longer a directory: left alone"
        elif kind == "scratch":
            shutil.rmtree(name, dir_fd=pin.fd)
        else:
            os.rmdir(name, dir_fd=pin.fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return ""  # a dir that still holds what is not the task's: it stays, as it should
        return f"could not be removed ({exc.strerror or exc})"
    return None
