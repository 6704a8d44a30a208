"""Saving a file a job wrote from a Read*File stream (`modxctl package download`, `modxctl eval download`).

The bytes go to `.NAME.part` beside the target and are renamed onto it only once the SHA-256 of the
whole file matches the one the daemon sends in the last chunk (common.proto FileChunk), so a
target is never a partial or damaged file. A `.part` left by an interrupted download is resumed
from its size (the request's `offset`); should the result not match (the file changed on the
daemon since), the download starts once more from byte 0.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import click
import grpc

from .output import echo

HASH_READ_BYTES = 1 << 20


@dataclass
class Saved:
    path: Path
    size_bytes: int
    sha256: str
    resumed_from: int


class Mismatch(click.ClickException):
    """What was received is not the file the daemon describes."""


def target_path(output: str | None, name: str) -> Path:
    """-o PATH as given; a directory (or nothing: the current one) gets the file's own name."""
    base = os.path.basename(name.rstrip("/")) or "download"
    if not output:
        return Path(base)
    path = Path(output)
    return path / base if path.is_dir() else path


def _prefix_hash(part: Path) -> tuple[Any, int]:
    hasher = hashlib.sha256()
    size = 0
    with open(part, "rb") as f:
        while block := f.read(HASH_READ_BYTES):
            hasher.update(block)
            size += len(block)
    return hasher, size


def _receive(responses: Iterable[Any], part: Path, hasher: Any, offset: int) -> tuple[int, str]:
    """Append the stream's chunks to `part`; (size, sha256 the daemon sent). Raises Mismatch."""
    position = offset
    with open(part, "ab") as out:
        for response in responses:
            chunk = response.chunk
            if chunk.offset != position:
                raise Mismatch(f"the daemon sent bytes from offset {chunk.offset}, expected {position}")
            out.write(chunk.data)
            hasher.update(chunk.data)
            position += len(chunk.data)
            if chunk.sha256:
                if position != chunk.size_bytes:
                    raise Mismatch(f"received {position} bytes of a file of {chunk.size_bytes}")
                out.flush()
                os.fsync(out.fileno())
                return position, chunk.sha256
    raise Mismatch(f"the stream ended after {position} bytes without the file's SHA-256")


def save(open_stream: Callable[[int], Iterable[Any]], target: Path, force: bool = False) -> Saved:
    """Download into `target` through `open_stream(offset)`; verified, then renamed into place."""
    if target.exists() and not force:
        raise click.ClickException(f"{target} already exists (give --force to replace it)")
    part = target.with_name(f".{target.name}.part")
    for attempt in range(2):
        offset = 0
        hasher: Any = hashlib.sha256()
        if attempt == 0 and part.is_file():
            hasher, offset = _prefix_hash(part)
        else:
            part.unlink(missing_ok=True)
        try:
            size, expected = _receive(open_stream(offset), part, hasher, offset)
        except grpc.RpcError as err:
            if offset and err.code() == grpc.StatusCode.INVALID_ARGUMENT:  # the .part is longer than the file
                part.unlink(missing_ok=True)
                continue
            raise
        got = hasher.hexdigest()
        if got == expected:
            os.replace(part, target)
            return Saved(target, size, got, offset)
        part.unlink(missing_ok=True)
        if offset == 0:
            break
    raise Mismatch(f"the SHA-256 of what was received ({got}) is not the file's ({expected}); nothing was saved")


def report_saved(as_json: bool, saved: Saved) -> None:
    if as_json:
        click.echo(json.dumps({"path": str(saved.path), "sizeBytes": str(saved.size_bytes), "sha256": saved.sha256,
                               "resumedFrom": str(saved.resumed_from)}))
        return
    resumed = f", resumed at byte {saved.resumed_from}" if saved.resumed_from else ""
    echo(f"saved {saved.path} ({saved.size_bytes} bytes, sha256 {saved.sha256} verified{resumed})")
