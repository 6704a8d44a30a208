"""Prove a GGUF file right: load it with llama.cpp and compare with the Hugging Face model.

Two checks on a fixed set of prompts:

* tokenizer: llama.cpp's token ids equal the Hugging Face tokenizer's, for plain text
  (English, Chinese, emoji, code, whitespace runs) and for a chat rendered with the
  chat template (special tokens parsed);
* logits: both models read the same ids. Top-1 agreement is measured on the next token
  after each prompt (the token a chat would produce); the max and mean absolute logit
  differences, and a second top-1 agreement, over every position of every prompt.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...hardware import usable_cpu_count

__all__ = ["PROMPTS", "ROUND_TRIP_TEXTS", "CHAT", "Reference", "verify_gguf", "open_llama"]

PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little robot who",
    "Translate to Chinese: cat -> 猫, dog -> 狗, hello ->",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "Emoji work too: 🙂 🚀 and numbers 12345 + 678 =",
]
ROUND_TRIP_TEXTS = [
    "Hello, world! I'm testing the tokenizer: it's 2024-06-01, 3.14159 and 1000000 tokens.",
    "中文文本也可以被分词。我们训练一个很小的模型，然后导出为 GGUF 格式！",
    "Mixed 混合 text with emoji 🙂🚀🐱✨👍🏽 and accents: café, naïve, Ünïcödé.",
    "   leading spaces,\ttabs,\n\nnew lines\r\n and trailing   ",
    "<p>HTML &amp; code: for (int i = 0; i < n; ++i) { sum += a[i]; }</p>",
]
CHAT = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"}]


def open_llama(path: str, lora_path: str | None = None, n_ctx: int = 512, logits_all: bool = True) -> Any:
    from llama_cpp import Llama

    from .quantize import quiet_llama

    quiet_llama()
    return Llama(model_path=path, lora_path=lora_path, n_ctx=n_ctx, logits_all=logits_all, verbose=False,
                 n_threads=usable_cpu_count(), seed=0)


@dataclass
class Reference:
    """The Hugging Face side: tokenizer, model (with its LoRA adapter, unmerged) and logits."""

    tokenizer: Any
    model: Any
    texts: list[str] = field(default_factory=list)
    chat_text: str | None = None
    _logits: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict)

    @classmethod
    def load(cls, model_dir: str, tokenizer_dir: str, adapter_dir: str | None = None) -> "Reference":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, local_files_only=True)
        if adapter_dir:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
        model.eval()
        chat_text = None
        if getattr(tok, "chat_template", None):
            chat_text = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
        return cls(tok, model, list(PROMPTS), chat_text)

    def encode(self, text: str, special: bool = True) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def prompt_ids(self) -> list[list[int]]:
        ids = [self.encode(t) for t in self.texts]
        if self.chat_text is not None:
            ids.append(self.encode(self.chat_text, special=False))
        return ids

    def logits(self, ids: list[int]) -> np.ndarray:
        key = tuple(ids)
        if key not in self._logits:
            import torch

            with torch.no_grad():
                out = self.model(input_ids=torch.tensor([ids]))
            self._logits[key] = out.logits[0].float().numpy()
        return self._logits[key]


def _tokenizer_check(ref: Reference, llm: Any) -> tuple[bool, list[str]]:
    problems = []
    for text in ref.texts + ROUND_TRIP_TEXTS:
        hf = ref.encode(text)
        ll = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if hf != list(ll):
            problems.append(f"{text[:40]!r}: hf {hf[:12]} vs llama.cpp {list(ll)[:12]}")
        elif ref.tokenizer.decode(hf, skip_special_tokens=True) == text and \
                llm.detokenize(ll).decode("utf-8", errors="replace").lstrip() != text.lstrip():
            problems.append(f"{text[:40]!r}: llama.cpp does not decode its ids back to the text")
    if ref.chat_text is not None:
        hf = ref.encode(ref.chat_text, special=False)
        ll = list(llm.tokenize(ref.chat_text.encode("utf-8"), add_bos=False, special=True))
        if hf != ll:
            problems.append(f"chat template text: hf {hf[:12]} vs llama.cpp {ll[:12]}")
    return not problems, problems


def verify_gguf(ref: Reference, path: str, lora_path: str | None = None) -> dict[str, Any]:
    """Compare one GGUF file (optionally with a LoRA adapter GGUF) with the reference."""
    prompts = ref.prompt_ids()
    llm = open_llama(path, lora_path, n_ctx=max(len(p) for p in prompts) + 16)
    try:
        token_ok, problems = _tokenizer_check(ref, llm)
        agree = positions = next_agree = 0
        max_diff, diff_sum, count = 0.0, 0.0, 0
        for ids in prompts:
            expected = ref.logits(ids)
            llm.reset()
            llm.eval(ids)
            got = np.asarray(llm.scores[: len(ids)], dtype=np.float32)
            if got.shape != expected.shape:
                raise ValueError(f"llama.cpp returned logits of shape {got.shape}, expected {expected.shape}")
            diff = np.abs(got - expected)
            max_diff = max(max_diff, float(diff.max()))
            diff_sum += float(diff.sum())
            count += diff.size
            same = got.argmax(-1) == expected.argmax(-1)
            agree += int(same.sum())
            next_agree += int(same[-1])
            positions += len(ids)
    finally:
        llm.close()
    return {"tokenizer_match": token_ok, "tokenizer_problems": problems[:5],
            "top1_agreement": next_agree / len(prompts) if prompts else 0.0,
            "top1_agreement_all_positions": agree / positions if positions else 0.0, "max_logit_diff": max_diff,
            "mean_logit_diff": diff_sum / count if count else 0.0, "prompts": len(prompts), "positions": positions}
