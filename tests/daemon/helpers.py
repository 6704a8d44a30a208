"""Small builders for requests against a real daemon."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from modx.v1 import common_pb2 as C
from modx.v1 import training_pb2 as T

TYPES = {"sft": C.TASK_TYPE_SFT, "pretrain": C.TASK_TYPE_PRETRAIN}


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
