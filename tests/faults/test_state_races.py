"""Case 7: concurrent lifecycle operations on the same task.

Two layers:

* a property test (hypothesis) drives the real App + Supervisor + SQLite store,
  with in-process fake workers, through random sequences of operation batches;
  the operations of a batch run concurrently (asyncio.gather) and worker
  reports (steps, checkpoints, crashes, completions) interleave with them.
  After every batch the stored state machine, the queue, the device slots,
  the event numbering and the quota ledger must be consistent;
* a real daemon, where two clients stop / start / resume / delete the same
  task at once: exactly one wins, the other gets FAILED_PRECONDITION (or
  NOT_FOUND when the winner deleted the task).
"""
from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modx.v1 import training_pb2 as T

from modxd.app import App
from modxd.config import Config
from modxd.errors import FailedPrecondition, NotFound, ResourceExhausted
from modxd.jobs import supervisor as supervisor_module
from modxd.protocol import Checkpoint, Command, Metrics, Result, Stop
from modxd.worker.spawn import WorkerHandle
from modxd.states import TRANSITIONS, TaskState
from modxd.store.db import Database

from ..daemon.helpers import create_request, sft_params, state_name

# ----------------------------------------------------------------------------- fake workers

_pids = itertools.count(100_000)


class FakeProcess:
    def __init__(self) -> None:
        self.pid = next(_pids)
        self.exitcode: int | None = None

    def is_alive(self) -> bool:
        return self.exitcode is None

    def kill(self) -> None:
        self.exitcode = -9


class TrackedQueue(asyncio.Queue):
    """Knows whether the consumer is still handling the last item it took."""

    busy = False

    async def get(self) -> Any:
        self.busy = False
        item = await super().get()
        self.busy = True
        return item


