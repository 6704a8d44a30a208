"""A dpo task on two CPU ranks (gloo) trains like one process with twice the batch: the worker's entry
(``run_train_task``) starts ``python -m modxd.worker.rank`` twice, and each rank runs
``run_preference`` (``rank.run_engine``), as for SFT."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.plugin import EventRecorder, engine_config
from tests.fixtures.preference import write_pairs

from .conftest import LOSS_RTOL, Commands


def _config(model: Path, data: Path, out: Path, **overrides: object):
    return engine_config(model, data, out, task_type="dpo", **{"per_device_train_batch_size": 8,
                                                               "save_strategy": "steps", "save_steps": 2, **overrides})


def test_two_dpo_ranks_follow_one_process_with_twice_the_batch(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from modxd.engine.preference import run_preference
    from modxd.worker.launch import run_train_task

    data = write_pairs(tmp_path / "pairs.jsonl", 32)
    one = EventRecorder()
    result = run_preference(_config(tiny_llama_dir, data, tmp_path / "one"), one, lambda: None)
    assert result["outcome"] == "completed" and result["final_step"] == 4
    two = EventRecorder()
    config = _config(tiny_llama_dir, data, tmp_path / "two", per_device_train_batch_size=4,
                     process_devices=["cpu", "cpu"], task_id="t-dpo-ddp")
    result = run_train_task(config.to_wire(), two, Commands())  # what the worker receives
    assert result["outcome"] == "completed" and result["final_step"] == 4
    assert any("2 processes (2 ranks, ddp)" in e["message"] for e in two.of("log"))
    for key in ("loss", "reward_margin", "reward_accuracy"):
        expected = {m["step"]: m[key] for m in one.train_metrics}
        got = {m["step"]: m[key] for m in two.train_metrics}
        assert sorted(got) == sorted(expected) == [1, 2, 3, 4], key
        for step in expected:
            assert got[step] == pytest.approx(expected[step], rel=LOSS_RTOL, abs=1e-4), (key, step, got, expected)
    assert [e["step"] for e in two.of("checkpoint")] == [2, 4]  # one report (one quota unit) per checkpoint
