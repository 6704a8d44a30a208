"""Bad requests, field by field, against a real daemon: INVALID_ARGUMENT with a sentence, never
INTERNAL or UNKNOWN, never an echo of a huge value.

Two halves. The named cases are the defects found by hand (a 100 000-deep JSON line, a 30-digit
page token, `params_billion` NaN, undecodable bytes, a 1 MB id, unknown enum values in filters,
negative limits, ...). The sweep walks the request message of EVERY RPC of protos/modx/v1 from its
descriptor and sends, one field at a time, a huge string, a string with terminal control codes, an
unknown enum value, a negative number, NaN / infinity / 1e300 and a huge repeated count: each must be
refused as INVALID_ARGUMENT with a sentence that names the field. Every refusal, here and in the
sweep, is a short sentence (at most MAX_SENTENCE_BYTES) without raw control characters, the daemon
stays healthy and creates nothing. A new RPC or field is swept without editing this file, except
for the baseline request an RPC needs (test_every_rpc_has_a_baseline says so).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor as FD
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from modx.v1 import common_pb2 as C
from modx.v1 import eval_pb2 as E
from modx.v1 import inference_pb2 as I
from modx.v1 import package_pb2 as P
from modx.v1 import system_pb2 as S
from modx.v1 import training_pb2 as T

from tests.support.daemon import Daemon

from ..daemon.helpers import create_request, task_count

Code = grpc.StatusCode
SERVICES = (T, S, E, I, P)
HUGE = "x" * 1_000_000
CONTROL = "bad\x1b[31mname\x07"
# What a refusal's sentence may not contain: C0 controls but tab and newline, DEL, C1, bidi overrides.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
TIMEOUT = 120
# The bound docs/reliability.md promises for a refusal's sentence (grpc-message trailers must stay far below
# gRPC's 8 KiB metadata limit, even percent-encoded).
MAX_SENTENCE_BYTES = 2048


def check_refusal(error: grpc.RpcError, code: grpc.StatusCode | None, fragments: tuple[str, ...], what: str) -> str:
    details = error.details() or ""
    assert error.code() not in (Code.INTERNAL, Code.UNKNOWN), f"{what}: {error.code()} {details[:500]}"
    if code is not None:
        assert error.code() == code, f"{what}: {error.code()} {details[:500]}"
    for fragment in fragments:
        assert fragment in details, f"{what}: {fragment!r} not in {details[:500]!r}"
    assert len(details.encode()) <= MAX_SENTENCE_BYTES, f"{what}: a {len(details)}-character message"
    assert len(details.split()) >= 3 and "Traceback" not in details, f"{what}: not a sentence: {details[:300]!r}"
    assert not UNSAFE.search(details), f"{what}: raw control characters in {details[:300]!r}"
    return details


def call(d: Daemon, method: str, request: Message | bytes) -> Any:
    """Call `method` with a message (or raw bytes) through a generic channel call."""
    serialize = (lambda b: b) if isinstance(request, bytes) else type(request).SerializeToString
    if _is_stream(method):
        return list(d.channel.unary_stream(method, request_serializer=serialize,
                                           response_deserializer=lambda b: b)(request, timeout=TIMEOUT))
    return d.channel.unary_unary(method, request_serializer=serialize,
                                 response_deserializer=lambda b: b)(request, timeout=TIMEOUT)


def refused(d: Daemon, method: str, request: Message | bytes) -> grpc.RpcError:
    try:
        call(d, method, request)
    except grpc.RpcError as exc:
        return exc
    raise AssertionError(f"{method} accepted {str(request)[:300]!r}")


# ----- the RPCs --------------------------------------------------------------------------------------------


def _methods() -> dict[str, Any]:
    """'/modx.v1.Service/Method' -> its method descriptor, for every RPC of the contract."""
    out = {}
    for module in SERVICES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                out[f"/{service.full_name}/{method.name}"] = method
    return out


METHODS = _methods()


def _is_stream(method: str) -> bool:
    return method in METHODS and METHODS[method].server_streaming


@dataclass
class Ctx:
    root: Path
    model: Path
    data: Path
    task_id: str


def _sft_params(ctx: Ctx, target: Any) -> None:
    for key, value in (("train_file", ctx.data), ("model_dir", ctx.model), ("output_dir", ctx.root / "sweep-out")):
        target[key].string_value = str(value)


def _create(ctx: Ctx) -> T.CreateTaskRequest:
    req = T.CreateTaskRequest(type=C.TASK_TYPE_SFT, name="sweep", validate_only=True)
    _sft_params(ctx, req.params)
    return req


def _estimate(ctx: Ctx) -> T.EstimateQuotaRequest:
    req = T.EstimateQuotaRequest(type=C.TASK_TYPE_SFT)
    _sft_params(ctx, req.params)
    return req


def _page() -> C.PageRequest:
    return C.PageRequest(page_size=10)


GENERATION = dict(temperature=0.0, top_p=1.0, top_k=0, repetition_penalty=1.0, max_new_tokens=8, seed=1)
SAMPLING = dict(temperature=0.5, top_p=0.9, top_k=5, repetition_penalty=1.1, max_new_tokens=8, seed=1, stop=["x"])

# A request per RPC that gets past every field check (most then fail for want of a checkpoint,
# which is fine: only its mutations are sent). Those of RPCs that change something are never sent.
BASELINES: dict[str, Callable[[Ctx], Message]] = {
    "/modx.v1.TrainingService/CreateTask": _create,
    "/modx.v1.TrainingService/GetTask": lambda c: T.GetTaskRequest(task_id=c.task_id),
    "/modx.v1.TrainingService/ListTasks": lambda c: T.ListTasksRequest(
        states=[C.TASK_STATE_CREATED], type=C.TASK_TYPE_SFT, page=_page()),
    "/modx.v1.TrainingService/DeleteTask": lambda c: T.DeleteTaskRequest(task_id=c.task_id),
    "/modx.v1.TrainingService/StartTask": lambda c: T.StartTaskRequest(task_id=c.task_id),
    "/modx.v1.TrainingService/StopTask": lambda c: T.StopTaskRequest(task_id=c.task_id),
    "/modx.v1.TrainingService/ResumeTask": lambda c: T.ResumeTaskRequest(task_id=c.task_id, checkpoint="1"),
    "/modx.v1.TrainingService/WatchTask": lambda c: T.WatchTaskRequest(
        task_id=c.task_id, kinds=[T.EVENT_KIND_LOG], history_only=True),
    "/modx.v1.TrainingService/ListMetrics": lambda c: T.ListMetricsRequest(task_id=c.task_id, page=_page()),
    "/modx.v1.TrainingService/ListCheckpoints": lambda c: T.ListCheckpointsRequest(task_id=c.task_id),
    "/modx.v1.TrainingService/EstimateQuota": _estimate,
    "/modx.v1.TrainingService/GetParamSchema": lambda c: T.GetParamSchemaRequest(type=C.TASK_TYPE_SFT),
    "/modx.v1.TrainingService/ListTemplates": lambda c: T.ListTemplatesRequest(type=C.TASK_TYPE_SFT),
    "/modx.v1.TrainingService/GetTemplate": lambda c: T.GetTemplateRequest(name="default-sft"),
    "/modx.v1.TrainingService/SaveTemplate": lambda c: T.SaveTemplateRequest(
        name="sweep-template", type=C.TASK_TYPE_SFT, description="from the sweep"),
    "/modx.v1.TrainingService/DeleteTemplate": lambda c: T.DeleteTemplateRequest(name="sweep-template"),
    "/modx.v1.SystemService/GetStatus": lambda c: S.GetStatusRequest(),
    "/modx.v1.SystemService/GetEnvironment": lambda c: S.GetEnvironmentRequest(),
    "/modx.v1.SystemService/GetHardwareAdvice": lambda c: S.GetHardwareAdviceRequest(params_billion=1.0),
    "/modx.v1.SystemService/GetQuota": lambda c: S.GetQuotaRequest(ledger_limit=10),
    "/modx.v1.SystemService/GrantQuota": lambda c: S.GrantQuotaRequest(amount=1, note="from the sweep"),
    "/modx.v1.EvalService/CreateEvaluation": lambda c: E.CreateEvaluationRequest(
        task_id=c.task_id, checkpoints=["1", "2"], samples=2, seed=1, generation=E.GenerationSettings(**GENERATION)),
    "/modx.v1.EvalService/GetEvaluation": lambda c: E.GetEvaluationRequest(evaluation_id="ev-00000000"),
    "/modx.v1.EvalService/ListEvaluations": lambda c: E.ListEvaluationsRequest(task_id=c.task_id, page=_page()),
    "/modx.v1.EvalService/WatchEvaluation": lambda c: E.WatchEvaluationRequest(evaluation_id="ev-00000000"),
    "/modx.v1.EvalService/ListEvaluationExamples": lambda c: E.ListEvaluationExamplesRequest(
        evaluation_id="ev-00000000", checkpoint_id="base", page=_page()),
    "/modx.v1.EvalService/ReadEvaluationFile": lambda c: E.ReadEvaluationFileRequest(
        evaluation_id="ev-00000000", name="report.md", offset=1),
    "/modx.v1.InferenceService/Chat": lambda c: I.ChatRequest(
        task_id=c.task_id, checkpoint="1", messages=[I.ChatMessage(role="user", content="hi")],
        system_prompt="be brief", sampling=I.SamplingParams(**SAMPLING), device=I.DEVICE_PREFERENCE_CPU),
    "/modx.v1.InferenceService/ListLoadedModels": lambda c: I.ListLoadedModelsRequest(),
    "/modx.v1.InferenceService/UnloadModel": lambda c: I.UnloadModelRequest(key="t-00000000/1"),
    "/modx.v1.PackageService/CreatePackage": lambda c: P.CreatePackageRequest(
        task_id=c.task_id, checkpoint="1", quant_types=[P.QUANT_TYPE_Q8_0], output_dir=str(c.root / "pkg")),
    "/modx.v1.PackageService/GetPackage": lambda c: P.GetPackageRequest(package_id="pkg-00000000"),
    "/modx.v1.PackageService/ListPackages": lambda c: P.ListPackagesRequest(task_id=c.task_id, page=_page()),
    "/modx.v1.PackageService/WatchPackage": lambda c: P.WatchPackageRequest(package_id="pkg-00000000"),
    "/modx.v1.PackageService/ReadPackageFile": lambda c: P.ReadPackageFileRequest(
        package_id="pkg-00000000", path="model.gguf", offset=1),
    "/modx.v1.PackageService/ImportGguf": lambda c: P.ImportGgufRequest(
        gguf_path=str(c.root / "none.gguf"), output_dir=str(c.root / "imported")),
}

# Model text: the content of chat messages, the system prompt and stop strings go to the model as
# they are (a newline, a tab or any other character may be what the person meant).
MODEL_TEXT = {("messages", "content"), ("system_prompt",), ("sampling", "stop")}
# A valid element for each repeated field, multiplied for the huge-count mutation.
ELEMENT = {"states": C.TASK_STATE_CREATED, "kinds": T.EVENT_KIND_LOG, "quant_types": P.QUANT_TYPE_Q8_0,
           "checkpoints": "1", "stop": "x"}


def _fields(descriptor: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, field descriptor) of every scalar, enum and repeated field, nested messages walked; maps skipped
    (the parameter maps have their own cases in test_corrupt_inputs.py and below)."""
    out = []
    for f in descriptor.fields:
        if f.type == FD.TYPE_MESSAGE:
            if f.message_type.GetOptions().map_entry or f.message_type.full_name == "google.protobuf.Timestamp":
                continue
            if f.is_repeated:
                out.append(((*prefix, f.name), f))
            out += _fields(f.message_type, (*prefix, f.name))
        elif f.type != FD.TYPE_BOOL:
            out.append(((*prefix, f.name), f))
    return out


