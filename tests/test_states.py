"""The state machines: legal moves only; a task's terminal states left only by resume, a job's never."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from modxd.errors import FailedPrecondition
from modxd.states import (JOB_TERMINAL, JOB_TRANSITIONS, TERMINAL, TRANSITIONS, JobState, TaskState,
                          check_job_transition, check_transition)

OPS = ("start", "schedule", "stop", "finish", "fail", "resume")


def test_terminal_states_are_left_only_by_resume() -> None:
    for (src, _dst), op in TRANSITIONS.items():
        if src in TERMINAL:
            assert op == "resume"


def test_completed_is_final() -> None:
    assert not [k for k in TRANSITIONS if k[0] == TaskState.COMPLETED]


@pytest.mark.parametrize("state, target, op, fragment", [
    (TaskState.COMPLETED, TaskState.PENDING, "start", "it is completed"),
    (TaskState.CREATED, TaskState.STOPPING, "stop", "only a pending or running task can be stopped"),
    (TaskState.STOPPING, TaskState.STOPPING, "stop", "already stopping"),
    (TaskState.COMPLETED, TaskState.PENDING, "resume", "only a stopped or failed task"),
])
def test_illegal_moves_explain_themselves(state, target, op, fragment) -> None:
    with pytest.raises(FailedPrecondition, match=fragment):
        check_transition("t-1", state, target, op)


@given(st.lists(st.tuples(st.sampled_from(OPS), st.sampled_from(list(TaskState))), max_size=40))
def test_random_operation_sequences_never_reach_an_illegal_state(ops) -> None:
    state = TaskState.CREATED
    for op, target in ops:
        try:
            check_transition("t", state, target, op)
        except FailedPrecondition:
            continue
        assert TRANSITIONS[(state, target)] == op
        if state in TERMINAL:
            assert op == "resume"
        state = target


def test_a_job_never_leaves_a_terminal_state_and_every_state_is_reachable() -> None:
    assert not [k for k in JOB_TRANSITIONS if k[0] in JOB_TERMINAL]
    reached, frontier = {JobState.PENDING}, [JobState.PENDING]
    while frontier:
        state = frontier.pop()
        for src, dst in JOB_TRANSITIONS:
            if src == state and dst not in reached:
                reached.add(dst)
                frontier.append(dst)
    assert reached == set(JobState)  # cancelled included: it is set (jobs/runner.py), not only declared


@pytest.mark.parametrize("state, target, fragment", [
    (JobState.COMPLETED, JobState.FAILED, "job j-1 is completed: it has ended"),
    (JobState.CANCELLED, JobState.RUNNING, "job j-1 is cancelled: it has ended"),
    (JobState.PENDING, JobState.COMPLETED, "a pending job cannot become completed"),
])
def test_illegal_job_moves_explain_themselves(state, target, fragment) -> None:
    with pytest.raises(FailedPrecondition, match=fragment):
        check_job_transition("j-1", state, target)


@given(st.lists(st.sampled_from(list(JobState)), max_size=20))
def test_random_job_moves_end_at_most_once(targets) -> None:
    state, ended = JobState.PENDING, 0
    for target in targets:
        try:
            check_job_transition("j", state, target)
        except FailedPrecondition:
            continue
        assert not state.terminal
        state = target
        ended += state.terminal
    assert ended <= 1
    assert f"{state}" == state.value  # sentences show the state's name, not the enum's
