"""Fixtures of the package tests: tiny models of several shapes and a LoRA-trained checkpoint."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.tiny_models import make_tiny_llama

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def run_export(checkpoint: Path, out: Path, types: list[str], **config: Any) -> tuple[dict, list[dict]]:
    """run_package in-process, as the worker would call it; returns (result, events)."""
    from modxd.engine.export import run_package
    from modxd.protocol import encode

    events: list[dict] = []
    cfg = {"checkpoint_dir": str(checkpoint), "quant_types": types, "output_dir": str(out), "name": "tiny",
           "task_id": "t-test", "checkpoint_id": "ckpt-test", **config}
    result = run_package(cfg, lambda message: events.append(encode(message)), lambda *_a: None)
    return result, events


@pytest.fixture(scope="session")
def wide_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 256-wide layer: rows long enough for every K-quant block (256)."""
    return make_tiny_llama(tmp_path_factory.mktemp("wide-llama"), hidden_size=256, intermediate_size=512,
                           num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2)


@pytest.fixture(scope="session")
def lora_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, sft_jsonl: Path) -> Path:
    """A LoRA checkpoint (q, k, v, o) trained by the training engine on the tiny Llama."""
    from modxd.engine.train import run_training
    from tests.fixtures.plugin import engine_config

    out = tmp_path_factory.mktemp("lora-run")
    cfg = engine_config(tiny_llama_dir, sft_jsonl, out, save_strategy="steps", save_steps=8, num_train_epochs=1,
                        lora_target_modules=LORA_TARGETS, learning_rate=5e-2)
    result = run_training(cfg, lambda _e: None, lambda: None)
    assert result["outcome"] == "completed", result
    ckpts = sorted((out / "checkpoints").glob("checkpoint-*"))
    assert ckpts and (ckpts[-1] / "adapter_config.json").is_file()
    return ckpts[-1]
