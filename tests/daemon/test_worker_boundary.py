"""The daemon's side of the worker boundary, in this process with fake workers.

* the pump (worker/spawn.py) decodes every report against its worker's vocabulary: one that does
  not decode reaches the follower as a ProtocolError, never dropped;
* a training run (jobs/supervisor.py) and a job (jobs/runner.py) whose worker sends such a message
  are stopped and end failed with a sentence that names the message;
* jobs (evaluations, packages) move through states.JOB_TRANSITIONS: one whose task is deleted is
  cancelled (waiting: at once; running: stopped first), the daemon's shutdown cancels the ones that
  never started, and a restart fails the ones that ran and cancels the ones that waited.
"""
from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from modxd.app import App
from modxd.config import Config
from modxd.jobs import runner as runner_module
from modxd.jobs import supervisor as supervisor_module
from modxd.jobs.bus import EventBus
from modxd.jobs.runner import JobRunner
from modxd.protocol import (Command, Failure, Log, Metrics, ProtocolError, Result, Stop, decode_report,
                            encode)
from modxd.states import JobState, TaskState
from modxd.store.db import Database
from modxd.store.jobs import JobRepo
from modxd.worker import spawn
from modxd.worker.spawn import WorkerHandle

from .helpers import sft_params

_pids = itertools.count(200_000)
TIMEOUT_S = 120.0  # generous: a loaded 2-core host


class FakeProcess:
    def __init__(self) -> None:
        self.pid = next(_pids)
        self.exitcode: int | None = None

    def is_alive(self) -> bool:
        return self.exitcode is None

    def kill(self) -> None:
        self.exitcode = -9


class FakeWorker(WorkerHandle):
    """A worker whose reports the test writes, as the pump would deliver them."""

    def __init__(self, kind: str) -> None:
        super().__init__(FakeProcess(), self, asyncio.Queue())
        self.kind = kind
        self.sent: list[Command] = []
        self.got_command = asyncio.Event()

    def send(self, command: Command) -> None:
        self.sent.append(command)
        self.got_command.set()

    def report(self, data: dict[str, Any]) -> None:
        """A report as it comes off the pipe: decoded, or the ProtocolError of one that does not decode."""
        try:
            self.reports.put_nowait(decode_report(data, self.kind))
        except ProtocolError as exc:
            self.reports.put_nowait(exc)

    def end(self, code: int = 0) -> None:
        self.process.exitcode = code
        self.reports.put_nowait(None)

    async def join(self) -> int | None:
        return self.process.exitcode


class Spawner:
    def __init__(self) -> None:
        self.workers: list[FakeWorker] = []
        self.started = asyncio.Event()

    def __call__(self, kind: str, config: dict[str, Any], name: str) -> FakeWorker:
        worker = FakeWorker(kind)
        self.workers.append(worker)
        self.started.set()
        return worker


