"""Small builders for requests against a real daemon."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from modx.v1 import common_pb2 as C
from modx.v1 import training_pb2 as T

TYPES = {"sft": C.TASK_TYPE_SFT, "pretrain": C.TASK_TYPE_PRETRAIN, "dpo": C.TASK_TYPE_DPO, "orpo": C.TASK_TYPE_ORPO}


def create_request(task_type: str = "sft", template: str = "", **params: Any) -> T.CreateTaskRequest:
    req = T.CreateTaskRequest(type=TYPES[task_type], template=template)
    for key, value in params.items():
        req.params[key].string_value = str(value)
    return req


def sft_params(model: Path, data: Path, out: Path, **extra: Any) -> dict[str, Any]:
    return {"train_file": str(data), "model_dir": str(model), "output_dir": str(out), **extra}


def state_name(value: int) -> str:
    return C.TaskState.Name(value).removeprefix("TASK_STATE_").lower()


def wait_for_state(daemon, task_id: str, states: set[str], timeout: float = 300.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        task = daemon.training.GetTask(T.GetTaskRequest(task_id=task_id)).task
        if state_name(task.state) in states:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not reach {states} in {timeout}s; it is {state_name(task.state)}"
                         f" ({task.state_reason})\n{daemon.log()[-3000:]}")


def worker_pids(state_dir) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if f"MODX_STATE_DIR={state_dir}".encode() in env and b"spawn_main" in cmd:
            pids.append(int(entry))
    return pids


# ----- shared by the daemon and fault tests -------------------------------------------------------

TERMINAL = {"completed", "failed", "stopped"}


def run_task(daemon, req, timeout: float = 300.0) -> tuple[str, Any]:
    """Create, start and wait for a terminal state; returns (task id, task)."""
    task_id = daemon.training.CreateTask(req).task.id
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    return task_id, wait_for_state(daemon, task_id, TERMINAL, timeout)


def loss_points(daemon, task_id: str) -> list[tuple[int, float, float]]:
    """(step, loss, time) of every logged training loss, in the order they were stored."""
    points = daemon.training.ListMetrics(T.ListMetricsRequest(task_id=task_id)).points
    return [(p.step, p.loss, p.time.ToNanoseconds() / 1e9) for p in points if p.HasField("loss")]


def wait_event(daemon, task_id: str, kind: int, until=lambda event: True, timeout: float = 120.0) -> Any:
    """The first event of `kind` (history included) for which `until(event)` holds."""
    for response in daemon.training.WatchTask(T.WatchTaskRequest(task_id=task_id, kinds=[kind]), timeout=timeout):
        if until(response.event):
            return response.event
    raise AssertionError(f"task {task_id} ended without the awaited event\n{daemon.log()[-3000:]}")


def rpc_error(call) -> Any:
    """Run `call`, which must fail with an RpcError; returns the error."""
    import grpc

    try:
        call()
    except grpc.RpcError as exc:
        return exc
    raise AssertionError("the call succeeded but should have failed")


def task_params(task) -> dict[str, Any]:
    """A Task message's parameter snapshot as plain Python values (what the worker gets)."""
    out: dict[str, Any] = {}
    for key, value in task.params.items():
        kind = value.WhichOneof("kind")
        out[key] = list(value.list_value.values) if kind == "list_value" else getattr(value, kind)
    return out


def task_count(daemon) -> int:
    return daemon.training.ListTasks(T.ListTasksRequest()).total_size


def check_checkpoint_usable(path: str | Path, step: int) -> None:
    """A checkpoint dir is complete: trainer state at `step`, finite adapter (or model) weights,
    optimizer, scheduler and RNG state to resume from, and the tokenizer."""
    import json

    from safetensors.torch import load_file

    path = Path(path)
    state = json.loads((path / "trainer_state.json").read_text())
    assert state["global_step"] == step, (path, state["global_step"])
    weights = path / "adapter_model.safetensors"
    tensors = load_file(str(weights if weights.is_file() else path / "model.safetensors"))
    assert tensors and all(t.isfinite().all() for t in tensors.values())
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "tokenizer.json"):
        assert (path / name).is_file(), f"{name} missing from {path}"


class Watcher:
    """A client in its own thread and connection, following a task's events to the end."""

    def __init__(self, address: str, task_id: str, after_seq: int = 0) -> None:
        import threading

        self.address, self.task_id, self.after_seq = address, task_id, after_seq
        self.events: list[Any] = []
        self.error: Any = None
        self.ended = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import grpc
        from modx.v1 import training_pb2_grpc

        with grpc.insecure_channel(self.address) as channel:
            try:
                stub = training_pb2_grpc.TrainingServiceStub(channel)
                for response in stub.WatchTask(T.WatchTaskRequest(task_id=self.task_id, after_seq=self.after_seq)):
                    self.events.append(response.event)
                self.ended = True
            except grpc.RpcError as exc:
                self.error = exc

    def join(self, timeout: float = 30.0) -> "Watcher":
        self.thread.join(timeout)
        return self

    @property
    def seqs(self) -> list[int]:
        return [e.seq for e in self.events]
