"""The supervisor: a FIFO queue of tasks, one training job per device slot,
worker processes, and the translation of worker reports into stored events.

It is the only place that moves a task through its states after creation, so
the state machine in states.py is enforced in one spot. RPC handlers ask it to
act and return; a client that disconnects changes nothing here.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ..errors import FailedPrecondition, ResourceExhausted
from .. import placement
from ..paths import make_dir_under_roots
from ..states import TaskState, check_transition
from ..store.checkpoints import CheckpointRepo, CheckpointRecord, QuotaRepo
from ..store.events import EventRecord, EventRepo
from ..store.tasks import TaskRecord, TaskRepo
from .bus import EventBus
from .process import WorkerHandle, exit_reason, spawn_worker

log = structlog.get_logger("modxd.supervisor")

LOW_QUOTA_WARNING = 3  # warn when a running task's balance falls to this many units


@dataclass
class RunningJob:
    task_id: str
    device: str  # what the task shows: "cuda:0", "cuda:0,cuda:1", "cpu x2"
    worker: WorkerHandle
    slots: tuple[str, ...] = ()  # the device slots it holds (all of them, reserved together)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    stop_reason: str = ""
    kill_reason: str = ""  # set when the daemon itself killed the worker
    low_quota_warned: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _scan_checkpoints(directory: Path) -> list[tuple[int, str, float, float | None, int, float]]:
    """Complete checkpoints on disk as (step, path, epoch, loss, size, mtime); removes staging leftovers."""
    from ..engine.checkpoints import dir_size, list_checkpoints  # stdlib only

    if not directory.is_dir():
        return []
    for leftover in directory.glob(".tmp-checkpoint-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in directory.glob(".deleting-checkpoint-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    found = []
    for step, path in list_checkpoints(str(directory)):
        try:
            state = json.loads((Path(path) / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue  # not a training checkpoint: leave it alone
        losses = [e["loss"] for e in state.get("log_history", []) if "loss" in e and e.get("step", 0) <= step]
        found.append((step, path, float(state.get("epoch") or 0.0), losses[-1] if losses else None,
                      dir_size(path), os.path.getmtime(path)))
    return found


class Supervisor:
    def __init__(self, tasks: TaskRepo, events: EventRepo, checkpoints: CheckpointRepo, quota: QuotaRepo,
                 bus: EventBus[EventRecord], devices: list[str], max_pending: int = 1000) -> None:
        self.tasks, self.events, self.checkpoints, self.quota = tasks, events, checkpoints, quota
        self.bus = bus
        self.devices = devices
        self.max_pending = max_pending
        self.roots: list[Path] | None = None  # the allowed roots (App sets them); None: unchecked
        self.queue: deque[str] = deque()
        self.running: dict[str, RunningJob] = {}
        self._lock = asyncio.Lock()  # serialises lifecycle operations
        self._closing = False

    # ----- start-up -----------------------------------------------------------------------------

    async def recover(self) -> list[str]:
        """After a restart: tasks left running become failed; pending ones are queued again.

        Workers are not adopted: they die with the daemon that spawned them
        (PR_SET_PDEATHSIG), so a task found running has no process any more.
        """
        failed = []
        async with self._lock:
            for task_id in await self.tasks.ids_in_states([TaskState.RUNNING, TaskState.STOPPING]):
                await self._set_state(task_id, TaskState.FAILED, "daemon_restarted", end_time=time.time())
                failed.append(task_id)
                try:
                    await self._reconcile_checkpoints(task_id)
                except Exception:
                    log.exception("checkpoint_reconcile_failed", task_id=task_id)
            self.queue.extend(await self.tasks.ids_in_states([TaskState.PENDING]))
            await self._schedule()
        return failed

    async def _reconcile_checkpoints(self, task_id: str) -> None:
        """Make a crashed run's checkpoint records match its disk.

        The daemon may die between a checkpoint's rename and its record (the
        worker dies with it): such a complete checkpoint is recorded now, and
        debited, as it would have been. A recorded one that is gone (retention
        was deleting it) is marked deleted. Half-written staging dirs are removed.
        """
        task = await self.tasks.get(task_id)
        if not task.params.get("output_dir"):
            return
        records = await self.checkpoints.list(task_id, include_deleted=True)
        known = {r.path for r in records}
        found = await asyncio.to_thread(_scan_checkpoints, Path(task.params["output_dir"]) / "checkpoints")
        for rec in records:
            if not rec.deleted and not await asyncio.to_thread(os.path.isdir, rec.path):
                marked = await self.checkpoints.mark_deleted(task_id, rec.path)
                if marked:
                    self.bus.publish(task_id, marked[1])
        started = task.start_time or 0.0
        for step, path, epoch, loss, size, mtime in found:
            # Only what this task's crashed run wrote (an output dir may be shared or reused).
            if path not in known and mtime >= started - 1:
                _, event, _ = await self.checkpoints.record_saved(task_id, step, epoch, loss, path, size)
                self.bus.publish(task_id, event)
                log.warning("checkpoint_adopted", task_id=task_id, step=step, path=path)

    # ----- lifecycle operations -----------------------------------------------------------------

    async def start(self, task_id: str) -> None:
        async with self._lock:
            task = await self.tasks.get(task_id)
            check_transition(task_id, task.state, TaskState.PENDING, "start")
            await self._check_can_queue()
            await self._set_state(task_id, TaskState.PENDING, "queued", queued_time=time.time())
            self.queue.append(task_id)
            await self._schedule()

    async def stop(self, task_id: str, reason: str = "user") -> None:
        async with self._lock:
            task = await self.tasks.get(task_id)
            if task.state == TaskState.PENDING:
                self._dequeue(task_id)
                await self._set_state(task_id, TaskState.STOPPED, reason, end_time=time.time())
                return
            check_transition(task_id, task.state, TaskState.STOPPING, "stop")
            job = self.running.get(task_id)
            await self._set_state(task_id, TaskState.STOPPING, reason)
            if job is not None:
                self._command_stop(job, reason, save=True)

    async def resume(self, task_id: str, checkpoint: CheckpointRecord | None) -> None:
        async with self._lock:
            task = await self.tasks.get(task_id)
            check_transition(task_id, task.state, TaskState.PENDING, "resume")
            await self._check_can_queue()
            if checkpoint is None:
                reason = "resumed from the beginning (no checkpoint)"
            else:
                reason = f"resumed from checkpoint {checkpoint.id} (step {checkpoint.step})"
            await self._set_state(
                task_id, TaskState.PENDING, reason, queued_time=time.time(), resume_count=task.resume_count + 1,
                resume_checkpoint=checkpoint.path if checkpoint else "", error="", failure_log_tail=[],
                end_time=None)
            self.queue.append(task_id)
            await self._schedule()

    async def delete(self, task_id: str) -> TaskRecord:
        """Delete an inactive task's records (under the lifecycle lock, so a concurrent
        start or resume either happens first, and the delete is refused, or finds no task)."""
        async with self._lock:
            task = await self.tasks.get(task_id)
            if task.state.active or task_id in self.running or task_id in self.queue:
                raise FailedPrecondition(
                    f"task {task_id} is {task.state.value}: stop it before deleting it")
            await self.tasks.delete(task_id)
            return task

    def queue_position(self, task_id: str) -> int:
        try:
            return self.queue.index(task_id) + 1
        except ValueError:
            return 0

    def device_of(self, task_id: str) -> str:
        job = self.running.get(task_id)
        return job.device if job else ""

    def busy_devices(self) -> dict[str, str]:
        return {slot: task_id for task_id, job in self.running.items() for slot in job.slots or (job.device,)}

    async def _check_can_queue(self) -> None:
        if len(self.queue) >= self.max_pending:
            raise ResourceExhausted(f"the queue already holds {len(self.queue)} tasks (the limit)")
        if await self.quota.balance() <= 0:
            raise ResourceExhausted(
                "the training quota balance is 0: every checkpoint costs one unit; ask an admin to "
                "grant more with SystemService.GrantQuota (modxctl quota grant N)")

    def _dequeue(self, task_id: str) -> None:
        try:
            self.queue.remove(task_id)
        except ValueError:
            pass

    # ----- scheduling and workers ---------------------------------------------------------------

    async def _schedule(self) -> None:
        """Start queued tasks in order while the head of the queue gets all the devices it needs.

        Strict FIFO: a task waiting for several devices holds back the tasks behind it, so
        it is never starved by smaller ones (placement.py). A task whose devices this
        daemon will never have fails instead of blocking the queue.
        """
        if self._closing:
            return
        busy = set(self.busy_devices())
        while self.queue:
            task_id = self.queue[0]
            try:
                task = await self.tasks.get(task_id)
                request = placement.parse_devices(task.params.get("devices", "1"))
                problem = placement.impossible(request, self.devices)
                if problem:
                    raise FailedPrecondition(problem)
                where = placement.place(request, self.devices, busy)
                if where is None:
                    return  # the head waits for its devices; so does everything behind it
                self.queue.popleft()
                busy.update(where.slots)
                await self._launch(task, where)
            except Exception as exc:  # a launch failure fails the task, never the daemon
                self._dequeue(task_id)
                log.exception("launch_failed", task_id=task_id)
                await self._set_state(task_id, TaskState.FAILED, f"could not start the worker: {exc}",
                                      error=str(exc), end_time=time.time())

    async def _launch(self, task: TaskRecord, where: placement.Placement) -> None:
        task_id, device = task.id, where.label
        config = {**task.params, "task_type": task.type, "device": where.processes[0], "task_id": task_id,
                  "process_devices": list(where.processes)}
        if task.resume_checkpoint:
            config["resume_from_checkpoint"] = task.resume_checkpoint
        # Checked and created again right before writing: never through a symlink out of a root.
        make_dir_under_roots("parameter output_dir", Path(config["output_dir"]), self.roots)
        job = RunningJob(task_id, device, spawn_worker("train", config, f"modx-train-{task_id}"), where.slots)
        self.running[task_id] = job
        ranks = len(where.processes) * max(int(task.params.get("nnodes", 1) or 1), 1)
        detail = f" ({ranks} ranks, {task.params.get('distributed_strategy', 'ddp')})" if ranks > 1 else ""
        await self._set_state(task_id, TaskState.RUNNING, f"running on {device}{detail}", device=device,
                              start_time=time.time(), end_time=None)
        asyncio.create_task(self._follow(job), name=f"follow-{task_id}")
        log.info("task_started", task_id=task_id, device=device, ranks=ranks, pid=job.worker.process.pid)

    def _command_stop(self, job: RunningJob, reason: str, save: bool) -> None:
        job.stop_reason = job.stop_reason or reason
        job.worker.send({"cmd": "stop", "reason": reason, "save": save})

    async def _follow(self, job: RunningJob) -> None:
        try:
            while True:
                message = await job.worker.reports.get()
                if message is None:
                    break
                try:
                    await self._handle(job, message)
                except Exception:
                    log.exception("worker_message_failed", task_id=job.task_id, message_type=message.get("type"))
            await job.worker.join()
        finally:
            # The lock makes the end of a run atomic with respect to stop/resume/delete:
            # a stop that read "running" cannot land after the task became terminal.
            async with self._lock:
                try:
                    await self._finish(job)
                except Exception:
                    log.exception("finish_failed", task_id=job.task_id)
                finally:
                    self.running.pop(job.task_id, None)
                    job.done.set()
                    await self._schedule()

    async def _handle(self, job: RunningJob, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        task_id = job.task_id
        if kind == "metrics":
            point = {k: v for k, v in msg.items() if k != "type"}
            self.bus.publish(task_id, await self.events.append_metrics(task_id, point))
        elif kind == "log":
            payload = {"level": msg.get("level", "info"), "message": str(msg.get("message", ""))}
            self.bus.publish(task_id, await self.events.append(task_id, "log", payload))
        elif kind == "warning":
            payload = {"code": msg.get("code", ""), "message": str(msg.get("message", ""))}
            self.bus.publish(task_id, await self.events.append(task_id, "warning", payload))
        elif kind == "total_steps":
            await self.tasks.update(task_id, total_steps=int(msg["total_steps"]))
        elif kind == "checkpoint":
            await self._checkpoint_saved(job, msg)
        elif kind == "checkpoint_deleted":
            marked = await self.checkpoints.mark_deleted(task_id, str(msg["path"]))
            if marked:
                self.bus.publish(task_id, marked[1])
        elif kind == "result":
            job.result = msg
        elif kind == "error":
            job.error = msg

    async def _checkpoint_saved(self, job: RunningJob, msg: dict[str, Any]) -> None:
        loss = msg.get("loss")
        _, event, balance = await self.checkpoints.record_saved(
            job.task_id, int(msg["step"]), float(msg.get("epoch") or 0.0),
            None if loss is None else float(loss), str(msg["path"]), int(msg.get("size_bytes") or 0))
        self.bus.publish(job.task_id, event)
        if balance <= 0:
            self._command_stop(job, "quota_exhausted", save=False)
            await self._warn(job.task_id, "quota_exhausted",
                             "the quota balance reached 0: the task stops now, without another checkpoint")
        elif balance <= LOW_QUOTA_WARNING and not job.low_quota_warned:
            job.low_quota_warned = True
            await self._warn(job.task_id, "quota_low",
                             f"only {balance} quota unit(s) left; the task stops when they run out")

    async def _warn(self, task_id: str, code: str, message: str) -> None:
        self.bus.publish(task_id, await self.events.append(task_id, "warning", {"code": code, "message": message}))

    async def _finish(self, job: RunningJob) -> None:
        now = time.time()
        task_id = job.task_id
        if job.result is not None:
            outcome = job.result.get("outcome", "completed")
            if outcome == "stopped":
                reason = job.stop_reason or job.result.get("reason") or "stopped"
                await self._set_state(task_id, TaskState.STOPPED, reason, end_time=now)
            else:
                await self._set_state(task_id, TaskState.COMPLETED, job.result.get("reason") or "finished",
                                      end_time=now)
            return
        if job.kill_reason:
            reason = job.kill_reason
            tail = await self.events.last_logs(task_id)
        elif job.error is not None:
            reason = job.error.get("error", "worker failed")
            tail = [*(await self.events.last_logs(task_id)), *job.error.get("traceback", "").splitlines()[-15:]]
        else:
            reason = exit_reason(job.worker.process.exitcode)
            tail = await self.events.last_logs(task_id)
        await self._set_state(task_id, TaskState.FAILED, reason, error=reason, failure_log_tail=tail[-30:],
                              end_time=now)
        log.warning("task_failed", task_id=task_id, reason=reason)

    async def _set_state(self, task_id: str, to: TaskState, reason: str, **fields: Any) -> None:
        seq = await self.tasks.set_state(task_id, to, reason, **fields)
        for event in await self.events.after(task_id, seq - 1, limit=1):
            self.bus.publish(task_id, event)

    # ----- shutdown -----------------------------------------------------------------------------

    async def shutdown(self, timeout: float) -> None:
        """Ask running tasks to save and stop; kill what is still running after `timeout`."""
        async with self._lock:
            self._closing = True
            jobs = list(self.running.values())
            for job in jobs:
                try:
                    task = await self.tasks.get(job.task_id)
                    if task.state == TaskState.RUNNING:
                        await self._set_state(job.task_id, TaskState.STOPPING, "daemon_shutdown")
                except Exception:
                    log.exception("shutdown_state_failed", task_id=job.task_id)
                self._command_stop(job, "daemon_shutdown", save=True)
        if not jobs:
            return
        waits = [asyncio.create_task(job.done.wait()) for job in jobs]
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for job in jobs:
            if job.worker.process.is_alive():
                log.warning("killing_worker", task_id=job.task_id)
                job.kill_reason = (f"daemon_shutdown: the worker did not stop within {timeout:g}s "
                                   "and was killed; resume continues from the last checkpoint")
                job.worker.process.kill()
        if pending:
            await asyncio.wait(pending, timeout=10)

