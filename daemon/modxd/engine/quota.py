"""Paying for a checkpoint before writing it: the worker's side of the quota reservation.

Every checkpoint costs one quota unit and the balance never goes below zero (SPEC), so a
worker asks the daemon for a unit before each save and waits for the answer (the messages are
modxd/protocol.py's):

    worker -> daemon   QuotaReserve(request_id, step)
    daemon -> worker   QuotaReply(request_id, hold_id, reason, message)
                       (granted when hold_id is set; reason quota_exhausted or error otherwise)
    worker -> daemon   QuotaRelease(hold_id)   the save failed: the unit is free again
    the ``Checkpoint`` report carries the hold_id: recording it turns the hold into the debit.

The reply travels on the command pipe, so commands that arrive meanwhile (a stop) are kept and
handed on afterwards. What a run still holds when it ends is released by the daemon, and a
restart releases everything (store/checkpoints.py); the daemon's side is jobs/supervisor.py. In a
distributed run rank 0 asks (through the coordinator, worker/launch.py) and broadcasts the
answer, so every rank saves or stops at the same step (:func:`agree`).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from ..protocol import (DAEMON_GONE, QUOTA_ERROR, QUOTA_EXHAUSTED, Command, Emit, Poll, QuotaRelease, QuotaReply,
                        QuotaReserve, Stop)

__all__ = ["EXHAUSTED", "DAEMON_GONE", "ERROR", "Decision", "QuotaGate", "agree"]

EXHAUSTED = QUOTA_EXHAUSTED  # the task's stop reason (SPEC)
ERROR = QUOTA_ERROR
REPLY_TIMEOUT_S = 600.0  # a daemon that never answers must not hang the run forever
_WAIT_SLICE_S = 0.5


@dataclass(frozen=True)
class Decision:
    """The answer to a reservation: granted with a hold id, or refused with a reason and a sentence."""

    granted: bool
    hold_id: str = ""
    reason: str = ""  # quota_exhausted, daemon_gone or error when refused
    message: str = ""


GRANTED = Decision(True)


class QuotaGate:
    """The worker's side: asks for a unit and waits for the answer without losing other commands.

    ``poll(timeout)`` is the command source (the worker's pipe, or rank 0's link to the
    coordinator). Everything that is not the awaited reply is kept and returned by :meth:`poll`
    later, in order. Disabled (a run no daemon charges: tests, benchmarks), every save is granted.
    """

    def __init__(self, emit: Emit, poll: Poll, enabled: bool, timeout_s: float = REPLY_TIMEOUT_S):
        self.emit, self._poll, self.enabled, self.timeout_s = emit, poll, enabled, timeout_s
        self._kept: list[Command] = []
        self._ids = itertools.count(1)

    def poll(self, timeout: float | None = 0.0) -> Command | None:
        """The next command, those kept while waiting for a reply first; stale replies are dropped."""
        if self._kept:
            return self._kept.pop(0)
        command = self._poll(timeout) if timeout != 0.0 else self._poll()
        return None if isinstance(command, QuotaReply) else command

    def reserve(self, step: int) -> Decision:
        if not self.enabled:
            return GRANTED
        request_id = next(self._ids)
        self.emit(QuotaReserve(request_id, step))
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            command = self._poll(_WAIT_SLICE_S)
            if command is None:
                continue
            if isinstance(command, QuotaReply):
                if command.request_id == request_id:
                    hold = command.hold_id
                    return Decision(bool(hold), hold, "" if hold else command.reason or EXHAUSTED, command.message)
                continue  # the answer to an earlier request that timed out
            self._kept.append(command)
            if isinstance(command, Stop) and command.reason == DAEMON_GONE:
                return Decision(False, reason=DAEMON_GONE, message="the daemon is gone, so nothing can pay for "
                                f"or record the checkpoint of step {step}")
        return Decision(False, reason=ERROR, message=f"the daemon did not answer the quota reservation for the "
                                                     f"checkpoint of step {step} within {self.timeout_s:g}s")

    def release(self, hold_id: str) -> None:
        """The save this unit was held for failed: give it back."""
        if self.enabled and hold_id:
            self.emit(QuotaRelease(hold_id))


_CODES = {"": 1, EXHAUSTED: 0, DAEMON_GONE: 2, ERROR: 3}


def agree(decision: Decision | None) -> Decision:
    """Rank 0's decision on every rank (a save is collective); the decision itself in one process."""
    from .distributed import broadcast_code, world_size

    if world_size() <= 1:
        assert decision is not None
        return decision
    code = broadcast_code(_CODES.get(decision.reason, 3) if decision is not None else 0)
    if decision is not None:
        return decision
    reason = next(r for r, c in _CODES.items() if c == code)
    return GRANTED if code == 1 else Decision(False, reason=reason,
                                              message="rank 0 could not reserve quota for this checkpoint")
