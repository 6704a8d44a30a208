"""The task state machine: legal moves only, terminal states left only by resume."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from modxd.errors import FailedPrecondition
from modxd.states import TERMINAL, TRANSITIONS, TaskState, check_transition

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