async def until(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {TIMEOUT_S:g}s: {what}")
        await asyncio.sleep(0.02)


# ----------------------------------------------------------------------------- the pump

def test_the_pump_decodes_every_report_and_hands_on_what_does_not_decode() -> None:
    async def scenario() -> list[Any]:
        receive, send = mp.Pipe(duplex=False)
        out: asyncio.Queue = asyncio.Queue()
        threading.Thread(target=spawn._pump, args=(receive, "eval", out, asyncio.get_running_loop()),
                         daemon=True).start()
        send.send(encode(Log("info", "scoring")))
        send.send({"type": "checkpoint", "step": 1, "path": "/p", "size_bytes": 1})  # a training report
        send.send({"type": "log", "level": "info"})
        send.close()
        return [await asyncio.wait_for(out.get(), TIMEOUT_S) for _ in range(4)]

    first, unknown, malformed, end = asyncio.run(scenario())
    assert first == Log("info", "scoring")
    assert isinstance(unknown, ProtocolError) and unknown.message_type == "checkpoint"
    assert "unknown to the eval worker" in str(unknown)
    assert isinstance(malformed, ProtocolError) and "missing field(s) message" in str(malformed)
    assert end is None


# ----------------------------------------------------------------------------- a training run

def test_a_training_report_the_daemon_does_not_understand_fails_the_run(tiny_llama_dir: Path, sft_jsonl: Path,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> Any:
        config = Config(state_dir=tmp_path / "state", quota_initial=10,
                        allowed_roots=[tmp_path, tiny_llama_dir.parent, sft_jsonl.parent])
        app = App(config, await Database.open(config.db_path), ["cpu"])
        await app.quota.ensure_initial(10)
        spawner = Spawner()
        monkeypatch.setattr(supervisor_module, "spawn_worker", spawner)
        try:
            task, _ = await app.create_task("sft", "", sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out"))
            await app.start_task(task.id)
            await asyncio.wait_for(spawner.started.wait(), TIMEOUT_S)
            worker = spawner.workers[0]
            worker.report(encode(Metrics(step=1, total_steps=4, loss=2.0)))
            worker.report({"type": "metrics", "step": 2, "total_steps": 4, "loss": "low"})
            await asyncio.wait_for(worker.got_command.wait(), TIMEOUT_S)
            assert worker.sent == [Stop(reason="protocol_error", save=False)]  # nothing more gets recorded
            worker.report(encode(Result({"outcome": "stopped", "reason": "protocol_error"})))
            worker.end(0)

            async def ended() -> bool:
                return (await app.tasks.get(task.id)).state.terminal and task.id not in app.supervisor.running
            await until(ended, "the run ended")
            return await app.tasks.get(task.id)
        finally:
            await app.close()

    task = asyncio.run(scenario())
    assert task.state == TaskState.FAILED
    assert task.state_reason.startswith("the training worker sent a message the daemon does not understand "
                                        "(message 'metrics': field loss must be a number, got str)")
    assert "this is a bug in modx" in task.state_reason


# ----------------------------------------------------------------------------- jobs

class Runner:
    """A JobRunner on a fresh database, its workers fakes."""

    def __init__(self, db: Database, spawner: Spawner) -> None:
        self.jobs = JobRepo(db)
        self.runner = JobRunner(self.jobs, EventBus(), lambda: "cpu")
        self.spawner = spawner

    async def state(self, job_id: str, kind: str = "eval") -> Any:
        return await self.jobs.get(job_id, kind)

    async def until_state(self, job_id: str, state: JobState, kind: str = "eval") -> Any:
        async def reached() -> bool:
            return (await self.state(job_id, kind)).state == state
        await until(reached, f"job {job_id} {state.value}")
        return await self.state(job_id, kind)

    async def worker(self, index: int) -> FakeWorker:
        await until(lambda: _true(len(self.spawner.workers) > index), f"worker {index} started")
        return self.spawner.workers[index]


async def _true(value: bool) -> bool:
    return value


def _open_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Spawner]:
    spawner = Spawner()
    monkeypatch.setattr(runner_module, "spawn_worker", spawner)
    return Database.open(tmp_path / "state.db"), spawner


def test_a_job_report_the_daemon_does_not_understand_fails_the_job(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> Any:
        opening, spawner = _open_runner(tmp_path, monkeypatch)
        db = await opening
        try:
            r = Runner(db, spawner)
            job = await r.runner.submit("eval", "ev", "t-1", {}, {})
            worker = await r.worker(0)
            worker.report({"type": "score", "checkpoint_id": "c", "composite": "best"})
            await asyncio.wait_for(worker.got_command.wait(), TIMEOUT_S)
            assert worker.sent == [Stop(reason="protocol_error")]
            worker.report(encode(Failure("evaluation stopped (protocol_error)")))
            worker.end(1)
            return await r.until_state(job.id, JobState.FAILED)
        finally:
            await db.close()

    job = asyncio.run(scenario())
    assert job.state_reason == ("the eval worker sent a message the daemon does not understand (message 'score': "
                                "field composite must be a number, got str); this is a bug in modx: the job was "
                                "stopped")


def test_the_jobs_of_a_deleted_task_are_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[Any, Any, Any, list[Command]]:
        opening, spawner = _open_runner(tmp_path, monkeypatch)
        db = await opening
        try:
            r = Runner(db, spawner)
            running = await r.runner.submit("eval", "ev", "t-1", {}, {})
            worker = await r.worker(0)
            await r.until_state(running.id, JobState.RUNNING)
            waiting = await r.runner.submit("eval", "ev", "t-1", {}, {})  # waits for the one eval worker
            other = await r.runner.submit("eval", "ev", "t-2", {}, {})  # another task's: untouched
            await r.runner.cancel_for_task("t-1")
            cancelled_waiting = await r.until_state(waiting.id, JobState.CANCELLED)
            await asyncio.wait_for(worker.got_command.wait(), TIMEOUT_S)
            worker.report(encode(Failure("evaluation stopped (task_deleted)")))  # what the engine answers
            worker.end(1)
            cancelled_running = await r.until_state(running.id, JobState.CANCELLED)
            second = await r.worker(1)  # the other task's job runs next; the cancelled one never does
            second.report(encode(Result({"scores": []})))
            second.end(0)
            finished = await r.until_state(other.id, JobState.COMPLETED)
            assert len(spawner.workers) == 2
            return cancelled_waiting, cancelled_running, finished, worker.sent
        finally:
            await db.close()

    waiting, running, other, sent = asyncio.run(scenario())
    assert waiting.state_reason == "its task t-1 was deleted"
    assert running.state_reason == "its task t-1 was deleted: the evaluation was stopped"
    assert sent == [Stop(reason="task_deleted")]
    assert other.state == JobState.COMPLETED


def test_shutdown_cancels_what_never_started_and_a_restart_settles_the_rest(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[Any, Any, Any, Any]:
        opening, spawner = _open_runner(tmp_path, monkeypatch)
        db = await opening
        try:
            r = Runner(db, spawner)
            running = await r.runner.submit("package", "pkg", "t-1", {}, {})
            await r.worker(0)
            await r.until_state(running.id, JobState.RUNNING, "package")
            waiting = await r.runner.submit("package", "pkg", "t-1", {}, {})
            await r.runner.shutdown(0.05)  # the running one's worker does not end: it dies with the daemon
            after_shutdown = await r.state(waiting.id, "package")
            left_running = await r.state(running.id, "package")
            # A daemon killed outright leaves a waiting job too: the next start settles both.
            stale = await r.jobs.create("package", "t-1", {}, "pkg")
            fresh = Runner(db, spawner)
            await fresh.runner.recover()
            return (after_shutdown, left_running, await fresh.state(running.id, "package"),
                    await fresh.state(stale[0].id, "package"))
        finally:
            await db.close()

    waiting, left_running, ran, stale = asyncio.run(scenario())
    assert (waiting.state, waiting.state_reason) == (JobState.CANCELLED, "daemon_shutdown")
    assert left_running.state == JobState.RUNNING
    assert (ran.state, ran.state_reason) == (JobState.FAILED, "daemon_restarted")
    assert (stale.state, stale.state_reason) == (JobState.CANCELLED, "daemon_restarted")
