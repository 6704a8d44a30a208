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
    __slots__ = ("id", "type", "state", "state_reason", "name", "template", "params", "create_time", "start_time", "end_time", "update_time", "current_step", "total_steps", "percent", "last_loss", "checkpoints_saved", "quota_estimate", "device", "resume_count", "best_checkpoint_id", "best_evaluation_id", "queue_position", "failure_log_tail", "error", "train_data", "eval_data", "settings", "learning", "estimate_checks")
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
    TRAIN_DATA_FIELD_NUMBER: _ClassVar[int]
    EVAL_DATA_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_CHECKS_FIELD_NUMBER: _ClassVar[int]
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
    train_data: DataReport
    eval_data: DataReport
    settings: _containers.RepeatedCompositeFieldContainer[ResolvedSetting]
    learning: LearningCheck
    estimate_checks: _containers.RepeatedCompositeFieldContainer[EstimateCheck]
    def __init__(self, id: _Optional[str] = ..., type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., state_reason: _Optional[str] = ..., name: _Optional[str] = ..., template: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_step: _Optional[int] = ..., total_steps: _Optional[int] = ..., percent: _Optional[float] = ..., last_loss: _Optional[float] = ..., checkpoints_saved: _Optional[int] = ..., quota_estimate: _Optional[_Union[QuotaEstimate, _Mapping]] = ..., device: _Optional[str] = ..., resume_count: _Optional[int] = ..., best_checkpoint_id: _Optional[str] = ..., best_evaluation_id: _Optional[str] = ..., queue_position: _Optional[int] = ..., failure_log_tail: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ..., train_data: _Optional[_Union[DataReport, _Mapping]] = ..., eval_data: _Optional[_Union[DataReport, _Mapping]] = ..., settings: _Optional[_Iterable[_Union[ResolvedSetting, _Mapping]]] = ..., learning: _Optional[_Union[LearningCheck, _Mapping]] = ..., estimate_checks: _Optional[_Iterable[_Union[EstimateCheck, _Mapping]]] = ...) -> None: ...

