"""protobuf <-> domain conversions, shared by the servicers."""
from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from modx.v1 import common_pb2 as C
from modx.v1 import training_pb2 as T

from .. import fields
from .. import params as P
from ..errors import InvalidArgument
from ..protocol import Metrics
from ..states import TaskState
from ..store.checkpoints import CheckpointRecord
from ..store.events import EventRecord
from ..store.tasks import TaskRecord
from ..store.templates import TemplateRecord

TYPE_TO_PROTO = {t: C.TaskType.Value(f"TASK_TYPE_{t.upper()}") for t in P.TASK_TYPES}  # a type: one enum value
TYPE_FROM_PROTO = {v: k for k, v in TYPE_TO_PROTO.items()}
STATE_TO_PROTO = {s: getattr(C, f"TASK_STATE_{s.name}") for s in TaskState}
STATE_FROM_PROTO = {v: k for k, v in STATE_TO_PROTO.items()}
KIND_FROM_PROTO = {
    T.EVENT_KIND_STATE_CHANGE: "state_change", T.EVENT_KIND_METRICS: "metrics", T.EVENT_KIND_LOG: "log",
    T.EVENT_KIND_CHECKPOINT_SAVED: "checkpoint_saved", T.EVENT_KIND_CHECKPOINT_DELETED: "checkpoint_deleted",
    T.EVENT_KIND_WARNING: "warning",
}
PARAM_TYPES = {"bool": T.PARAM_TYPE_BOOL, "int": T.PARAM_TYPE_INT, "float": T.PARAM_TYPE_FLOAT,
               "string": T.PARAM_TYPE_STRING, "path": T.PARAM_TYPE_PATH, "choice": T.PARAM_TYPE_CHOICE,
               "string_list": T.PARAM_TYPE_STRING_LIST}


def task_type(value: int, required: bool = True) -> str:
    if value in TYPE_FROM_PROTO:
        return TYPE_FROM_PROTO[value]
    if not required and value == C.TASK_TYPE_UNSPECIFIED:
        return ""
    raise InvalidArgument(f"type must be {' or '.join(C.TaskType.Name(v) for v in TYPE_FROM_PROTO)}, got {value}")


