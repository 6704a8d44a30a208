"""Serving a job's files (modxd/downloads.py, files.open_recorded, paths.open_written_file) without a daemon:
chunking, the SHA-256 in the last chunk, resuming, and the files that are refused."""
from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from modxd import files
from modxd.downloads import CHUNK_BYTES, Chunk, stream_file
from modxd.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from modxd.paths import open_written_file


def _collect(path: Path, offset: int, roots: list[Path]) -> list[Chunk]:
    async def opener() -> int:
        return open_written_file("test file", str(path), roots)

    async def run() -> list[Chunk]:
        return [chunk async for chunk in stream_file(opener, f"test file {path}", offset)]

    return asyncio.run(run())


@pytest.fixture()
def big(tmp_path: Path) -> Path:
    path = tmp_path / "out" / "model.gguf"
    path.parent.mkdir()
    path.write_bytes(os.urandom(2 * CHUNK_BYTES + 12345))
    return path


def test_chunks_are_bounded_in_order_and_the_last_carries_the_hash(big: Path, tmp_path: Path) -> None:
    data = big.read_bytes()
    chunks = _collect(big, 0, [tmp_path])
    assert [len(c.data) for c in chunks] == [CHUNK_BYTES, CHUNK_BYTES, 12345]
    assert [c.offset for c in chunks] == [0, CHUNK_BYTES, 2 * CHUNK_BYTES]
    assert {c.size for c in chunks} == {len(data)}
    assert [c.sha256 for c in chunks[:-1]] == ["", ""]
    assert chunks[-1].sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(c.data for c in chunks) == data


def test_a_resumed_read_sends_the_rest_and_the_whole_files_hash(big: Path, tmp_path: Path) -> None:
    data = big.read_bytes()
    for offset in (1, CHUNK_BYTES, CHUNK_BYTES + 7, len(data) - 1):
        chunks = _collect(big, offset, [tmp_path])
        assert chunks[0].offset == offset and b"".join(c.data for c in chunks) == data[offset:]
        assert chunks[-1].sha256 == hashlib.sha256(data).hexdigest()
    done = _collect(big, len(data), [tmp_path])  # nothing left: one empty chunk with the hash
    assert [(c.data, c.offset, c.sha256) for c in done] == [(b"", len(data), hashlib.sha256(data).hexdigest())]
    with pytest.raises(InvalidArgument, match=f"offset {len(data) + 1} is outside .* {len(data)} bytes"):
        _collect(big, len(data) + 1, [tmp_path])


def test_an_empty_file_is_one_chunk(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert _collect(path, 0, [tmp_path]) == [Chunk(b"", 0, 0, hashlib.sha256(b"").hexdigest())]


def test_a_file_that_shrinks_while_read_is_refused(big: Path, tmp_path: Path) -> None:
    async def opener() -> int:
        return open_written_file("test file", str(big), [tmp_path])

    async def run() -> None:
        stream = stream_file(opener, "test file", 0)
        await stream.__anext__()
        os.truncate(big, CHUNK_BYTES + 10)
        async for _chunk in stream:
            pass

    with pytest.raises(FailedPrecondition, match="changed size while it was read"):
        asyncio.run(run())


def test_symlinks_are_refused_never_followed(big: Path, tmp_path: Path) -> None:
    link = big.parent / "link.gguf"
    link.symlink_to(big)
    with pytest.raises(PermissionDenied, match="is now a symlink"):
        open_written_file("package pkg-x", str(link), [tmp_path])
    linked_dir = tmp_path / "linked"
    linked_dir.symlink_to(big.parent)
    with pytest.raises(PermissionDenied, match="symlink"):
        open_written_file("package pkg-x", str(linked_dir / big.name), [tmp_path])
    with pytest.raises(PermissionDenied, match="outside the allowed roots"):
        open_written_file("package pkg-x", str(big), [tmp_path / "elsewhere"])
    fifo = big.parent / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(FailedPrecondition, match="not a regular file"):  # opened without blocking, then refused
        open_written_file("package pkg-x", str(fifo), [tmp_path])


def test_only_a_file_the_manifest_records_as_it_was_written(big: Path, tmp_path: Path) -> None:
    entries = [files.entry(str(big), "file", os.stat(big)), files.entry(str(big.parent), "dir")]
    fd = files.open_recorded("package pkg-x", str(big), entries, [tmp_path])
    os.close(fd)
    other = big.parent / "other.bin"
    other.write_bytes(b"x")
    with pytest.raises(FailedPrecondition, match="is not recorded as a file the task wrote"):
        files.open_recorded("package pkg-x", str(other), entries, [tmp_path])
    with pytest.raises(FailedPrecondition, match="is not recorded"):  # a dir entry is not a file to serve
        files.open_recorded("package pkg-x", str(big.parent), entries, [tmp_path])
    os.replace(other, big)  # another inode where the recorded file was
    with pytest.raises(FailedPrecondition, match="replaced by another file since the task wrote it"):
        files.open_recorded("package pkg-x", str(big), entries, [tmp_path])
