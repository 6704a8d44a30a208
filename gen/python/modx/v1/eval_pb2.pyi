import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from modx.v1 import common_pb2 as _common_pb2
from modx.v1 import inference_pb2 as _inference_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerationSettings(_message.Message):
    __slots__ = ("temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens", "seed")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    REPETITION_PENALTY_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_p: float
    top_k: int
    repetition_penalty: float
    max_new_tokens: int
    seed: int
    def __init__(self, temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., top_k: _Optional[int] = ..., repetition_penalty: _Optional[float] = ..., max_new_tokens: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class CheckpointScore(_message.Message):
    __slots__ = ("checkpoint_id", "label", "step", "perplexity", "bits_per_byte", "semantic_similarity", "coherence", "coverage", "composite", "rank", "is_best", "preference_accuracy", "preference_margin", "preference_pairs")
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_FIELD_NUMBER: _ClassVar[int]
    BITS_PER_BYTE_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    COHERENCE_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    COMPOSITE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    IS_BEST_FIELD_NUMBER: _ClassVar[int]
    PREFERENCE_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    PREFERENCE_MARGIN_FIELD_NUMBER: _ClassVar[int]
    PREFERENCE_PAIRS_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    label: str
    step: int
    perplexity: float
    bits_per_byte: float
    semantic_similarity: float
    coherence: float
    coverage: float
    composite: float
    rank: int
    is_best: bool
    preference_accuracy: float
    preference_margin: float
    preference_pairs: int
    def __init__(self, checkpoint_id: _Optional[str] = ..., label: _Optional[str] = ..., step: _Optional[int] = ..., perplexity: _Optional[float] = ..., bits_per_byte: _Optional[float] = ..., semantic_similarity: _Optional[float] = ..., coherence: _Optional[float] = ..., coverage: _Optional[float] = ..., composite: _Optional[float] = ..., rank: _Optional[int] = ..., is_best: _Optional[bool] = ..., preference_accuracy: _Optional[float] = ..., preference_margin: _Optional[float] = ..., preference_pairs: _Optional[int] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("id", "task_id", "state", "state_reason", "checkpoint_ids", "include_base", "samples", "generation", "scores", "best_checkpoint_id", "verdict", "report_path", "csv_path", "examples_path", "create_time", "end_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_IDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_BASE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    BEST_CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REPORT_PATH_FIELD_NUMBER: _ClassVar[int]
    CSV_PATH_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_PATH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    task_id: str
    state: _common_pb2.JobState
    state_reason: str
    checkpoint_ids: _containers.RepeatedScalarFieldContainer[str]
    include_base: bool
    samples: int
    generation: GenerationSettings
    scores: _containers.RepeatedCompositeFieldContainer[CheckpointScore]
    best_checkpoint_id: str
    verdict: str
    report_path: str
    csv_path: str
    examples_path: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., task_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., state_reason: _Optional[str] = ..., checkpoint_ids: _Optional[_Iterable[str]] = ..., include_base: _Optional[bool] = ..., samples: _Optional[int] = ..., generation: _Optional[_Union[GenerationSettings, _Mapping]] = ..., scores: _Optional[_Iterable[_Union[CheckpointScore, _Mapping]]] = ..., best_checkpoint_id: _Optional[str] = ..., verdict: _Optional[str] = ..., report_path: _Optional[str] = ..., csv_path: _Optional[str] = ..., examples_path: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EvalProgress(_message.Message):
    __slots__ = ("checkpoint_index", "checkpoint_count", "example_index", "example_count", "checkpoint_id", "running_scores")
    class RunningScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CHECKPOINT_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNING_SCORES_FIELD_NUMBER: _ClassVar[int]
    checkpoint_index: int
    checkpoint_count: int
    example_index: int
    example_count: int
    checkpoint_id: str
    running_scores: _containers.ScalarMap[str, float]
    def __init__(self, checkpoint_index: _Optional[int] = ..., checkpoint_count: _Optional[int] = ..., example_index: _Optional[int] = ..., example_count: _Optional[int] = ..., checkpoint_id: _Optional[str] = ..., running_scores: _Optional[_Mapping[str, float]] = ...) -> None: ...

class EvalEvent(_message.Message):
    __slots__ = ("evaluation_id", "seq", "time", "state", "progress", "log", "score")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    seq: int
    time: _timestamp_pb2.Timestamp
    state: _common_pb2.JobState
    progress: EvalProgress
    log: _common_pb2.LogLine
    score: CheckpointScore
    def __init__(self, evaluation_id: _Optional[str] = ..., seq: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., progress: _Optional[_Union[EvalProgress, _Mapping]] = ..., log: _Optional[_Union[_common_pb2.LogLine, _Mapping]] = ..., score: _Optional[_Union[CheckpointScore, _Mapping]] = ...) -> None: ...

class CreateEvaluationRequest(_message.Message):
    __slots__ = ("task_id", "checkpoints", "include_base", "samples", "seed", "generation")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_BASE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    checkpoints: _containers.RepeatedScalarFieldContainer[str]
    include_base: bool
    samples: int
    seed: int
    generation: GenerationSettings
    def __init__(self, task_id: _Optional[str] = ..., checkpoints: _Optional[_Iterable[str]] = ..., include_base: _Optional[bool] = ..., samples: _Optional[int] = ..., seed: _Optional[int] = ..., generation: _Optional[_Union[GenerationSettings, _Mapping]] = ...) -> None: ...

class CreateEvaluationResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    def __init__(self, evaluation: _Optional[_Union[Evaluation, _Mapping]] = ...) -> None: ...

class GetEvaluationRequest(_message.Message):
    __slots__ = ("evaluation_id",)
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    def __init__(self, evaluation_id: _Optional[str] = ...) -> None: ...

class GetEvaluationResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    def __init__(self, evaluation: _Optional[_Union[Evaluation, _Mapping]] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("task_id", "page")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    page: _common_pb2.PageRequest
    def __init__(self, task_id: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations", "next_page_token")
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    next_page_token: str
    def __init__(self, evaluations: _Optional[_Iterable[_Union[Evaluation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchEvaluationRequest(_message.Message):
    __slots__ = ("evaluation_id", "after_seq")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    after_seq: int
    def __init__(self, evaluation_id: _Optional[str] = ..., after_seq: _Optional[int] = ...) -> None: ...

class WatchEvaluationResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: EvalEvent
    def __init__(self, event: _Optional[_Union[EvalEvent, _Mapping]] = ...) -> None: ...

class EvalExample(_message.Message):
    __slots__ = ("checkpoint_id", "label", "step", "example", "prompt", "reference", "generation", "text", "answer_tokens", "answer_bytes", "nll", "perplexity", "bits_per_byte", "semantic_similarity", "coherence", "coverage", "composite", "line")
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_BYTES_FIELD_NUMBER: _ClassVar[int]
    NLL_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_FIELD_NUMBER: _ClassVar[int]
    BITS_PER_BYTE_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    COHERENCE_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    COMPOSITE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    label: str
    step: int
    example: int
    prompt: _containers.RepeatedCompositeFieldContainer[_inference_pb2.ChatMessage]
    reference: str
    generation: str
    text: str
    answer_tokens: int
    answer_bytes: int
    nll: float
    perplexity: float
    bits_per_byte: float
    semantic_similarity: float
    coherence: float
    coverage: float
    composite: float
    line: int
    def __init__(self, checkpoint_id: _Optional[str] = ..., label: _Optional[str] = ..., step: _Optional[int] = ..., example: _Optional[int] = ..., prompt: _Optional[_Iterable[_Union[_inference_pb2.ChatMessage, _Mapping]]] = ..., reference: _Optional[str] = ..., generation: _Optional[str] = ..., text: _Optional[str] = ..., answer_tokens: _Optional[int] = ..., answer_bytes: _Optional[int] = ..., nll: _Optional[float] = ..., perplexity: _Optional[float] = ..., bits_per_byte: _Optional[float] = ..., semantic_similarity: _Optional[float] = ..., coherence: _Optional[float] = ..., coverage: _Optional[float] = ..., composite: _Optional[float] = ..., line: _Optional[int] = ...) -> None: ...

class ListEvaluationExamplesRequest(_message.Message):
    __slots__ = ("evaluation_id", "checkpoint_id", "page")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    checkpoint_id: str
    page: _common_pb2.PageRequest
    def __init__(self, evaluation_id: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListEvaluationExamplesResponse(_message.Message):
    __slots__ = ("examples", "next_page_token")
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    examples: _containers.RepeatedCompositeFieldContainer[EvalExample]
    next_page_token: str
    def __init__(self, examples: _Optional[_Iterable[_Union[EvalExample, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReadEvaluationFileRequest(_message.Message):
    __slots__ = ("evaluation_id", "name", "offset")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    name: str
    offset: int
    def __init__(self, evaluation_id: _Optional[str] = ..., name: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class ReadEvaluationFileResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: _common_pb2.FileChunk
    def __init__(self, chunk: _Optional[_Union[_common_pb2.FileChunk, _Mapping]] = ...) -> None: ...