def ts(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def value_from_proto(value: C.ParamValue) -> Any:
    kind = value.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument("a parameter value is empty")
    if kind == "list_value":
        return list(value.list_value.values)
    return getattr(value, kind)


def value_to_proto(value: Any) -> C.ParamValue:
    if isinstance(value, bool):
        return C.ParamValue(bool_value=value)
    if isinstance(value, int):
        return C.ParamValue(int_value=value)
    if isinstance(value, float):
        return C.ParamValue(double_value=value)
    if isinstance(value, (list, tuple)):
        return C.ParamValue(list_value=C.StringList(values=[str(v) for v in value]))
    return C.ParamValue(string_value=str(value))


def params_from_proto(params: Any) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        try:
            out[key] = value_from_proto(value)
        except InvalidArgument:
            raise InvalidArgument(f"parameter {key}: its value is empty (set one of string, int, double, "
                                  "bool or list)") from None
    return out


def params_to_proto(target: Any, params: dict[str, Any]) -> None:
    for key, value in params.items():
        target[key].CopyFrom(value_to_proto(value))


def estimate_to_proto(est: dict[str, Any]) -> T.QuotaEstimate:
    fields = ("num_examples", "steps_per_epoch", "total_steps", "checkpoints", "balance", "fits", "explanation")
    msg = T.QuotaEstimate(**{k: est[k] for k in fields if k in est})
    memory = est.get("memory")
    if memory:
        msg.memory.CopyFrom(T.MemoryEstimate(
            device=memory.get("device", ""), capacity_bytes=int(memory.get("capacity_bytes", 0)),
            estimate_bytes=int(memory.get("estimate_bytes", 0)), fits=bool(memory.get("fits")),
            parts={k: int(v) for k, v in (memory.get("parts") or {}).items()},
            advice=list(memory.get("advice") or []), explanation=memory.get("explanation", "")))
    return msg


def task_to_proto(task: TaskRecord, queue_position: int = 0) -> T.Task:
    msg = T.Task(
        id=task.id, type=TYPE_TO_PROTO[task.type], state=STATE_TO_PROTO[task.state], state_reason=task.state_reason,
        name=task.name, template=task.template, current_step=task.current_step, total_steps=task.total_steps,
        checkpoints_saved=task.checkpoints_saved, device=task.device, resume_count=task.resume_count,
        best_checkpoint_id=task.best_checkpoint_id, best_evaluation_id=task.best_evaluation_id,
        queue_position=queue_position, failure_log_tail=task.failure_log_tail, error=task.error,
        percent=round(100.0 * task.current_step / task.total_steps, 2) if task.total_steps else 0.0,
    )
    params_to_proto(msg.params, task.params)
    for name in ("create_time", "start_time", "end_time", "update_time"):
        stamp = ts(getattr(task, name))
        if stamp is not None:
            getattr(msg, name).CopyFrom(stamp)
    if task.last_loss is not None:
        msg.last_loss = task.last_loss
    if task.quota_estimate:
        msg.quota_estimate.CopyFrom(estimate_to_proto(task.quota_estimate))
    return msg


def checkpoint_to_proto(ckpt: CheckpointRecord | dict[str, Any]) -> T.Checkpoint:
    data = ckpt.as_payload() if isinstance(ckpt, CheckpointRecord) else ckpt
    msg = T.Checkpoint(id=data["id"], task_id=data["task_id"], step=int(data["step"]),
                       epoch=float(data.get("epoch") or 0.0), path=data["path"],
                       size_bytes=int(data.get("size_bytes") or 0), deleted=bool(data.get("deleted")))
    if data.get("loss") is not None:
        msg.loss = float(data["loss"])
    for name in ("create_time", "delete_time"):
        stamp = ts(data.get(name))
        if stamp is not None:
            getattr(msg, name).CopyFrom(stamp)
    return msg


# The optional numbers of a point are the protocol's Metrics fields (modxd/protocol.py), which the
# MetricsPoint message names alike: a field added there is served without a change here.
_METRIC_FIELDS = {f.name: f.type for f in dataclasses.fields(Metrics)}
_METRIC_OPTIONAL = tuple(n for n, t in _METRIC_FIELDS.items() if t == "float | None" and n not in ("epoch", "percent", "time"))
_METRIC_OPTIONAL_INT = tuple(n for n, t in _METRIC_FIELDS.items() if t == "int | None")


def metrics_to_proto(point: dict[str, Any], time: float | None = None) -> T.MetricsPoint:
    msg = T.MetricsPoint(step=int(point.get("step", 0)), total_steps=int(point.get("total_steps") or 0),
                         epoch=float(point.get("epoch") or 0.0), percent=float(point.get("percent") or 0.0))
    for name in _METRIC_OPTIONAL:
        value = point.get(name)
        if value is not None:
            setattr(msg, name, float(value))
    for name in _METRIC_OPTIONAL_INT:
        value = point.get(name)
        if value is not None:
            setattr(msg, name, int(value))
    stamp = ts(time if time is not None else point.get("time"))
    if stamp is not None:
        msg.time.CopyFrom(stamp)
    return msg


def event_to_proto(event: EventRecord) -> T.TaskEvent:
    msg = T.TaskEvent(task_id=event.task_id, seq=event.seq, time=ts(event.time))
    p = event.payload
    if event.kind == "state_change":
        msg.state_change.CopyFrom(T.StateChange(
            from_state=STATE_TO_PROTO[TaskState(p["from"])] if p.get("from") else C.TASK_STATE_UNSPECIFIED,
            to_state=STATE_TO_PROTO[TaskState(p["to"])], reason=p.get("reason", "")))
    elif event.kind == "metrics":
        msg.metrics.CopyFrom(metrics_to_proto(p, p.get("time") or event.time))  # the worker's clock, if sent
    elif event.kind == "log":
        msg.log.CopyFrom(C.LogLine(time=ts(event.time), level=p.get("level", "info"), message=p.get("message", "")))
    elif event.kind == "checkpoint_saved":
        msg.checkpoint_saved.CopyFrom(checkpoint_to_proto(p))
    elif event.kind == "checkpoint_deleted":
        msg.checkpoint_deleted.CopyFrom(T.CheckpointDeleted(
            checkpoint_id=p.get("checkpoint_id", ""), step=int(p.get("step", 0)), path=p.get("path", "")))
    elif event.kind == "warning":
        msg.warning.CopyFrom(C.Warning(code=p.get("code", ""), message=p.get("message", "")))
    return msg


def spec_to_proto(spec: P.ParamSpec, task_type: str = "") -> T.ParamSpec:
    """`task_type` (GetParamSchema's filter) picks the help written for that type, if any."""
    msg = T.ParamSpec(
        key=spec.key, category=spec.category, label_zh=spec.label_zh, label_en=spec.label_en,
        help=spec.help_for(task_type),
        type=PARAM_TYPES[spec.type], default_value=value_to_proto(spec.default), choices=list(spec.choices),
        fold_group=spec.fold_group, applies_to=[TYPE_TO_PROTO[t] for t in spec.applies_to],
        required=spec.required, unit=spec.unit)
    for t, value in spec.type_defaults.items():
        msg.type_defaults.add(type=TYPE_TO_PROTO[t], value=value_to_proto(value))
    if spec.min is not None:
        msg.min = spec.min
    if spec.max is not None:
        msg.max = spec.max
    return msg


def template_to_proto(tpl: TemplateRecord) -> T.Template:
    msg = T.Template(name=tpl.name, type=TYPE_TO_PROTO[tpl.type], description=tpl.description, builtin=tpl.builtin)
    params_to_proto(msg.params, tpl.params)
    for name in ("create_time", "update_time"):
        stamp = ts(getattr(tpl, name) or None)
        if stamp is not None:
            getattr(msg, name).CopyFrom(stamp)
    return msg


def warnings_to_proto(warnings: list[tuple[str, str]]) -> list[C.Warning]:
    return [C.Warning(code=code, message=message) for code, message in warnings]


def page(request_page: Any, default_size: int = 50, max_size: int = 1000) -> tuple[int, int]:
    """(offset, limit) from a PageRequest; the token is the decimal offset."""
    return fields.page(request_page.page_size, request_page.page_token, default_size, max_size)


def states_filter(values: Any) -> list[TaskState]:
    """A ListTasks state filter: every value must be a known state (an unknown one is refused, not skipped)."""
    return fields.check_enums(values, "states", STATE_FROM_PROTO, C.TaskState.Name)


def kinds_filter(values: Any) -> list[str]:
    """A WatchTask kind filter, checked like states_filter."""
    return fields.check_enums(values, "kinds", KIND_FROM_PROTO, T.EventKind.Name)
