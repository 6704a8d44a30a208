"""The daemon and its workers only read and write under configured roots: the one module that says how.

A path is checked when a request is accepted (:func:`resolve_under_roots`: symlinks and `..`
resolved, the real path must be under a root) and again where a file is opened or created,
because the path may change in between (a symlink planted, a file swapped). Stdlib only: the
daemon and the engine (in workers) both use it.

* Inputs (data files, model, tokenizer and checkpoint dirs, GGUF files) are opened first, then
  the location of what was *opened* (``/proc/self/fd/N``) is checked, so nothing can slip
  between the check and the open. A directory stays open (:class:`Pinned`) and libraries are
  handed ``/proc/self/fd/N``: later swaps of the path above it change nothing. Its entries that
  are symlinks leading outside the roots are refused.
* Outputs are reached by walking down from the root one component at a time with
  ``O_NOFOLLOW | O_DIRECTORY``: no symlink below a root is ever followed, and everything is
  written through the pinned directory (single names inside it, or fresh subdirs made by modx).

:func:`confine` sets the roots of this process (the daemon at start, a worker from its config);
with none set (the engine called directly, in tests) only the no-symlink rule below a pinned
output dir applies.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO, Iterable

from .errors import FailedPrecondition, InvalidArgument, PermissionDenied, quote
from .fields import control_char
from .protocol import ChatError, Failure, Log, Warn

PATH_MAX_BYTES = 4096  # Linux PATH_MAX
NAME_MAX_BYTES = 255   # one path component
PROC_FD = "/proc/self/fd"
DIR_MODE = 0o750  # dirs modx makes: nobody else can plant anything in them
_HAVE_PROC = os.path.isdir(PROC_FD)

_roots: list[Path] | None = None
PROCESS = object()  # "the roots of this process" (see confine), the default of the checks below
_pins: dict[int, str] = {}  # fd -> real path of this process's pins, to show real paths in messages


def confine(roots: Iterable[str | os.PathLike] | None) -> None:
    """The allowed roots of this process (real paths); None: unchecked."""
    global _roots
    _roots = None if roots is None else [Path(os.path.realpath(r)) for r in roots]


def confined_roots() -> list[Path] | None:
    return _roots


def _roots_or(roots: object) -> list[Path] | None:
    return confined_roots() if roots is PROCESS else roots  # type: ignore[return-value]


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


def root_of(path: Path, roots: list[Path]) -> Path | None:
    """The deepest root that holds `path` (a real, absolute path), or None."""
    holding = [r for r in roots if path == r or r in path.parents]
    return max(holding, key=lambda r: len(r.parts)) if holding else None


def _outside(field: str, raw: str, real: str, roots: list[Path], what: str = "") -> PermissionDenied:
    shown = ", ".join(str(r) for r in roots)
    leads = f" leads to {real}, which is" if real != raw else " is"
    return PermissionDenied(f"{field}: {raw}{leads} outside the allowed roots ({shown}){what}")


def resolve_under_roots(field: str, raw: str, roots: list[Path]) -> Path:
    """The real absolute path of `raw`, or PermissionDenied naming the field and path."""
    check_path_text(field, raw)
    if not os.path.isabs(raw):
        raise PermissionDenied(f"{field}: {quote(raw)} must be an absolute path on the daemon host")
    real = Path(os.path.realpath(raw))
    if root_of(real, roots) is None:
        shown = ", ".join(str(r) for r in roots)
        raise PermissionDenied(f"{field}: {raw} is outside the allowed roots ({shown})")
    return real


def nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# ----- pinned directories -------------------------------------------------------------------------

class Pinned:
    """An open directory: `path` reaches it whatever happens to the path it was opened by."""

    def __init__(self, field: str, real: str, fd: int) -> None:
        self.field, self.real, self.fd = field, real, fd
        _pins[fd] = real

    @property
    def path(self) -> str:
        """What to hand a library: the open directory itself (its real path where /proc is missing)."""
        return f"{PROC_FD}/{self.fd}" if _HAVE_PROC else self.real

    def join(self, name: str) -> str:
        return os.path.join(self.path, name)

    def real_join(self, name: str) -> str:
        return os.path.join(self.real, name)

    def where(self) -> str:
        """Where the directory is now (it may have been renamed since it was opened)."""
        try:
            return os.readlink(f"{PROC_FD}/{self.fd}")
        except OSError:
            return self.real

    def check_in_place(self) -> None:
        """Refuse to write on when the directory was moved (away from its path, or out of the roots)
        since it was opened."""
        now = self.where()
        roots = confined_roots()
        if now != os.path.realpath(self.real) or (roots is not None and root_of(Path(now), roots) is None):
            raise PermissionDenied(f"{self.field}: {self.real} was moved or replaced while in use (the directory "
                                   f"modx opened is now {now}); nothing more is written there")

    def subdir(self, name: str, field: str = "", create: bool = True, fresh: bool = False) -> tuple["Pinned", bool]:
        """Open (making it when `create`) the directory `name` inside this one, never through a symlink.

        `fresh`: it must not exist yet (modx's own staging dirs). Returns (pin, made now)."""
        return _open_child(self.fd, name, os.path.join(self.real, name), field or self.field, create, fresh)

    def new_subdir(self, base: str, field: str = "", tries: int = 1000) -> "Pinned":
        """A directory this call makes inside this one, named `base` or `base-2`, `base-3`, … when
        that is taken (two runs started in the same second)."""
        for n in range(1, tries + 1):
            name = base if n == 1 else f"{base}-{n}"
            try:
                os.mkdir(name, DIR_MODE, dir_fd=self.fd)
            except FileExistsError:
                continue
            return _open_child(self.fd, name, self.real_join(name), field or self.field, False, False)[0]
        raise PermissionDenied(f"{field or self.field}: {self.real_join(base)} and {tries - 1} numbered "
                               "variants already exist; modx writes only into a directory it has just made")

    def create_file(self, name: str, mode: int = 0o640) -> int:
        """A new file `name` in this dir, opened for writing; a symlink or anything else there is refused."""
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                           dir_fd=self.fd)
        except FileExistsError:
            raise PermissionDenied(f"{self.field}: {self.real_join(name)} already exists (a file modx did not "
                                   "expect there); it was left alone") from None

    def close(self) -> None:
        """Idempotent (a second close must not close an fd number the process reused since). Its
        real path stays known to :func:`shown` (an error about it may be reported after) until a
        later pin takes the same fd number."""
        if self.fd < 0:
            return
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.fd = -1

    def __enter__(self) -> "Pinned":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def shown(text: str) -> str:
    """`text` with this process's /proc/self/fd/N paths replaced by the real paths they stand for."""
    if PROC_FD not in text:
        return text
    return _PROC_PATH.sub(lambda m: _pins.get(int(m.group(1)), m.group(0)), text)


