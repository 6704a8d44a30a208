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

class QuantType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUANT_TYPE_UNSPECIFIED: _ClassVar[QuantType]
    QUANT_TYPE_F32: _ClassVar[QuantType]
    QUANT_TYPE_F16: _ClassVar[QuantType]
    QUANT_TYPE_BF16: _ClassVar[QuantType]
    QUANT_TYPE_Q8_0: _ClassVar[QuantType]
    QUANT_TYPE_Q2_K: _ClassVar[QuantType]
    QUANT_TYPE_Q3_K_S: _ClassVar[QuantType]
    QUANT_TYPE_Q3_K_M: _ClassVar[QuantType]
    QUANT_TYPE_Q3_K_L: _ClassVar[QuantType]
    QUANT_TYPE_Q4_0: _ClassVar[QuantType]
    QUANT_TYPE_Q4_K_S: _ClassVar[QuantType]
    QUANT_TYPE_Q4_K_M: _ClassVar[QuantType]
    QUANT_TYPE_Q5_0: _ClassVar[QuantType]
    QUANT_TYPE_Q5_K_S: _ClassVar[QuantType]
    QUANT_TYPE_Q5_K_M: _ClassVar[QuantType]
    QUANT_TYPE_Q6_K: _ClassVar[QuantType]
QUANT_TYPE_UNSPECIFIED: QuantType
QUANT_TYPE_F32: QuantType
QUANT_TYPE_F16: QuantType
QUANT_TYPE_BF16: QuantType
QUANT_TYPE_Q8_0: QuantType
QUANT_TYPE_Q2_K: QuantType
QUANT_TYPE_Q3_K_S: QuantType
QUANT_TYPE_Q3_K_M: QuantType
QUANT_TYPE_Q3_K_L: QuantType
QUANT_TYPE_Q4_0: QuantType
QUANT_TYPE_Q4_K_S: QuantType
QUANT_TYPE_Q4_K_M: QuantType
QUANT_TYPE_Q5_0: QuantType
QUANT_TYPE_Q5_K_S: QuantType
QUANT_TYPE_Q5_K_M: QuantType
QUANT_TYPE_Q6_K: QuantType