def _mutated(base: Message, path: tuple[str, ...], value: Any, count: int = 0) -> Message:
    """A copy of `base` with the field at `path` set to `value` (a list of `count` copies when count)."""
    msg = type(base)()
    msg.CopyFrom(base)
    target = msg
    for name in path[:-1]:
        holder = getattr(target, name)
        if hasattr(holder, "add"):  # a repeated message: mutate its first element
            target = holder[0] if len(holder) else holder.add()
        else:
            target = holder
    leaf = target.DESCRIPTOR.fields_by_name[path[-1]]
    if leaf.is_repeated:
        field = getattr(target, path[-1])
        if leaf.type == FD.TYPE_MESSAGE:
            del field[:]
            for _ in range(count or 1):
                field.add(role="user", content="hi")
        elif count:
            del field[:]
            field.extend([value] * count)
        elif len(field):
            field[0] = value  # the first element bad, the others as they were
        else:
            field.append(value)
    else:
        setattr(target, path[-1], value)
    return msg


def _int_max(f: Any) -> int:
    return 2**31 - 1 if f.type in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32) else 2**63 - 1


@dataclass
class Mutation:
    id: str
    method: str
    path: tuple[str, ...]
    value: Any
    count: int = 0
    strict: bool = True  # INVALID_ARGUMENT naming the field; else only "no INTERNAL/UNKNOWN, a bounded sentence"


