"""The daemon's Unix socket: claimed under a lock, and nothing but a stale socket is ever removed.

gRPC itself is careless with a Unix path: binding unlinks whatever socket is there (a live
daemon's included) and stopping unlinks whatever socket is there by then. So modxd

* holds ``<socket>.lock`` (flock) while it runs: a second modxd, whatever its state dir, refuses
  with the path and the first one's pid;
* removes what is at the path only when it is a socket that nobody answers on (what a killed
  daemon leaves); a file, a directory, a symlink or a live socket stays, and modxd refuses;
* lets gRPC bind a private name next to the path and hard-links that socket to the path
  (``link`` never replaces anything), so gRPC never learns the public path;
* on shutdown removes the path only while it is still the socket it created (same inode), before
  the server stops listening (until then no other file can have that inode number).
"""
from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import grpc

from .errors import FailedPrecondition, InvalidArgument
from .lockfile import hold_lock

SUN_PATH_MAX = 107  # bytes of a socket path (sockaddr_un.sun_path, less the NUL)
PROBE_TIMEOUT_S = 5.0

_KINDS = {stat.S_IFREG: "a regular file", stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symbolic link",
          stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def socket_path(address: str) -> Path:
    """unix:///run/modx/modxd.sock or unix:/run/modx/modxd.sock -> the path."""
    return Path(address.removeprefix("unix://").removeprefix("unix:"))


class UnixSocket:
    """One claimed socket path: the lock is held from `claim` to `unlock`."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket this daemon made

    @classmethod
    def claim(cls, path: Path) -> "UnixSocket":
        """Lock the path for this daemon and clear a stale socket from it; refuse anything else."""
        if len(os.fsencode(path)) > SUN_PATH_MAX:
            raise InvalidArgument(f"socket path {path} is too long ({len(os.fsencode(path))} bytes; a Unix "
                                  f"socket path has at most {SUN_PATH_MAX})")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FailedPrecondition(f"cannot create the directory of socket {path}: {exc.strerror or exc}") from None
        lock = Path(f"{path}.lock")
        try:
            lock_fd = hold_lock(lock, f"listens on {path} (it holds {lock})")
        except OSError as exc:
            raise FailedPrecondition(f"cannot lock socket {path} ({lock}): {exc.strerror or exc}") from None
        try:
            remove_if_stale(path)
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, lock_fd)

    def bind(self, server: grpc.aio.Server, socket_mode: int, socket_group: str = "") -> str:
        """Bind `server` here with `socket_mode` (and `socket_group`); returns the unix:// address."""
        private = self.path.parent / f".modxd-{os.getpid()}.sock"
        if len(os.fsencode(private)) > SUN_PATH_MAX:
            raise InvalidArgument(f"socket path {self.path} is too long: modxd binds {private} first, which "
                                  f"must fit in {SUN_PATH_MAX} bytes; use a shorter directory")
        remove_if_stale(private)
        old_umask = os.umask(0o777 & ~socket_mode)
        try:
            if server.add_insecure_port(f"unix:{private}") == 0:
                raise FailedPrecondition(f"cannot listen on socket {private}")
        except RuntimeError as exc:
            raise FailedPrecondition(f"cannot listen on socket {private}: {exc}") from None
        finally:
            os.umask(old_umask)
        try:
            if socket_group:
                _chgrp(private, socket_group)
            try:
                os.link(private, self.path)
            except FileExistsError:
                raise FailedPrecondition(f"{self.path} appeared while modxd was starting: it leaves it alone"
                                         ) from None
            except OSError as exc:
                raise FailedPrecondition(f"cannot create socket {self.path}: {exc.strerror or exc}") from None
        finally:
            private.unlink(missing_ok=True)
        st = os.lstat(self.path)
        self._identity = (st.st_dev, st.st_ino)
        return f"unix://{self.path}"

    def remove(self) -> None:
        """Remove the socket if the path still names the one this daemon created.

        Called while the server still listens: the listening socket holds its inode, so no new file
        can have its number yet.
        """
        if self._identity is None:
            return
        try:
            st = os.lstat(self.path)
            if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        self._identity = None

    def unlock(self) -> None:
        """Give up the path (after the server stopped): another modxd may take it."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def remove_if_stale(path: Path) -> None:
    """Remove a socket nobody answers on; leave anything else and refuse with a sentence."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a socket")
        raise FailedPrecondition(f"{path} exists and is {kind}, not a socket: modxd only replaces a stale socket "
                                 "there; move it away or set listen to another path")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(PROBE_TIMEOUT_S)
        try:
            probe.connect(os.fspath(path))
        except ConnectionRefusedError:  # nobody listens: what a killed daemon leaves behind
            os.unlink(path)
            return
        except OSError as exc:
            raise FailedPrecondition(f"cannot tell whether socket {path} is in use ({exc.strerror or exc}): "
                                     "modxd leaves it alone; remove it if no program uses it") from None
    raise FailedPrecondition(f"a process answers on socket {path} and it is not a modxd (none holds {path}.lock): "
                             "modxd will not take it over; stop that program or set listen to another path")


def _chgrp(path: Path, group: str) -> None:
    import grp

    try:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise InvalidArgument(f"socket_group {group!r} does not exist") from None
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        raise InvalidArgument(f"cannot give socket {path} to group {group!r}: modxd must be a member of it"
                              ) from None
