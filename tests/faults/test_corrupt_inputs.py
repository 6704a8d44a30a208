"""Case 5: a corpus of bad requests and files against a real daemon.

Every entry gets the right gRPC status code and a sentence that names the
problem (the parameter, the file and line, the value); the daemon stays up and
nothing is created: no task, no output dir.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import grpc
import pytest
from modx.v1 import common_pb2 as C
from modx.v1 import package_pb2, system_pb2
from modx.v1 import training_pb2 as T

from tests.support.daemon import Daemon

from ..daemon.helpers import create_request, rpc_error, task_count

S = grpc.StatusCode
GOOD_TURNS = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def _jsonl(*objs: Any) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)


GOOD_LINE = _jsonl({"messages": GOOD_TURNS})

# name -> file content (str is written as UTF-8, bytes as they are)
BAD_FILES: dict[str, str | bytes] = {
    "malformed.jsonl": GOOD_LINE + '{"messages": [{"role": "user", "content": "hi"}\n',
    "array-line.jsonl": GOOD_LINE + "[1, 2, 3]\n",
    "string-line.jsonl": '"just a string"\n',
    "empty.jsonl": "",
    "blank-lines.jsonl": "\n   \n\n",
    "binary.jsonl": bytes(range(256)) * 64,
    "utf16.jsonl": GOOD_LINE.encode("utf-16"),
    "latin1.jsonl": GOOD_LINE.replace("hello", "café").encode("latin-1"),
    "no-assistant.jsonl": _jsonl({"messages": [{"role": "user", "content": "hi"}]}),
    "unknown-role.jsonl": _jsonl({"messages": [{"role": "bot", "content": "hi"}, GOOD_TURNS[1]]}),
    "content-number.jsonl": _jsonl({"messages": [{"role": "user", "content": 42}, GOOD_TURNS[1]]}),
    "messages-object.jsonl": _jsonl({"messages": {"role": "user"}}),
    "messages-empty.jsonl": _jsonl({"messages": []}),
    "system-late.jsonl": _jsonl({"messages": [*GOOD_TURNS, {"role": "system", "content": "x"}]}),
    "alpaca-no-output.jsonl": _jsonl({"instruction": "do it", "input": ""}),
    "sharegpt-bad-from.jsonl": _jsonl({"conversations": [{"from": "robot", "value": "x"}]}),
    "unrecognised.jsonl": _jsonl({"prompt": "x", "completion": "y"}),
    "pretrain-no-text.jsonl": _jsonl({"content": "some text"}),
    "pretrain-text-number.jsonl": _jsonl({"text": 5}),
    "pretrain-empty.txt": "\n\n",
    "pretrain-binary.txt": b"\x00\x01\x02GGUF\xff\xfe" * 100,
    "model.gguf": b"GGUF" + struct.pack("<I", 3) + os.urandom(64),
    "gguf-renamed.bin": b"GGUF" + struct.pack("<I", 3) + os.urandom(64),
    # GGUF files the reader cannot parse (ImportGguf)
    "gguf-truncated.gguf": b"GGUF" + struct.pack("<I", 3) + b"\x01\x00",
    "gguf-version-99.gguf": b"GGUF" + struct.pack("<I", 99) + bytes(16),
    "gguf-huge-counts.gguf": b"GGUF" + struct.pack("<I", 3) + struct.pack("<QQ", 2**62, 2**62),
    "gguf-garbage.gguf": b"GGUF" + struct.pack("<I", 3) + struct.pack("<QQ", 0, 1) + bytes(range(200, 256)) * 4,
}


@dataclass
class Ctx:
    root: Path
    model: Path
    data: Path
    corpus: dict[str, Path]


@dataclass
class Case:
    id: str
    call: Callable[[Any, Ctx, Path], Any]  # (daemon, ctx, fresh output dir) -> RPC response
    code: grpc.StatusCode
    fragments: tuple[str, ...]


def _sft(ctx: Ctx, out: Path, **over: Any) -> T.CreateTaskRequest:
    params = {"train_file": ctx.data, "model_dir": ctx.model, "output_dir": out, **over}
    return create_request("sft", **{k: v for k, v in params.items() if v is not None})


def _typed(req: T.CreateTaskRequest, key: str, **value: Any) -> T.CreateTaskRequest:
    req.params[key].Clear()
    if "list_value" in value:
        req.params[key].list_value.values.extend(value["list_value"])
    else:
        setattr(req.params[key], *next(iter(value.items())))
    return req


def create(**over: Any) -> Callable[[Any, Ctx, Path], Any]:
    """A CreateTask whose parameters are the good ones with `over` applied (values may be
    callables of ctx; a key mapped to None is left out)."""
    def call(d, ctx: Ctx, out: Path) -> Any:
        values = {k: (v(ctx) if callable(v) else v) for k, v in over.items()}
        return d.training.CreateTask(_sft(ctx, out, **values))
    return call


def create_typed(key: str, **value: Any) -> Callable[[Any, Ctx, Path], Any]:
    return lambda d, ctx, out: d.training.CreateTask(_typed(_sft(ctx, out), key, **value))


def data(name: str) -> Callable[[Ctx], Path]:
    return lambda ctx: ctx.corpus[name]


def pretrain(name: str) -> Callable[[Any, Ctx, Path], Any]:
    return lambda d, ctx, out: d.training.CreateTask(create_request(
        "pretrain", train_file=ctx.corpus[name], model_dir=ctx.model, output_dir=out))


def _empty_value(req: T.CreateTaskRequest, key: str) -> T.CreateTaskRequest:
    req.params[key].Clear()
    return req


def _named(req: T.CreateTaskRequest, name: str) -> T.CreateTaskRequest:
    req.name = name
    return req


def pretrain_with(**over: Any) -> Callable[[Any, Ctx, Path], Any]:
    return lambda d, ctx, out: d.training.CreateTask(create_request(
        "pretrain", train_file=ctx.corpus["good.txt"], model_dir=ctx.model, output_dir=out, **over))



def import_gguf(name: str) -> Callable[[Any, Ctx, Path], Any]:
    return lambda d, ctx, out: d.packages.ImportGguf(package_pb2.ImportGgufRequest(
        gguf_path=str(ctx.corpus[name]), output_dir=str(out)))


def advice(name: str) -> Callable[[Any, Ctx, Path], Any]:
    return lambda d, ctx, out: d.system.GetHardwareAdvice(system_pb2.GetHardwareAdviceRequest(
        model_dir=str(ctx.corpus[name])))


def estimate_model(name: str) -> Callable[[Any, Ctx, Path], Any]:
    def call(d, ctx: Ctx, out: Path) -> Any:
        req = T.EstimateQuotaRequest(type=C.TASK_TYPE_SFT)
        for key, value in (("train_file", ctx.data), ("model_dir", ctx.corpus[name]), ("output_dir", out)):
            req.params[key].string_value = str(value)
        return d.training.EstimateQuota(req)
    return call


def safetensors(header: dict[str, Any], data_bytes: int = 16) -> bytes:
    """A safetensors file with this header (every reader multiplies its shapes: it must hold counts)."""
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * data_bytes


# The header of a weights file whose entry for 'a.weight' is the value given.
BAD_TENSOR_ENTRIES: dict[str, Any] = {
    "st-shape-string": {"dtype": "F32", "shape": "abc", "data_offsets": [0, 16]},
    "st-shape-null": {"dtype": "F32", "shape": [None, {"x": 1}], "data_offsets": [0, 16]},
    "st-shape-huge": {"dtype": "F32", "shape": [10**18, 10**18], "data_offsets": [0, 16]},
    "st-offsets-short": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0]},
    "st-entry-not-object": [1, 2, 3],
    "st-no-dtype": {"shape": [2, 2], "data_offsets": [0, 16]},
}

DROP = object()
# config.json keys the memory and time estimates read, with values no model has.
CONFIG_CHANGES: dict[str, dict[str, Any]] = {
    "cfg-hidden-string": {"hidden_size": "abc"},
    "cfg-layers-zero": {"num_hidden_layers": 0},
    "cfg-heads-float": {"num_attention_heads": 4.5},
    "cfg-intermediate-list": {"intermediate_size": [1, 2]},
    "cfg-no-hidden-size": {"hidden_size": DROP},
    "cfg-hidden-huge": {"hidden_size": 10**30},
    "cfg-layers-huge": {"num_hidden_layers": 10**12},
    "cfg-architectures-string": {"architectures": "LlamaForCausalLM"},
}


CASES = [
    # ---- training data files --------------------------------------------------------------
    Case("malformed-json-line", create(train_file=data("malformed.jsonl")), S.INVALID_ARGUMENT,
         ("malformed.jsonl line 2", "not valid JSON")),
    Case("array-line", create(train_file=data("array-line.jsonl")), S.INVALID_ARGUMENT,
         ("line 2", "must be a JSON object (got array)")),
    Case("string-line", create(train_file=data("string-line.jsonl")), S.INVALID_ARGUMENT,
         ("line 1", "must be a JSON object (got string)")),
    Case("empty-file", create(train_file=data("empty.jsonl")), S.INVALID_ARGUMENT,
         ("empty.jsonl", "has no examples")),
    Case("blank-lines-only", create(train_file=data("blank-lines.jsonl")), S.INVALID_ARGUMENT,
         ("blank-lines.jsonl", "has no examples")),
    Case("binary-file", create(train_file=data("binary.jsonl")), S.INVALID_ARGUMENT,
         ("binary.jsonl", "binary")),
    Case("gigantic-line", create(train_file=data("gigantic.jsonl")), S.INVALID_ARGUMENT,
         ("gigantic.jsonl line 2", "is longer than 8000000 bytes")),
    Case("utf16-encoding", create(train_file=data("utf16.jsonl")), S.INVALID_ARGUMENT,
         ("utf16.jsonl", "UTF-16", "UTF-8")),
    Case("latin1-encoding", create(train_file=data("latin1.jsonl")), S.INVALID_ARGUMENT,
         ("latin1.jsonl line 1", "not valid UTF-8")),
    Case("no-assistant-turn", create(train_file=data("no-assistant.jsonl")), S.INVALID_ARGUMENT,
         ("line 1", "no assistant turn")),
    Case("unknown-role", create(train_file=data("unknown-role.jsonl")), S.INVALID_ARGUMENT,
         ("line 1", "role", "'bot'")),
    Case("content-wrong-type", create(train_file=data("content-number.jsonl")), S.INVALID_ARGUMENT,
         ("line 1", "content", "must be a string (got number)")),
    Case("messages-not-array", create(train_file=data("messages-object.jsonl")), S.INVALID_ARGUMENT,
         ("line 1", "'messages' must be an array (got object)")),
    Case("messages-empty", create(train_file=data("messages-empty.jsonl")), S.INVALID_ARGUMENT,
         ("line 1", "'messages' is empty")),
    Case("system-not-first", create(train_file=data("system-late.jsonl")), S.INVALID_ARGUMENT,
         ("line 1", "system message")),
    Case("alpaca-without-output", create(train_file=data("alpaca-no-output.jsonl")), S.INVALID_ARGUMENT,
         ("line 1", "missing 'output'")),
    Case("sharegpt-unknown-from", create(train_file=data("sharegpt-bad-from.jsonl")), S.INVALID_ARGUMENT,
         ("line 1", "'robot'")),
    Case("unrecognised-format", create(train_file=data("unrecognised.jsonl")), S.INVALID_ARGUMENT,
         ("line 1", "not a recognised SFT example")),
    Case("pretrain-without-text", pretrain("pretrain-no-text.jsonl"), S.INVALID_ARGUMENT,
         ("line 1", "no 'text' key")),
    Case("pretrain-text-wrong-type", pretrain("pretrain-text-number.jsonl"), S.INVALID_ARGUMENT,
         ("line 1", "text", "number")),
    Case("pretrain-empty-txt", pretrain("pretrain-empty.txt"), S.INVALID_ARGUMENT,
         ("pretrain-empty.txt", "has no")),
    Case("pretrain-binary-txt", pretrain("pretrain-binary.txt"), S.INVALID_ARGUMENT,
         ("pretrain-binary.txt", "binary")),
    Case("train-file-is-a-dir", create(train_file=lambda ctx: ctx.root), S.FAILED_PRECONDITION,
         ("parameter train_file", "is not a file")),
    Case("train-file-missing", create(train_file=lambda ctx: ctx.root / "nope.jsonl"), S.FAILED_PRECONDITION,
         ("parameter train_file", "nope.jsonl does not exist")),
    Case("train-file-not-given", create(train_file=None), S.INVALID_ARGUMENT,
         ("parameter train_file is required",)),
    # ---- paths: relative, traversal, symlinks, NUL bytes, absurd lengths -------------------
    Case("relative-path", create(train_file="data/sft.jsonl"), S.PERMISSION_DENIED,
         ("train_file", "must be an absolute path")),
    Case("path-traversal", create(train_file=lambda ctx: f"{ctx.root}/../../../../etc/passwd"),
         S.PERMISSION_DENIED, ("train_file", "outside the allowed roots")),
    Case("symlink-out-of-roots", create(train_file=data("escape-link")), S.PERMISSION_DENIED,
         ("train_file", "outside the allowed roots")),
    Case("output-dir-outside-roots", create(output_dir="/etc/modx-out"), S.PERMISSION_DENIED,
         ("output_dir", "outside the allowed roots")),
    Case("output-dir-is-a-file", create(output_dir=lambda ctx: ctx.data), S.FAILED_PRECONDITION,
         ("parameter output_dir", "is not a dir")),
    Case("nul-byte-in-path", create(train_file=lambda ctx: f"{ctx.data}\0.jsonl"), S.INVALID_ARGUMENT,
         ("train_file", "NUL")),
    Case("absurdly-long-path", create(train_file=lambda ctx: f"{ctx.root}/{'x' * 5000}.jsonl"),
         S.INVALID_ARGUMENT, ("train_file", "too long")),
    # ---- models and tokenizers -----------------------------------------------------------------
    Case("gguf-file-as-model", create(model_dir=data("model.gguf")), S.INVALID_ARGUMENT,
         ("parameter model_dir", "GGUF", "import-gguf")),
    Case("gguf-magic-renamed", create(model_dir=data("gguf-renamed.bin")), S.INVALID_ARGUMENT,
         ("parameter model_dir", "GGUF")),
    Case("model-dir-without-weights", create(model_dir=data("no-weights")), S.FAILED_PRECONDITION,
         ("parameter model_dir", "no *.safetensors weights")),
    Case("model-dir-bin-weights-only", create(model_dir=data("bin-only")), S.FAILED_PRECONDITION,
         ("parameter model_dir", "re-save them as safetensors")),
    Case("model-dir-without-config", create(model_dir=data("no-config")), S.FAILED_PRECONDITION,
         ("parameter model_dir", "no config.json")),
    Case("model-config-not-json", create(model_dir=data("bad-config")), S.FAILED_PRECONDITION,
         ("parameter model_dir", "config.json is not valid JSON")),
    Case("model-not-causal", create(model_dir=data("bert")), S.INVALID_ARGUMENT,
         ("parameter model_dir", "not a causal language model")),
    Case("model-weights-corrupt", create(model_dir=data("corrupt-weights")), S.FAILED_PRECONDITION,
         ("parameter model_dir", "model.safetensors", "not a valid safetensors file")),
    Case("model-dir-missing", create(model_dir=lambda ctx: ctx.root / "no-model"), S.FAILED_PRECONDITION,
         ("parameter model_dir", "does not exist")),
    *[Case(f"{name}-{rpc}", call(name), code, ("model_dir", "model.safetensors", "tensor 'a.weight'", words))
      for name, words in (("st-shape-string", "not a list of counts"), ("st-shape-null", "not a list of counts"),
                          ("st-shape-huge", "data_offsets"), ("st-offsets-short", "data_offsets"),
                          ("st-entry-not-object", "is not an object"), ("st-no-dtype", "no dtype"))
      for rpc, call, code in (("create", lambda n: create(model_dir=data(n)), S.FAILED_PRECONDITION),
                              ("estimate", estimate_model, S.FAILED_PRECONDITION),
                              ("advice", advice, S.FAILED_PRECONDITION))],
    *[Case(f"{name}-{rpc}", call(name), S.FAILED_PRECONDITION, ("parameter model_dir", "config.json", words))
      for name, words in (("cfg-hidden-string", "gives hidden_size as 'abc'"),
                          ("cfg-layers-zero", "gives num_hidden_layers as 0"),
                          ("cfg-heads-float", "gives num_attention_heads as 4.5"),
                          ("cfg-intermediate-list", "gives intermediate_size as [1, 2]"),
                          ("cfg-no-hidden-size", "names no hidden_size"),
                          ("cfg-hidden-huge", "does not belong to these weights"),
                          ("cfg-layers-huge", "does not belong to these weights"),
                          ("cfg-architectures-string", "gives architectures as"))
      for rpc, call in (("create", lambda n: create(model_dir=data(n))), ("estimate", estimate_model),
                        ("advice", advice))],
    # full fine-tuning once stored a task whose memory estimate overflowed int64: INTERNAL, and every
    # ListTasks after it INTERNAL too (the unchanged task count below checks ListTasks still answers)
    Case("cfg-hidden-huge-full-finetune", create(model_dir=data("cfg-hidden-huge"), use_lora="false"),
         S.FAILED_PRECONDITION, ("parameter model_dir", "does not belong to these weights")),
    *[Case(f"import-{name}", import_gguf(name), S.INVALID_ARGUMENT, ("gguf_path", name, "not a readable GGUF file"))
      for name in ("gguf-truncated.gguf", "gguf-version-99.gguf", "gguf-huge-counts.gguf", "gguf-garbage.gguf")],
    Case("model-config-symlinked-out-create", create(model_dir=data("config-link-out")), S.PERMISSION_DENIED,
         ("model_dir", "config.json leads to", "outside the allowed roots", "not opened")),
    Case("model-config-symlinked-out-advice", advice("config-link-out"), S.PERMISSION_DENIED,
         ("model_dir", "config.json leads to", "outside the allowed roots", "not opened")),
    Case("tokenizer-files-missing", create(tokenizer_dir=data("no-tokenizer")), S.FAILED_PRECONDITION,
         ("parameter tokenizer_dir", "has no tokenizer")),
    Case("tokenizer-without-chat-template", create(tokenizer_dir=data("no-template")), S.FAILED_PRECONDITION,
         ("parameter tokenizer_dir", "no chat template")),
    *[Case(f"tokenizer-config-{name}", create(tokenizer_dir=data(f"tokenizer-config-{name}")), S.FAILED_PRECONDITION,
           ("parameter tokenizer_dir", "tokenizer_config.json", f"holds {kind}, not an object"))
      for name, kind in (("list", "a JSON array"), ("string", "a JSON string"), ("null", "JSON null"))],
    # ---- parameters: out of range, wrong type, absurd sizes --------------------------------
    Case("learning-rate-out-of-range", create(learning_rate="10"), S.INVALID_ARGUMENT,
         ("parameter learning_rate must be between",)),
    Case("learning-rate-not-a-number", create(learning_rate="fast"), S.INVALID_ARGUMENT,
         ("parameter learning_rate must be a number", "'fast'")),
    Case("learning-rate-nan", create(learning_rate="nan"), S.INVALID_ARGUMENT,
         ("parameter learning_rate must be a finite number",)),
    Case("learning-rate-bool", create_typed("learning_rate", bool_value=True), S.INVALID_ARGUMENT,
         ("parameter learning_rate must be a number",)),
    Case("batch-size-zero", create(per_device_train_batch_size="0"), S.INVALID_ARGUMENT,
         ("parameter per_device_train_batch_size must be between 1 and 128",)),
    Case("batch-size-absurd", create_typed("per_device_train_batch_size", int_value=10**15), S.INVALID_ARGUMENT,
         ("parameter per_device_train_batch_size must be between 1 and 128",)),
    Case("epochs-fractional", create(num_train_epochs="1.5"), S.INVALID_ARGUMENT,
         ("parameter num_train_epochs must be an integer", "'1.5'")),
    Case("max-seq-length-absurd", create(max_seq_length="999999999"), S.INVALID_ARGUMENT,
         ("parameter max_seq_length must be between",)),
    Case("max-seq-length-beyond-model", create(max_seq_length="4096"), S.INVALID_ARGUMENT,
         ("parameter max_seq_length is 4096", "max_position_embeddings) is 1024")),
    Case("lora-dropout-out-of-range", create(lora_dropout="1.5"), S.INVALID_ARGUMENT,
         ("parameter lora_dropout must be between 0 and 1",)),
    Case("seed-negative", create(seed="-1"), S.INVALID_ARGUMENT, ("parameter seed must be between 0 and 999999",)),
    Case("unknown-choice", create(save_strategy="sometimes"), S.INVALID_ARGUMENT,
         ("parameter save_strategy must be one of steps, epoch, no", "'sometimes'")),
    Case("bool-gibberish", create(use_lora="maybe"), S.INVALID_ARGUMENT,
         ("parameter use_lora must be true or false", "'maybe'")),
    Case("bool-as-int", create_typed("use_lora", int_value=2), S.INVALID_ARGUMENT,
         ("parameter use_lora must be true or false",)),
    Case("list-as-number", create_typed("lora_target_modules", double_value=3.0), S.INVALID_ARGUMENT,
         ("parameter lora_target_modules must be a list of names",)),
    Case("empty-param-value", lambda d, ctx, out: d.training.CreateTask(_empty_value(_sft(ctx, out), "seed")),
         S.INVALID_ARGUMENT, ("parameter seed", "empty")),
    Case("unknown-parameter", create(learning_rat="1e-4"), S.INVALID_ARGUMENT,
         ("unknown parameter 'learning_rat'", "did you mean learning_rate")),
    Case("parameter-of-other-type", pretrain_with(lora_r="8"), S.INVALID_ARGUMENT,
         ("parameter lora_r does not apply to pretrain tasks",)),
    Case("eval-split-absurd", create(eval_split_ratio="1.0"), S.INVALID_ARGUMENT,
         ("parameter eval_split_ratio must be between 0 and 0.9",)),
    Case("task-type-missing", lambda d, ctx, out: d.training.CreateTask(
        T.CreateTaskRequest(type=C.TASK_TYPE_UNSPECIFIED)), S.INVALID_ARGUMENT, ("type must be",)),
    Case("template-unknown", lambda d, ctx, out: d.training.CreateTask(
        create_request("sft", template="no-such-template", train_file=ctx.data, model_dir=ctx.model,
                       output_dir=out)), S.NOT_FOUND, ("no-such-template",)),
    Case("name-absurdly-long", lambda d, ctx, out: d.training.CreateTask(_named(_sft(ctx, out), "n" * 100_000)),
         S.INVALID_ARGUMENT, ("name is too long",)),
    Case("request-larger-than-limit", create(chat_template="x" * (17 << 20)), S.RESOURCE_EXHAUSTED,
         ("larger than max",)),
    # ---- other RPCs --------------------------------------------------------------------------------
    Case("get-task-empty-id", lambda d, ctx, out: d.training.GetTask(T.GetTaskRequest(task_id=" ")),
         S.INVALID_ARGUMENT, ("task_id is required",)),
    Case("get-task-traversal-id", lambda d, ctx, out: d.training.GetTask(T.GetTaskRequest(task_id="../../etc")),
         S.NOT_FOUND, ("task '../../etc' does not exist",)),
    Case("watch-negative-seq", lambda d, ctx, out: list(d.training.WatchTask(
        T.WatchTaskRequest(task_id="t-00000000", after_seq=-1))), S.INVALID_ARGUMENT, ("after_seq must be 0 or more",)),
    Case("list-bad-page-token", lambda d, ctx, out: d.training.ListTasks(
        T.ListTasksRequest(page=C.PageRequest(page_token="DROP TABLE"))),
        S.INVALID_ARGUMENT, ("page_token", "is not one this daemon issued")),
    Case("grant-negative-quota", lambda d, ctx, out: d.system.GrantQuota(system_pb2.GrantQuotaRequest(amount=-5)),
         S.INVALID_ARGUMENT, ("amount must be between 1 and 1000000", "-5")),
    Case("grant-absurd-quota", lambda d, ctx, out: d.system.GrantQuota(
        system_pb2.GrantQuotaRequest(amount=10**12)), S.INVALID_ARGUMENT, ("amount must be between 1 and 1000000",)),
]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, sft_jsonl: Path, pretrain_txt: Path) -> Ctx:
    root = tmp_path_factory.mktemp("corrupt")
    corpus: dict[str, Path] = {}
    for name, content in BAD_FILES.items():
        path = root / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        corpus[name] = path
    gigantic = root / "gigantic.jsonl"
    with open(gigantic, "w", encoding="utf-8") as f:
        f.write(GOOD_LINE)
        f.write('{"messages": [{"role": "user", "content": "' + "x" * 8_100_000 + '"}]}\n')
    corpus["gigantic.jsonl"] = gigantic
    corpus["good.txt"] = pretrain_txt
    (root / "escape-link").symlink_to("/etc/hostname")
    corpus["escape-link"] = root / "escape-link"

    def model_variant(name: str, drop: tuple[str, ...] = (), write: dict[str, bytes] | None = None) -> None:
        target = root / name
        shutil.copytree(tiny_llama_dir, target)
        for pattern in drop:
            for p in target.glob(pattern):
                p.unlink()
        for file, content in (write or {}).items():
            (target / file).write_bytes(content)
        corpus[name] = target

    model_variant("no-weights", drop=("*.safetensors",))
    model_variant("bin-only", drop=("*.safetensors",), write={"pytorch_model.bin": b"\x80\x02}q\x00."})
    model_variant("no-config", drop=("config.json",))
    model_variant("bad-config", write={"config.json": b"{\"architectures\": [\"LlamaForCausalLM\""})
    bert = json.loads((tiny_llama_dir / "config.json").read_text())
    bert.update(architectures=["BertModel"], model_type="bert")
    model_variant("bert", write={"config.json": json.dumps(bert).encode()})
    model_variant("corrupt-weights", write={"model.safetensors": b"\xff" * 8 + b"not a header" * 10})
    for variant, entry in BAD_TENSOR_ENTRIES.items():
        model_variant(variant, write={"model.safetensors": safetensors({"a.weight": entry})})
    model_variant("config-link-out", drop=("config.json",))
    llama = json.loads((tiny_llama_dir / "config.json").read_text())
    for variant, change in CONFIG_CHANGES.items():
        config = {k: v for k, v in {**llama, **change}.items() if v is not DROP}
        model_variant(variant, write={"config.json": json.dumps(config).encode()})
    (root / "config-link-out" / "config.json").symlink_to("/etc/hostname")
    model_variant("no-tokenizer", drop=("tokenizer*", "chat_template.jinja", "*.safetensors"))
    model_variant("no-template", drop=("chat_template.jinja", "*.safetensors"))
    for name, text in (("list", b"[1, 2]"), ("string", b'"x"'), ("null", b"null")):
        model_variant(f"tokenizer-config-{name}", drop=("*.safetensors",), write={"tokenizer_config.json": text})
    cfg = json.loads((root / "no-template" / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (root / "no-template" / "tokenizer_config.json").write_text(json.dumps(cfg))
    return Ctx(root, tiny_llama_dir, sft_jsonl, corpus)


@pytest.fixture(scope="module")
def corpus_daemon(tmp_path_factory: pytest.TempPathFactory, roots: Path):
    d = Daemon(tmp_path_factory.mktemp("corrupt-modxd") / "state", [roots], quota=10).start()
    yield d
    d.kill()


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_with_a_sentence(corpus_daemon, ctx: Ctx, case: Case) -> None:
    out = ctx.root / f"out-{case.id}"
    before = task_count(corpus_daemon)
    error = rpc_error(lambda: case.call(corpus_daemon, ctx, out))
    details = error.details() or ""
    assert error.code() == case.code, f"{case.id}: {error.code()} {details}"
    for fragment in case.fragments:
        assert fragment in details, f"{case.id}: {fragment!r} not in {details!r}"
    assert len(details.split()) >= 3 and "Traceback" not in details, f"not a sentence: {details!r}"
    assert corpus_daemon.proc.poll() is None and corpus_daemon.healthy(), corpus_daemon.log()[-2000:]
    assert task_count(corpus_daemon) == before, "a refused request created a task"
    assert not out.exists(), "a refused request created its output dir"


# A FIFO where a model dir's file should be: open() of it waits for a writer that never comes. It once
# hung CreateTask and EstimateQuota for good, and GetHardwareAdvice (which read it on the event loop)
# the whole daemon; every input dir is now refused when an entry in it is a FIFO, socket or device.
FIFO_FILES = ("model.safetensors", "tokenizer.json", "config.json")


@pytest.fixture(scope="module")
def fifo_models(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fifo-models")
    made = {}
    for name in FIFO_FILES:
        target = root / name.replace(".", "-")
        shutil.copytree(tiny_llama_dir, target)
        (target / name).unlink()
        os.mkfifo(target / name)
        made[name] = target
    return made


@pytest.mark.parametrize("name", FIFO_FILES)
@pytest.mark.parametrize("rpc", ["create", "estimate", "advice"])
def test_a_fifo_in_a_model_dir_is_refused_without_opening_it(corpus_daemon, ctx: Ctx, fifo_models, name: str,
                                                              rpc: str) -> None:
    model = fifo_models[name]
    out = ctx.root / f"out-fifo-{rpc}"
    params = {"train_file": ctx.data, "model_dir": model, "output_dir": out}
    calls = {
        "create": lambda: corpus_daemon.training.CreateTask(create_request("sft", **params), timeout=60),
        "estimate": lambda: corpus_daemon.training.EstimateQuota(T.EstimateQuotaRequest(
            type=C.TASK_TYPE_SFT, params={k: C.ParamValue(string_value=str(v)) for k, v in params.items()}),
            timeout=60),
        "advice": lambda: corpus_daemon.system.GetHardwareAdvice(
            system_pb2.GetHardwareAdviceRequest(model_dir=str(model)), timeout=60),
    }
    error = rpc_error(calls[rpc])
    details = error.details() or ""
    assert error.code() == S.FAILED_PRECONDITION, (error.code(), details)  # DEADLINE_EXCEEDED: it hung
    assert "model_dir" in details and f"{name} is a FIFO" in details and "not opened" in details, details
    assert corpus_daemon.healthy(), "the daemon stopped answering"
    assert not out.exists()