class ResolvedSetting(_message.Message):
    __slots__ = ("key", "value", "source", "reason")
    class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SOURCE_UNSPECIFIED: _ClassVar[ResolvedSetting.Source]
        SOURCE_DEFAULT: _ClassVar[ResolvedSetting.Source]
        SOURCE_TEMPLATE: _ClassVar[ResolvedSetting.Source]
        SOURCE_EXPLICIT: _ClassVar[ResolvedSetting.Source]
        SOURCE_AUTO: _ClassVar[ResolvedSetting.Source]
    SOURCE_UNSPECIFIED: ResolvedSetting.Source
    SOURCE_DEFAULT: ResolvedSetting.Source
    SOURCE_TEMPLATE: ResolvedSetting.Source
    SOURCE_EXPLICIT: ResolvedSetting.Source
    SOURCE_AUTO: ResolvedSetting.Source
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: _common_pb2.ParamValue
    source: ResolvedSetting.Source
    reason: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ..., source: _Optional[_Union[ResolvedSetting.Source, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class DataReport(_message.Message):
    __slots__ = ("field", "path", "max_seq_length", "format", "format_counts", "examples", "lengths", "total_tokens", "trainable_tokens", "kept_tokens", "kept_trainable_tokens", "truncated_tokens_lost", "truncated_trainable_tokens_lost", "blocks", "findings", "warnings")
    class FormatCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    FIELD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQ_LENGTH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    LENGTHS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TRAINABLE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    KEPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    KEPT_TRAINABLE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_TOKENS_LOST_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_TRAINABLE_TOKENS_LOST_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    field: str
    path: str
    max_seq_length: int
    format: str
    format_counts: _containers.ScalarMap[str, int]
    examples: int
    lengths: LengthDistribution
    total_tokens: int
    trainable_tokens: int
    kept_tokens: int
    kept_trainable_tokens: int
    truncated_tokens_lost: int
    truncated_trainable_tokens_lost: int
    blocks: int
    findings: _containers.RepeatedCompositeFieldContainer[DataFinding]
    warnings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Warning]
    def __init__(self, field: _Optional[str] = ..., path: _Optional[str] = ..., max_seq_length: _Optional[int] = ..., format: _Optional[str] = ..., format_counts: _Optional[_Mapping[str, int]] = ..., examples: _Optional[int] = ..., lengths: _Optional[_Union[LengthDistribution, _Mapping]] = ..., total_tokens: _Optional[int] = ..., trainable_tokens: _Optional[int] = ..., kept_tokens: _Optional[int] = ..., kept_trainable_tokens: _Optional[int] = ..., truncated_tokens_lost: _Optional[int] = ..., truncated_trainable_tokens_lost: _Optional[int] = ..., blocks: _Optional[int] = ..., findings: _Optional[_Iterable[_Union[DataFinding, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[_common_pb2.Warning, _Mapping]]] = ...) -> None: ...

class LengthDistribution(_message.Message):
    __slots__ = ("count", "total_tokens", "min_tokens", "p50_tokens", "p90_tokens", "p99_tokens", "max_tokens", "mean_tokens", "histogram")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MIN_TOKENS_FIELD_NUMBER: _ClassVar[int]
    P50_TOKENS_FIELD_NUMBER: _ClassVar[int]
    P90_TOKENS_FIELD_NUMBER: _ClassVar[int]
    P99_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MEAN_TOKENS_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    count: int
    total_tokens: int
    min_tokens: int
    p50_tokens: int
    p90_tokens: int
    p99_tokens: int
    max_tokens: int
    mean_tokens: float
    histogram: _containers.RepeatedCompositeFieldContainer[HistogramBin]
    def __init__(self, count: _Optional[int] = ..., total_tokens: _Optional[int] = ..., min_tokens: _Optional[int] = ..., p50_tokens: _Optional[int] = ..., p90_tokens: _Optional[int] = ..., p99_tokens: _Optional[int] = ..., max_tokens: _Optional[int] = ..., mean_tokens: _Optional[float] = ..., histogram: _Optional[_Iterable[_Union[HistogramBin, _Mapping]]] = ...) -> None: ...

class HistogramBin(_message.Message):
    __slots__ = ("low_tokens", "high_tokens", "count")
    LOW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    HIGH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    low_tokens: int
    high_tokens: int
    count: int
    def __init__(self, low_tokens: _Optional[int] = ..., high_tokens: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class DataFinding(_message.Message):
    __slots__ = ("code", "count", "lines")
    CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    code: str
    count: int
    lines: _containers.RepeatedCompositeFieldContainer[DataLine]
    def __init__(self, code: _Optional[str] = ..., count: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[DataLine, _Mapping]]] = ...) -> None: ...

class DataLine(_message.Message):
    __slots__ = ("line", "value", "detail")
    LINE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    line: int
    value: int
    detail: str
    def __init__(self, line: _Optional[int] = ..., value: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class RunEstimate(_message.Message):
    __slots__ = ("examples", "dropped_examples", "eval_examples", "epochs", "steps_per_epoch", "total_steps", "micro_batches", "tokens_per_epoch", "trainable_tokens_per_epoch", "total_tokens", "training_seconds", "eval_seconds", "startup_seconds", "total_seconds", "peak_memory_bytes", "memory_kind", "calibrated", "calibration_cached", "calibration_time", "memory_capacity_bytes", "memory_available_bytes", "memory_fits", "memory_tight", "explanation")
    class MemoryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MEMORY_KIND_UNSPECIFIED: _ClassVar[RunEstimate.MemoryKind]
        MEMORY_KIND_HOST_RSS: _ClassVar[RunEstimate.MemoryKind]
        MEMORY_KIND_DEVICE: _ClassVar[RunEstimate.MemoryKind]
    MEMORY_KIND_UNSPECIFIED: RunEstimate.MemoryKind
    MEMORY_KIND_HOST_RSS: RunEstimate.MemoryKind
    MEMORY_KIND_DEVICE: RunEstimate.MemoryKind
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    DROPPED_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    EVAL_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    MICRO_BATCHES_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TRAINABLE_TOKENS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STARTUP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_KIND_FIELD_NUMBER: _ClassVar[int]
    CALIBRATED_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_CACHED_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_TIME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FITS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TIGHT_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    examples: int
    dropped_examples: int
    eval_examples: int
    epochs: int
    steps_per_epoch: int
    total_steps: int
    micro_batches: int
    tokens_per_epoch: int
    trainable_tokens_per_epoch: int
    total_tokens: int
    training_seconds: float
    eval_seconds: float
    startup_seconds: float
    total_seconds: float
    peak_memory_bytes: int
    memory_kind: RunEstimate.MemoryKind
    calibrated: bool
    calibration_cached: bool
    calibration_time: _timestamp_pb2.Timestamp
    memory_capacity_bytes: int
    memory_available_bytes: int
    memory_fits: bool
    memory_tight: bool
    explanation: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, examples: _Optional[int] = ..., dropped_examples: _Optional[int] = ..., eval_examples: _Optional[int] = ..., epochs: _Optional[int] = ..., steps_per_epoch: _Optional[int] = ..., total_steps: _Optional[int] = ..., micro_batches: _Optional[int] = ..., tokens_per_epoch: _Optional[int] = ..., trainable_tokens_per_epoch: _Optional[int] = ..., total_tokens: _Optional[int] = ..., training_seconds: _Optional[float] = ..., eval_seconds: _Optional[float] = ..., startup_seconds: _Optional[float] = ..., total_seconds: _Optional[float] = ..., peak_memory_bytes: _Optional[int] = ..., memory_kind: _Optional[_Union[RunEstimate.MemoryKind, str]] = ..., calibrated: _Optional[bool] = ..., calibration_cached: _Optional[bool] = ..., calibration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., memory_capacity_bytes: _Optional[int] = ..., memory_available_bytes: _Optional[int] = ..., memory_fits: _Optional[bool] = ..., memory_tight: _Optional[bool] = ..., explanation: _Optional[_Iterable[str]] = ...) -> None: ...

class EstimateCheck(_message.Message):
    __slots__ = ("quantity", "estimated", "actual", "relative_error", "target", "within_target", "sentence")
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_ERROR_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    WITHIN_TARGET_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_FIELD_NUMBER: _ClassVar[int]
    quantity: str
    estimated: float
    actual: float
    relative_error: float
    target: float
    within_target: bool
    sentence: str
    def __init__(self, quantity: _Optional[str] = ..., estimated: _Optional[float] = ..., actual: _Optional[float] = ..., relative_error: _Optional[float] = ..., target: _Optional[float] = ..., within_target: _Optional[bool] = ..., sentence: _Optional[str] = ...) -> None: ...

class LearningCheck(_message.Message):
    __slots__ = ("data", "examples", "base_loss", "final_loss", "relative_improvement", "verdict", "sentence", "advice")
    class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        VERDICT_UNSPECIFIED: _ClassVar[LearningCheck.Verdict]
        VERDICT_LEARNED: _ClassVar[LearningCheck.Verdict]
        VERDICT_LEARNED_LITTLE: _ClassVar[LearningCheck.Verdict]
        VERDICT_DID_NOT_LEARN: _ClassVar[LearningCheck.Verdict]
        VERDICT_GOT_WORSE: _ClassVar[LearningCheck.Verdict]
    VERDICT_UNSPECIFIED: LearningCheck.Verdict
    VERDICT_LEARNED: LearningCheck.Verdict
    VERDICT_LEARNED_LITTLE: LearningCheck.Verdict
    VERDICT_DID_NOT_LEARN: LearningCheck.Verdict
    VERDICT_GOT_WORSE: LearningCheck.Verdict
    DATA_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    BASE_LOSS_FIELD_NUMBER: _ClassVar[int]
    FINAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_FIELD_NUMBER: _ClassVar[int]
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    data: str
    examples: int
    base_loss: float
    final_loss: float
    relative_improvement: float
    verdict: LearningCheck.Verdict
    sentence: str
    advice: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, data: _Optional[str] = ..., examples: _Optional[int] = ..., base_loss: _Optional[float] = ..., final_loss: _Optional[float] = ..., relative_improvement: _Optional[float] = ..., verdict: _Optional[_Union[LearningCheck.Verdict, str]] = ..., sentence: _Optional[str] = ..., advice: _Optional[_Iterable[str]] = ...) -> None: ...

