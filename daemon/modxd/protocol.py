"""The worker protocol: every message between the daemon and its workers, typed, in both directions.

Processes exchange plain dicts over their pipes and sockets (the daemon <-> a worker, the training
coordinator <-> rank 0); inside a process every message is one of the frozen dataclasses below.
:func:`encode` turns a message into its dict, :func:`decode_report` and :func:`decode_command` turn a
dict back. Both check every field against its declared type, so a message that is unknown to the
receiving kind of worker, lacks a field, carries an extra one or a value of the wrong type raises
:class:`ProtocolError` (naming the message type): it is never silently dropped. A field left at its
default of None is not sent.

Reports (worker -> daemon, key ``type``) and commands (daemon -> worker, key ``cmd``) each have a
vocabulary per worker kind (:data:`REPORTS`, :data:`COMMANDS`): a training worker may send
``checkpoint``, an evaluation worker may not. Error codes (:class:`ChatError`) are the codes of the
domain errors (errors.BY_CODE), which is how a worker's refusal becomes the same gRPC status as the
daemon's own.

Stdlib and errors.py only: the daemon (jobs/), the worker runtime (worker/) and the engine all import
it, and the engine must not import jobs/ or worker/. docs/architecture.md lists the messages.
"""
from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Union

from . import errors

__all__ = [
    "ProtocolError", "Message", "Report", "Command", "encode", "decode_report", "decode_command", "Emit", "Poll",
    "REPORTS", "COMMANDS", "KINDS",
    # reports
    "Log", "Warn", "Result", "Failure", "Files", "TotalSteps", "Metrics", "Checkpoint", "CheckpointDeleted",
    "QuotaReserve", "QuotaRelease", "Learning", "RunMeasured", "EvalProgress", "Score", "PackageProgress", "PackageFile", "Ready", "Delta",
    "Loaded", "Done", "ChatError", "Models", "Unloaded",
    # commands
    "Stop", "Save", "QuotaReply", "Chat", "Cancel", "ListModels", "Unload", "ReleaseDevice",
    # words both sides use
    "DAEMON_GONE", "QUOTA_EXHAUSTED", "QUOTA_ERROR",
]

DAEMON_GONE = "daemon_gone"  # a stop's reason when the daemon's pipe closed: nothing records a save any more
QUOTA_EXHAUSTED = "quota_exhausted"  # a refused reservation, and the task's stop reason (SPEC)
QUOTA_ERROR = "error"  # a reservation the daemon could not decide


class ProtocolError(ValueError):
    """A message the receiver does not understand: unknown, or a field missing, extra or mistyped."""

    def __init__(self, message_type: str, problem: str, request_id: str = "") -> None:
        super().__init__(f"message {message_type!r}: {problem}" if message_type else problem)
        self.message_type = message_type
        self.request_id = request_id  # a chat's id when the broken message named one


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[str]
    KEY: ClassVar[str]


@dataclass(frozen=True)
class Report(Message):
    """Worker -> daemon."""

    KEY: ClassVar[str] = "type"


@dataclass(frozen=True)
class Command(Message):
    """Daemon -> worker."""

    KEY: ClassVar[str] = "cmd"


Emit = Callable[[Report], None]
Poll = Callable[..., Union[Command, None]]  # poll(timeout=0.0): the next command; None when there is none yet


# ----- reports every job sends ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Log(Report):
    """A log line for the task's or job's event log (the chat worker's go to the daemon's log)."""

    TYPE: ClassVar[str] = "log"
    level: str
    message: str


@dataclass(frozen=True)
class Warn(Report):
    """Something a person should know, with a stable code (`eval_disabled`, `quota_low` ...)."""

    TYPE: ClassVar[str] = "warning"
    code: str
    message: str
    level: str = "warning"


@dataclass(frozen=True)
class Result(Report):
    """The job's outcome, its last message: what the job kind's entry point returned (train: outcome,
    reason, final_step ...; eval: scores, best_checkpoint_id ...; package: files ...)."""

    TYPE: ClassVar[str] = "result"
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure(Report):
    """The job failed: the sentence it is stored with (worker/runtime.py describe_failure) and the traceback."""

    TYPE: ClassVar[str] = "error"
    error: str
    traceback: str = ""


@dataclass(frozen=True)
class Files(Report):
    """What the job wrote, before a library fills it, and what is gone again (modxd/files.py)."""

    TYPE: ClassVar[str] = "files"
    wrote: list[dict[str, Any]] = field(default_factory=list)  # files.entry(): path, kind, dev?, ino?
    removed: list[str] = field(default_factory=list)


