"""Runs evaluation and package jobs in worker processes, one at a time per kind.

A job's worker reports `progress`, `log`, `score`, `file` ... messages (modxd/protocol.py,
stored as job events and published), `files` (the task's manifest), then one `result` or
`error`. A message the daemon does not understand stops the job, which ends failed with the
sentence. What a finished job changes elsewhere (the task's best checkpoint, say) is done by
the `on_done` hook its submitter gives.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

import structlog

from ..protocol import Failure, Files, ProtocolError, Result, Stop, encode
from ..store.db import StoreWriteFailed
from ..store.events import EventRecord
from ..store.files import FileRepo
from ..store.jobs import JobRecord, JobRepo
from ..worker.spawn import WorkerHandle, exit_reason, spawn_worker
from .backlog import Backlog
from .bus import EventBus
from .follow import replay_and_follow

log = structlog.get_logger("modxd.jobs")

OnDone = Callable[[JobRecord, dict[str, Any]], Awaitable[None]]


@dataclass
class _LiveJob:
    worker: WorkerHandle
    store_error: str = ""  # the database refused a write of this job: it was stopped and ends failed
    protocol_error: str = ""  # the worker sent what the daemon does not understand: stopped, ends failed


class JobRunner:
    def __init__(self, jobs: JobRepo, bus: EventBus[EventRecord], pick_device: Callable[[], str],
                 files_repo: FileRepo | None = None, backlog: Backlog | None = None) -> None:
        self.jobs = jobs
        self.files = files_repo  # what a task's jobs write joins the task's manifest (modxd/files.py)
        self.bus = bus
        self.pick_device = pick_device
        # A job's events and its end are stored through the backlog (see backlog.py): a write the disk
        # refuses waits, in order, and the job is stopped; it never stays running without its worker.
        self.backlog = backlog or Backlog()
        self.backlog.on_stuck(self._store_refused)
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task] = set()
        self._live: dict[str, _LiveJob] = {}

    async def submit(self, kind: str, prefix: str, task_id: str, request: dict[str, Any],
                     worker_config: dict[str, Any], on_done: OnDone | None = None) -> JobRecord:
        """Store the job as pending and run it in the background; returns at once."""
        job, event = await self.jobs.create(kind, task_id, request, prefix)
        self.bus.publish(job.id, event)
        runner = asyncio.create_task(self._run(job, worker_config, on_done), name=f"job-{job.id}")
        self._tasks.add(runner)
        runner.add_done_callback(self._tasks.discard)
        return job

    async def _record(self, job_id: str, write: Callable[[], Awaitable[Any]]) -> bool:
        """Store what the job reports and publish the event it makes (if any); False when it waits for the disk."""
        async def store() -> None:
            stored = await write()
            if isinstance(stored, EventRecord):
                self.bus.publish(job_id, stored)
        landed, _ = await self.backlog.write(job_id, store)
        return landed

    async def _set_state(self, job_id: str, state: str, reason: str, result: dict[str, Any] | None = None) -> bool:
        return await self._record(job_id, lambda: self.jobs.set_state(job_id, state, reason, result))

    def _malformed(self, job: JobRecord, live: _LiveJob, error: ProtocolError) -> None:
        """A message the daemon does not understand: a bug in modx. The job stops and ends failed."""
        log.error("job_message_malformed", job_id=job.id, kind=job.kind, message_type=error.message_type,
                  error=str(error))
        if not live.protocol_error:
            live.protocol_error = (f"the {job.kind} worker sent a message the daemon does not understand ({error}); "
                                   "this is a bug in modx: the job was stopped")
            live.worker.send(Stop(reason="protocol_error"))

    def _store_refused(self, owner: str, error: StoreWriteFailed) -> None:
        live = self._live.get(owner)
        if live is None or live.store_error:
            return
        live.store_error = str(error)
        log.error("job_store_refused", job_id=owner, error=str(error))
        live.worker.send(Stop(reason="state_disk_full"))

    async def _run(self, job: JobRecord, config: dict[str, Any], on_done: OnDone | None) -> None:
        slot = self._slots.setdefault(job.kind, asyncio.Semaphore(1))
        async with slot:
            device = config.get("device") or self.pick_device()
            config = {**config, "device": device, "job_id": job.id}
            if not await self._set_state(job.id, "running", f"running on {device}"):
                await self.backlog.landed(job.id)  # nothing ran yet: start once the disk takes writes again
            result: dict[str, Any] | None = None
            error: Failure | str | None = None
            try:
                worker = spawn_worker(job.kind, config, f"modx-{job.kind}-{job.id}")
            except Exception as exc:  # noqa: BLE001
                await self._set_state(job.id, "failed", f"could not start: {exc}")
                return
            live = self._live[job.id] = _LiveJob(worker)
            try:
                while (message := await worker.reports.get()) is not None:
                    if isinstance(message, ProtocolError):
                        self._malformed(job, live, message)
                    elif isinstance(message, Result):
                        result = message.values
                    elif isinstance(message, Failure):
                        error = message
                    elif isinstance(message, Files):
                        if self.files is not None and job.task_id:
                            await self._record(job.id, lambda m=message: self.files.apply(
                                job.task_id, job.id, m.wrote, m.removed))
                    else:  # progress, score, file, log, warning: a job event of the message's own kind
                        payload = {k: v for k, v in encode(message).items() if k != message.KEY}
                        await self._record(job.id, lambda k=message.TYPE, p=payload: self.jobs.append(job.id, k, p))
                exitcode = await worker.join()
            finally:
                self._live.pop(job.id, None)
            if live.store_error:
                noun = {"eval": "evaluation", "package": "package"}.get(job.kind, job.kind)
                await self._set_state(job.id, "failed", f"{live.store_error}; the {noun} was stopped: free space on "
                                      "that disk, then run it again")
                return
            if live.protocol_error:
                await self._set_state(job.id, "failed", live.protocol_error)
                return
            if result is not None:
                try:
                    if on_done is not None:
                        await on_done(job, result)
                except Exception as exc:  # noqa: BLE001
                    log.exception("job_on_done_failed", job_id=job.id)
                    error = f"could not record the result: {exc}"
                else:
                    await self._set_state(job.id, "completed", "finished", result)
                    return
            if isinstance(error, Failure):
                reason, traceback = error.error or exit_reason(exitcode), error.traceback
            else:
                reason, traceback = error or exit_reason(exitcode), ""
            await self._set_state(job.id, "failed", reason, {"traceback": traceback})

    async def watch(self, job_id: str, kind: str, after_seq: int = 0) -> AsyncIterator[EventRecord]:
        await self.jobs.get(job_id, kind)

        async def finished(last: int) -> bool:
            job = await self.jobs.get(job_id, kind)
            return job.terminal and job.last_seq <= last

        def is_final(event: EventRecord) -> bool:
            return event.kind == "state" and event.payload.get("state") in ("completed", "failed", "cancelled")

        with self.bus.subscribe(job_id) as sub:
            async for event in replay_and_follow(sub, lambda last, n: self.jobs.after(job_id, last, n), finished,
                                                 is_final, after_seq):
                yield event

    async def recover(self) -> None:
        """Jobs left pending or running by a previous daemon cannot be continued: they fail."""
        for job_id in await self.jobs.ids_in_states(("pending", "running")):
            await self.jobs.set_state(job_id, "failed", "daemon_restarted")

    async def shutdown(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