class FakeHandle(WorkerHandle):
    """A worker that acts only when the test tells it to (step, finish, crash)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(FakeProcess(), self, TrackedQueue())
        self.config = config
        self.inbox: list[Command] = []
        self.step_no = int(Path(config.get("resume_from_checkpoint") or "checkpoint-0").name.split("-")[-1])

    def send(self, command: Command) -> None:  # the commands pipe
        if self.process.is_alive():
            self.inbox.append(command)

    async def join(self) -> int | None:
        return self.process.exitcode

    def _end(self, code: int) -> None:
        if self.process.is_alive():
            self.process.exitcode = code
            self.reports.put_nowait(None)

    def _checkpoint(self) -> None:
        path = Path(self.config["output_dir"]) / "checkpoints" / f"checkpoint-{self.step_no}"
        path.mkdir(parents=True, exist_ok=True)
        self.reports.put_nowait(Checkpoint(step=self.step_no, path=str(path), size_bytes=1, epoch=0.0, loss=1.0))

    def step(self) -> None:
        """One optimizer step: metrics, a checkpoint every other step, and obey a stop."""
        if not self.process.is_alive():
            return
        self.step_no += 1
        self.reports.put_nowait(Metrics(step=self.step_no, total_steps=0, loss=1.0 / self.step_no))
        stop = next((c for c in self.inbox if isinstance(c, Stop)), None)
        if stop is not None:
            if stop.save:
                self._checkpoint()
            self.reports.put_nowait(Result({"outcome": "stopped", "reason": stop.reason}))
            self._end(0)
        elif self.step_no % 2 == 0:
            self._checkpoint()

    def finish(self) -> None:
        if self.process.is_alive():
            self._checkpoint()
            self.reports.put_nowait(Result({"outcome": "completed", "reason": "completed"}))
            self._end(0)

    def crash(self) -> None:
        self._end(-9)


# ----------------------------------------------------------------------------- the model run

USER_OPS = ("start", "stop", "resume", "delete")
WORKER_OPS = ("step", "finish", "crash")
N_TASKS = 3
QUOTA = 1000

op_strategy = st.tuples(st.sampled_from(USER_OPS + WORKER_OPS), st.integers(0, N_TASKS - 1))
# Batches of 1-3 operations run concurrently; a doubled (op, task) is the "two clients" race.
batches_strategy = st.lists(st.lists(op_strategy, min_size=1, max_size=3), min_size=1, max_size=12)


class World:
    def __init__(self, app: App, task_ids: list[str]) -> None:
        self.app = app
        self.task_ids = task_ids
        self.workers: dict[str, FakeHandle] = {}
        self.deleted: set[str] = set()

    def spawn(self, kind: str, config: dict[str, Any], name: str) -> FakeHandle:
        handle = FakeHandle(config)
        self.workers[config["task_id"]] = handle
        return handle

    async def user(self, op: str, task_id: str) -> str:
        app = self.app
        try:
            if op == "start":
                await app.start_task(task_id)
            elif op == "stop":
                await app.stop_task(task_id)
            elif op == "resume":
                await app.resume_task(task_id, "")
            elif op == "delete":
                await app.delete_task(task_id, delete_files=False)
                self.deleted.add(task_id)
        except FailedPrecondition:
            return "refused"
        except NotFound:
            return "not_found"
        except ResourceExhausted:
            return "exhausted"
        return "ok"

    async def worker(self, op: str, task_id: str) -> str:
        handle = self.workers.get(task_id)
        if handle is not None:
            getattr(handle, op)()
        return "worker"

    async def settle(self) -> None:
        """Wait until the supervisor has handled every report and every worker exit."""
        sup = self.app.supervisor
        for _ in range(5000):
            await asyncio.sleep(0.001)
            busy = any(not job.worker.process.is_alive() or not job.worker.reports.empty()
                       or job.worker.reports.busy for job in sup.running.values())
            if not busy and not sup._lock.locked():
                return
        raise AssertionError("the supervisor did not settle")

    async def check(self) -> None:
        app, sup = self.app, self.app.supervisor
        states: dict[str, TaskState] = {}
        for task_id in self.task_ids:
            try:
                task = await app.tasks.get(task_id)
            except NotFound:
                assert task_id in self.deleted, f"{task_id} vanished without a delete"
                assert task_id not in sup.running and task_id not in sup.queue
                continue
            states[task_id] = task.state
            events = await app.events.after(task_id, 0, limit=10_000)
            assert [e.seq for e in events] == list(range(1, task.last_seq + 1)), "event numbers have gaps"
            changes = [e.payload for e in events if e.kind == "state_change"]
            assert changes[0]["from"] == "" and changes[0]["to"] == "created"
            for before, after in zip(changes, changes[1:]):
                assert after["from"] == before["to"], f"{task_id}: state jumped {before} -> {after}"
                assert (TaskState(after["from"]), TaskState(after["to"])) in TRANSITIONS, \
                    f"{task_id}: illegal move {after['from']} -> {after['to']}"
            assert changes[-1]["to"] == task.state.value
        active = {t for t, s in states.items() if s in (TaskState.RUNNING, TaskState.STOPPING)}
        assert active == set(sup.running), f"running tasks {active} but workers for {set(sup.running)}"
        assert len(sup.running) <= len(sup.devices)
        pending = [t for t, s in states.items() if s == TaskState.PENDING]
        assert sorted(pending) == sorted(sup.queue) and len(set(sup.queue)) == len(sup.queue)
        assert not (sup.queue and not sup.running), "a free device with a non-empty queue"
        records = await app.db.one("SELECT COUNT(*) FROM checkpoints")
        debits = await app.db.one("SELECT COUNT(*) FROM quota_ledger WHERE kind = 'checkpoint'")
        assert await app.quota.balance() == QUOTA - debits[0]
        assert debits[0] >= records[0]  # deleted tasks take their records, never their debits


async def _scenario(batches: list[list[tuple[str, int]]], model: Path, data: Path, base: Path) -> None:
    config = Config(state_dir=base / "state", allowed_roots=[base, model.parent, data.parent], quota_initial=QUOTA)
    db = await Database.open(config.db_path)
    app = App(config, db, ["cpu"])
    await app.quota.ensure_initial(QUOTA)
    ids = []
    for i in range(N_TASKS):
        task, _ = await app.create_task("sft", "", sft_params(model, data, base / f"out{i}"))
        ids.append(task.id)
    world = World(app, ids)
    original = supervisor_module.spawn_worker
    supervisor_module.spawn_worker = world.spawn
    try:
        for batch in batches:
            calls = [world.user(op, ids[i]) if op in USER_OPS else world.worker(op, ids[i]) for op, i in batch]
            results = await asyncio.gather(*calls)
            for (op, i), result in zip(batch, results):
                assert result in ("ok", "refused", "not_found", "worker"), (op, result)
            for key in {(op, i) for op, i in batch if op in USER_OPS}:
                wins = [r for (op, i), r in zip(batch, results) if (op, i) == key and r == "ok"]
                assert len(wins) <= 1, f"two clients both won {key}"
            await world.settle()
            await world.check()
        while app.supervisor.running:  # let everything end (the queue starts the next one)
            for task_id in list(app.supervisor.running):
                world.workers[task_id].finish()
            await world.settle()
        await world.check()
        for task_id in set(ids) - world.deleted:
            state = (await app.tasks.get(task_id)).state
            assert state == TaskState.CREATED or state.terminal, (task_id, state)
    finally:
        supervisor_module.spawn_worker = original
        await app.close()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batches_strategy)
def test_random_concurrent_operations_keep_the_state_machine_legal(batches, tiny_llama_dir, sft_jsonl) -> None:
    base = Path(tempfile.mkdtemp(prefix="modx-race-"))
    try:
        asyncio.run(_scenario(batches, tiny_llama_dir, sft_jsonl, base))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_known_interleavings(tiny_llama_dir, sft_jsonl) -> None:
    """The races that broke before: a stop landing as the run ends, a delete racing a
    resume, double deletes; each must keep one winner and a legal history."""
    cases = [
        [[("start", 0)], [("stop", 0), ("finish", 0)]],
        [[("start", 0)], [("stop", 0), ("crash", 0), ("stop", 0)]],
        [[("start", 0)], [("stop", 0)], [("step", 0)], [("delete", 0), ("resume", 0), ("delete", 0)]],
        [[("start", 0), ("start", 0), ("start", 1)], [("crash", 0)], [("delete", 0), ("delete", 0)]],
        [[("start", 0), ("start", 1)], [("stop", 1), ("stop", 1)], [("resume", 1), ("resume", 1), ("delete", 1)]],
    ]
    for batches in cases:
        base = Path(tempfile.mkdtemp(prefix="modx-race-"))
        try:
            asyncio.run(_scenario(batches, tiny_llama_dir, sft_jsonl, base))
        finally:
            shutil.rmtree(base, ignore_errors=True)


# ----------------------------------------------------------------------------- a real daemon

def _race(*calls) -> list[Any]:
    """Run the calls at the same moment from separate threads (separate clients)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = ("ok", calls[i]())
        except grpc.RpcError as exc:
            results[i] = (exc.code(), exc.details())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _one_winner(results: list[Any], loser_codes: set[grpc.StatusCode]) -> None:
    oks = [r for r in results if r[0] == "ok"]
    assert len(oks) == 1, results
    for r in results:
        if r[0] != "ok":
            assert r[0] in loser_codes, results
            assert r[1] and len(r[1].split()) >= 3, results


