"""Fault-suite fixtures: real daemons, real signals, real full disks (see docs/reliability.md)."""
from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest


def _mount_tmpfs(target: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` on `target`; returns why not when this host refuses."""
    if shutil.which("mount") is None:
        return "no mount command"
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", f"modx-fault-{uuid.uuid4().hex[:6]}",
                           str(target)], capture_output=True, text=True)
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
