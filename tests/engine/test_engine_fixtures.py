"""The tiny offline fixtures behave like real model dirs and valid data."""

from __future__ import annotations

import hashlib
from pathlib import Path

from modxd.engine.formats import inspect_pretrain_file, inspect_sft_file, iter_pretrain_texts
from tests.fixtures.datasets import (
    ANSWER,
    pretrain_documents,
    write_pretrain_jsonl,
    write_pretrain_txt,
    write_sft_jsonl,
)
from tests.fixtures.plugin import tiny_llama_dir, tiny_qwen2_dir  # noqa: F401
from tests.fixtures.tiny_models import make_tiny_llama, make_tiny_tokenizer


def test_tokenizer_roundtrips_any_text_and_has_chatml() -> None:
    tok = make_tiny_tokenizer()
    text = "Hello world, 中文 🙂 🚀 ünïcödé\n\ttabs"
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "<|im_end|>", "<pad>")
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                       add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_models_load_and_are_deterministic(tmp_path: Path, tiny_llama_dir: Path, tiny_qwen2_dir: Path) -> None:  # noqa: F811
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for d, kind in [(tiny_llama_dir, "llama"), (tiny_qwen2_dir, "qwen2")]:
        model = AutoModelForCausalLM.from_pretrained(d)
        assert model.config.model_type == kind and model.config.num_hidden_layers == 2
        tok = AutoTokenizer.from_pretrained(d)
        assert model.config.vocab_size == len(tok) and tok.chat_template
    again = make_tiny_llama(tmp_path / "again")
    digest = lambda p: hashlib.sha256((Path(p) / "model.safetensors").read_bytes()).hexdigest()  # noqa: E731
    assert digest(again) == digest(tiny_llama_dir)


def test_datasets_are_valid_in_every_format(tmp_path: Path) -> None:
    for fmt in ("messages", "alpaca", "sharegpt", "mixed"):
        summary = inspect_sft_file(str(write_sft_jsonl(tmp_path / f"{fmt}.jsonl", n=9, fmt=fmt)))
        assert summary.examples == 9 and summary.format == fmt
    assert ANSWER
    txt = write_pretrain_txt(tmp_path / "c.txt", n=7)
    assert list(iter_pretrain_texts(str(txt))) == pretrain_documents(7)
    assert inspect_pretrain_file(str(write_pretrain_jsonl(tmp_path / "c.jsonl", n=7))).examples == 7