def _mutations() -> list[Mutation]:
    out = []
    for method, descriptor in METHODS.items():
        for path, f in _fields(descriptor.input_type):
            name = f"{method.rsplit('/', 1)[-1]}.{'.'.join(path)}"
            if f.type == FD.TYPE_MESSAGE:  # a repeated message field: only its count
                out.append(Mutation(f"{name}:100000-entries", method, path, None, 100_000))
                continue
            if f.is_repeated:
                out.append(Mutation(f"{name}:100000-entries", method, path, ELEMENT[path[-1]], 100_000))
            if f.type == FD.TYPE_STRING:
                out.append(Mutation(f"{name}:1MB", method, path, HUGE))
                out.append(Mutation(f"{name}:control-codes", method, path, CONTROL,
                                    strict=path[-2:] not in MODEL_TEXT and path[-1:] not in MODEL_TEXT))
            elif f.type == FD.TYPE_ENUM:
                out.append(Mutation(f"{name}:unknown-enum", method, path, 999))
            elif f.type == FD.TYPE_DOUBLE:
                for label, value in (("nan", float("nan")), ("inf", float("inf")), ("-inf", float("-inf")),
                                     ("1e300", 1e300)):
                    out.append(Mutation(f"{name}:{label}", method, path, value))
            else:  # integers
                out.append(Mutation(f"{name}:negative", method, path, -1))
                out.append(Mutation(f"{name}:max", method, path, _int_max(f), strict=False))
    return out


