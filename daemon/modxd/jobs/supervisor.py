"""The supervisor: a FIFO queue of tasks, one training job per device slot,
worker processes, and the translation of worker reports into stored events.

It is the only place that moves a task through its states after creation, so
the state machine in states.py is enforced in one spot. RPC handlers ask it to
act and return; a client that disconnects changes nothing here.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ..errors import FailedPrecondition, ResourceExhausted
from .. import files, placement
from ..paths import create_output_dir, pin_output_dir
from ..engine.run_estimate import compare_stored
from ..param_sources import explicit_keys
from ..protocol import (QUOTA_ERROR, QUOTA_EXHAUSTED, Checkpoint, CheckpointDeleted, Failure, Files, Learning, Log,
                        Metrics, ProtocolError, QuotaRelease, QuotaReply, QuotaReserve, Report, Result, RunMeasured,
                        Stop, TotalSteps, Warn)
from ..train_config import TrainConfig
from ..states import TaskState, check_transition
from ..store.checkpoints import CheckpointRepo, CheckpointRecord, QuotaRepo
from ..store.db import StoreWriteFailed
from ..store.events import EventRecord, EventRepo
from ..store.files import FileRepo
from ..store.tasks import TaskRecord, TaskRepo
from .backlog import Backlog
from .bus import EventBus
from ..worker.spawn import WorkerHandle, exit_reason, spawn_worker, worker_cpu_count

log = structlog.get_logger("modxd.supervisor")

LOW_QUOTA_WARNING = 3  # warn when a running task's balance falls to this many units


@dataclass
class RunningJob:
    task_id: str
    device: str  # what the task shows: "cuda:0", "cuda:0,cuda:1", "cpu x2"
    worker: WorkerHandle
    slots: tuple[str, ...] = ()  # the device slots it holds (all of them, reserved together)
    result: dict[str, Any] | None = None
    error: Failure | None = None
    stop_reason: str = ""
    kill_reason: str = ""  # set when the daemon itself killed the worker
    store_error: str = ""  # the database refused a write of this run: it was stopped and ends failed
    protocol_error: str = ""  # the worker sent what the daemon does not understand: stopped, ends failed
    low_quota_warned: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _scan_checkpoints(directory: Path, roots: list[Path] | None
                      ) -> list[tuple[int, str, float, float | None, int, float]]:
    """Complete checkpoints on disk as (step, path, epoch, loss, size, mtime); removes staging leftovers.

    The dir is reached without following a symlink (modxd/paths.py); a symlink in it is never a
    checkpoint and is left alone."""
    from ..engine.checkpoints import dir_size, list_checkpoints, remove_entry  # stdlib only

    try:
        pin = pin_output_dir("parameter output_dir", directory, create=False, roots=roots)[0]
    except Exception:  # noqa: BLE001 - missing, or not reachable without a symlink: nothing to adopt
        return []
    found = []
    with pin:
        for name in os.listdir(pin.fd):
            if name.startswith((".tmp-checkpoint-", ".deleting-checkpoint-")):
                remove_entry(pin, name)
        for step, path in list_checkpoints(pin):
            name = os.path.basename(path)
            try:
                with open(os.path.join(pin.path, name, "trainer_state.json"), opener=_nofollow) as f:
                    state = json.load(f)
                mtime = os.stat(name, dir_fd=pin.fd, follow_symlinks=False).st_mtime
            except (OSError, ValueError):
                continue  # not a training checkpoint: leave it alone
            losses = [e["loss"] for e in state.get("log_history", []) if "loss" in e and e.get("step", 0) <= step]
            loss = losses[-1] if losses and isinstance(losses[-1], (int, float)) and math.isfinite(losses[-1]) else None
            found.append((step, path, float(state.get("epoch") or 0.0), loss,
                          dir_size(os.path.join(pin.path, name)), mtime))
    return found


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def _checkpoint_files(path: str, roots: list[Path] | None) -> list[dict[str, Any]]:
    """Manifest entries of a checkpoint found complete on disk after a crash (the worker died before
    reporting it)."""
    with pin_output_dir("parameter output_dir", path, create=False, roots=roots)[0] as pin:
        return [files.entry(pin.real, "dir"), *files.tree(pin)]


class Supervisor:
    def __init__(self, tasks: TaskRepo, events: EventRepo, checkpoints: CheckpointRepo, quota: QuotaRepo,
                 bus: EventBus[EventRecord], devices: list[str], max_pending: int = 1000,
                 file_repo: FileRepo | None = None, backlog: Backlog | None = None) -> None:
        self.tasks, self.events, self.checkpoints, self.quota = tasks, events, checkpoints, quota
        self.files = file_repo  # the manifest of what tasks wrote (None: not kept, in-process tests)
        self.bus = bus
        # What a worker reports, and a run's end, are stored through the backlog: a write the disk
        # refuses waits there, in order, instead of being lost or leaving a task without its end.
        self.backlog = backlog or Backlog()
        self.backlog.on_stuck(self._store_refused)
        self.backlog.on_drained(self._store_recovered)
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
                await self.quota.release_task(task_id)  # its worker died with the daemon
            await self.quota.release_all()  # no worker survives a restart: nothing is being saved
            self.queue.extend(await self.tasks.ids_in_states([TaskState.PENDING]))
            await self._schedule()
        return failed

    async def _reconcile_checkpoints(self, task_id: str) -> None:
        """Make a crashed run's checkpoint records match its disk.

        The daemon may die between a checkpoint's rename and its record (the
        worker dies with it): such a complete checkpoint is recorded now, and
        debited, as it would have been: with the unit held for it, else a free
        unit; with neither it is left unrecorded (the balance never goes below
        zero). A recorded one that is gone (retention was deleting it) is marked
        deleted. Half-written staging dirs are removed.
        """
        task = await self.tasks.get(task_id)
        if not task.params.get("output_dir"):
            return
        records = await self.checkpoints.list(task_id, include_deleted=True)
        known = {r.path for r in records}
        found = await asyncio.to_thread(_scan_checkpoints, Path(task.params["output_dir"]) / "checkpoints",
                                        self.roots)
        for rec in records:
            if not rec.deleted and not await asyncio.to_thread(os.path.isdir, rec.path):
                marked = await self.checkpoints.mark_deleted(task_id, rec.path)
                if marked:
                    self.bus.publish(task_id, marked[1])
        started = task.start_time or 0.0
        for step, path, epoch, loss, size, mtime in found:
            # Only what this task's crashed run wrote (an output dir may be shared or reused).
            if path not in known and mtime >= started - 1:
                if self.files is not None:
                    await self.files.apply(task_id, "recovery", await asyncio.to_thread(_checkpoint_files, path,
                                                                                        self.roots))
                try:
                    _, event, _ = await self.checkpoints.record_saved(task_id, step, epoch, loss, path, size,
                                                                      adopted=True)
                except ResourceExhausted as exc:
                    await self._warn(task_id, "checkpoint_not_adopted",
                                     f"{path} was found complete after a crash but is not recorded: {exc}")
                    continue
                self.bus.publish(task_id, event)
                log.warning("checkpoint_adopted", task_id=task_id, step=step, path=path)

    # ----- lifecycle operations -----------------------------------------------------------------

    async def start(self, task_id: str) -> None:
        async with self._lock:
            await self._settle(task_id)
            task = await self.tasks.get(task_id)
            check_transition(task_id, task.state, TaskState.PENDING, "start")
            await self._check_can_queue()
            await self._set_state(task_id, TaskState.PENDING, "queued", queued_time=time.time())
            self.queue.append(task_id)
            await self._schedule()

    async def stop(self, task_id: str, reason: str = "user") -> None:
        async with self._lock:
            await self._settle(task_id)
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
            await self._settle(task_id)
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
            await self._settle(task_id)
            task = await self.tasks.get(task_id)
            if task.state.active or task_id in self.running or task_id in self.queue:
                raise FailedPrecondition(
                    f"task {task_id} is {task.state.value}: stop it before deleting it")
            await self.tasks.delete(task_id)
            return task

    async def record_files(self, task_id: str, source: str, wrote: Any = (), removed: Any = ()) -> None:
        """Keep the manifest of what the task wrote (modxd/files.py)."""
        if self.files is not None:
            await self.files.apply(task_id, source, list(wrote), list(removed))

    async def _settle(self, task_id: str) -> None:
        """Store what waits for this task before acting on it: until then its stored state is behind
        (a run that ended still reads `running`), so the operation is refused with the disk's sentence."""
        try:
            await self.backlog.settle(task_id)
        except StoreWriteFailed as exc:
            raise type(exc)(f"{exc}: task {task_id} has changes waiting to be stored; try again once the "
                            "disk has room") from None

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
        if self._closing or not self.backlog.empty:
            return  # a write waits for the disk: a new run would only fail the same way
        busy = set(self.busy_devices())
        while self.queue:
            task_id = self.queue[0]
            try:
                task = await self.tasks.get(task_id)
                request = placement.parse_devices(task.params.get("devices", "1"))
                problem = placement.impossible(request, self.devices, worker_cpu_count())
                if problem:
                    raise FailedPrecondition(problem)
                where = placement.place(request, self.devices, busy)
                if where is None:
                    return  # the head waits for its devices; so does everything behind it
                self.queue.popleft()
                if await self.quota.balance() <= 0:  # it could never pay for a checkpoint
                    await self._warn(task_id, QUOTA_EXHAUSTED,
                                     "the quota balance is 0, so the task did not start (every checkpoint costs "
                                     "one unit); ask an admin for more (modxctl quota grant N), then resume it")
                    await self._set_state(task_id, TaskState.STOPPED, QUOTA_EXHAUSTED, end_time=time.time())
                    continue
                busy.update(where.slots)
                await self._launch(task, where)
            except Exception as exc:  # a launch failure fails the task, never the daemon
                self._dequeue(task_id)
                log.exception("launch_failed", task_id=task_id)
                await self._set_state(task_id, TaskState.FAILED, f"could not start the worker: {exc}",
                                      error=str(exc), end_time=time.time(), waits=True)

    async def _launch(self, task: TaskRecord, where: placement.Placement) -> None:
        task_id, device = task.id, where.label
        params = task.params  # a TrainParams, as the task repo reads it back
        if task.resume_checkpoint:
            params = params.replace(resume_from_checkpoint=task.resume_checkpoint)
        run = TrainConfig(params, device=where.processes[0], process_devices=tuple(where.processes), task_id=task_id,
                          reserve_quota=True, fp16_explicit="fp16" in explicit_keys(task.settings))
        # Checked and created again right before writing: never through a symlink below a root.
        made = create_output_dir("parameter output_dir", params.output_dir, self.roots)
        await self.record_files(task_id, "daemon", [files.entry(path, "dir") for path in made])
        job = RunningJob(task_id, device, spawn_worker("train", run.to_wire(), f"modx-train-{task_id}"), where.slots)
        self.running[task_id] = job
        ranks = len(where.processes) * max(int(task.params.get("nnodes", 1) or 1), 1)
        detail = f" ({ranks} ranks, {task.params.get('distributed_strategy', 'ddp')})" if ranks > 1 else ""
        try:
            await self._set_state(task_id, TaskState.RUNNING, f"running on {device}{detail}", device=device,
                                  start_time=time.time(), end_time=None, waits=True)
        finally:  # the worker exists: whatever happened, someone follows it to its end
            asyncio.create_task(self._follow(job), name=f"follow-{task_id}")
        log.info("task_started", task_id=task_id, device=device, ranks=ranks, pid=job.worker.process.pid)

    def _command_stop(self, job: RunningJob, reason: str, save: bool) -> None:
        job.stop_reason = job.stop_reason or reason
        job.worker.send(Stop(reason=reason, save=save))

    async def _follow(self, job: RunningJob) -> None:
        try:
            while True:
                message = await job.worker.reports.get()
                if message is None:
                    break
                if isinstance(message, ProtocolError):
                    self._malformed(job, message)
                    continue
                try:
                    await self._handle(job, message)
                except Exception:
                    log.exception("worker_message_failed", task_id=job.task_id, message_type=message.TYPE)
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

    def _malformed(self, job: RunningJob, error: ProtocolError) -> None:
        """A report the daemon does not understand: a bug in modx. The run stops without saving (what it
        reports cannot be trusted to be recorded) and ends failed with the sentence."""
        log.error("worker_message_malformed", task_id=job.task_id, message_type=error.message_type, error=str(error))
        if job.protocol_error:
            return
        job.protocol_error = (f"the training worker sent a message the daemon does not understand ({error}); this "
                              "is a bug in modx: the run was stopped")
        self._command_stop(job, "protocol_error", save=False)

    async def _handle(self, job: RunningJob, msg: Report) -> None:
        """One report of a training worker (protocol.REPORTS["train"]: the pump let nothing else through)."""
        task_id = job.task_id
        if isinstance(msg, Metrics):
            point = msg.point()
            await self._record(task_id, lambda: self.events.append_metrics(task_id, point))
        elif isinstance(msg, Log):
            payload = {"level": msg.level, "message": msg.message}
            await self._record(task_id, lambda: self.events.append(task_id, "log", payload))
        elif isinstance(msg, Warn):
            payload = {"code": msg.code, "message": msg.message}
            await self._record(task_id, lambda: self.events.append(task_id, "warning", payload))
        elif isinstance(msg, TotalSteps):
            await self._record(task_id, lambda: self.tasks.update(task_id, total_steps=msg.total_steps))
        elif isinstance(msg, Files):
            await self._record(task_id, lambda: self.record_files(task_id, "train", msg.wrote, msg.removed))
        elif isinstance(msg, Checkpoint):
            await self._checkpoint_saved(job, msg)
        elif isinstance(msg, QuotaReserve):
            await self._reserve(job, msg)
        elif isinstance(msg, QuotaRelease):
            await self.quota.release(msg.hold_id)
        elif isinstance(msg, CheckpointDeleted):
            async def mark() -> EventRecord | None:
                marked = await self.checkpoints.mark_deleted(task_id, msg.path)
                return marked[1] if marked else None
            await self._record(task_id, mark)
        elif isinstance(msg, Learning):
            await self._learning(task_id, msg)
        elif isinstance(msg, RunMeasured):
            await self._measured(task_id, msg)
        elif isinstance(msg, Result):
            job.result = msg.values
        elif isinstance(msg, Failure):
            job.error = msg
        else:  # in the training vocabulary but without a branch here: a bug, named like any unknown message
            self._malformed(job, ProtocolError(msg.TYPE, "the supervisor has no handling for it"))

    async def _reserve(self, job: RunningJob, request: QuotaReserve) -> None:
        """The worker asks for the unit of the checkpoint it is about to write, and waits for this answer."""
        try:
            hold = await self.quota.reserve(job.task_id, request.step)
        except Exception as exc:  # the worker must get an answer whatever happens here
            log.exception("quota_reserve_failed", task_id=job.task_id)
            job.worker.send(QuotaReply(request.request_id, reason=QUOTA_ERROR,
                                       message=f"the daemon could not reserve a quota unit ({exc})"))
            return
        if hold is not None:
            job.worker.send(QuotaReply(request.request_id, hold_id=hold.id))
            return
        message = (f"no quota unit is left to pay for the checkpoint of step {request.step} (the balance is spent or "
                   "held by other running tasks), so the task stops without it; ask an admin for more "
                   "(modxctl quota grant N), then resume it")
        job.stop_reason = QUOTA_EXHAUSTED  # whatever stop was under way: this is why nothing was saved
        job.worker.send(QuotaReply(request.request_id, reason=QUOTA_EXHAUSTED, message=message))
        # Stored before the run's end: the worker's result is handled after this message.
        await self._warn(job.task_id, QUOTA_EXHAUSTED, message)

    async def _record(self, task_id: str, write: Any) -> tuple[bool, Any]:
        """Store what a run reports and publish the event it makes (if any); when the disk refuses,
        the write waits in the backlog (the run is stopped) and (False, None) comes back."""
        async def store() -> Any:
            stored = await write()
            if isinstance(stored, EventRecord):
                self.bus.publish(task_id, stored)
            return stored
        return await self.backlog.write(task_id, store)

    def _store_refused(self, owner: str, error: StoreWriteFailed) -> None:
        """The database refused a write of `owner`: a run cannot go on unrecorded, so it stops now
        (without saving: its checkpoint could not be recorded either) and ends failed."""
        job = self.running.get(owner)
        if job is None or job.store_error:
            return
        job.store_error = str(error)
        log.error("task_store_refused", task_id=owner, error=str(error))
        self._command_stop(job, "state_disk_full", save=False)

    async def _store_recovered(self) -> None:
        """Every waiting write landed: the queue moves on."""
        async with self._lock:
            await self._schedule()

    async def _checkpoint_saved(self, job: RunningJob, msg: Checkpoint) -> None:
        loss = msg.loss if msg.loss is not None and math.isfinite(msg.loss) else None

        async def record() -> int:
            _, event, balance = await self.checkpoints.record_saved(
                job.task_id, msg.step, msg.epoch or 0.0, loss, msg.path, msg.size_bytes, hold_id=msg.hold_id)
            self.bus.publish(job.task_id, event)
            return balance

        try:
            landed, balance = await self.backlog.write(job.task_id, record)
        except ResourceExhausted as exc:  # saved without a reservation: never charged below zero
            job.stop_reason = QUOTA_EXHAUSTED
            self._command_stop(job, QUOTA_EXHAUSTED, save=False)
            await self._warn(job.task_id, QUOTA_EXHAUSTED, f"{exc}: it is not recorded, and the task stops")
            return
        if not landed:
            return  # recorded (and debited) when the disk takes it; the run is being stopped
        if balance <= 0:
            self._command_stop(job, QUOTA_EXHAUSTED, save=False)
            await self._warn(job.task_id, QUOTA_EXHAUSTED,
                             "the quota balance reached 0: the task stops now, without another checkpoint")
        elif balance <= LOW_QUOTA_WARNING and not job.low_quota_warned:
            job.low_quota_warned = True
            await self._warn(job.task_id, "quota_low",
                             f"only {balance} quota unit(s) left; the task stops when they run out")

    async def _learning(self, task_id: str, msg: Learning) -> None:
        """Did it learn: stored with the task, said in its log, and a warning when it did not."""
        learning = {f: getattr(msg, f) for f in ("data", "examples", "base_loss", "final_loss",
                                                  "relative_improvement", "verdict", "sentence", "advice")}
        await self._record(task_id, lambda: self.tasks.update(task_id, learning=learning))
        if msg.verdict == "learned":
            payload = {"level": "info", "message": msg.sentence}
            await self._record(task_id, lambda: self.events.append(task_id, "log", payload))
        else:
            await self._warn(task_id, msg.verdict, msg.sentence)

    async def _measured(self, task_id: str, msg: RunMeasured) -> None:
        """The run's time and peak memory next to the estimate made before it (when there was one)."""
        task = await self.tasks.get(task_id)
        stored = (task.quota_estimate or {}).get("run")
        if not stored:
            return
        checks = [c.__dict__ for c in compare_stored(stored, msg.training_seconds, msg.peak_memory_bytes,
                                                     msg.memory_kind)]
        await self._record(task_id, lambda: self.tasks.update(task_id, estimate_checks=checks))
        for check in checks:
            payload = {"level": "info", "message": f"estimate {check['sentence']}"}
            await self._record(task_id, lambda: self.events.append(task_id, "log", payload))

    async def _warn(self, task_id: str, code: str, message: str) -> None:
        await self._record(task_id, lambda: self.events.append(task_id, "warning", {"code": code, "message": message}))

    async def _finish(self, job: RunningJob) -> None:
        """Store how the run ended. Through the backlog: when the disk refuses, the end waits there
        (and nothing new starts) until it can be stored; the worker and its devices are free anyway."""
        now = time.time()
        task_id = job.task_id
        # A unit held for a save that never came (killed, failed) goes back.
        await self._record(task_id, lambda: self.quota.release_task(task_id))
        if job.result is not None and not (job.store_error or job.protocol_error):
            outcome = job.result.get("outcome", "completed")
            if outcome == "stopped":
                reason = job.stop_reason or job.result.get("reason") or "stopped"
                await self._set_state(task_id, TaskState.STOPPED, reason, end_time=now, waits=True)
            else:
                await self._set_state(task_id, TaskState.COMPLETED, job.result.get("reason") or "finished",
                                      end_time=now, waits=True)
            return
        tail = await self._last_logs(task_id)
        if job.store_error:
            reason = (f"{job.store_error}; the run was stopped without saving: free space on that disk, then "
                      "resume the task from its last checkpoint")
        elif job.protocol_error:
            reason = job.protocol_error
        elif job.kill_reason:
            reason = job.kill_reason
        elif job.error is not None:
            reason = job.error.error or "worker failed"
            tail = [*tail, *job.error.traceback.splitlines()[-15:]]
        else:
            reason = exit_reason(job.worker.process.exitcode)
        await self._set_state(task_id, TaskState.FAILED, reason, error=reason, failure_log_tail=tail[-30:],
                              end_time=now, waits=True)
        log.warning("task_failed", task_id=task_id, reason=reason)

    async def _last_logs(self, task_id: str) -> list[str]:
        """The run's last stored log lines, for the failure record; none when the database cannot say."""
        try:
            return await self.events.last_logs(task_id)
        except Exception:  # noqa: BLE001 - an unreadable disk must not keep the task from ending
            log.exception("last_logs_unreadable", task_id=task_id)
            return []

    async def _set_state(self, task_id: str, to: TaskState, reason: str, *, waits: bool = False,
                         **fields: Any) -> None:
        """Store a state change and publish its event, after any write that waits for this task.

        `waits`: the daemon's own move (a run starts or ends) waits in the backlog when the disk refuses
        it; otherwise (a client's request) the refusal is raised and nothing changes.
        """
        async def move() -> None:
            seq = await self.tasks.set_state(task_id, to, reason, **fields)
            for event in await self.events.after(task_id, seq - 1, limit=1):
                self.bus.publish(task_id, event)

        if waits:
            await self.backlog.write(task_id, move)
        else:
            await self.backlog.now(task_id, move)

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
                        await self._set_state(job.task_id, TaskState.STOPPING, "daemon_shutdown", waits=True)
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

