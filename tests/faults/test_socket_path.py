"""Issue 18 item 6: the Unix socket path is never unlinked blindly.

modxd removes only a stale socket at its listen path (a socket file nobody answers on);
anything else there (a file, a directory, a symlink, a live socket) survives and the daemon
refuses to start with a sentence naming the path. A live daemon holds a lock tied to the socket
path, so a second daemon, even one with another state dir, refuses with a sentence naming the
path and the first daemon's pid, and the first keeps serving. On shutdown a daemon removes only
the socket it created (the same inode), never what replaced it.
"""
from __future__ import annotations

import os
import signal
import socket
import stat
from pathlib import Path
from typing import Callable

import pytest

from tests.support.daemon import Daemon

from .conftest import run_failing_modxd


def daemon_on(state: Path, listen: Path, roots: Path) -> Daemon:
    """A Daemon (not started) listening on `listen` instead of its state dir's socket."""
    d = Daemon(state, [roots], extra_env={"MODX_LISTEN": f"unix://{listen}"})
    d.socket, d.address = listen, f"unix://{listen}"
    return d


def listening_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen()
    return sock


def answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        try:
            client.connect(str(path))
            return True
        except OSError:
            return False


def regular_file(path: Path) -> Callable[[], None]:
    path.write_text("precious\n")
    return lambda: None


def directory(path: Path) -> Callable[[], None]:
    path.mkdir()
    (path / "inside.txt").write_text("precious\n")
    return lambda: None


def symlink_to_a_file(path: Path) -> Callable[[], None]:
    target = path.parent / "target.txt"
    target.write_text("precious\n")
    path.symlink_to(target)
    return lambda: None


def symlink_to_a_stale_socket(path: Path) -> Callable[[], None]:
    target = path.parent / "elsewhere.sock"
    listening_socket(target).close()  # a socket file nobody answers on, elsewhere
    path.symlink_to(target)
    return lambda: None


def live_socket_of_another_program(path: Path) -> Callable[[], None]:
    holder = listening_socket(path)
    return holder.close


OCCUPANTS = {f.__name__: f for f in (regular_file, directory, symlink_to_a_file, symlink_to_a_stale_socket,
                                     live_socket_of_another_program)}


def snapshot(path: Path) -> tuple:
    """What must not change: the entry's type and inode, a file's content, a directory's listing."""
    st = os.lstat(path)
    content: object = None
    if stat.S_ISREG(st.st_mode):
        content = path.read_bytes()
    elif stat.S_ISDIR(st.st_mode):
        content = sorted(os.listdir(path))
    elif stat.S_ISLNK(st.st_mode):
        content = os.readlink(path)
    return stat.S_IFMT(st.st_mode), st.st_ino, content


@pytest.mark.parametrize("occupant", list(OCCUPANTS))
def test_what_is_not_a_stale_socket_survives_and_the_daemon_refuses(occupant: str, tmp_path: Path) -> None:
    path = tmp_path / "modxd.sock"
    release = OCCUPANTS[occupant](path)
    try:
        before = snapshot(path)
        proc, _ = run_failing_modxd(tmp_path / "state", {"MODX_LISTEN": f"unix://{path}"}, tmp_path)
        assert proc.returncode == 1, proc.stderr
        sentence = proc.stderr.strip().splitlines()[-1]
        assert sentence.startswith("modxd: ") and str(path) in sentence, proc.stderr
        assert snapshot(path) == before, f"modxd changed what was at {path}"
        if occupant == "live_socket_of_another_program":
            assert "answers" in sentence and answers(path), sentence
        else:
            assert "not a socket" in sentence or "symbolic link" in sentence, sentence
    finally:
        release()


def test_a_stale_socket_is_replaced_and_removed_on_stop(tmp_path: Path, roots: Path) -> None:
    path = tmp_path / "modxd.sock"
    listening_socket(path).close()  # what a killed daemon leaves: a socket file, nobody listening
    assert stat.S_ISSOCK(os.lstat(path).st_mode) and not answers(path)
    d = daemon_on(tmp_path / "state", path, roots).start()  # start() waits until it answers there
    try:
        assert stat.S_ISSOCK(os.lstat(path).st_mode) and d.healthy()
        assert d.stop() == 0
        assert not os.path.lexists(path)
    finally:
        d.kill()


def test_a_second_daemon_with_another_state_dir_refuses_and_the_first_keeps_serving(tmp_path: Path,
                                                                                    roots: Path) -> None:
    path = tmp_path / "modxd.sock"
    first = daemon_on(tmp_path / "first", path, roots).start()
    try:
        inode = os.lstat(path).st_ino
        proc, _ = run_failing_modxd(tmp_path / "second", {"MODX_LISTEN": f"unix://{path}"}, tmp_path)
        assert proc.returncode == 1, proc.stderr
        sentence = proc.stderr.strip().splitlines()[-1]
        assert str(path) in sentence and f"pid {first.proc.pid}" in sentence, sentence
        assert os.lstat(path).st_ino == inode and first.healthy()
        assert first.stop() == 0
        assert not os.path.lexists(path)
    finally:
        first.kill()


@pytest.mark.parametrize("replacement", ["regular_file", "live_socket_of_another_program"])
def test_shutdown_removes_only_the_socket_the_daemon_created(replacement: str, tmp_path: Path, roots: Path) -> None:
    path = tmp_path / "modxd.sock"
    d = daemon_on(tmp_path / "state", path, roots).start()
    release = lambda: None  # noqa: E731
    try:
        os.unlink(path)  # an operator (or another program) takes the path while modxd runs
        release = OCCUPANTS[replacement](path)
        before = snapshot(path)
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(60) == 0, d.log()[-3000:]
        assert snapshot(path) == before, f"modxd removed {path}, which it did not create"
        if replacement == "live_socket_of_another_program":
            assert answers(path)
    finally:
        release()
        d.kill()
