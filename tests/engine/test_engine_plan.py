"""Step/checkpoint arithmetic (the runs in test_engine_checkpoints check it against Trainer)."""

from __future__ import annotations

import pytest

from modxd.plan import (
    effective_examples,
    estimate_checkpoints,
    estimate_pretrain_examples,
    estimate_steps_per_epoch,
    estimate_total_steps,
    split_sizes,
)


@pytest.mark.parametrize("n, bs, acc, epochs, steps", [
    (1000, 2, 4, 2, 250),   # 500 batches / 4
    (10, 2, 4, 1, 2),       # 5 batches -> 4 + a short window of 1
    (10, 3, 1, 3, 12),      # last batch smaller still counts
    (1, 8, 16, 2, 2),       # at least one step per epoch
    (0, 2, 4, 2, 0),
])
def test_total_steps(n: int, bs: int, acc: int, epochs: int, steps: int) -> None:
    assert estimate_total_steps(n, bs, acc, epochs) == steps


def test_devices_divide_the_batches() -> None:
    assert estimate_steps_per_epoch(100, 2, 1, devices=2) == 25


def test_checkpoints() -> None:
    assert estimate_checkpoints(1000, 500, "steps", 100, 2) == 10
    assert estimate_checkpoints(1001, 500, "steps", 100, 2) == 11
    assert estimate_checkpoints(7, 7, "steps", 100, 1) == 1
    assert estimate_checkpoints(12, 4, "epoch", 100, 3) == 3
    assert estimate_checkpoints(12, 4, "no", 100, 3) == 1
    assert estimate_checkpoints(0, 0, "no", 100, 3) == 0
    with pytest.raises(ValueError):
        estimate_checkpoints(10, 5, "best", 1, 2)


def test_split_and_effective_examples() -> None:
    assert split_sizes(100, 0.1) == (90, 10)
    assert split_sizes(5, 0.01) == (4, 1)
    assert split_sizes(2, 0.99) == (1, 1)
    assert split_sizes(1, 0.5) == (1, 0)
    assert effective_examples(100, max_samples=50, eval_split_ratio=0.2) == 40
    assert effective_examples(100, max_samples=0, eval_split_ratio=0.2, has_eval_file=True) == 100
    assert estimate_pretrain_examples(7000, 512) == 3


def test_one_context_rule_for_every_way_config_json_names_the_context() -> None:
    """engine/models.py max_seq_length_problem: the daemon at create and the worker apply the same rule
    (the daemon used to read max_position_embeddings only, so a GPT-2 style n_positions passed create)."""
    from modxd.engine.models import context_length, max_seq_length_problem

    assert context_length({"max_position_embeddings": 1024}) == (1024, "max_position_embeddings")
    assert context_length({"n_positions": 512}) == (512, "n_positions")
    assert context_length({"text_config": {"max_position_embeddings": 4096}}) == (4096, "max_position_embeddings")
    assert context_length({"model_type": "mystery"}) is None
    assert max_seq_length_problem(512, {"n_positions": 512}) == ""
    assert max_seq_length_problem(513, {"n_positions": 512}) == (
        "parameter max_seq_length is 513 but the model's context (n_positions) is 512 tokens; "
        "set max_seq_length to 512 or less")
    assert max_seq_length_problem(10**6, {}) == ""  # no context named: nothing to refuse