MUTATIONS = _mutations()

# ----- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_daemon(tmp_path_factory: pytest.TempPathFactory, roots: Path):
    d = Daemon(tmp_path_factory.mktemp("bad-requests-modxd") / "state", [roots], quota=10).start()
    yield d
    d.kill()


@pytest.fixture(scope="module")
def ctx(bad_daemon: Daemon, tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, sft_jsonl: Path) -> Ctx:
    root = tmp_path_factory.mktemp("bad-requests")
    task = bad_daemon.training.CreateTask(create_request(
        "sft", train_file=sft_jsonl, model_dir=tiny_llama_dir, output_dir=root / "task-out")).task
    return Ctx(root, tiny_llama_dir, sft_jsonl, task.id)


@pytest.fixture(autouse=True)
def unchanged(request: pytest.FixtureRequest):
    """Whatever a test sends, the daemon stays healthy and no task appears."""
    if "ctx" not in request.fixturenames:
        yield
        return
    d = request.getfixturevalue("bad_daemon")
    request.getfixturevalue("ctx")
    before = task_count(d)
    yield
    assert d.proc.poll() is None and d.healthy(), d.log()[-3000:]
    assert task_count(d) == before, "a refused request created a task"


# ----- the sweep ---------------------------------------------------------------------------------------------


def test_every_rpc_has_a_baseline() -> None:
    assert set(BASELINES) == set(METHODS), "add a baseline request for a new RPC to BASELINES"
    assert len(MUTATIONS) > 150


@pytest.mark.parametrize("method", sorted(METHODS), ids=lambda m: m.rsplit("/", 1)[-1])
def test_undecodable_bytes_are_invalid_argument(bad_daemon: Daemon, ctx: Ctx, method: str) -> None:
    error = refused(bad_daemon, method, b"\xff\xff\xff\xff\x0f garbage")
    check_refusal(error, Code.INVALID_ARGUMENT, (METHODS[method].input_type.full_name,), method)


def test_bad_utf8_in_a_string_is_invalid_argument(bad_daemon: Daemon, ctx: Ctx) -> None:
    # task_id (field 1) holding a UTF-16 surrogate encoded as UTF-8 bytes: no valid UTF-8 decoder takes it.
    error = refused(bad_daemon, "/modx.v1.TrainingService/GetTask", b"\x0a\x03\xed\xa0\x80")
    check_refusal(error, Code.INVALID_ARGUMENT, ("UTF-8",), "lone surrogate")


