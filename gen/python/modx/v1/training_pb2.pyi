import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from modx.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_STATE_CHANGE: _ClassVar[EventKind]
    EVENT_KIND_METRICS: _ClassVar[EventKind]
    EVENT_KIND_LOG: _ClassVar[EventKind]
    EVENT_KIND_CHECKPOINT_SAVED: _ClassVar[EventKind]
    EVENT_KIND_CHECKPOINT_DELETED: _ClassVar[EventKind]
    EVENT_KIND_WARNING: _ClassVar[EventKind]

class ParamType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARAM_TYPE_UNSPECIFIED: _ClassVar[ParamType]
    PARAM_TYPE_BOOL: _ClassVar[ParamType]
    PARAM_TYPE_INT: _ClassVar[ParamType]
    PARAM_TYPE_FLOAT: _ClassVar[ParamType]
    PARAM_TYPE_STRING: _ClassVar[ParamType]
    PARAM_TYPE_PATH: _ClassVar[ParamType]
    PARAM_TYPE_CHOICE: _ClassVar[ParamType]
    PARAM_TYPE_STRING_LIST: _ClassVar[ParamType]
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_STATE_CHANGE: EventKind
EVENT_KIND_METRICS: EventKind
EVENT_KIND_LOG: EventKind
EVENT_KIND_CHECKPOINT_SAVED: EventKind
EVENT_KIND_CHECKPOINT_DELETED: EventKind
EVENT_KIND_WARNING: EventKind
PARAM_TYPE_UNSPECIFIED: ParamType
PARAM_TYPE_BOOL: ParamType
PARAM_TYPE_INT: ParamType
PARAM_TYPE_FLOAT: ParamType
PARAM_TYPE_STRING: ParamType
PARAM_TYPE_PATH: ParamType
PARAM_TYPE_CHOICE: ParamType
PARAM_TYPE_STRING_LIST: ParamType

class Task(_message.Message):
    __slots__ = ("id", "type", "state", "state_reason", "name", "template", "params", "create_time", "start_time", "end_time", "update_time", "current_step", "total_steps", "percent", "last_loss", "checkpoints_saved", "quota_estimate", "device", "resume_count", "best_checkpoint_id", "best_evaluation_id", "queue_position", "failure_log_tail", "error")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    LAST_LOSS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_SAVED_FIELD_NUMBER: _ClassVar[int]
    QUOTA_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    RESUME_COUNT_FIELD_NUMBER: _ClassVar[int]
    BEST_CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    BEST_EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    FAILURE_LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: _common_pb2.TaskType
    state: _common_pb2.TaskState
    state_reason: str
    name: str
    template: str
    params: _containers.MessageMap[str, _common_pb2.ParamValue]
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    current_step: int
    total_steps: int
    percent: float
    last_loss: float
    checkpoints_saved: int
    quota_estimate: QuotaEstimate
    device: str
    resume_count: int
    best_checkpoint_id: str
    best_evaluation_id: str
    queue_position: int
    failure_log_tail: _containers.RepeatedScalarFieldContainer[str]
    error: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., state_reason: _Optional[str] = ..., name: _Optional[str] = ..., template: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_step: _Optional[int] = ..., total_steps: _Optional[int] = ..., percent: _Optional[float] = ..., last_loss: _Optional[float] = ..., checkpoints_saved: _Optional[int] = ..., quota_estimate: _Optional[_Union[QuotaEstimate, _Mapping]] = ..., device: _Optional[str] = ..., resume_count: _Optional[int] = ..., best_checkpoint_id: _Optional[str] = ..., best_evaluation_id: _Optional[str] = ..., queue_position: _Optional[int] = ..., failure_log_tail: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ...) -> None: ...

class QuotaEstimate(_message.Message):
    __slots__ = ("num_examples", "steps_per_epoch", "total_steps", "checkpoints", "balance", "fits", "explanation", "memory")
    NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    num_examples: int
    steps_per_epoch: int
    total_steps: int
    checkpoints: int
    balance: int
    fits: bool
    explanation: str
    memory: MemoryEstimate
    def __init__(self, num_examples: _Optional[int] = ..., steps_per_epoch: _Optional[int] = ..., total_steps: _Optional[int] = ..., checkpoints: _Optional[int] = ..., balance: _Optional[int] = ..., fits: _Optional[bool] = ..., explanation: _Optional[str] = ..., memory: _Optional[_Union[MemoryEstimate, _Mapping]] = ...) -> None: ...

