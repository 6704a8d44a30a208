"""write_atomic: the old content or the new, never a part; the mode asked for; no temporary file left."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from modxd.durable import write_atomic


def test_replaces_whole_and_leaves_nothing_beside(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_atomic(target, "old")
    write_atomic(target, b"new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["state.json"]


def test_mode_is_exact_for_secrets_and_follows_the_umask_otherwise(tmp_path: Path) -> None:
    write_atomic(tmp_path / "tokens.toml", "secret", mode=0o600)
    assert stat.S_IMODE((tmp_path / "tokens.toml").stat().st_mode) == 0o600
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "report.md", "# report")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o644  # readable like any new file


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "calibration.json"
    write_atomic(target, "old")

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, "new")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["calibration.json"]