# ----- training ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TotalSteps(Report):
    TYPE: ClassVar[str] = "total_steps"
    total_steps: int


@dataclass(frozen=True)
class Metrics(Report):
    """One point of the metrics history; `time` is the worker's clock when it was logged."""

    TYPE: ClassVar[str] = "metrics"
    step: int
    total_steps: int
    epoch: float | None = None
    percent: float | None = None
    eta_seconds: float | None = None
    loss: float | None = None
    perplexity: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    tokens_per_second: float | None = None
    eval_loss: float | None = None
    eval_perplexity: float | None = None
    time: float | None = None
    host_memory_rss_bytes: int | None = None
    device_memory_allocated_bytes: int | None = None
    device_memory_reserved_bytes: int | None = None
    device_memory_peak_bytes: int | None = None
    gpu_utilization_percent: float | None = None
    gpu_power_watts: float | None = None
    gpu_temperature_celsius: float | None = None
    # Preference runs (dpo, orpo): engine/preference_metrics.py POINT_FIELDS, the MetricsPoint fields of that name.
    reward_chosen: float | None = None
    reward_rejected: float | None = None
    reward_margin: float | None = None
    reward_accuracy: float | None = None
    logps_chosen: float | None = None
    logps_rejected: float | None = None
    nll_loss: float | None = None
    log_odds_ratio: float | None = None
    log_odds_chosen: float | None = None
    eval_reward_chosen: float | None = None
    eval_reward_rejected: float | None = None
    eval_reward_margin: float | None = None
    eval_reward_accuracy: float | None = None
    eval_logps_chosen: float | None = None
    eval_logps_rejected: float | None = None
    eval_nll_loss: float | None = None
    eval_log_odds_ratio: float | None = None
    eval_log_odds_chosen: float | None = None

    def point(self) -> dict[str, Any]:
        """The stored metrics point: the fields that were set."""
        return _fields_of(self)


@dataclass(frozen=True)
class Checkpoint(Report):
    """A checkpoint was committed; `hold_id` is the quota unit reserved for it (engine/quota.py)."""

    TYPE: ClassVar[str] = "checkpoint"
    step: int
    path: str
    size_bytes: int
    epoch: float | None = None
    loss: float | None = None
    hold_id: str = ""


@dataclass(frozen=True)
class CheckpointDeleted(Report):
    """Retention (save_total_limit) deleted a checkpoint."""

    TYPE: ClassVar[str] = "checkpoint_deleted"
    step: int
    path: str


@dataclass(frozen=True)
class QuotaReserve(Report):
    """Before a save: the unit that pays for it. The answer is a :class:`QuotaReply` command."""

    TYPE: ClassVar[str] = "quota_reserve"
    request_id: int
    step: int


@dataclass(frozen=True)
class QuotaRelease(Report):
    """The save a unit was held for failed: it is free again."""

    TYPE: ClassVar[str] = "quota_release"
    hold_id: str


@dataclass(frozen=True)
class Learning(Report):
    """Did the run learn (engine/learning.py): the base and final model's mean loss on the same examples,
    the verdict, its sentence and what to change."""

    TYPE: ClassVar[str] = "learning"
    data: str  # eval_file, eval_split or train_slice
    examples: int
    base_loss: float
    final_loss: float
    relative_improvement: float
    verdict: str  # learned, learned_little, did_not_learn, got_worse
    sentence: str
    advice: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunMeasured(Report):
    """What the run measured, to put next to its estimate: training seconds (train begin to the last
    step's log) and the peak memory (the process's peak RSS on the CPU, peak allocated VRAM on a GPU)."""

    TYPE: ClassVar[str] = "measured"
    training_seconds: float
    peak_memory_bytes: int
    memory_kind: str  # host_rss or device


# ----- evaluation and packaging ------------------------------------------------------------------------

@dataclass(frozen=True)
class EvalProgress(Report):
    TYPE: ClassVar[str] = "progress"
    checkpoint_index: int
    checkpoint_count: int
    example_index: int
    example_count: int
    checkpoint_id: str
    running_scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Score(Report):
    """One candidate's scores, as soon as they are known (the ranking comes with the result)."""

    TYPE: ClassVar[str] = "score"
    checkpoint_id: str | None = None
    label: str | None = None
    step: int | None = None
    perplexity: float | None = None
    bits_per_byte: float | None = None
    semantic_similarity: float | None = None
    coherence: float | None = None
    coverage: float | None = None
    composite: float | None = None
    # dpo, orpo: on the held-out pairs (engine/preference_eval.py), the CheckpointScore fields of that name
    preference_accuracy: float | None = None
    preference_margin: float | None = None
    preference_pairs: int | None = None


