"""The worker protocol (modxd/protocol.py): every message round-trips, nothing unknown or malformed passes.

And the error codes a worker answers with are the domain errors' own (errors.BY_CODE), each of which
api/status.py maps to a gRPC status: one table from a worker's refusal to what a client sees.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

import grpc
import pytest

from modxd import errors, protocol as P
from modxd.api.status import code_for


def sample(hint: Any, name: str) -> Any:
    """A value of the declared type (not the default, so a field lost on the way is noticed)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in typing.get_args(hint) if a is not type(None)), name)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [sample(item, name)] if item is not Any else [{"path": "/x", "kind": "file"}]
    if origin is dict:
        _, item = typing.get_args(hint)
        return {"k": sample(item, name)} if item is not Any else {"outcome": "completed", "n": 3}
    if hint is Any:
        return {"any": 1}
    if name == "code":
        return errors.FailedPrecondition.code
    return {bool: True, int: 7, float: 2.5, str: f"{name}-value"}[hint]


def example(cls: type[P.Message]) -> P.Message:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: sample(hints[f.name], f.name) for f in dataclasses.fields(cls)})


EVERY = sorted({(kind, cls) for vocabularies in (P.REPORTS, P.COMMANDS)
                for kind, vocabulary in vocabularies.items() for cls in vocabulary.values()},
               key=lambda kc: (kc[0], kc[1].__name__))


@pytest.mark.parametrize("kind, cls", EVERY, ids=[f"{k}-{c.__name__}" for k, c in EVERY])
def test_every_message_round_trips_as_strict_json(kind: str, cls: type[P.Message]) -> None:
    message = example(cls)
    data = json.loads(json.dumps(P.encode(message), allow_nan=False))  # what a pipe or socket carries
    decode = P.decode_report if issubclass(cls, P.Report) else P.decode_command
    assert decode(data, kind) == message


def test_every_kind_of_worker_has_both_vocabularies() -> None:
    assert set(P.REPORTS) == set(P.COMMANDS) == set(P.KINDS)
    for kind in P.KINDS:
        assert P.Result in P.REPORTS[kind].values() and P.Failure in P.REPORTS[kind].values()
        assert P.Stop in P.COMMANDS[kind].values()


def test_a_field_left_unset_is_not_sent() -> None:
    assert P.encode(P.Metrics(step=3, total_steps=10, loss=1.5)) == {
        "type": "metrics", "step": 3, "total_steps": 10, "loss": 1.5}
    assert P.Metrics(step=3, total_steps=10, loss=1.5).point() == {"step": 3, "total_steps": 10, "loss": 1.5}


@pytest.mark.parametrize("data, kind, fragment", [
    ({"type": "metricz", "step": 1, "total_steps": 2}, "train", "message 'metricz': unknown to the train worker"),
    ({"type": "checkpoint", "step": 1, "path": "/p", "size_bytes": 1}, "eval",
     "message 'checkpoint': unknown to the eval worker"),
    ({"type": "metrics", "step": 1}, "train", "message 'metrics': missing field(s) total_steps"),
    ({"type": "metrics", "step": 1, "total_steps": 2, "los": 1.0}, "train", "unexpected field(s) los"),
    ({"type": "metrics", "step": "1", "total_steps": 2}, "train", "field step must be an integer, got str"),
    ({"type": "metrics", "step": True, "total_steps": 2}, "train", "field step must be an integer, got bool"),
    ({"type": "files", "wrote": "/p", "removed": []}, "train", "field wrote must be a list, got str"),
    ({"type": "progress", "checkpoint_index": 0, "checkpoint_count": 1, "example_index": 0, "example_count": 1,
      "checkpoint_id": "c", "running_scores": {"ppl": "high"}}, "eval",
     "field running_scores.ppl must be a number, got str"),
    ({"type": "chat_error", "request_id": "r1", "code": "teapot", "message": "m"}, "inference",
     "code 'teapot' is not one of"),
    ({"step": 1}, "train", "must name its type under 'type'"),
    (["log"], "train", "a message must be a dict, got list"),
])
def test_unknown_and_malformed_reports_are_errors(data: Any, kind: str, fragment: str) -> None:
    with pytest.raises(P.ProtocolError, match=fragment.replace("(", r"\(").replace(")", r"\)")) as info:
        P.decode_report(data, kind)
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        assert info.value.message_type == data["type"]


def test_a_broken_chat_message_names_its_request() -> None:
    with pytest.raises(P.ProtocolError) as info:
        P.decode_report({"type": "delta", "request_id": "r7", "text": 5}, "inference")
    assert info.value.request_id == "r7" and info.value.message_type == "delta"


def test_commands_are_checked_too() -> None:
    assert P.decode_command({"cmd": "stop"}, "eval") == P.Stop(reason="", save=True)
    with pytest.raises(P.ProtocolError, match="message 'save': unknown to the eval worker"):
        P.decode_command({"cmd": "save"}, "eval")
    with pytest.raises(P.ProtocolError, match="field save must be true or false"):
        P.decode_command({"cmd": "stop", "save": "no"}, "train")


def test_encode_checks_what_the_sender_built() -> None:
    with pytest.raises(P.ProtocolError, match="field step must be an integer, got str"):
        P.encode(P.Metrics(step="3", total_steps=4))  # type: ignore[arg-type]
    with pytest.raises(P.ProtocolError, match="is not a message of the worker protocol"):
        P.encode({"type": "log", "level": "info", "message": "a dict is not a message"})  # type: ignore[arg-type]


def test_numbers_of_other_libraries_travel_as_plain_numbers() -> None:
    numpy = pytest.importorskip("numpy")
    data = P.encode(P.Metrics(step=numpy.int64(3), total_steps=4, loss=numpy.float32(1.25)))
    assert data == {"type": "metrics", "step": 3, "total_steps": 4, "loss": 1.25}
    assert type(data["step"]) is int and type(data["loss"]) is float


@pytest.mark.parametrize("code", errors.CODES)
def test_a_worker_error_code_maps_to_one_domain_error_and_its_status(code: str) -> None:
    error = errors.error_for(code, "the sentence")
    if code == errors.INTERNAL:
        assert error is None  # the daemon answers INTERNAL: a bug in modx or a library
        return
    assert isinstance(error, errors.ModxError) and type(error).code == code and str(error) == "the sentence"
    assert code_for(error) == grpc.StatusCode[code.upper()]
    assert P.ChatError("r", code, "the sentence").code == code
