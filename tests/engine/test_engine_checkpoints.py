"""Checkpoint policy: counts match the quota estimate, retention, stop, resume, time-based saves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modxd.plan import estimate_checkpoints, estimate_steps_per_epoch, estimate_total_steps
from modxd.engine.train import run_training
from modxd.protocol import Save
from tests.fixtures.datasets import write_sft_jsonl
from tests.fixtures.plugin import EventRecorder, StopAt, engine_config, sft_jsonl, tiny_llama_dir  # noqa: F401


def no_command() -> None:
    return None


@pytest.fixture(scope="module")
def ten_examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sft_jsonl(tmp_path_factory.mktemp("data") / "ten.jsonl", n=10)


def checkpoint_dirs(out: Path) -> list[str]:
    return sorted(os.listdir(out / "checkpoints"), key=lambda n: (len(n), n))


@pytest.mark.parametrize("strategy, save_steps, accumulation, epochs", [
    ("steps", 4, 2, 2),   # 5 batches/epoch -> 3 steps (last window short), 6 total: saves 4 and 6
    ("steps", 2, 1, 1),   # 3 batches of 4,4,2 -> 3 steps: saves 2 and 3
    ("steps", 3, 1, 2),   # 6 steps: saves 3 and 6 (the final step was just saved: no extra)
    ("epoch", 100, 2, 2),
    ("no", 100, 2, 3),
])
def test_checkpoint_count_matches_estimate(tmp_path: Path, tiny_llama_dir: Path, ten_examples: Path,  # noqa: F811
                                           strategy: str, save_steps: int, accumulation: int, epochs: int) -> None:
    batch = 2 if accumulation == 2 else 4
    rec = EventRecorder()
    out = tmp_path / "out"
    cfg = engine_config(tiny_llama_dir, ten_examples, out, save_strategy=strategy, save_steps=save_steps,
                        gradient_accumulation_steps=accumulation, per_device_train_batch_size=batch,
                        num_train_epochs=epochs, logging_steps=50)
    result = run_training(cfg, rec, no_command)
    total = estimate_total_steps(10, batch, accumulation, epochs)
    per_epoch = estimate_steps_per_epoch(10, batch, accumulation)
    assert rec.of("total_steps")[0]["total_steps"] == total == result["final_step"]
    saved = rec.of("checkpoint")
    assert len(saved) == estimate_checkpoints(total, per_epoch, strategy, save_steps, epochs)
    assert saved[-1]["step"] == total and saved[-1]["loss"] == result["final_loss"] is not None
    steps = [c["step"] for c in saved]
    assert steps == sorted(set(steps))
    if strategy == "epoch":
        assert steps == [per_epoch * (i + 1) for i in range(epochs)]
        assert [c["epoch"] for c in saved] == [float(i + 1) for i in range(epochs)]
    assert checkpoint_dirs(out) == [f"checkpoint-{s}" for s in steps]  # no .tmp-* left behind
    for c in saved:
        assert os.path.isfile(os.path.join(c["path"], "trainer_state.json"))


def test_retention_deletes_oldest_first(tmp_path: Path, tiny_llama_dir: Path, ten_examples: Path) -> None:  # noqa: F811
    rec = EventRecorder()
    out = tmp_path / "out"
    cfg = engine_config(tiny_llama_dir, ten_examples, out, save_strategy="steps", save_steps=1,
                        save_total_limit=2, per_device_train_batch_size=2, num_train_epochs=1)
    run_training(cfg, rec, no_command)
    kinds = [(e["type"], e["step"]) for e in rec.events if e["type"].startswith("checkpoint")]
    assert kinds == [("checkpoint", 1), ("checkpoint", 2), ("checkpoint", 3), ("checkpoint_deleted", 1),
                     ("checkpoint", 4), ("checkpoint_deleted", 2), ("checkpoint", 5), ("checkpoint_deleted", 3)]
    assert rec.of("checkpoint_deleted")[0]["path"] == str(out / "checkpoints" / "checkpoint-1")
    assert checkpoint_dirs(out) == ["checkpoint-4", "checkpoint-5"]


def test_stop_finishes_the_step_and_saves(tmp_path: Path, tiny_llama_dir: Path, ten_examples: Path) -> None:  # noqa: F811
    rec = EventRecorder()
    cfg = engine_config(tiny_llama_dir, ten_examples, tmp_path / "out", save_strategy="epoch",
                        per_device_train_batch_size=2, num_train_epochs=2, logging_steps=50)
    result = run_training(cfg, rec, StopAt(3))
    assert (result["outcome"], result["reason"], result["final_step"]) == ("stopped", "user", 3)
    assert [c["step"] for c in rec.of("checkpoint")] == [3]
    assert result["final_loss"] is not None and rec.of("checkpoint")[0]["loss"] == result["final_loss"]


def test_stop_without_save(tmp_path: Path, tiny_llama_dir: Path, ten_examples: Path) -> None:  # noqa: F811
    rec = EventRecorder()
    cfg = engine_config(tiny_llama_dir, ten_examples, tmp_path / "out", save_strategy="epoch",
                        per_device_train_batch_size=2, num_train_epochs=2)
    result = run_training(cfg, rec, StopAt(5, save=False, reason="quota_exhausted"))
    assert (result["outcome"], result["reason"], result["final_step"]) == ("stopped", "quota_exhausted", 5)
    assert not rec.of("checkpoint")


def test_save_command_checkpoints_now(tmp_path: Path, tiny_llama_dir: Path, ten_examples: Path) -> None:  # noqa: F811
    rec = EventRecorder()
    commands = iter([None, Save()])
    cfg = engine_config(tiny_llama_dir, ten_examples, tmp_path / "out", per_device_train_batch_size=2)
    result = run_training(cfg, rec, lambda: next(commands, None))
    assert result["outcome"] == "completed"
    assert [c["step"] for c in rec.of("checkpoint")] == [2, 5]


def test_time_based_saves(tmp_path: Path, tiny_llama_dir: Path, ten_examples: Path) -> None:  # noqa: F811
    rec = EventRecorder()
    cfg = engine_config(tiny_llama_dir, ten_examples, tmp_path / "out", save_strategy="no",
                        save_interval_minutes=1e-9, per_device_train_batch_size=2, num_train_epochs=1)
    run_training(cfg, rec, no_command)
    assert [c["step"] for c in rec.of("checkpoint")] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("use_lora", [True, False])
def test_resume_matches_an_uninterrupted_run(tmp_path: Path, tiny_llama_dir: Path, sft_jsonl: Path,  # noqa: F811
                                             use_lora: bool) -> None:
    common = dict(per_device_train_batch_size=4, gradient_accumulation_steps=2, num_train_epochs=2,
                  save_strategy="no", learning_rate=1e-2, lora_dropout=0.1, use_lora=use_lora,
                  gradient_checkpointing=use_lora, seed=7)
    full = EventRecorder()
    whole = run_training(engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "a", **common), full, no_command)
    assert whole["final_step"] == 8
    out = tmp_path / "b"
    first = EventRecorder()
    stopped = run_training(engine_config(tiny_llama_dir, sft_jsonl, out, **common), first, StopAt(3))
    assert stopped["outcome"] == "stopped" and stopped["final_step"] == 3
    checkpoint = first.of("checkpoint")[0]["path"]
    second = EventRecorder()
    resumed = run_training(engine_config(tiny_llama_dir, sft_jsonl, out, resume_from_checkpoint=checkpoint,
                                         **common), second, no_command)
    assert resumed["outcome"] == "completed" and resumed["final_step"] == 8
    assert second.train_metrics[0]["step"] == 4  # continues where it stopped
    assert resumed["final_loss"] == pytest.approx(whole["final_loss"], rel=1e-3)
    # step by step the same batches, dropout masks and learning rates as without the interruption
    tail = [(m["step"], m["loss"], m["learning_rate"]) for m in full.train_metrics if m["step"] > 3]
    again = [(m["step"], m["loss"], m["learning_rate"]) for m in second.train_metrics]
    assert [s for s, _, _ in again] == [s for s, _, _ in tail]
    assert [x for _, x, _ in again] == pytest.approx([x for _, x, _ in tail], rel=1e-4)
    assert [x for _, _, x in again] == pytest.approx([x for _, _, x in tail], rel=1e-6)
    assert [c["step"] for c in second.of("checkpoint")] == [8]