def shown_in(report: dict) -> dict:
    """A worker report with the sentences of logs, warnings and errors passed through :func:`shown`."""
    if report.get("type") in (Log.TYPE, Warn.TYPE, Failure.TYPE, ChatError.TYPE):
        return {k: shown(v) if isinstance(v, str) else v for k, v in report.items()}
    return report


_PROC_PATH = re.compile(re.escape(PROC_FD) + r"/(\d+)")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _open_child(parent_fd: int, name: str, real: str, field: str, create: bool, fresh: bool
                ) -> tuple[Pinned, bool]:
    made = False
    if fresh:
        try:
            os.mkdir(name, DIR_MODE, dir_fd=parent_fd)
            made = True
        except FileExistsError:
            raise PermissionDenied(f"{field}: {real} already exists; modx writes only into a directory "
                                   "it has just made there") from None
    try:
        fd = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            raise FailedPrecondition(f"{field}: {real} does not exist") from None
        try:
            os.mkdir(name, DIR_MODE, dir_fd=parent_fd)
            made = True
        except FileExistsError:
            pass
        return _open_child(parent_fd, name, real, field, False, False)[0], made
    except OSError as exc:
        raise _not_a_dir(field, real, parent_fd, name, exc) from None
    return Pinned(field, real, fd), made


