"""protobuf <-> domain conversions, shared by the servicers."""
from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from modx.v1 import common_pb2 as C
from modx.v1 import training_pb2 as T

from .. import fields
from .. import params as P
from ..downloads import Chunk
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
    if est.get("run"):
        msg.run.CopyFrom(run_estimate_to_proto(est["run"]))
    return msg


MEMORY_KINDS = {"host_rss": T.RunEstimate.MEMORY_KIND_HOST_RSS, "device": T.RunEstimate.MEMORY_KIND_DEVICE}
SOURCES = {"default": T.ResolvedSetting.SOURCE_DEFAULT, "template": T.ResolvedSetting.SOURCE_TEMPLATE,
           "explicit": T.ResolvedSetting.SOURCE_EXPLICIT, "auto": T.ResolvedSetting.SOURCE_AUTO}
VERDICTS = {"learned": T.LearningCheck.VERDICT_LEARNED, "learned_little": T.LearningCheck.VERDICT_LEARNED_LITTLE,
            "did_not_learn": T.LearningCheck.VERDICT_DID_NOT_LEARN, "got_worse": T.LearningCheck.VERDICT_GOT_WORSE}
_RUN_INTS = ("examples", "epochs", "steps_per_epoch", "total_steps", "micro_batches", "tokens_per_epoch",
             "trainable_tokens_per_epoch", "total_tokens", "peak_memory_bytes", "memory_capacity_bytes",
             "memory_available_bytes")
_RUN_SECONDS = ("training_seconds", "eval_seconds", "startup_seconds", "total_seconds")
_REPORT_INTS = ("max_seq_length", "examples", "total_tokens", "trainable_tokens", "kept_tokens",
                "kept_trainable_tokens", "truncated_tokens_lost", "truncated_trainable_tokens_lost", "blocks")


def run_estimate_to_proto(run: dict[str, Any]) -> T.RunEstimate:
    """engine/run_estimate.py RunEstimate (with the calibration and memory verdict task_estimate adds)."""
    msg = T.RunEstimate(**{k: int(run.get(k) or 0) for k in _RUN_INTS},
                        dropped_examples=int(run.get("dropped") or 0), eval_examples=int(run.get("eval_examples") or 0),
                        memory_kind=MEMORY_KINDS.get(run.get("memory_kind", ""), 0),
                        calibrated=bool(run.get("calibrated")), calibration_cached=bool(run.get("calibration_cached")),
                        memory_fits=bool(run.get("memory_fits", True)), memory_tight=bool(run.get("memory_tight")),
                        explanation=[str(line) for line in run.get("explanation") or []])
    for name in _RUN_SECONDS:
        if run.get(name) is not None:
            setattr(msg, name, float(run[name]))
    if run.get("calibration_time"):
        msg.calibration_time.CopyFrom(ts(run["calibration_time"]))
    return msg


def report_to_proto(report: dict[str, Any]) -> T.DataReport:
    """engine/data_report.py DataReport.to_dict() -> DataReport."""
    lengths = report.get("lengths") or {}
    msg = T.DataReport(
        field=report.get("field", ""), path=report.get("path", ""), format=report.get("format", ""),
        format_counts={k: int(v) for k, v in (report.get("formats") or {}).items()},
        lengths=T.LengthDistribution(
            count=int(lengths.get("count", 0)), total_tokens=int(lengths.get("total", 0)),
            min_tokens=int(lengths.get("p0", 0)), p50_tokens=int(lengths.get("p50", 0)),
            p90_tokens=int(lengths.get("p90", 0)), p99_tokens=int(lengths.get("p99", 0)),
            max_tokens=int(lengths.get("max", 0)), mean_tokens=float(lengths.get("mean", 0.0)),
            histogram=[T.HistogramBin(low_tokens=int(b["low"]), high_tokens=int(b["high"]), count=int(b["count"]))
                       for b in lengths.get("histogram") or []]),
        findings=[T.DataFinding(code=f["code"], count=int(f["count"]),
                                lines=[T.DataLine(line=int(e["line"]), value=int(e["value"]), detail=e["detail"])
                                       for e in f.get("examples") or []])
                  for f in report.get("findings") or []],
        warnings=[C.Warning(code=w["code"], message=w["message"]) for w in report.get("warnings") or []],
        **{k: int(report.get(k) or 0) for k in _REPORT_INTS})
    return msg


def settings_to_proto(settings: list[dict[str, Any]]) -> list[T.ResolvedSetting]:
    return [T.ResolvedSetting(key=s["key"], value=value_to_proto(s["value"]), source=SOURCES.get(s["source"], 0),
                              reason=s.get("reason", "")) for s in settings]


def learning_to_proto(learning: dict[str, Any]) -> T.LearningCheck:
    """engine/learning.py LearningCheck.to_dict() -> LearningCheck."""
    return T.LearningCheck(data=learning["data"], examples=int(learning["examples"]),
                           base_loss=float(learning["base_loss"]), final_loss=float(learning["final_loss"]),
                           relative_improvement=float(learning["relative_improvement"]),
                           verdict=VERDICTS.get(learning["verdict"], 0), sentence=learning["sentence"],
                           advice=list(learning.get("advice") or []))


def estimate_checks_to_proto(checks: list[dict[str, Any]]) -> list[T.EstimateCheck]:
    """engine/run_estimate.py EstimateCheck fields -> EstimateCheck."""
    return [T.EstimateCheck(quantity=c["quantity"], estimated=float(c["estimated"]), actual=float(c["actual"]),
                            relative_error=float(c["error"]), target=float(c["target"]),
                            within_target=bool(c["within_target"]), sentence=c["sentence"]) for c in checks]


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
    if task.train_data:
        msg.train_data.CopyFrom(report_to_proto(task.train_data))
    if task.eval_data:
        msg.eval_data.CopyFrom(report_to_proto(task.eval_data))
    msg.settings.extend(settings_to_proto(task.settings))
    if task.learning:
        msg.learning.CopyFrom(learning_to_proto(task.learning))
    msg.estimate_checks.extend(estimate_checks_to_proto(task.estimate_checks))
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


def next_page_token(offset: int, returned: int, more: bool) -> str:
    """The token of the page after one of ``returned`` items from ``offset`` ("" at the end): the
    offset that :func:`page` reads back."""
    return str(offset + returned) if more else ""


def states_filter(values: Any) -> list[TaskState]:
    """A ListTasks state filter: every value must be a known state (an unknown one is refused, not skipped)."""
    return fields.check_enums(values, "states", STATE_FROM_PROTO, C.TaskState.Name)


def kinds_filter(values: Any) -> list[str]:
    """A WatchTask kind filter, checked like states_filter."""
    return fields.check_enums(values, "kinds", KIND_FROM_PROTO, T.EventKind.Name)


def chunk_to_proto(chunk: Chunk) -> C.FileChunk:
    """A piece of a served file (ReadPackageFile, ReadEvaluationFile)."""
    return C.FileChunk(data=chunk.data, offset=chunk.offset, size_bytes=chunk.size, sha256=chunk.sha256)
