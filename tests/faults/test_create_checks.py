"""Accepted at create, failing in the worker: each is now refused at create with the reason (file,
line, sizes), or, where the run is deliberate and works, accepted with a warning in the create
response. Against a real daemon, with `validate_only` and a real create.

What the worker would have done with each (the reason it is a create-time check):
- a lone UTF-16 surrogate (JSON "\\ud800") in content: the tokenizer cannot encode it;
- a chat template that is not Jinja, raises on the data, or drops the assistant's words: the worker's
  templating of the data fails ("the chat template cannot format training example N");
- a tokenizer with more base tokens than the model has embedding rows: not this model's tokenizer, the
  embeddings were silently resized and the ids meant other words;
- a tokenizer with neither an eos nor a pad token: the worker cannot pad;
- LoRA target modules that match no module of the model: peft refuses to build the adapter;
- every example losing all of its assistant tokens to max_seq_length, or pretraining text shorter than one
  block: the worker has nothing to train on.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import grpc
import pytest
from modx.v1 import training_pb2 as T

from tests.fixtures.tiny_models import make_tiny_llama, make_tiny_tokenizer
from tests.support.daemon import Daemon

from ..daemon.helpers import create_request, rpc_error, task_count
from .test_bad_requests import check_refusal

Code = grpc.StatusCode


def _line(*messages: tuple[str, str]) -> str:
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in messages]}) + "\n"


QA = _line(("user", "What is two and two?"), ("assistant", "Four."))
WITH_SYSTEM = _line(("system", "Be brief."), ("user", "What is two and two?"), ("assistant", "Four."))
LONG_PROMPT = _line(("user", "Please read this. " * 40), ("assistant", "Read."))

# Refuses conversations with a system message, as some real templates do (raise_exception is
# transformers' own helper in the template sandbox).
NO_SYSTEM_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# Renders, but not the assistant's words as written, and a conversation's rendering is no prefix of a
# longer one's (the count up front): the assistant's tokens cannot be found to be labelled.
UPPER_TEMPLATE = (
    "{{ messages | length }} messages\n"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | upper }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@dataclass
class Ctx:
    root: Path
    model: Path
    files: dict[str, Path]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Ctx:
    root = tmp_path_factory.mktemp("create-checks")
    files: dict[str, Path] = {}

    def text(name: str, content: str) -> None:
        files[name] = root / name
        files[name].write_text(content, encoding="utf-8")

    text("good.jsonl", QA * 4)
    text("surrogate.jsonl", QA + QA.replace("Four.", "Four \\ud800."))
    text("surrogate-key.jsonl", QA + '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", '
                                     '"content": "yo", "\\udcff": 1}]}\n')
    text("system-third.jsonl", QA + QA + WITH_SYSTEM + QA)
    text("long-prompts.jsonl", LONG_PROMPT * 3)
    text("short.txt", "Hello there.\n")
    text("pretrain-surrogate.jsonl", json.dumps({"text": "fine"}) + "\n" + '{"text": "bad \\udc00 text"}\n')

    def tokenizer_dir(name: str, edit: Callable[[Path], None]) -> None:  # the model dir's tokenizer, edited
        files[name] = root / name
        shutil.copytree(tiny_llama_dir, files[name], ignore=shutil.ignore_patterns("*.safetensors"))
        edit(files[name])

    def bad_own_template(p: Path) -> None:
        (p / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }{% endfor %}")

    def no_special(p: Path) -> None:
        cfg = json.loads((p / "tokenizer_config.json").read_text())
        cfg.pop("eos_token", None)
        cfg.pop("pad_token", None)
        (p / "tokenizer_config.json").write_text(json.dumps(cfg))

    tokenizer_dir("tok-bad-template", bad_own_template)
    files["tok-no-special"] = root / "tok-no-special"  # a tokenizer dir alone (no config.json to pick a class by)
    make_tiny_tokenizer(files["tok-no-special"])
    no_special(files["tok-no-special"])
    added = make_tiny_tokenizer()
    added.add_tokens(["<tool>", "<think>", "</think>"])
    files["tok-added"] = root / "tok-added"
    added.save_pretrained(str(files["tok-added"]))
    # A model with 300 embedding rows that ships the 384-token tokenizer: a tokenizer of another model.
    files["model-small-vocab"] = make_tiny_llama(root / "model-small-vocab", vocab_size=300)
    return Ctx(root, tiny_llama_dir, files)


@pytest.fixture(scope="module")
def checks_daemon(tmp_path_factory: pytest.TempPathFactory, roots: Path):
    d = Daemon(tmp_path_factory.mktemp("create-checks-modxd") / "state", [roots], quota=10).start()
    yield d
    d.kill()


@dataclass
class Case:
    id: str
    params: Callable[[Ctx], dict[str, Any]]
    fragments: tuple[str, ...]
    code: grpc.StatusCode = Code.INVALID_ARGUMENT
    task_type: str = "sft"


def sft(**over: Any) -> Callable[[Ctx], dict[str, Any]]:
    def params(ctx: Ctx) -> dict[str, Any]:
        values = {"train_file": ctx.files["good.jsonl"], "model_dir": ctx.model}
        values.update({k: (ctx.files[v] if isinstance(v, str) and v in ctx.files else v) for k, v in over.items()})
        return values
    return params


REFUSED = [
    Case("lone-surrogate-in-content", sft(train_file="surrogate.jsonl"),
         ("surrogate.jsonl line 2", "messages[1].content", "surrogate")),
    Case("lone-surrogate-in-a-key", sft(train_file="surrogate-key.jsonl"), ("surrogate-key.jsonl line 2", "surrogate")),
    Case("lone-surrogate-in-eval-file", sft(eval_file="surrogate.jsonl"), ("eval_file", "line 2", "surrogate")),
    Case("lone-surrogate-in-pretraining-text", sft(train_file="pretrain-surrogate.jsonl"),
         ("pretrain-surrogate.jsonl line 2", "surrogate"), task_type="pretrain"),
    Case("chat-template-not-jinja", sft(chat_template="{% for m in messages %}{{ m['content'] }"),
         ("parameter chat_template", "line 1")),
    Case("chat-template-raises-on-line-3", sft(train_file="system-third.jsonl", chat_template=NO_SYSTEM_TEMPLATE),
         ("system-third.jsonl line 3", "System role not supported")),
    Case("chat-template-drops-the-assistant-words", sft(chat_template=UPPER_TEMPLATE),
         ("good.jsonl line 1", "assistant")),
    Case("tokenizer-own-template-not-jinja", sft(tokenizer_dir="tok-bad-template"),
         ("tokenizer_dir", "chat template", "tok-bad-template"), Code.FAILED_PRECONDITION),
    Case("tokenizer-without-eos-or-pad", sft(tokenizer_dir="tok-no-special"), ("tokenizer_dir", "eos", "pad"),
         Code.FAILED_PRECONDITION),
    Case("tokenizer-of-another-model", sft(model_dir="model-small-vocab"), ("model_dir", "384", "300")),
    Case("lora-targets-match-no-module", sft(lora_target_modules="c_attn,c_proj"),
         ("lora_target_modules", "c_attn", "q_proj")),
    Case("every-example-truncated-to-nothing", sft(train_file="long-prompts.jsonl", max_seq_length="16"),
         ("max_seq_length", "16", "long-prompts.jsonl")),
    Case("pretraining-text-shorter-than-one-block",
         lambda ctx: {"train_file": ctx.files["short.txt"], "model_dir": ctx.model, "max_seq_length": "512"},
         ("short.txt", "max_seq_length", "512"), task_type="pretrain"),
]


@pytest.mark.parametrize("validate_only", [True, False], ids=["validate-only", "create"])
@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_refused_at_create_with_the_reason(checks_daemon: Daemon, ctx: Ctx, case: Case, validate_only: bool) -> None:
    out = ctx.root / f"out-{case.id}"
    req = create_request(case.task_type, output_dir=out, **case.params(ctx))
    req.validate_only = validate_only
    before = task_count(checks_daemon)
    error = rpc_error(lambda: checks_daemon.training.CreateTask(req))
    check_refusal(error, case.code, case.fragments, case.id)
    assert task_count(checks_daemon) == before and not out.exists()


def test_added_tokens_are_accepted_with_a_warning_naming_both_sizes(checks_daemon: Daemon, ctx: Ctx) -> None:
    """A tokenizer whose added tokens go past the embedding: the embeddings grow, as the person who added
    them wants; the create response says so, with both sizes and what it means for LoRA."""
    for use_lora in ("true", "false"):
        resp = checks_daemon.training.CreateTask(create_request(
            "sft", train_file=ctx.files["good.jsonl"], model_dir=ctx.model, tokenizer_dir=ctx.files["tok-added"],
            output_dir=ctx.root / f"out-added-{use_lora}", use_lora=use_lora))
        warnings = {w.code: w.message for w in resp.warnings}
        assert "vocab_resized" in warnings, warnings
        assert "387" in warnings["vocab_resized"] and "384" in warnings["vocab_resized"]
        assert ("LoRA" in warnings["vocab_resized"]) == (use_lora == "true")
        history = checks_daemon.training.WatchTask(T.WatchTaskRequest(task_id=resp.task.id, history_only=True))
        assert any(r.event.warning.code == "vocab_resized" for r in history), "the warning is not in the task's log"


def test_good_data_and_templates_still_pass(checks_daemon: Daemon, ctx: Ctx, sft_mixed_jsonl: Path,
                                            pretrain_txt: Path) -> None:
    """The checks refuse nothing a worker would train: every format, a system message, a template of its own."""
    ok = [create_request("sft", train_file=ctx.files["good.jsonl"], model_dir=ctx.model, output_dir=ctx.root / "o1"),
          create_request("sft", train_file=sft_mixed_jsonl, model_dir=ctx.model, output_dir=ctx.root / "o2"),
          create_request("sft", train_file=ctx.files["system-third.jsonl"], model_dir=ctx.model,
                         output_dir=ctx.root / "o3", chat_template=UPPER_TEMPLATE.replace(" | upper", "")),
          create_request("pretrain", train_file=pretrain_txt, model_dir=ctx.model, output_dir=ctx.root / "o4",
                         max_seq_length="64")]
    for req in ok:
        req.validate_only = True
        resp = checks_daemon.training.CreateTask(req)
        assert resp.task.quota_estimate.total_steps > 0
        assert "vocab_resized" not in {w.code for w in resp.warnings}