class PackageFile(_message.Message):
    __slots__ = ("path", "kind", "quant_type", "size_bytes", "sha256")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    QUANT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    path: str
    kind: str
    quant_type: QuantType
    size_bytes: int
    sha256: str
    def __init__(self, path: _Optional[str] = ..., kind: _Optional[str] = ..., quant_type: _Optional[_Union[QuantType, str]] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class Verification(_message.Message):
    __slots__ = ("tokenizer_match", "top1_agreement", "max_logit_diff", "mean_logit_diff", "prompts", "quant_type")
    TOKENIZER_MATCH_FIELD_NUMBER: _ClassVar[int]
    TOP1_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    MAX_LOGIT_DIFF_FIELD_NUMBER: _ClassVar[int]
    MEAN_LOGIT_DIFF_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    QUANT_TYPE_FIELD_NUMBER: _ClassVar[int]
    tokenizer_match: bool
    top1_agreement: float
    max_logit_diff: float
    mean_logit_diff: float
    prompts: int
    quant_type: QuantType
    def __init__(self, tokenizer_match: _Optional[bool] = ..., top1_agreement: _Optional[float] = ..., max_logit_diff: _Optional[float] = ..., mean_logit_diff: _Optional[float] = ..., prompts: _Optional[int] = ..., quant_type: _Optional[_Union[QuantType, str]] = ...) -> None: ...

class Package(_message.Message):
    __slots__ = ("id", "task_id", "checkpoint_id", "state", "state_reason", "quant_types", "merge", "output_dir", "files", "verifications", "create_time", "end_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    QUANT_TYPES_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIR_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    VERIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    task_id: str
    checkpoint_id: str
    state: _common_pb2.JobState
    state_reason: str
    quant_types: _containers.RepeatedScalarFieldContainer[QuantType]
    merge: bool
    output_dir: str
    files: _containers.RepeatedCompositeFieldContainer[PackageFile]
    verifications: _containers.RepeatedCompositeFieldContainer[Verification]
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., task_id: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., state_reason: _Optional[str] = ..., quant_types: _Optional[_Iterable[_Union[QuantType, str]]] = ..., merge: _Optional[bool] = ..., output_dir: _Optional[str] = ..., files: _Optional[_Iterable[_Union[PackageFile, _Mapping]]] = ..., verifications: _Optional[_Iterable[_Union[Verification, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PackageProgress(_message.Message):
    __slots__ = ("phase", "tensors_done", "tensors_total", "bytes_written", "quant_type")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    TENSORS_DONE_FIELD_NUMBER: _ClassVar[int]
    TENSORS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    BYTES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    QUANT_TYPE_FIELD_NUMBER: _ClassVar[int]
    phase: str
    tensors_done: int
    tensors_total: int
    bytes_written: int
    quant_type: QuantType
    def __init__(self, phase: _Optional[str] = ..., tensors_done: _Optional[int] = ..., tensors_total: _Optional[int] = ..., bytes_written: _Optional[int] = ..., quant_type: _Optional[_Union[QuantType, str]] = ...) -> None: ...

class PackageEvent(_message.Message):
    __slots__ = ("package_id", "seq", "time", "state", "progress", "log", "file")
    PACKAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    package_id: str
    seq: int
    time: _timestamp_pb2.Timestamp
    state: _common_pb2.JobState
    progress: PackageProgress
    log: _common_pb2.LogLine
    file: PackageFile
    def __init__(self, package_id: _Optional[str] = ..., seq: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., progress: _Optional[_Union[PackageProgress, _Mapping]] = ..., log: _Optional[_Union[_common_pb2.LogLine, _Mapping]] = ..., file: _Optional[_Union[PackageFile, _Mapping]] = ...) -> None: ...

class CreatePackageRequest(_message.Message):
    __slots__ = ("task_id", "checkpoint", "quant_types", "merge", "output_dir", "skip_verification")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    QUANT_TYPES_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIR_FIELD_NUMBER: _ClassVar[int]
    SKIP_VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    checkpoint: str
    quant_types: _containers.RepeatedScalarFieldContainer[QuantType]
    merge: bool
    output_dir: str
    skip_verification: bool
    def __init__(self, task_id: _Optional[str] = ..., checkpoint: _Optional[str] = ..., quant_types: _Optional[_Iterable[_Union[QuantType, str]]] = ..., merge: _Optional[bool] = ..., output_dir: _Optional[str] = ..., skip_verification: _Optional[bool] = ...) -> None: ...

class CreatePackageResponse(_message.Message):
    __slots__ = ("package",)
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    package: Package
    def __init__(self, package: _Optional[_Union[Package, _Mapping]] = ...) -> None: ...

class GetPackageRequest(_message.Message):
    __slots__ = ("package_id",)
    PACKAGE_ID_FIELD_NUMBER: _ClassVar[int]
    package_id: str
    def __init__(self, package_id: _Optional[str] = ...) -> None: ...

class GetPackageResponse(_message.Message):
    __slots__ = ("package",)
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    package: Package
    def __init__(self, package: _Optional[_Union[Package, _Mapping]] = ...) -> None: ...

class ListPackagesRequest(_message.Message):
    __slots__ = ("task_id", "page")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    page: _common_pb2.PageRequest
    def __init__(self, task_id: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListPackagesResponse(_message.Message):
    __slots__ = ("packages", "next_page_token")
    PACKAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    packages: _containers.RepeatedCompositeFieldContainer[Package]
    next_page_token: str
    def __init__(self, packages: _Optional[_Iterable[_Union[Package, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchPackageRequest(_message.Message):
    __slots__ = ("package_id", "after_seq")
    PACKAGE_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    package_id: str
    after_seq: int
    def __init__(self, package_id: _Optional[str] = ..., after_seq: _Optional[int] = ...) -> None: ...

class WatchPackageResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: PackageEvent
    def __init__(self, event: _Optional[_Union[PackageEvent, _Mapping]] = ...) -> None: ...

class ImportGgufRequest(_message.Message):
    __slots__ = ("gguf_path", "output_dir", "overwrite")
    GGUF_PATH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIR_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    gguf_path: str
    output_dir: str
    overwrite: bool
    def __init__(self, gguf_path: _Optional[str] = ..., output_dir: _Optional[str] = ..., overwrite: _Optional[bool] = ...) -> None: ...

class ImportGgufResponse(_message.Message):
    __slots__ = ("output_dir", "architecture", "parameters", "cached")
    OUTPUT_DIR_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    output_dir: str
    architecture: str
    parameters: int
    cached: bool
    def __init__(self, output_dir: _Optional[str] = ..., architecture: _Optional[str] = ..., parameters: _Optional[int] = ..., cached: _Optional[bool] = ...) -> None: ...

class ReadPackageFileRequest(_message.Message):
    __slots__ = ("package_id", "path", "offset")
    PACKAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    package_id: str
    path: str
    offset: int
    def __init__(self, package_id: _Optional[str] = ..., path: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class ReadPackageFileResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: _common_pb2.FileChunk
    def __init__(self, chunk: _Optional[_Union[_common_pb2.FileChunk, _Mapping]] = ...) -> None: ...