def test_two_clients_on_the_same_task_one_wins(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    from modx.v1 import training_pb2_grpc

    d = make_daemon()
    other = grpc.insecure_channel(d.address)  # the second client has its own connection
    tr1, tr2 = d.training, training_pb2_grpc.TrainingServiceStub(other)
    slow = dict(num_train_epochs=50, per_device_train_batch_size=1, gradient_accumulation_steps=1,
                save_steps=1000, logging_steps=1, max_seq_length=64)
    busy = tr1.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "busy", **slow))).task.id
    tr1.StartTask(T.StartTaskRequest(task_id=busy))  # holds the device: the tasks below stay pending
    FP, NF = grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND

    for round_no in range(4):
        task_id = tr1.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl,
                                                             tmp_path / f"t{round_no}"))).task.id
        req = T.StartTaskRequest(task_id=task_id)
        _one_winner(_race(lambda: tr1.StartTask(req), lambda: tr2.StartTask(req)), {FP})
        stop = T.StopTaskRequest(task_id=task_id)
        _one_winner(_race(lambda: tr1.StopTask(stop), lambda: tr2.StopTask(stop)), {FP})
        resume = T.ResumeTaskRequest(task_id=task_id)
        _one_winner(_race(lambda: tr1.ResumeTask(resume), lambda: tr2.ResumeTask(resume)), {FP})
        assert state_name(tr1.GetTask(T.GetTaskRequest(task_id=task_id)).task.state) == "pending"
        tr1.StopTask(stop)
        delete = T.DeleteTaskRequest(task_id=task_id)
        if round_no % 2:
            # delete against resume: whichever lands first wins, the other is refused cleanly
            results = _race(lambda: tr1.DeleteTask(delete), lambda: tr2.ResumeTask(resume))
            _one_winner(results, {FP, NF})
            if results[1][0] == "ok":  # resume won: the task is pending, the delete was refused
                assert results[0][0] == FP and "stop it before deleting" in results[0][1]
                tr1.StopTask(stop)
                tr1.DeleteTask(delete)
            else:
                assert results[1][0] == NF
        else:
            _one_winner(_race(lambda: tr1.DeleteTask(delete), lambda: tr2.DeleteTask(delete)), {NF})
        assert pytest.raises(grpc.RpcError, tr1.GetTask, T.GetTaskRequest(task_id=task_id)).value.code() == NF

    # the running task: two stops, one wins, the other hears it is already stopping
    results = _race(lambda: tr1.StopTask(T.StopTaskRequest(task_id=busy)),
                    lambda: tr2.StopTask(T.StopTaskRequest(task_id=busy)))
    _one_winner(results, {FP})
    assert any("already stopping" in str(r[1]) for r in results if r[0] != "ok"), results
    assert state_name(tr1.GetTask(T.GetTaskRequest(task_id=busy)).task.state) in {"stopping", "stopped"}
    other.close()  # (how a stop ends is test_lifecycle's and test_sigterm's business)
