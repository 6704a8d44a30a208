"""The state machines of tasks and of jobs (evaluations, packages, imports).

A task's terminal states never change except through resume; a job's never change
at all. Kept as plain data so the supervisor, the job runner, the store and the tests
all check the same tables (see tests/test_states.py for the property tests over
random operations).
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


# ----- jobs: evaluations, packages, GGUF imports (jobs/runner.py) ---------------------------------------

class JobState(str, enum.Enum):
    PENDING = "pending"  # waiting for the one worker of its kind
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # it ran and did not finish: its worker failed, was killed, or the daemon went away
    CANCELLED = "cancelled"  # it will never run to its end: its task was deleted, or the daemon stopped first

    def __str__(self) -> str:  # what a sentence shows ("package pkg-1 is failed"), on every Python version
        return self.value

    @property
    def terminal(self) -> bool:
        return self in JOB_TERMINAL


JOB_TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})

# (from, to) -> the operation that may cause it. A job never leaves a terminal state.
JOB_TRANSITIONS: dict[tuple[JobState, JobState], str] = {
    (JobState.PENDING, JobState.RUNNING): "run",
    (JobState.PENDING, JobState.CANCELLED): "cancel",
    (JobState.RUNNING, JobState.COMPLETED): "finish",
    (JobState.RUNNING, JobState.FAILED): "fail",
    (JobState.RUNNING, JobState.CANCELLED): "cancel",
}


def check_job_transition(job_id: str, current: JobState, target: JobState) -> None:
    """Raise FailedPrecondition with a sentence when a job may not move current -> target."""
    if (current, target) in JOB_TRANSITIONS:
        return
    why = "it has ended" if current.terminal else f"a {current.value} job cannot become {target.value}"
    raise FailedPrecondition(f"job {job_id} is {current.value}: {why}")
