"""Fixtures of the chat tests: tasks on the tiny models (one untrained, one LoRA-trained, one
fully trained), and helpers to chat through a daemon."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from modx.v1 import inference_pb2 as I
from modx.v1 import training_pb2 as T

from tests.daemon.helpers import create_request, sft_params, state_name, wait_for_state

QUESTION = "What is the capital of France?"
TRAIN = dict(num_train_epochs=1, max_samples=8, per_device_train_batch_size=2, gradient_accumulation_steps=1,
             save_steps=2, logging_steps=1, max_seq_length=64, learning_rate=5e-2)


@dataclass
class Reply:
    deltas: list[I.ChatDelta] = field(default_factory=list)
    done: I.ChatDone | None = None
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "".join(d.text for d in self.deltas)

    @property
    def token_ids(self) -> list[int]:
        return [t for d in self.deltas for t in d.token_ids]


def chat_request(task_id: str, text: str = QUESTION, system: str = "", device: int = 0, **target_and_sampling: Any
                 ) -> I.ChatRequest:
    target = {k: target_and_sampling.pop(k) for k in ("checkpoint", "package_id", "base") if k in target_and_sampling}
    if not target:
        target = {"base": True}
    stop = target_and_sampling.pop("stop", [])
    return I.ChatRequest(task_id=task_id, messages=[I.ChatMessage(role="user", content=text)], system_prompt=system,
                         sampling=I.SamplingParams(stop=stop, **target_and_sampling), device=device, **target)


def chat(daemon, request: I.ChatRequest, timeout: float = 120) -> Reply:
    reply = Reply()
    started = time.perf_counter()
    for response in daemon.inference.Chat(request, timeout=timeout):
        if response.WhichOneof("payload") == "delta":
            assert reply.done is None, "a delta after the final message"
            reply.deltas.append(response.delta)
        else:
            reply.done = response.done
    reply.seconds = time.perf_counter() - started
    assert reply.done is not None, "the stream ended without its final message"
    return reply


def chat_error(daemon, request: I.ChatRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        chat(daemon, request)
    return info.value


def train_task(daemon, model: Path, data: Path, out: Path, task_type: str = "sft", **params: Any) -> str:
    request = create_request(task_type, **sft_params(model, data, out, **{**TRAIN, **params}))
    task_id = daemon.training.CreateTask(request).task.id
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    task = wait_for_state(daemon, task_id, {"completed", "failed", "stopped"})
    assert state_name(task.state) == "completed", (task.state_reason, list(task.failure_log_tail))
    return task_id


@pytest.fixture(scope="session")
def base_task(daemon, tiny_llama_dir, sft_jsonl, tmp_path_factory) -> str:
    """A created (never started) SFT task on the tiny Llama: chat with its base model."""
    out = tmp_path_factory.mktemp("chat-base") / "o"
    return daemon.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, out))).task.id


@pytest.fixture(scope="session")
def lora_task(daemon, tiny_llama_dir, sft_jsonl, tmp_path_factory) -> tuple[str, list[T.Checkpoint]]:
    """A LoRA SFT task trained for 4 steps (checkpoints at 2 and 4)."""
    out = tmp_path_factory.mktemp("chat-lora") / "o"
    task_id = train_task(daemon, tiny_llama_dir, sft_jsonl, out, lora_target_modules="q_proj,k_proj,v_proj,o_proj")
    ckpts = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert [c.step for c in ckpts] == [2, 4]
    return task_id, list(ckpts)


def in_process_greedy(model_dir: Path, messages: list[dict[str, str]], max_new_tokens: int,
                      adapter_dir: str | None = None) -> tuple[str, list[int], int]:
    """Plain transformers (not modx code): greedy generate, no streaming; (text, new ids, prompt length)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir or model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
    new = out[0, ids.shape[1]:].tolist()
    if new and new[-1] == tokenizer.eos_token_id:
        new = new[:-1]
    text = tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return text, new, ids.shape[1]
