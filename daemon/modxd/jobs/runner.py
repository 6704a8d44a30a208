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
from ..states import JOB_TERMINAL, JobState
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
    """A job from its move to running to its stored end."""

    job: JobRecord
    worker: WorkerHandle | None = None  # None until its process is started
    store_error: str = ""  # the database refused a write of this job: it was stopped and ends failed
    protocol_error: str = ""  # the worker sent what the daemon does not understand: stopped, ends failed
    cancelled: str = ""  # why it was cancelled (its task was deleted): stopped, ends cancelled

    def stop(self, reason: str) -> None:
        if self.worker is not None:
            self.worker.send(Stop(reason=reason))


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
        self._pending: dict[str, JobRecord] = {}  # submitted, waiting for the one worker of their kind
        self._live: dict[str, _LiveJob] = {}

    async def submit(self, kind: str, prefix: str, task_id: str, request: dict[str, Any],
                     worker_config: dict[str, Any], on_done: OnDone | None = None) -> JobRecord:
        """Store the job as pending and run it in the background; returns at once."""
        job, event = await self.jobs.create(kind, task_id, request, prefix)
        self.bus.publish(job.id, event)
        self._pending[job.id] = job
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

    async def _set_state(self, job_id: str, state: JobState, reason: str,
                         result: dict[str, Any] | None = None) -> bool:
        return await self._record(job_id, lambda: self.jobs.set_state(job_id, state, reason, result))

    def _malformed(self, live: _LiveJob, error: ProtocolError) -> None:
        """A message the daemon does not understand: a bug in modx. The job stops and ends failed."""
        job = live.job
        log.error("job_message_malformed", job_id=job.id, kind=job.kind, message_type=error.message_type,
                  error=str(error))
        if not live.protocol_error:
            live.protocol_error = (f"the {job.kind} worker sent a message the daemon does not understand ({error}); "
                                   "this is a bug in modx: the job was stopped")
            live.stop("protocol_error")

    def _store_refused(self, owner: str, error: StoreWriteFailed) -> None:
        live = self._live.get(owner)
        if live is None or live.store_error:
            return
        live.store_error = str(error)
        log.error("job_store_refused", job_id=owner, error=str(error))
        live.stop("state_disk_full")

    # ----- cancellation ------------------------------------------------------------------------------

    async def cancel_for_task(self, task_id: str) -> None:
        """The task was deleted: its jobs will never be of use. A waiting one is cancelled now, a running one
        is stopped and ends cancelled."""
        for job in [j for j in self._pending.values() if j.task_id == task_id]:
            await self._cancel_pending(job, f"its task {task_id} was deleted")
        for live in [v for v in self._live.values() if v.job.task_id == task_id]:
            if not live.cancelled:
                live.cancelled = f"its task {task_id} was deleted: the {_noun(live.job.kind)} was stopped"
                live.stop("task_deleted")

    async def _cancel_pending(self, job: JobRecord, reason: str) -> None:
        if self._pending.pop(job.id, None) is None:
            return  # it has started meanwhile
        log.info("job_cancelled", job_id=job.id, kind=job.kind, reason=reason)
        await self._set_state(job.id, JobState.CANCELLED, reason)

    # ----- a job's run -------------------------------------------------------------------------------

    async def _run(self, job: JobRecord, config: dict[str, Any], on_done: OnDone | None) -> None:
        slot = self._slots.setdefault(job.kind, asyncio.Semaphore(1))
        async with slot:
            if self._pending.pop(job.id, None) is None:
                return  # cancelled while it waited: its state says so
            live = self._live[job.id] = _LiveJob(job)
            try:
                await self._follow(live, config, on_done)
            finally:
                self._live.pop(job.id, None)

    async def _follow(self, live: _LiveJob, config: dict[str, Any], on_done: OnDone | None) -> None:
        job = live.job
        device = config.get("device") or self.pick_device()
        config = {**config, "device": device, "job_id": job.id}
        if not await self._set_state(job.id, JobState.RUNNING, f"running on {device}"):
            await self.backlog.landed(job.id)  # nothing ran yet: start once the disk takes writes again
            live.store_error = ""  # the refusal stopped no work: this job starts now, whole
        result: dict[str, Any] | None = None
        error: Failure | str | None = None
        try:
            live.worker = worker = spawn_worker(job.kind, config, f"modx-{job.kind}-{job.id}")
        except Exception as exc:  # noqa: BLE001
            await self._set_state(job.id, JobState.CANCELLED if live.cancelled else JobState.FAILED,
                                  live.cancelled or f"could not start: {exc}")
            return
        if live.cancelled:  # its task was deleted while it was being started
            live.stop("task_deleted")
        while (message := await worker.reports.get()) is not None:
            if isinstance(message, ProtocolError):
                self._malformed(live, message)
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
        if live.store_error:
            await self._set_state(job.id, JobState.FAILED, f"{live.store_error}; the {_noun(job.kind)} was "
                                  "stopped: free space on that disk, then run it again")
            return
        if live.cancelled:
            await self._set_state(job.id, JobState.CANCELLED, live.cancelled)
            return
        if live.protocol_error:
            await self._set_state(job.id, JobState.FAILED, live.protocol_error)
            return
        if result is not None:
            try:
                if on_done is not None:
                    await on_done(job, result)
            except Exception as exc:  # noqa: BLE001
                log.exception("job_on_done_failed", job_id=job.id)
                error = f"could not record the result: {exc}"
            else:
                await self._set_state(job.id, JobState.COMPLETED, "finished", result)
                return
        if isinstance(error, Failure):
            reason, traceback = error.error or exit_reason(exitcode), error.traceback
        else:
            reason, traceback = error or exit_reason(exitcode), ""
        await self._set_state(job.id, JobState.FAILED, reason, {"traceback": traceback})

    async def watch(self, job_id: str, kind: str, after_seq: int = 0) -> AsyncIterator[EventRecord]:
        await self.jobs.get(job_id, kind)

        async def finished(last: int) -> bool:
            job = await self.jobs.get(job_id, kind)
            return job.terminal and job.last_seq <= last

        def is_final(event: EventRecord) -> bool:
            return event.kind == "state" and event.payload.get("state") in _TERMINAL_NAMES

        with self.bus.subscribe(job_id) as sub:
            async for event in replay_and_follow(sub, lambda last, n: self.jobs.after(job_id, last, n), finished,
                                                 is_final, after_seq):
                yield event

    # ----- the daemon's start and stop ---------------------------------------------------------------

    async def recover(self) -> None:
        """Jobs left by a previous daemon cannot be continued: one that ran failed with it, one that waited
        never started and is cancelled (its worker, and the request's daemon, are gone either way)."""
        for job_id in await self.jobs.ids_in_states((JobState.RUNNING,)):
            await self.jobs.set_state(job_id, JobState.FAILED, "daemon_restarted")
        for job_id in await self.jobs.ids_in_states((JobState.PENDING,)):
            await self.jobs.set_state(job_id, JobState.CANCELLED, "daemon_restarted")

    async def shutdown(self, timeout: float) -> None:
        """Jobs still waiting will not start: cancelled. Running ones get `timeout` to end (their workers
        die with the daemon; the next start marks what did not end failed)."""
        for job in list(self._pending.values()):
            await self._cancel_pending(job, "daemon_shutdown")
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


_TERMINAL_NAMES = frozenset(s.value for s in JOB_TERMINAL)


def _noun(kind: str) -> str:
    return {"eval": "evaluation"}.get(kind, kind)
