"""The task state machine. Terminal states never change except through resume.

Kept as plain data so the supervisor, the store and the tests all check the
same table (see tests/test_states.py for the property test over random ops).
"""
from __future__ import annotations

import enum

from .errors import FailedPrecondition


class TaskState(str, enum.Enum):
    CREATED = "created"
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def active(self) -> bool:
        """Holds (or waits for) a device: cannot be deleted or edited."""
        return self in (TaskState.PENDING, TaskState.RUNNING, TaskState.STOPPING)


TERMINAL = frozenset({TaskState.STOPPED, TaskState.COMPLETED, TaskState.FAILED})

# (from, to) -> the operation that may cause it.
TRANSITIONS: dict[tuple[TaskState, TaskState], str] = {
    (TaskState.CREATED, TaskState.PENDING): "start",
    (TaskState.PENDING, TaskState.RUNNING): "schedule",
    (TaskState.PENDING, TaskState.STOPPED): "stop",
    (TaskState.PENDING, TaskState.FAILED): "fail",
    (TaskState.RUNNING, TaskState.STOPPING): "stop",
    (TaskState.RUNNING, TaskState.COMPLETED): "finish",
    (TaskState.RUNNING, TaskState.STOPPED): "stop",
    (TaskState.RUNNING, TaskState.FAILED): "fail",
    (TaskState.STOPPING, TaskState.STOPPED): "stop",
    (TaskState.STOPPING, TaskState.COMPLETED): "finish",
    (TaskState.STOPPING, TaskState.FAILED): "fail",
    (TaskState.STOPPED, TaskState.PENDING): "resume",
    (TaskState.FAILED, TaskState.PENDING): "resume",
}

_HINTS = {
    "start": "only a created task can be started; use resume for a stopped or failed one",
    "stop": "only a pending or running task can be stopped",
    "resume": "only a stopped or failed task can be resumed",
}


def check_transition(task_id: str, current: TaskState, target: TaskState, op: str) -> None:
    """Raise FailedPrecondition with a sentence when `op` may not move current -> target."""
    if TRANSITIONS.get((current, target)) == op:
        return
    if current == TaskState.STOPPING and op == "stop":
        raise FailedPrecondition(f"task {task_id} is already stopping")
    hint = _HINTS.get(op, "")
    raise FailedPrecondition(
        f"cannot {op} task {task_id}: it is {current.value}" + (f" ({hint})" if hint else "")
    )