@dataclass(frozen=True)
class PackageProgress(Report):
    TYPE: ClassVar[str] = "progress"
    phase: str
    quant_type: str = ""
    tensors_done: int = 0
    tensors_total: int = 0
    bytes_written: int = 0


@dataclass(frozen=True)
class PackageFile(Report):
    """A file of the package, complete in its final place."""

    TYPE: ClassVar[str] = "file"
    path: str
    name: str
    kind: str
    quant_type: str
    size_bytes: int
    sha256: str


# ----- chat (the inference worker) ---------------------------------------------------------------------

@dataclass(frozen=True)
class Ready(Report):
    TYPE: ClassVar[str] = "ready"
    pid: int


@dataclass(frozen=True)
class Delta(Report):
    TYPE: ClassVar[str] = "delta"
    request_id: str
    text: str
    token_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Loaded(Report):
    TYPE: ClassVar[str] = "loaded"
    request_id: str
    model_key: str
    cached: bool
    load_ms: float
    device: str


@dataclass(frozen=True)
class Done(Report):
    TYPE: ClassVar[str] = "done"
    request_id: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_ms: float
    tokens_per_second: float
    text: str
    model_key: str
    cached: bool = False
    load_ms: float = 0.0


@dataclass(frozen=True)
class ChatError(Report):
    """A chat refused or failed: `code` is a domain error's (errors.CODES), INTERNAL for a bug."""

    TYPE: ClassVar[str] = "chat_error"
    request_id: str
    code: str
    message: str

    def __post_init__(self) -> None:
        if self.code not in errors.CODES:
            raise ProtocolError(self.TYPE, f"code {self.code!r} is not one of {', '.join(errors.CODES)}",
                                self.request_id)


@dataclass(frozen=True)
class Models(Report):
    """What is loaded now (request_id "" when the worker tells it unasked, after a change)."""

    TYPE: ClassVar[str] = "models"
    request_id: str
    models: list[dict[str, Any]]
    memory_limit_bytes: int


@dataclass(frozen=True)
class Unloaded(Report):
    TYPE: ClassVar[str] = "unloaded"
    request_id: str
    count: int


# ----- commands ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stop(Command):
    """Stop the job (after this step, with a checkpoint when `save`); a closed pipe means Stop(daemon_gone)."""

    TYPE: ClassVar[str] = "stop"
    reason: str = ""
    save: bool = True


@dataclass(frozen=True)
class Save(Command):
    """Write a checkpoint at this step."""

    TYPE: ClassVar[str] = "save"


@dataclass(frozen=True)
class QuotaReply(Command):
    """The answer to a :class:`QuotaReserve`: granted when `hold_id` is set, else refused with `reason`
    (QUOTA_EXHAUSTED, QUOTA_ERROR) and a sentence."""

    TYPE: ClassVar[str] = "quota_reply"
    request_id: int
    hold_id: str = ""
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Chat(Command):
    """Answer a chat: `model` is the target's spec (jobs/inference.py), messages and sampling are checked."""

    TYPE: ClassVar[str] = "chat"
    request_id: str
    model: dict[str, Any]
    device: str
    messages: list[dict[str, str]]
    sampling: dict[str, Any]
    training_task: str = ""  # the task training on `device`, named when the model does not fit beside it


@dataclass(frozen=True)
class Cancel(Command):
    TYPE: ClassVar[str] = "cancel"
    request_id: str


@dataclass(frozen=True)
class ListModels(Command):
    TYPE: ClassVar[str] = "list"
    request_id: str


@dataclass(frozen=True)
class Unload(Command):
    TYPE: ClassVar[str] = "unload"
    request_id: str
    key: str = ""  # "" = every model


@dataclass(frozen=True)
class ReleaseDevice(Command):
    """A training job starts on `device`: drop what is cached there."""

    TYPE: ClassVar[str] = "release_device"
    device: str


# ----- vocabularies --------------------------------------------------------------------------------------

def _vocabulary(*classes: type[Message]) -> dict[str, type[Message]]:
    out = {cls.TYPE: cls for cls in classes}
    assert len(out) == len(classes), "two messages of one vocabulary share a type"
    return out