def test_undecodable_health_check_is_invalid_argument(bad_daemon: Daemon, ctx: Ctx) -> None:
    error = refused(bad_daemon, "/grpc.health.v1.Health/Check", b"\xff\xff\xff\xff\x0f")
    check_refusal(error, Code.INVALID_ARGUMENT, (health_pb2.HealthCheckRequest.DESCRIPTOR.full_name,), "health")


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.id for m in MUTATIONS])
def test_every_field_refuses_bad_values(bad_daemon: Daemon, ctx: Ctx, mutation: Mutation) -> None:
    request = _mutated(BASELINES[mutation.method](ctx), mutation.path, mutation.value, mutation.count)
    try:
        call(bad_daemon, mutation.method, request)
    except grpc.RpcError as error:
        leaf = mutation.path[-1]
        check_refusal(error, Code.INVALID_ARGUMENT if mutation.strict else None,
                      (leaf,) if mutation.strict else (), mutation.id)
    else:
        assert not mutation.strict, f"{mutation.id} was accepted"


# ----- the named cases ---------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    method: str
    request: Callable[[Ctx], Message]
    fragments: tuple[str, ...]
    code: grpc.StatusCode = Code.INVALID_ARGUMENT


def _typed(ctx: Ctx, key: str, **value: Any) -> T.CreateTaskRequest:
    req = _create(ctx)
    req.params[key].Clear()
    if "list_value" in value:
        req.params[key].list_value.values.extend(value["list_value"])
    else:
        setattr(req.params[key], *next(iter(value.items())))
    return req


def _with(ctx: Ctx, **params: Any) -> T.CreateTaskRequest:
    req = _create(ctx)
    for key, value in params.items():
        req.params[key].string_value = value(ctx) if callable(value) else str(value)
    return req


def _file(name: str, text: str) -> Callable[[Ctx], str]:
    def write(ctx: Ctx) -> str:
        path = ctx.root / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write


GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
TRAIN = "/modx.v1.TrainingService/"
LIST_TASKS = TRAIN + "ListTasks"

