"""modxctl's download (modxctl/download.py) against scripted Read*File streams: verified before it is
renamed into place, resumed from a `.part`, and never left half-written or wrong."""
from __future__ import annotations

import hashlib
from pathlib import Path

import click
import pytest
from modx.v1 import common_pb2 as C
from modx.v1 import package_pb2 as P

from modxctl.download import Mismatch, save, target_path

DATA = bytes(range(256)) * 40  # 10240 bytes


def _stream(data: bytes, chunk: int = 4096, sha: str | None = None, calls: list[int] | None = None):
    """open_stream(offset) as the daemon answers it, recording the offsets asked for."""
    def open_stream(offset: int):
        if calls is not None:
            calls.append(offset)
        digest = sha or hashlib.sha256(data).hexdigest()
        position = offset
        while True:
            piece = data[position:position + chunk]
            last = position + len(piece) >= len(data)
            yield P.ReadPackageFileResponse(chunk=C.FileChunk(data=piece, offset=position, size_bytes=len(data),
                                                              sha256=digest if last else ""))
            position += len(piece)
            if last:
                return
    return open_stream


def test_a_download_is_verified_then_renamed(tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    saved = save(_stream(DATA), target)
    assert target.read_bytes() == DATA and saved.sha256 == hashlib.sha256(DATA).hexdigest()
    assert saved.resumed_from == 0 and not list(tmp_path.glob(".*.part"))
    with pytest.raises(click.ClickException, match="already exists"):
        save(_stream(DATA), target)
    assert save(_stream(DATA), target, force=True).size_bytes == len(DATA)


def test_a_part_left_behind_is_resumed_from_its_size(tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    (tmp_path / ".model.gguf.part").write_bytes(DATA[:5000])
    calls: list[int] = []
    saved = save(_stream(DATA, calls=calls), target)
    assert calls == [5000] and saved.resumed_from == 5000 and target.read_bytes() == DATA


def test_a_part_of_another_file_is_dropped_and_the_download_starts_over(tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    (tmp_path / ".model.gguf.part").write_bytes(b"\xff" * 3000)
    calls: list[int] = []
    saved = save(_stream(DATA, calls=calls), target)
    assert calls == [3000, 0] and saved.resumed_from == 0 and target.read_bytes() == DATA


def test_a_wrong_hash_saves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    with pytest.raises(Mismatch, match="is not the file's"):
        save(_stream(DATA, sha="0" * 64), target)
    assert not target.exists() and not list(tmp_path.iterdir())


def test_a_stream_that_stops_early_or_skips_saves_nothing(tmp_path: Path) -> None:
    def cut(offset: int):
        yield P.ReadPackageFileResponse(chunk=C.FileChunk(data=DATA[:100], offset=0, size_bytes=len(DATA)))

    with pytest.raises(Mismatch, match="without the file's SHA-256"):
        save(cut, tmp_path / "a.bin")

    def gap(offset: int):
        yield P.ReadPackageFileResponse(chunk=C.FileChunk(data=DATA[:100], offset=0, size_bytes=len(DATA)))
        yield P.ReadPackageFileResponse(chunk=C.FileChunk(data=DATA[200:], offset=200, size_bytes=len(DATA)))

    with pytest.raises(Mismatch, match="from offset 200, expected 100"):
        save(gap, tmp_path / "b.bin")
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "b.bin").exists()


def test_the_target_path(tmp_path: Path) -> None:
    assert target_path(None, "/srv/x/pkg-1/tiny-F16.gguf") == Path("tiny-F16.gguf")
    assert target_path(str(tmp_path), "scores.csv") == tmp_path / "scores.csv"
    assert target_path(str(tmp_path / "mine.csv"), "scores.csv") == tmp_path / "mine.csv"