class QuotaEstimate(_message.Message):
    __slots__ = ("num_examples", "steps_per_epoch", "total_steps", "checkpoints", "balance", "fits", "explanation", "memory", "run")
    NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    num_examples: int
    steps_per_epoch: int
    total_steps: int
    checkpoints: int
    balance: int
    fits: bool
    explanation: str
    memory: MemoryEstimate
    run: RunEstimate
    def __init__(self, num_examples: _Optional[int] = ..., steps_per_epoch: _Optional[int] = ..., total_steps: _Optional[int] = ..., checkpoints: _Optional[int] = ..., balance: _Optional[int] = ..., fits: _Optional[bool] = ..., explanation: _Optional[str] = ..., memory: _Optional[_Union[MemoryEstimate, _Mapping]] = ..., run: _Optional[_Union[RunEstimate, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("task_id", "type", "template", "params", "calibrate")
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
    CALIBRATE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    type: _common_pb2.TaskType
    template: str
    params: _containers.MessageMap[str, _common_pb2.ParamValue]
    calibrate: bool
    def __init__(self, task_id: _Optional[str] = ..., type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., template: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., calibrate: _Optional[bool] = ...) -> None: ...

class EstimateQuotaResponse(_message.Message):
    __slots__ = ("estimate", "warnings", "train_data", "eval_data", "settings")
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_DATA_FIELD_NUMBER: _ClassVar[int]
    EVAL_DATA_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    estimate: QuotaEstimate
    warnings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Warning]
    train_data: DataReport
    eval_data: DataReport
    settings: _containers.RepeatedCompositeFieldContainer[ResolvedSetting]
    def __init__(self, estimate: _Optional[_Union[QuotaEstimate, _Mapping]] = ..., warnings: _Optional[_Iterable[_Union[_common_pb2.Warning, _Mapping]]] = ..., train_data: _Optional[_Union[DataReport, _Mapping]] = ..., eval_data: _Optional[_Union[DataReport, _Mapping]] = ..., settings: _Optional[_Iterable[_Union[ResolvedSetting, _Mapping]]] = ...) -> None: ...

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
