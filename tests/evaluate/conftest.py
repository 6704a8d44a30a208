"""Fixtures of the evaluation tests: tiny runs with checkpoints, and run_evaluation in-process."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
# A learnable run: 32 examples, batch 4, 4 epochs = 32 steps; checkpoints at 16 and 32.
LEARN = dict(num_train_epochs=4, learning_rate=5e-2, per_device_train_batch_size=4, gradient_accumulation_steps=1,
             save_strategy="steps", save_steps=16, max_seq_length=64)


def task_params(model_dir: Path, train_file: Path, output_dir: Path, **extra: Any) -> dict[str, Any]:
    """The task parameters run_evaluation reads (as the daemon passes them)."""
    params = {"model_dir": str(model_dir), "tokenizer_dir": "", "chat_template": "", "train_file": str(train_file),
              "eval_file": "", "max_seq_length": 128, "seed": 42, "max_samples": 0, "eval_split_ratio": 0.0,
              "fp16": False, "bf16": False, "output_dir": str(output_dir)}
    params.update(extra)
    return params


def run_eval(task_type: str, params: dict[str, Any], candidates: list[dict[str, Any]], samples: int = 8,
             max_new_tokens: int = 16, seed: int = 7, eval_id: str = "ev-test") -> tuple[dict, list[dict]]:
    """Plan the data as the daemon does, then run_evaluation as the worker would; (result, events)."""
    from modxd.engine.evaluate import run_evaluation
    from modxd.evaluations import generation, plan_data

    plan = plan_data(task_type, params, samples, seed)
    events: list[dict] = []

    def emit(message: Any) -> None:
        from modxd.protocol import encode

        event = encode(message)  # as it travels: checked against the message's fields
        json.dumps(event, allow_nan=False)  # everything a worker sends must be strict JSON
        events.append(event)

    config = {"job_id": eval_id, "task_id": "t-test", "task_type": task_type, "params": params,
              "candidates": candidates, "generation": generation(0, 0, 0, 0, max_new_tokens, seed).as_dict(),
              "data": plan.as_dict(), "eval_root": str(Path(params["output_dir"]) / "eval"), "seed": seed,
              "device": "cpu", "bootstrap": 300}
    return run_evaluation(config, emit, lambda *_a: None), events


def candidate(run_dir: Path, step: int, lora: bool) -> dict[str, Any]:
    return {"checkpoint_id": f"ckpt-{step}", "label": f"step {step}", "step": step,
            "path": str(run_dir / "checkpoints" / f"checkpoint-{step}"), "lora": lora}


def base_candidate(model_dir: Path) -> dict[str, Any]:
    return {"checkpoint_id": "base", "label": "base model", "step": 0, "path": str(model_dir), "lora": False}


@pytest.fixture(scope="session")
def sft_run(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, sft_jsonl: Path) -> Path:
    """A LoRA SFT run (in-process) with checkpoints at steps 16 and 32."""
    from modxd.engine.train import run_training
    from tests.fixtures.plugin import engine_config

    out = tmp_path_factory.mktemp("eval-sft-run")
    result = run_training(engine_config(tiny_llama_dir, sft_jsonl, out, lora_target_modules=LORA_TARGETS, **LEARN),
                          lambda _e: None, lambda *_a: None)
    assert result["outcome"] == "completed"
    return out


@pytest.fixture(scope="session")
def pretrain_run(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, pretrain_txt: Path) -> Path:
    """A full-model pretraining run (in-process) with a held-out split and checkpoints at steps 4 and 8."""
    from modxd.engine.train import run_training
    from tests.fixtures.plugin import engine_config

    out = tmp_path_factory.mktemp("eval-pt-run")
    cfg = engine_config(tiny_llama_dir, pretrain_txt, out, task_type="pretrain", use_lora=False, max_seq_length=32,
                        eval_split_ratio=0.2, num_train_epochs=2, learning_rate=3e-3, per_device_train_batch_size=4,
                        save_strategy="steps", save_steps=4)
    result = run_training(cfg, lambda _e: None, lambda *_a: None)
    assert result["outcome"] == "completed" and result["final_step"] >= 8, result
    return out
