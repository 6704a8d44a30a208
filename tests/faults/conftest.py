"""Fault-suite fixtures: real daemons, real signals, real full disks (see docs/reliability.md)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.daemon import REPO

EXIT_WITHIN = 60.0  # seconds for a failed start to exit: generous on a busy 2-core machine; a hang is forever


def _mount_tmpfs(target: Path, size: str, read_only: bool = False) -> str | None:
    """Mount a tmpfs of `size` on `target` (read-only: a filesystem even root cannot write to); returns
    why not when this host refuses."""
    if shutil.which("mount") is None:
        return "no mount command"
    target.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0755" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, f"modx-fault-{uuid.uuid4().hex[:6]}", str(target)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {proc.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 4 MiB tmpfs inside the allowed roots: a disk that really fills up (ENOSPC)."""
    target = tmp_path_factory.mktemp("small-disk")
    problem = _mount_tmpfs(target, "4m")
    if problem:
        pytest.skip(problem)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def fill_disk(directory: Path) -> Path:
    """Write zeros under `directory` until the filesystem says ENOSPC; returns the filler file."""
    filler = directory / "filler.bin"
    with open(filler, "ab", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 1 << 9):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    return filler


def run_failing_modxd(state: Path, env: dict[str, str], workdir: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run a modxd whose start must fail, within EXIT_WITHIN seconds (else the test fails: it hangs);
    returns the finished process and the sd_notify messages it sent."""
    notify_path = workdir / f"notify-{uuid.uuid4().hex[:6]}.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    full_env = {**os.environ, "MODX_STATE_DIR": str(state), "MODX_ALLOWED_ROOTS": str(workdir),
                "MODX_DEVICES": "cpu", "MODX_LOG_LEVEL": "info", "NOTIFY_SOCKET": str(notify_path), **env}
    try:
        proc = subprocess.run([sys.executable, "-m", "modxd.main"], env=full_env, cwd=REPO, capture_output=True,
                              text=True, timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"modxd did not exit within {EXIT_WITHIN:g}s of a failed start (it hangs); stderr:\n{err}")
    notify.setblocking(False)
    messages = []
    try:
        while True:
            messages.append(notify.recv(65536).decode())
    except BlockingIOError:
        pass
    finally:
        notify.close()
    return proc, messages