CASES = [
    # ---- data files that broke the parser --------------------------------------------------------------------
    Case("json-line-nested-100000-deep", TRAIN + "CreateTask", lambda c: _with(c, train_file=_file(
        "deep.jsonl", GOOD + "\n" + '{"messages": ' + "[" * 100_000 + "]" * 100_000 + "}\n")),
        ("deep.jsonl line 2", "nest")),
    Case("json-number-with-5000-digits", TRAIN + "CreateTask", lambda c: _with(c, train_file=_file(
        "digits.jsonl", '{"messages": ' + "9" * 5000 + "}\n")), ("digits.jsonl line 1", "digits")),
    # ---- page tokens and sizes --------------------------------------------------------------------------------
    Case("page-token-30-digits", LIST_TASKS, lambda c: T.ListTasksRequest(
        page=C.PageRequest(page_token="1" * 30)), ("page_token", "is not one this daemon issued")),
    Case("page-token-arabic-digits", LIST_TASKS, lambda c: T.ListTasksRequest(
        page=C.PageRequest(page_token="١٢")), ("page_token",)),
    Case("page-token-1MB", LIST_TASKS, lambda c: T.ListTasksRequest(page=C.PageRequest(page_token=HUGE)),
         ("page_token", "1000000 characters")),
    Case("eval-page-token-30-digits", "/modx.v1.EvalService/ListEvaluations", lambda c: E.ListEvaluationsRequest(
        page=C.PageRequest(page_token="9" * 30)), ("page_token",)),
    Case("package-page-token-30-digits", "/modx.v1.PackageService/ListPackages", lambda c: P.ListPackagesRequest(
        page=C.PageRequest(page_token="9" * 30)), ("page_token",)),
    Case("metrics-page-token-30-digits", TRAIN + "ListMetrics", lambda c: T.ListMetricsRequest(
        task_id=c.task_id, page=C.PageRequest(page_token="9" * 30)), ("page_token",)),
    Case("page-size-negative", LIST_TASKS, lambda c: T.ListTasksRequest(page=C.PageRequest(page_size=-1)),
         ("page_size",)),
    # ---- numbers ------------------------------------------------------------------------------------------------
    Case("params-billion-nan", "/modx.v1.SystemService/GetHardwareAdvice",
         lambda c: S.GetHardwareAdviceRequest(params_billion=float("nan")), ("params_billion", "nan")),
    Case("params-billion-1e300", "/modx.v1.SystemService/GetHardwareAdvice",
         lambda c: S.GetHardwareAdviceRequest(params_billion=1e300), ("params_billion",)),
    Case("ledger-limit-negative", "/modx.v1.SystemService/GetQuota", lambda c: S.GetQuotaRequest(ledger_limit=-5),
         ("ledger_limit", "-5")),
    Case("ledger-limit-absurd", "/modx.v1.SystemService/GetQuota",
         lambda c: S.GetQuotaRequest(ledger_limit=2**31 - 1), ("ledger_limit",)),
    Case("metrics-after-step-negative", TRAIN + "ListMetrics",
         lambda c: T.ListMetricsRequest(task_id=c.task_id, after_step=-5), ("after_step",)),
    Case("eval-repetition-penalty-nan", "/modx.v1.EvalService/CreateEvaluation", lambda c: E.CreateEvaluationRequest(
        task_id=c.task_id, checkpoints=["1", "2"],
        generation=E.GenerationSettings(repetition_penalty=float("nan"))), ("repetition_penalty",)),
    # above 0 but so small that the logits divided by it overflow float32: one floor for chat and evaluation
    Case("chat-temperature-1e-300", "/modx.v1.InferenceService/Chat", lambda c: I.ChatRequest(
        task_id=c.task_id, base=True, messages=[I.ChatMessage(role="user", content="hi")],
        sampling=I.SamplingParams(temperature=1e-300)), ("temperature", "0.01")),
    Case("chat-repetition-penalty-denormal", "/modx.v1.InferenceService/Chat", lambda c: I.ChatRequest(
        task_id=c.task_id, base=True, messages=[I.ChatMessage(role="user", content="hi")],
        sampling=I.SamplingParams(repetition_penalty=5e-324)), ("repetition_penalty", "0.01")),
    Case("eval-temperature-1e-300", "/modx.v1.EvalService/CreateEvaluation", lambda c: E.CreateEvaluationRequest(
        task_id=c.task_id, checkpoints=["1", "2"], generation=E.GenerationSettings(temperature=1e-300)),
        ("temperature", "0.01")),
    Case("eval-repetition-penalty-denormal", "/modx.v1.EvalService/CreateEvaluation", lambda c: E.CreateEvaluationRequest(
        task_id=c.task_id, checkpoints=["1", "2"], generation=E.GenerationSettings(repetition_penalty=5e-324)),
        ("repetition_penalty", "0.01")),
    Case("eval-generation-seed-negative", "/modx.v1.EvalService/CreateEvaluation", lambda c: E.CreateEvaluationRequest(
        task_id=c.task_id, checkpoints=["1", "2"], generation=E.GenerationSettings(seed=-3)), ("seed",)),
    Case("param-int-with-5000-digits", TRAIN + "CreateTask", lambda c: _with(c, seed="9" * 5000),
         ("parameter seed must be an integer",)),
    Case("param-double-nan", TRAIN + "CreateTask", lambda c: _typed(c, "learning_rate", double_value=float("nan")),
         ("parameter learning_rate",)),
    Case("param-int-for-float-huge", TRAIN + "CreateTask", lambda c: _typed(c, "warmup_ratio", int_value=2**63 - 1),
         ("parameter warmup_ratio",)),
    # ---- enums in filters ---------------------------------------------------------------------------------------
    Case("task-states-unknown", LIST_TASKS, lambda c: T.ListTasksRequest(states=[99]), ("states", "99")),
    Case("task-states-unspecified", LIST_TASKS, lambda c: T.ListTasksRequest(states=[C.TASK_STATE_UNSPECIFIED]),
         ("states",)),
    Case("watch-kinds-unknown", TRAIN + "WatchTask", lambda c: T.WatchTaskRequest(
        task_id=c.task_id, kinds=[77], history_only=True), ("kinds", "77")),
    Case("quant-type-unknown-before-lookup", "/modx.v1.PackageService/CreatePackage", lambda c: P.CreatePackageRequest(
        task_id="t-00000000", checkpoint="1", quant_types=[99]), ("quant_types",)),
    # ---- ids, names, keys and values: bounded, printable -----------------------------------------------------------
    Case("task-id-1MB", TRAIN + "GetTask", lambda c: T.GetTaskRequest(task_id=HUGE),
         ("task_id", "1000000 characters")),
    Case("task-id-escape-codes", TRAIN + "GetTask", lambda c: T.GetTaskRequest(task_id="t-\x1b[2J"),
         ("task_id", "control character")),
    Case("template-name-1MB", TRAIN + "GetTemplate", lambda c: T.GetTemplateRequest(name=HUGE), ("name",)),
    Case("template-name-trailing-newline", TRAIN + "SaveTemplate", lambda c: T.SaveTemplateRequest(
        name="nice-name\n", type=C.TASK_TYPE_SFT), ("template name",)),
    Case("task-name-escape-codes", TRAIN + "CreateTask", lambda c: (lambda r: (setattr(r, "name", "a\x1b]0;pwned\x07"),
                                                                               r)[1])(_create(c)),
         ("name", "control character")),
    Case("task-name-bidi-override", TRAIN + "CreateTask", lambda c: (lambda r: (setattr(r, "name", "evil\u202etxt.exe"),
                                                                                r)[1])(_create(c)),
         ("name",)),
    Case("unknown-parameter-1MB-key", TRAIN + "CreateTask", lambda c: _with(c, **{"k" * 1_000_000: "1"}),
         ("unknown parameter",)),
    Case("choice-value-1MB", TRAIN + "CreateTask", lambda c: _with(c, optim="o" * 1_000_000),
         ("parameter optim must be one of",)),
    Case("chat-template-too-long", TRAIN + "CreateTask", lambda c: _with(c, chat_template="{# #}" * 100_000),
         ("parameter chat_template", "characters")),
    Case("target-modules-100000", TRAIN + "CreateTask", lambda c: _typed(
        c, "lora_target_modules", list_value=["q_proj"] * 100_000), ("parameter lora_target_modules",)),
    Case("path-with-newline", TRAIN + "CreateTask", lambda c: _with(c, train_file=lambda ctx: f"{ctx.data}\n"),
         ("train_file", "control character")),
    Case("import-path-escape-codes", "/modx.v1.PackageService/ImportGguf", lambda c: P.ImportGgufRequest(
        gguf_path=f"{c.root}/x\x1b[2J.gguf", output_dir=str(c.root / "imp")), ("gguf_path", "control character")),
    Case("grant-note-1MB", "/modx.v1.SystemService/GrantQuota", lambda c: S.GrantQuotaRequest(amount=1, note=HUGE),
         ("note",)),
    Case("chat-100000-messages", "/modx.v1.InferenceService/Chat", lambda c: I.ChatRequest(
        task_id=c.task_id, messages=[I.ChatMessage(role="user", content="hi")] * 100_000), ("messages",)),
]