def _not_a_dir(field: str, real: str, parent_fd: int, name: str, exc: OSError) -> Exception:
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except OSError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        try:
            target = f" (to {os.readlink(name, dir_fd=parent_fd)})"
        except OSError:
            target = ""
        return PermissionDenied(f"{field}: {real} is a symlink{target}; modx never writes through a symlink: "
                                "remove it, or give the real path")
    if exc.errno == errno.ENOTDIR or (st is not None and not stat.S_ISDIR(st.st_mode)):
        return FailedPrecondition(f"{field}: {real} exists and is not a directory")
    return FailedPrecondition(f"{field}: {real} cannot be opened by modx ({exc.strerror or exc})")


def pin_output_dir(field: str, path: str | os.PathLike, create: bool = True, roots: object = PROCESS
                   ) -> tuple[Pinned, list[str]]:
    """Open the output directory `path` for writing; returns (pin, the dirs made for it, top first).

    Confined: walked down from its root with O_NOFOLLOW, so no component below the root may be a
    symlink (a planted one is refused, never followed). Unconfined: opened as given.
    """
    raw = os.fspath(path)
    check_path_text(field, raw)
    if not os.path.isabs(raw):
        raise PermissionDenied(f"{field}: {raw!r} must be an absolute path on the daemon host")
    target = Path(os.path.normpath(raw))
    allowed = _roots_or(roots)
    if allowed is None:
        made = [str(p) for p in reversed([target, *target.parents]) if not p.exists()]
        if create:
            os.makedirs(target, DIR_MODE, exist_ok=True)
        return Pinned(field, str(target), os.open(target, _DIR_FLAGS)), made
    root = root_of(target, allowed)
    if root is None:
        raise _outside(field, raw, raw, allowed)
    current = Pinned(field, str(root), os.open(root, _DIR_FLAGS))
    made: list[str] = []
    try:
        for part in target.relative_to(root).parts:
            child, was_made = current.subdir(part, field, create)
            if was_made:
                made.append(child.real)
            current.close()
            current = child
    except BaseException:
        current.close()
        raise
    current.field = field
    return current, made


def make_dir_under_roots(field: str, path: Path, roots: list[Path] | None) -> Path:
    """Create `path` (and missing parents) for writing without following a symlink below a root."""
    create_output_dir(field, path, roots)
    return Path(path)


def create_output_dir(field: str, path: str | os.PathLike, roots: object = PROCESS) -> list[str]:
    """Like :func:`make_dir_under_roots`; returns the dirs it made, top first (the task's to remove)."""
    pin, made = pin_output_dir(field, path, roots=roots)
    pin.close()
    return made


