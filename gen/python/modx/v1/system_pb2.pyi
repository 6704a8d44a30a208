import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeviceSlot(_message.Message):
    __slots__ = ("device", "task_id")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    device: str
    task_id: str
    def __init__(self, device: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("version", "api_version", "start_time", "uptime_seconds", "state_dir", "listen", "devices", "tasks_pending", "tasks_running", "tasks_total", "quota_balance", "pid")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STATE_DIR_FIELD_NUMBER: _ClassVar[int]
    LISTEN_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    TASKS_PENDING_FIELD_NUMBER: _ClassVar[int]
    TASKS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    TASKS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    QUOTA_BALANCE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    version: str
    api_version: str
    start_time: _timestamp_pb2.Timestamp
    uptime_seconds: float
    state_dir: str
    listen: str
    devices: _containers.RepeatedCompositeFieldContainer[DeviceSlot]
    tasks_pending: int
    tasks_running: int
    tasks_total: int
    quota_balance: int
    pid: int
    def __init__(self, version: _Optional[str] = ..., api_version: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uptime_seconds: _Optional[float] = ..., state_dir: _Optional[str] = ..., listen: _Optional[str] = ..., devices: _Optional[_Iterable[_Union[DeviceSlot, _Mapping]]] = ..., tasks_pending: _Optional[int] = ..., tasks_running: _Optional[int] = ..., tasks_total: _Optional[int] = ..., quota_balance: _Optional[int] = ..., pid: _Optional[int] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("index", "name", "kind", "total_memory_bytes", "free_memory_bytes", "compute_capability", "bf16_supported", "fp16_supported", "tf32_supported")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    FREE_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    BF16_SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    FP16_SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    TF32_SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    kind: str
    total_memory_bytes: int
    free_memory_bytes: int
    compute_capability: str
    bf16_supported: bool
    fp16_supported: bool
    tf32_supported: bool
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., total_memory_bytes: _Optional[int] = ..., free_memory_bytes: _Optional[int] = ..., compute_capability: _Optional[str] = ..., bf16_supported: _Optional[bool] = ..., fp16_supported: _Optional[bool] = ..., tf32_supported: _Optional[bool] = ...) -> None: ...

class GetEnvironmentRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetEnvironmentResponse(_message.Message):
    __slots__ = ("python_version", "platform", "torch_version", "cuda_version", "cuda_available", "devices", "packages", "cpu_count", "host_memory_bytes")
    class PackagesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    TORCH_VERSION_FIELD_NUMBER: _ClassVar[int]
    CUDA_VERSION_FIELD_NUMBER: _ClassVar[int]
    CUDA_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    PACKAGES_FIELD_NUMBER: _ClassVar[int]
    CPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    HOST_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    python_version: str
    platform: str
    torch_version: str
    cuda_version: str
    cuda_available: bool
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    packages: _containers.ScalarMap[str, str]
    cpu_count: int
    host_memory_bytes: int
    def __init__(self, python_version: _Optional[str] = ..., platform: _Optional[str] = ..., torch_version: _Optional[str] = ..., cuda_version: _Optional[str] = ..., cuda_available: _Optional[bool] = ..., devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., packages: _Optional[_Mapping[str, str]] = ..., cpu_count: _Optional[int] = ..., host_memory_bytes: _Optional[int] = ...) -> None: ...

class GetHardwareAdviceRequest(_message.Message):
    __slots__ = ("model_dir", "params_billion")
    MODEL_DIR_FIELD_NUMBER: _ClassVar[int]
    PARAMS_BILLION_FIELD_NUMBER: _ClassVar[int]
    model_dir: str
    params_billion: float
    def __init__(self, model_dir: _Optional[str] = ..., params_billion: _Optional[float] = ...) -> None: ...

class VramGuidance(_message.Message):
    __slots__ = ("size_class", "lora_bytes", "full_bytes")
    SIZE_CLASS_FIELD_NUMBER: _ClassVar[int]
    LORA_BYTES_FIELD_NUMBER: _ClassVar[int]
    FULL_BYTES_FIELD_NUMBER: _ClassVar[int]
    size_class: str
    lora_bytes: int
    full_bytes: int
    def __init__(self, size_class: _Optional[str] = ..., lora_bytes: _Optional[int] = ..., full_bytes: _Optional[int] = ...) -> None: ...

class DeviceAdvice(_message.Message):
    __slots__ = ("device", "lora_fits", "full_fits", "advice")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    LORA_FITS_FIELD_NUMBER: _ClassVar[int]
    FULL_FITS_FIELD_NUMBER: _ClassVar[int]
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    device: Device
    lora_fits: bool
    full_fits: bool
    advice: str
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., lora_fits: _Optional[bool] = ..., full_fits: _Optional[bool] = ..., advice: _Optional[str] = ...) -> None: ...

class GetHardwareAdviceResponse(_message.Message):
    __slots__ = ("params_billion", "guidance", "table", "devices", "recommendation")
    PARAMS_BILLION_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_FIELD_NUMBER: _ClassVar[int]
    params_billion: float
    guidance: VramGuidance
    table: _containers.RepeatedCompositeFieldContainer[VramGuidance]
    devices: _containers.RepeatedCompositeFieldContainer[DeviceAdvice]
    recommendation: str
    def __init__(self, params_billion: _Optional[float] = ..., guidance: _Optional[_Union[VramGuidance, _Mapping]] = ..., table: _Optional[_Iterable[_Union[VramGuidance, _Mapping]]] = ..., devices: _Optional[_Iterable[_Union[DeviceAdvice, _Mapping]]] = ..., recommendation: _Optional[str] = ...) -> None: ...

class QuotaEntry(_message.Message):
    __slots__ = ("id", "time", "delta", "balance_after", "kind", "task_id", "checkpoint_id", "note")
    ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    id: int
    time: _timestamp_pb2.Timestamp
    delta: int
    balance_after: int
    kind: str
    task_id: str
    checkpoint_id: str
    note: str
    def __init__(self, id: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delta: _Optional[int] = ..., balance_after: _Optional[int] = ..., kind: _Optional[str] = ..., task_id: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class GetQuotaRequest(_message.Message):
    __slots__ = ("ledger_limit",)
    LEDGER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ledger_limit: int
    def __init__(self, ledger_limit: _Optional[int] = ...) -> None: ...

class GetQuotaResponse(_message.Message):
    __slots__ = ("balance", "consumed", "granted", "ledger", "reserved")
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    LEDGER_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    balance: int
    consumed: int
    granted: int
    ledger: _containers.RepeatedCompositeFieldContainer[QuotaEntry]
    reserved: int
    def __init__(self, balance: _Optional[int] = ..., consumed: _Optional[int] = ..., granted: _Optional[int] = ..., ledger: _Optional[_Iterable[_Union[QuotaEntry, _Mapping]]] = ..., reserved: _Optional[int] = ...) -> None: ...

class GrantQuotaRequest(_message.Message):
    __slots__ = ("amount", "note")
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    amount: int
    note: str
    def __init__(self, amount: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...

class GrantQuotaResponse(_message.Message):
    __slots__ = ("balance", "entry")
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    balance: int
    entry: QuotaEntry
    def __init__(self, balance: _Optional[int] = ..., entry: _Optional[_Union[QuotaEntry, _Mapping]] = ...) -> None: ...