_JOB = (Log, Warn, Files, Result, Failure)
_PACKAGE = _vocabulary(*_JOB, PackageProgress, PackageFile)
REPORTS: dict[str, dict[str, type[Message]]] = {
    "train": _vocabulary(*_JOB, TotalSteps, Metrics, Checkpoint, CheckpointDeleted, QuotaReserve, QuotaRelease,
                         Learning, RunMeasured),
    "eval": _vocabulary(*_JOB, EvalProgress, Score),
    "package": _PACKAGE,
    "import_gguf": _PACKAGE,
    "inference": _vocabulary(Log, Result, Failure, Ready, Delta, Loaded, Done, ChatError, Models, Unloaded),
}
_JOB_COMMANDS = _vocabulary(Stop)
COMMANDS: dict[str, dict[str, type[Message]]] = {
    "train": _vocabulary(Stop, Save, QuotaReply),
    "eval": _JOB_COMMANDS,
    "package": _JOB_COMMANDS,
    "import_gguf": _JOB_COMMANDS,
    "inference": _vocabulary(Stop, Chat, Cancel, ListModels, Unload, ReleaseDevice),
}
KINDS = tuple(REPORTS)  # the worker kinds (worker/runtime.py ENTRY_POINTS)


# ----- encode / decode -----------------------------------------------------------------------------------

def encode(message: Message) -> dict[str, Any]:
    """The dict a message travels as: its type under its key, then its fields (checked; None ones left out)."""
    if not isinstance(message, Message) or not hasattr(message, "TYPE"):
        raise ProtocolError("", f"{type(message).__name__} is not a message of the worker protocol")
    return {message.KEY: message.TYPE, **_fields_of(_checked(type(message), _fields_of(message)))}


def decode_report(data: Any, kind: str) -> Report:
    """A worker's message to the daemon, checked against what a `kind` worker may send."""
    return _decode(data, "type", REPORTS, kind)  # type: ignore[return-value]


def decode_command(data: Any, kind: str) -> Command:
    """A daemon's command, checked against what a `kind` worker takes."""
    return _decode(data, "cmd", COMMANDS, kind)  # type: ignore[return-value]


def _decode(data: Any, key: str, vocabularies: dict[str, dict[str, type[Message]]], kind: str) -> Message:
    if not isinstance(data, dict):
        raise ProtocolError("", f"a message must be a dict, got {type(data).__name__}")
    name = data.get(key)
    request_id = data.get("request_id") if isinstance(data.get("request_id"), str) else ""
    if not isinstance(name, str):
        raise ProtocolError("", f"a message must name its type under {key!r} (got keys {sorted(map(str, data))})")
    cls = vocabularies.get(kind, {}).get(name)
    if cls is None:
        raise ProtocolError(name, f"unknown to the {kind} worker", request_id)
    return _checked(cls, {k: v for k, v in data.items() if k != key}, request_id)


def _fields_of(message: Message) -> dict[str, Any]:
    return {f.name: getattr(message, f.name) for f in dataclasses.fields(message)
            if not (getattr(message, f.name) is None and f.default is None)}


_HINTS: dict[type, dict[str, Any]] = {}


def _checked(cls: type[Message], values: dict[str, Any], request_id: str = "") -> Message:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(values) - names)
    if extra:
        raise ProtocolError(cls.TYPE, f"unexpected field(s) {', '.join(extra)}", request_id)
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [n for n in required if n not in values]
    if missing:
        raise ProtocolError(cls.TYPE, f"missing field(s) {', '.join(missing)}", request_id)
    try:
        converted = {n: _value(hints[n], v, n) for n, v in values.items()}
    except _Mistyped as exc:
        raise ProtocolError(cls.TYPE, str(exc), request_id) from None
    return cls(**converted)


class _Mistyped(TypeError):
    def __init__(self, expected: str, value: Any, path: str) -> None:
        super().__init__(f"field {path} must be {expected}, got {type(value).__name__}")


def _value(hint: Any, value: Any, path: str) -> Any:
    """`value` as the declared type (plain int and float for numpy's numbers and the like), or _Mistyped."""
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return _value(inner[0], value, path) if len(inner) == 1 else value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _Mistyped("a list", value, path)
        (item,) = typing.get_args(hint) or (Any,)
        return [_value(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mistyped("a dict", value, path)
        key, item = typing.get_args(hint) or (Any, Any)
        return {_value(key, k, path): _value(item, v, f"{path}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mistyped("true or false", value, path)
    if hint is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        raise _Mistyped("an integer", value, path)
    if hint is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        raise _Mistyped("a number", value, path)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mistyped("a string", value, path)
    raise TypeError(f"the protocol has no rule for fields of type {hint!r}")  # a bug in this module