def open_written_file(field: str, path: str, roots: object = PROCESS) -> int:
    """Open, for reading, a file modx wrote (a job's output, to serve it): its directory is reached
    from the root without following a symlink (as outputs are, :func:`pin_output_dir`) and the file
    itself is opened with O_NOFOLLOW, so a symlink swapped in anywhere below the root is refused,
    never followed; so is anything that is not a regular file. Returns the fd; the caller closes it."""
    check_path_text(field, path)
    parent, name = os.path.split(os.path.normpath(path))
    pin = pin_output_dir(field, parent, create=False, roots=roots)[0]
    with pin:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK,
                         dir_fd=pin.fd)
        except FileNotFoundError:
            raise FailedPrecondition(f"{field}: {path} does not exist any more") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PermissionDenied(f"{field}: {path} is now a symlink, which modx did not write; "
                                       "it is not followed") from None
            raise FailedPrecondition(f"{field}: {path} cannot be opened ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FailedPrecondition(f"{field}: {path} is not a regular file")
    os.set_blocking(fd, True)
    return fd


# ----- inputs -------------------------------------------------------------------------------------

def _check_opened(field: str, raw: str, fd: int, what: str, roots: list[Path] | None) -> str:
    """The real location of the open `fd`; PermissionDenied (fd closed) when it is outside the roots."""
    try:
        real = os.readlink(f"{PROC_FD}/{fd}")
    except OSError:
        real = os.path.realpath(raw)
    if roots is not None and root_of(Path(real), roots) is None:
        os.close(fd)
        raise _outside(field, raw, real, roots, f"; it was not {what}")
    return real


def open_input_file(field: str, path: str, roots: object = PROCESS) -> BinaryIO:
    """Open a data file for reading, or refuse it (nothing read) when it lies outside the roots."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    _check_opened(field, path, fd, "read", _roots_or(roots))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FailedPrecondition(f"{field}: {path} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def pin_input(field: str, path: str, directory: bool = True, roots: object = PROCESS) -> Pinned:
    """Open an input directory (or file) and keep it open; refused when it, or a symlink directly in
    it, leads outside the roots. Hand libraries ``pin.path``; show people ``pin.real``."""
    if not path or not os.path.isabs(path):
        raise PermissionDenied(f"{field}: {path!r} must be an absolute path on the daemon host")
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK | (os.O_DIRECTORY if directory else 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FailedPrecondition(f"{field}: {path} does not exist") from None
    except NotADirectoryError:
        raise FailedPrecondition(f"{field}: {path} is not a directory") from None
    allowed = _roots_or(roots)
    _check_opened(field, path, fd, "opened", allowed)
    if not directory and not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FailedPrecondition(f"{field}: {path} is not a regular file")
    pin = Pinned(field, path, fd)
    if directory:
        for entry in os.scandir(fd):
            if entry.is_symlink() and allowed is not None:
                target = os.path.realpath(os.path.join(pin.path, entry.name))
                if root_of(Path(target), allowed) is None:
                    pin.close()
                    raise _outside(field, os.path.join(path, entry.name), target, allowed, "; it was not opened")
            kind = _special_kind(entry)
            if kind:
                pin.close()
                raise FailedPrecondition(f"{field}: {os.path.join(path, entry.name)} is {kind}, not a regular file; "
                                         "it was not opened (reading it could wait forever)")
    return pin


def _special_kind(entry: os.DirEntry) -> str:
    """'a FIFO (named pipe)', 'a socket' or 'a device' for such an entry (its symlink followed), else ''.
    Opening one blocks until another process writes (a FIFO) or reads without end (a device), so no input
    dir hands one to a reader: a library's open() of it would hang the request, or the daemon."""
    try:
        mode = entry.stat(follow_symlinks=True).st_mode
    except OSError:
        return ""  # a dangling symlink: the reader reports the missing file
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return ""


def check_input_under_roots(field: str, path: str, roots: list[Path]) -> Path:
    """Daemon side, before a worker is handed `path` to read: it, and the symlinks directly in it, stay
    under the roots (the worker checks again when it opens it)."""
    real = resolve_under_roots(field, path, roots)
    pin_input(field, path, directory=real.is_dir(), roots=roots).close()
    return real


# ----- where a task may write ---------------------------------------------------------------------

def check_output_location(field: str, path: Path, roots: list[Path], state_dir: Path,
                          others: Iterable[tuple[str, str]]) -> None:
    """Refuse an output dir (a real path) that holds, or would claim, data that is not the task's:
    an allowed root or a dir above one, the daemon's state dir, anything in or above it, or the
    output dir of another task (`others`: (task id, output dir)), in it, or above it."""
    own = " give the task a directory of its own"
    for root in roots:
        if path == root:
            raise PermissionDenied(f"{field}: {path} is an allowed root;{own} inside it")
        if path in root.parents:
            raise PermissionDenied(f"{field}: {path} contains the allowed root {root};{own}")
    state = Path(os.path.realpath(state_dir))
    if path == state:
        raise PermissionDenied(f"{field}: {path} is the daemon's state dir (its database, tokens and socket);"
                               f"{own} outside it")
    if state in path.parents:
        raise PermissionDenied(f"{field}: {path} is inside the daemon's state dir {state};{own} outside it")
    if path in state.parents:
        raise PermissionDenied(f"{field}: {path} contains the daemon's state dir {state};{own}")
    for task_id, raw in others:
        other = Path(raw)
        if path == other:
            where = f"is the output dir of task {task_id}"
        elif other in path.parents:
            where = f"is inside {other}, the output dir of task {task_id}"
        elif path in other.parents:
            where = f"contains {other}, the output dir of task {task_id}"
        else:
            continue
        raise FailedPrecondition(f"{field}: {path} {where}; each task needs a directory of its own (choose "
                                 f"another, or delete task {task_id} first)")
