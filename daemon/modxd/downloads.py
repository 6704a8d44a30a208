"""Serving a file a job wrote, in chunks (PackageService.ReadPackageFile, EvalService.ReadEvaluationFile).

Which file may be served is the owner's rule (packages.py, evaluations.py: only the files the
job recorded in the task's manifest, opened by files.open_recorded). This module only streams an
open file: bounded reads (CHUNK_BYTES) each in a worker thread, so neither a big file nor a slow
client holds the event loop (the RPC layer awaits the client's flow control between chunks, and
nothing more than one chunk is read ahead); the SHA-256 of the whole file, from byte 0, goes in
the last chunk (common.proto FileChunk), so a client that resumed at `offset` can still check
what it has.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from . import files
from .errors import FailedPrecondition, InvalidArgument, NotFound
from .store.files import FileRepo
from .store.jobs import JobRecord
from .store.tasks import TaskRepo

CHUNK_BYTES = 1 << 20  # 1 MiB: well under gRPC's 4 MiB message limit, few enough messages for a GGUF


@dataclass(frozen=True)
class Chunk:
    data: bytes
    offset: int
    size: int
    sha256: str = ""  # set in the last chunk only


def _read(fd: int, hasher: "hashlib._Hash", position: int, count: int) -> bytes:
    data = os.pread(fd, count, position)
    hasher.update(data)
    return data


async def stream_file(opener: Callable[[], Awaitable[int]], what: str, offset: int) -> AsyncIterator[Chunk]:
    """The file `opener` opens (when the stream starts; closed at its end, also when the client goes
    away) from `offset` on; `what` names it in a refusal. The file must not change while it is read."""
    fd = await opener()
    try:
        size = os.fstat(fd).st_size
        if offset < 0 or offset > size:
            raise InvalidArgument(f"offset {offset} is outside {what}, which has {size} bytes "
                                  "(give 0 to the size)")
        hasher = hashlib.sha256()
        position = 0
        while position < offset:  # the part the client has: hashed only, one bounded read at a time
            count = min(CHUNK_BYTES, offset - position)
            if len(await asyncio.to_thread(_read, fd, hasher, position, count)) != count:
                raise _changed(what, size)
            position += count
        while True:
            count = min(CHUNK_BYTES, size - position)
            data = await asyncio.to_thread(_read, fd, hasher, position, count) if count else b""
            if len(data) != count:
                raise _changed(what, size)
            last = position + count >= size
            if last and os.fstat(fd).st_size != size:
                raise _changed(what, size)
            yield Chunk(data, position, size, hasher.hexdigest() if last else "")
            position += count
            if last:
                return
    finally:
        os.close(fd)


def _changed(what: str, size: int) -> FailedPrecondition:
    return FailedPrecondition(f"{what} changed size while it was read (it had {size} bytes); "
                              "ask again from offset 0")


async def job_files(tasks: TaskRepo, files_repo: FileRepo, job: JobRecord, noun: str) -> list[dict[str, Any]]:
    """The manifest entries of the task a job wrote for (its files are served only while they are
    recorded there: a deleted task's are not)."""
    try:
        await tasks.get(job.task_id)
    except NotFound:
        raise FailedPrecondition(f"{noun} {job.id}: its task {job.task_id} was deleted, and with it the record "
                                 "of the files it wrote; they are no longer served") from None
    return await files_repo.list(job.task_id)


def serve(field: str, path: str, entries: list[dict[str, Any]], roots: list[Path], offset: int
          ) -> AsyncIterator[Chunk]:
    """Stream the recorded file `path` (files.open_recorded: in the manifest, no symlink followed)."""
    return stream_file(lambda: asyncio.to_thread(files.open_recorded, field, path, entries, roots),
                       f"{field}: {path}", offset)