def test_the_named_cases_are_distinct() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_named_bad_request_is_refused_with_a_sentence(bad_daemon: Daemon, ctx: Ctx, case: Case) -> None:
    error = refused(bad_daemon, case.method, case.request(ctx))
    check_refusal(error, case.code, case.fragments, case.id)


def test_a_refused_request_changes_nothing(bad_daemon: Daemon, ctx: Ctx) -> None:
    """The quota is not granted by a refused GrantQuota, a template is not saved by a refused SaveTemplate."""
    balance = bad_daemon.system.GetQuota(S.GetQuotaRequest()).balance
    refused(bad_daemon, "/modx.v1.SystemService/GrantQuota", S.GrantQuotaRequest(amount=5, note="a\x1b[2Jb"))
    refused(bad_daemon, TRAIN + "SaveTemplate", T.SaveTemplateRequest(name="ok", type=C.TASK_TYPE_SFT,
                                                                      description=HUGE))
    assert bad_daemon.system.GetQuota(S.GetQuotaRequest()).balance == balance
    names = {t.name for t in bad_daemon.training.ListTemplates(T.ListTemplatesRequest()).templates}
    assert "ok" not in names


@pytest.mark.parametrize("name", ["ops\n", "ops\nrole = \"admin\"", "a\x1b[2J"])
def test_token_names_with_control_characters_are_refused(tmp_path: Path, name: str) -> None:
    """`modxd token create --name` writes the name into the tokens file: a newline in it would add lines."""
    from modxd.auth import TokenStore
    from modxd.errors import InvalidArgument

    store = TokenStore(tmp_path / "tokens.toml")
    with pytest.raises(InvalidArgument, match="token name"):
        store.create(name, "user")
    assert store.read() == []