class MemoryEstimate(_message.Message):
    __slots__ = ("device", "capacity_bytes", "estimate_bytes", "fits", "parts", "advice", "explanation")
    class PartsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    device: str
    capacity_bytes: int
    estimate_bytes: int
    fits: bool
    parts: _containers.ScalarMap[str, int]
    advice: _containers.RepeatedScalarFieldContainer[str]
    explanation: str
    def __init__(self, device: _Optional[str] = ..., capacity_bytes: _Optional[int] = ..., estimate_bytes: _Optional[int] = ..., fits: _Optional[bool] = ..., parts: _Optional[_Mapping[str, int]] = ..., advice: _Optional[_Iterable[str]] = ..., explanation: _Optional[str] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("id", "task_id", "step", "epoch", "loss", "path", "size_bytes", "create_time", "deleted", "delete_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    DELETE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    task_id: str
    step: int
    epoch: float
    loss: float
    path: str
    size_bytes: int
    create_time: _timestamp_pb2.Timestamp
    deleted: bool
    delete_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., task_id: _Optional[str] = ..., step: _Optional[int] = ..., epoch: _Optional[float] = ..., loss: _Optional[float] = ..., path: _Optional[str] = ..., size_bytes: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deleted: _Optional[bool] = ..., delete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MetricsPoint(_message.Message):
    __slots__ = ("step", "total_steps", "epoch", "percent", "eta_seconds", "loss", "perplexity", "learning_rate", "grad_norm", "tokens_per_second", "eval_loss", "eval_perplexity", "time", "device_memory_allocated_bytes", "device_memory_reserved_bytes", "device_memory_peak_bytes", "gpu_utilization_percent", "gpu_power_watts", "gpu_temperature_celsius", "host_memory_rss_bytes", "reward_chosen", "reward_rejected", "reward_margin", "reward_accuracy", "logps_chosen", "logps_rejected", "nll_loss", "log_odds_ratio", "log_odds_chosen", "eval_reward_chosen", "eval_reward_rejected", "eval_reward_margin", "eval_reward_accuracy", "eval_logps_chosen", "eval_logps_rejected", "eval_nll_loss", "eval_log_odds_ratio", "eval_log_odds_chosen")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    EVAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    EVAL_PERPLEXITY_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    DEVICE_MEMORY_ALLOCATED_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_MEMORY_RESERVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_MEMORY_PEAK_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPU_UTILIZATION_PERCENT_FIELD_NUMBER: _ClassVar[int]
    GPU_POWER_WATTS_FIELD_NUMBER: _ClassVar[int]
    GPU_TEMPERATURE_CELSIUS_FIELD_NUMBER: _ClassVar[int]
    HOST_MEMORY_RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    REWARD_CHOSEN_FIELD_NUMBER: _ClassVar[int]
    REWARD_REJECTED_FIELD_NUMBER: _ClassVar[int]
    REWARD_MARGIN_FIELD_NUMBER: _ClassVar[int]
    REWARD_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    LOGPS_CHOSEN_FIELD_NUMBER: _ClassVar[int]
    LOGPS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    NLL_LOSS_FIELD_NUMBER: _ClassVar[int]
    LOG_ODDS_RATIO_FIELD_NUMBER: _ClassVar[int]
    LOG_ODDS_CHOSEN_FIELD_NUMBER: _ClassVar[int]
    EVAL_REWARD_CHOSEN_FIELD_NUMBER: _ClassVar[int]
    EVAL_REWARD_REJECTED_FIELD_NUMBER: _ClassVar[int]
    EVAL_REWARD_MARGIN_FIELD_NUMBER: _ClassVar[int]
    EVAL_REWARD_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    EVAL_LOGPS_CHOSEN_FIELD_NUMBER: _ClassVar[int]
    EVAL_LOGPS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    EVAL_NLL_LOSS_FIELD_NUMBER: _ClassVar[int]
    EVAL_LOG_ODDS_RATIO_FIELD_NUMBER: _ClassVar[int]
    EVAL_LOG_ODDS_CHOSEN_FIELD_NUMBER: _ClassVar[int]
    step: int
    total_steps: int
    epoch: float
    percent: float
    eta_seconds: float
    loss: float
    perplexity: float
    learning_rate: float
    grad_norm: float
    tokens_per_second: float
    eval_loss: float
    eval_perplexity: float
    time: _timestamp_pb2.Timestamp
    device_memory_allocated_bytes: int
    device_memory_reserved_bytes: int
    device_memory_peak_bytes: int
    gpu_utilization_percent: float
    gpu_power_watts: float
    gpu_temperature_celsius: float
    host_memory_rss_bytes: int
    reward_chosen: float
    reward_rejected: float
    reward_margin: float
    reward_accuracy: float
    logps_chosen: float
    logps_rejected: float
    nll_loss: float
    log_odds_ratio: float
    log_odds_chosen: float
    eval_reward_chosen: float
    eval_reward_rejected: float
    eval_reward_margin: float
    eval_reward_accuracy: float
    eval_logps_chosen: float
    eval_logps_rejected: float
    eval_nll_loss: float
    eval_log_odds_ratio: float
    eval_log_odds_chosen: float
    def __init__(self, step: _Optional[int] = ..., total_steps: _Optional[int] = ..., epoch: _Optional[float] = ..., percent: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., loss: _Optional[float] = ..., perplexity: _Optional[float] = ..., learning_rate: _Optional[float] = ..., grad_norm: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., eval_loss: _Optional[float] = ..., eval_perplexity: _Optional[float] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., device_memory_allocated_bytes: _Optional[int] = ..., device_memory_reserved_bytes: _Optional[int] = ..., device_memory_peak_bytes: _Optional[int] = ..., gpu_utilization_percent: _Optional[float] = ..., gpu_power_watts: _Optional[float] = ..., gpu_temperature_celsius: _Optional[float] = ..., host_memory_rss_bytes: _Optional[int] = ..., reward_chosen: _Optional[float] = ..., reward_rejected: _Optional[float] = ..., reward_margin: _Optional[float] = ..., reward_accuracy: _Optional[float] = ..., logps_chosen: _Optional[float] = ..., logps_rejected: _Optional[float] = ..., nll_loss: _Optional[float] = ..., log_odds_ratio: _Optional[float] = ..., log_odds_chosen: _Optional[float] = ..., eval_reward_chosen: _Optional[float] = ..., eval_reward_rejected: _Optional[float] = ..., eval_reward_margin: _Optional[float] = ..., eval_reward_accuracy: _Optional[float] = ..., eval_logps_chosen: _Optional[float] = ..., eval_logps_rejected: _Optional[float] = ..., eval_nll_loss: _Optional[float] = ..., eval_log_odds_ratio: _Optional[float] = ..., eval_log_odds_chosen: _Optional[float] = ...) -> None: ...

class StateChange(_message.Message):
    __slots__ = ("from_state", "to_state", "reason")
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    from_state: _common_pb2.TaskState
    to_state: _common_pb2.TaskState
    reason: str
    def __init__(self, from_state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., to_state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class CheckpointDeleted(_message.Message):
    __slots__ = ("checkpoint_id", "step", "path")
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    step: int
    path: str
    def __init__(self, checkpoint_id: _Optional[str] = ..., step: _Optional[int] = ..., path: _Optional[str] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("task_id", "seq", "time", "state_change", "metrics", "log", "checkpoint_saved", "checkpoint_deleted", "warning")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_SAVED_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_DELETED_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    seq: int
    time: _timestamp_pb2.Timestamp
    state_change: StateChange
    metrics: MetricsPoint
    log: _common_pb2.LogLine
    checkpoint_saved: Checkpoint
    checkpoint_deleted: CheckpointDeleted
    warning: _common_pb2.Warning
    def __init__(self, task_id: _Optional[str] = ..., seq: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state_change: _Optional[_Union[StateChange, _Mapping]] = ..., metrics: _Optional[_Union[MetricsPoint, _Mapping]] = ..., log: _Optional[_Union[_common_pb2.LogLine, _Mapping]] = ..., checkpoint_saved: _Optional[_Union[Checkpoint, _Mapping]] = ..., checkpoint_deleted: _Optional[_Union[CheckpointDeleted, _Mapping]] = ..., warning: _Optional[_Union[_common_pb2.Warning, _Mapping]] = ...) -> None: ...

class CreateTaskRequest(_message.Message):
    __slots__ = ("type", "template", "params", "name", "validate_only")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    type: _common_pb2.TaskType
    template: str
    params: _containers.MessageMap[str, _common_pb2.ParamValue]
    name: str
    validate_only: bool
    def __init__(self, type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., template: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., name: _Optional[str] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class CreateTaskResponse(_message.Message):
    __slots__ = ("task", "warnings")
    TASK_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    task: Task
    warnings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Warning]
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., warnings: _Optional[_Iterable[_Union[_common_pb2.Warning, _Mapping]]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("states", "type", "page")
    STATES_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.TaskState]
    type: _common_pb2.TaskType
    page: _common_pb2.PageRequest
    def __init__(self, states: _Optional[_Iterable[_Union[_common_pb2.TaskState, str]]] = ..., type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token", "total_size")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    total_size: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class DeleteTaskRequest(_message.Message):
    __slots__ = ("task_id", "delete_files")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    DELETE_FILES_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    delete_files: bool
    def __init__(self, task_id: _Optional[str] = ..., delete_files: _Optional[bool] = ...) -> None: ...

class DeleteTaskResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class StartTaskResponse(_message.Message):
    __slots__ = ("task", "warnings")
    TASK_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    task: Task
    warnings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Warning]
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., warnings: _Optional[_Iterable[_Union[_common_pb2.Warning, _Mapping]]] = ...) -> None: ...

class StopTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class StopTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ResumeTaskRequest(_message.Message):
    __slots__ = ("task_id", "checkpoint")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    checkpoint: str
    def __init__(self, task_id: _Optional[str] = ..., checkpoint: _Optional[str] = ...) -> None: ...

class ResumeTaskResponse(_message.Message):
    __slots__ = ("task", "checkpoint", "warnings")
    TASK_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    task: Task
    checkpoint: Checkpoint
    warnings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Warning]
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., warnings: _Optional[_Iterable[_Union[_common_pb2.Warning, _Mapping]]] = ...) -> None: ...

class WatchTaskRequest(_message.Message):
    __slots__ = ("task_id", "after_seq", "kinds", "history_only", "follow_forever")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_ONLY_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FOREVER_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    after_seq: int
    kinds: _containers.RepeatedScalarFieldContainer[EventKind]
    history_only: bool
    follow_forever: bool
    def __init__(self, task_id: _Optional[str] = ..., after_seq: _Optional[int] = ..., kinds: _Optional[_Iterable[_Union[EventKind, str]]] = ..., history_only: _Optional[bool] = ..., follow_forever: _Optional[bool] = ...) -> None: ...

class WatchTaskResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: TaskEvent
    def __init__(self, event: _Optional[_Union[TaskEvent, _Mapping]] = ...) -> None: ...

class ListMetricsRequest(_message.Message):
    __slots__ = ("task_id", "after_step", "page")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_STEP_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    after_step: int
    page: _common_pb2.PageRequest
    def __init__(self, task_id: _Optional[str] = ..., after_step: _Optional[int] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListMetricsResponse(_message.Message):
    __slots__ = ("points", "next_page_token")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[MetricsPoint]
    next_page_token: str
    def __init__(self, points: _Optional[_Iterable[_Union[MetricsPoint, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListCheckpointsRequest(_message.Message):
    __slots__ = ("task_id", "include_deleted")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DELETED_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    include_deleted: bool
    def __init__(self, task_id: _Optional[str] = ..., include_deleted: _Optional[bool] = ...) -> None: ...

class ListCheckpointsResponse(_message.Message):
    __slots__ = ("checkpoints",)
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    def __init__(self, checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ...) -> None: ...

class EstimateQuotaRequest(_message.Message):
    __slots__ = ("task_id", "type", "template", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    type: _common_pb2.TaskType
    template: str
    params: _containers.MessageMap[str, _common_pb2.ParamValue]
    def __init__(self, task_id: _Optional[str] = ..., type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., template: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ...) -> None: ...

class EstimateQuotaResponse(_message.Message):
    __slots__ = ("estimate", "warnings")
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    estimate: QuotaEstimate
    warnings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Warning]
    def __init__(self, estimate: _Optional[_Union[QuotaEstimate, _Mapping]] = ..., warnings: _Optional[_Iterable[_Union[_common_pb2.Warning, _Mapping]]] = ...) -> None: ...

class TypeDefault(_message.Message):
    __slots__ = ("type", "value")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    type: _common_pb2.TaskType
    value: _common_pb2.ParamValue
    def __init__(self, type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ...) -> None: ...

class ParamSpec(_message.Message):
    __slots__ = ("key", "category", "label_zh", "label_en", "help", "type", "default_value", "type_defaults", "min", "max", "choices", "fold_group", "applies_to", "required", "unit")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    LABEL_ZH_FIELD_NUMBER: _ClassVar[int]
    LABEL_EN_FIELD_NUMBER: _ClassVar[int]
    HELP_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    TYPE_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    FOLD_GROUP_FIELD_NUMBER: _ClassVar[int]
    APPLIES_TO_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    key: str
    category: str
    label_zh: str
    label_en: str
    help: str
    type: ParamType
    default_value: _common_pb2.ParamValue
    type_defaults: _containers.RepeatedCompositeFieldContainer[TypeDefault]
    min: float
    max: float
    choices: _containers.RepeatedScalarFieldContainer[str]
    fold_group: str
    applies_to: _containers.RepeatedScalarFieldContainer[_common_pb2.TaskType]
    required: bool
    unit: str
    def __init__(self, key: _Optional[str] = ..., category: _Optional[str] = ..., label_zh: _Optional[str] = ..., label_en: _Optional[str] = ..., help: _Optional[str] = ..., type: _Optional[_Union[ParamType, str]] = ..., default_value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ..., type_defaults: _Optional[_Iterable[_Union[TypeDefault, _Mapping]]] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., choices: _Optional[_Iterable[str]] = ..., fold_group: _Optional[str] = ..., applies_to: _Optional[_Iterable[_Union[_common_pb2.TaskType, str]]] = ..., required: _Optional[bool] = ..., unit: _Optional[str] = ...) -> None: ...

class GetParamSchemaRequest(_message.Message):
    __slots__ = ("type",)
    TYPE_FIELD_NUMBER: _ClassVar[int]
    type: _common_pb2.TaskType
    def __init__(self, type: _Optional[_Union[_common_pb2.TaskType, str]] = ...) -> None: ...

class GetParamSchemaResponse(_message.Message):
    __slots__ = ("params", "fold_groups")
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    FOLD_GROUPS_FIELD_NUMBER: _ClassVar[int]
    params: _containers.RepeatedCompositeFieldContainer[ParamSpec]
    fold_groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, params: _Optional[_Iterable[_Union[ParamSpec, _Mapping]]] = ..., fold_groups: _Optional[_Iterable[str]] = ...) -> None: ...

class Template(_message.Message):
    __slots__ = ("name", "type", "description", "builtin", "params", "create_time", "update_time")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: _common_pb2.TaskType
    description: str
    builtin: bool
    params: _containers.MessageMap[str, _common_pb2.ParamValue]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., description: _Optional[str] = ..., builtin: _Optional[bool] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ("type",)
    TYPE_FIELD_NUMBER: _ClassVar[int]
    type: _common_pb2.TaskType
    def __init__(self, type: _Optional[_Union[_common_pb2.TaskType, str]] = ...) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ("templates",)
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    def __init__(self, templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetTemplateResponse(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: Template
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ...) -> None: ...

class SaveTemplateRequest(_message.Message):
    __slots__ = ("name", "type", "from_task_id", "params", "description", "overwrite")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FROM_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: _common_pb2.TaskType
    from_task_id: str
    params: _containers.MessageMap[str, _common_pb2.ParamValue]
    description: str
    overwrite: bool
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., from_task_id: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., description: _Optional[str] = ..., overwrite: _Optional[bool] = ...) -> None: ...

class SaveTemplateResponse(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: Template
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ...) -> None: ...

class DeleteTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteTemplateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
