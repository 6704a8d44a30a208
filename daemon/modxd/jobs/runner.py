"""Runs evaluation and package jobs in worker processes, one at a time per kind.

A job's worker reports `progress`, `log`, `score`, `file` ... messages (stored as
job events and published), then one `result` or `error`. What a finished job
changes elsewhere (the task's best checkpoint, say) is done by the `on_done`
hook its submitter gives.
"""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable

import structlog

from .. import files
from ..store.events import EventRecord
from ..store.files import FileRepo
from ..store.jobs import JobRecord, JobRepo
from .bus import EventBus
from .follow import replay_and_follow
from .process import exit_reason, spawn_worker

log = structlog.get_logger("modxd.jobs")

OnDone = Callable[[JobRecord, dict[str, Any]], Awaitable[None]]


class JobRunner:
    def __init__(self, jobs: JobRepo, bus: EventBus[EventRecord], pick_device: Callable[[], str],
                 files_repo: FileRepo | None = None) -> None:
        self.jobs = jobs
        self.files = files_repo  # what a task's jobs write joins the task's manifest (modxd/files.py)
        self.bus = bus
        self.pick_device = pick_device
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, kind: str, prefix: str, task_id: str, request: dict[str, Any],
                     worker_config: dict[str, Any], on_done: OnDone | None = None) -> JobRecord:
        """Store the job as pending and run it in the background; returns at once."""
        job, event = await self.jobs.create(kind, task_id, request, prefix)
        self.bus.publish(job.id, event)
        runner = asyncio.create_task(self._run(job, worker_config, on_done), name=f"job-{job.id}")
        self._tasks.add(runner)
        runner.add_done_callback(self._tasks.discard)
        return job

    async def _publish(self, job_id: str, event: EventRecord) -> None:
        self.bus.publish(job_id, event)

    async def _run(self, job: JobRecord, config: dict[str, Any], on_done: OnDone | None) -> None:
        slot = self._slots.setdefault(job.kind, asyncio.Semaphore(1))
        async with slot:
            device = config.get("device") or self.pick_device()
            config = {**config, "device": device, "job_id": job.id}
            await self._publish(job.id, await self.jobs.set_state(job.id, "running", f"running on {device}"))
            result: dict[str, Any] | None = None
            error: dict[str, Any] | None = None
            try:
                worker = spawn_worker(job.kind, config, f"modx-{job.kind}-{job.id}")
            except Exception as exc:  # noqa: BLE001
                await self._publish(job.id, await self.jobs.set_state(job.id, "failed", f"could not start: {exc}"))
                return
            while (message := await worker.reports.get()) is not None:
                kind = message.get("type", "")
                if kind == "result":
                    result = {k: v for k, v in message.items() if k != "type"}
                elif kind == "error":
                    error = message
                elif kind == files.MESSAGE:
                    if self.files is not None and job.task_id:
                        try:
                            await self.files.apply(job.task_id, job.id, message.get("wrote", ()),
                                                   message.get("removed", ()))
                        except Exception:  # noqa: BLE001 - the job goes on; its files stay on disk
                            log.exception("job_files_not_recorded", job_id=job.id)
                else:
                    payload = {k: v for k, v in message.items() if k != "type"}
                    await self._publish(job.id, await self.jobs.append(job.id, kind, payload))
            exitcode = await worker.join()
            if result is not None:
                try:
                    if on_done is not None:
                        await on_done(job, result)
                except Exception as exc:  # noqa: BLE001
                    log.exception("job_on_done_failed", job_id=job.id)
                    error = {"error": f"could not record the result: {exc}"}
                else:
                    await self._publish(job.id, await self.jobs.set_state(job.id, "completed", "finished", result))
                    return
            reason = (error or {}).get("error") or exit_reason(exitcode)
            await self._publish(job.id, await self.jobs.set_state(job.id, "failed", reason,
                                                                  {"traceback": (error or {}).get("traceback", "")}))

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

