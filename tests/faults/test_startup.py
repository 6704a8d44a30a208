"""Issue 18 item 5: every start-up failure exits promptly, non-zero, with its sentence.

systemd (Type=notify) only sees a failed start when the process exits: a daemon that prints
its error and then hangs (a database thread, a gRPC server or a worker still alive) sits in
"activating" until the start timeout, and a restart loop never learns why. Each case below
starts a real ``python -m modxd.main`` that must fail; the test gives it a generous minute,
then checks the exit status, the sentence on stderr, the STATUS= line sent to $NOTIFY_SOCKET
(and that READY=1 never was), and that nothing the failed start created is left behind.
"""
from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.service.support import free_port, make_pki, write_config

from .conftest import _mount_tmpfs, run_failing_modxd


@dataclass
class Case:
    env: dict[str, str]
    fragments: list[str]  # what the sentence must name
    exit_code: int = 1
    leftovers: list[Path] = field(default_factory=list)  # must not exist after the failed start


def _config(tmp_path: Path, **values: object) -> dict[str, str]:
    return {"MODX_CONFIG": str(write_config(tmp_path / "modxd.toml", **values))}


def bad_config(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    return Case(_config(tmp_path, no_such_key=1), ["unknown keys no_such_key"], exit_code=2)


def tls_files_missing(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    cert, key = tmp_path / "missing.crt", tmp_path / "missing.key"
    return Case(_config(tmp_path, tcp_listen=f"127.0.0.1:{free_port()}", tls_cert_file=str(cert),
                        tls_key_file=str(key)), ["tls_cert_file", str(cert), "No such file"],
                leftovers=[state / "modxd.sock"])


def tls_files_not_a_certificate(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_text("this is not a certificate\n")
    key.write_text("nor is this a key\n")
    return Case(_config(tmp_path, tcp_listen=f"127.0.0.1:{free_port()}", tls_cert_file=str(cert),
                        tls_key_file=str(key)), [str(cert), str(key), "not a usable certificate and key"],
                leftovers=[state / "modxd.sock"])


def tls_key_of_another_certificate(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    pki = make_pki(tmp_path / "pki")
    return Case(_config(tmp_path, tcp_listen=f"127.0.0.1:{free_port()}", tls_cert_file=str(pki["server.crt"]),
                        tls_key_file=str(pki["rogue.key"])), [str(pki["server.crt"]), "not a usable certificate"],
                leftovers=[state / "modxd.sock"])


def tcp_port_taken(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    pki = make_pki(tmp_path / "pki")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    cleanup.callback(holder.close)  # kept listening while the daemon tries the port
    return Case(_config(tmp_path, tcp_listen=f"127.0.0.1:{port}", tls_cert_file=str(pki["server.crt"]),
                        tls_key_file=str(pki["server.key"])), [f"cannot listen on 127.0.0.1:{port}"],
                leftovers=[state / "modxd.sock"])


def database_from_a_newer_modxd(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    state.mkdir(parents=True)
    with sqlite3.connect(state / "modx.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    return Case({}, ["database schema version 99 is newer than this modxd knows", str(state / "modx.db")])


def database_damaged(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    state.mkdir(parents=True)
    (state / "modx.db").write_bytes(b"SQLite format 3\0" + os.urandom(8192))
    return Case({}, ["the database", str(state / "modx.db"), "is damaged"])


def socket_group_missing(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    return Case(_config(tmp_path, socket_group="modx-no-such-group"),
                ["socket_group 'modx-no-such-group' does not exist"], leftovers=[state / "modxd.sock"])


def socket_directory_unusable(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    return Case({"MODX_LISTEN": f"unix://{blocker}/modxd.sock"}, [str(blocker)])


def pinning_to_a_missing_cpu(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    return Case({"MODX_DAEMON_CPUS": "4095"}, ["daemon_cpus: CPU 4095 is not available"], exit_code=2)


def state_dir_locked(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    state.mkdir(parents=True)
    fd = os.open(state / "modxd.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, str(os.getpid()).encode())
    cleanup.callback(os.close, fd)  # held while the daemon starts
    return Case({}, [f"another modxd (pid {os.getpid()}) already runs on state dir {state}"])


def state_dir_is_a_file(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    state.write_text("not a directory\n")
    return Case({}, ["state dir", str(state)])


def state_dir_read_only(tmp_path: Path, state: Path, cleanup: ExitStack) -> Case:
    state.mkdir(parents=True)
    problem = _mount_tmpfs(state, "1m", read_only=True)
    if problem:
        pytest.skip(problem)
    cleanup.callback(subprocess.run, ["umount", "-l", str(state)], capture_output=True)
    return Case({}, ["state dir", str(state), "Read-only file system"])


CASES: dict[str, Callable[[Path, Path, ExitStack], Case]] = {f.__name__: f for f in (
    bad_config, tls_files_missing, tls_files_not_a_certificate, tls_key_of_another_certificate, tcp_port_taken,
    database_from_a_newer_modxd, database_damaged, socket_group_missing, socket_directory_unusable,
    pinning_to_a_missing_cpu, state_dir_locked, state_dir_is_a_file, state_dir_read_only)}


@pytest.mark.parametrize("name", list(CASES))
def test_a_failed_start_exits_promptly_with_its_sentence(name: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with ExitStack() as cleanup:
        case = CASES[name](tmp_path, state, cleanup)
        proc, notes = run_failing_modxd(state, case.env, tmp_path)
    assert proc.returncode == case.exit_code, (proc.returncode, proc.stderr)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    assert last.startswith("modxd: "), f"the last line of stderr is not the sentence:\n{proc.stderr}"
    for fragment in case.fragments:
        assert fragment in last, (fragment, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not any("READY=1" in n for n in notes), notes
    assert any(n.startswith("STATUS=") and case.fragments[0] in n for n in notes), notes
    for path in case.leftovers:
        assert not os.path.lexists(path), f"the failed start left {path}"
