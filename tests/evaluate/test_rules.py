"""Evaluation rules without a daemon: the data set chosen, generation settings, batching."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from modxd import evaluations as ev
from modxd.engine.data import _split
from modxd.engine.eval_data import sft_examples
from modxd.engine.evaluate import batches
from modxd.engine.formats import iter_sft_conversations
from modxd.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from tests.fixtures.datasets import write_sft_jsonl


def _params(train: Path, **extra) -> dict:
    return {"train_file": str(train), "eval_file": "", "eval_split_ratio": 0.0, "seed": 42, "max_samples": 0, **extra}


def test_the_eval_file_comes_first_and_samples_cap_it(tmp_path: Path) -> None:
    train = write_sft_jsonl(tmp_path / "train.jsonl", n=20)
    held = write_sft_jsonl(tmp_path / "held.jsonl", n=12, seed=5)
    params = _params(train, eval_file=str(held), eval_split_ratio=0.5)
    plan = ev.plan_data("sft", params, 0, 7)
    assert (plan.source, plan.path, plan.available, plan.samples) == ("eval_file", str(held), 12, 12)
    assert sft_examples(plan.as_dict(), params) == list(iter_sft_conversations(str(held)))
    few = ev.plan_data("sft", params, 5, 7)
    chosen = sft_examples(few.as_dict(), params)
    assert few.samples == len(chosen) == 5 and chosen == sft_examples(few.as_dict(), params)
    assert chosen != sft_examples(ev.plan_data("sft", params, 5, 8).as_dict(), params)  # the seed matters


def test_the_held_out_split_is_the_one_training_made(tmp_path: Path) -> None:
    train = write_sft_jsonl(tmp_path / "train.jsonl", n=20)
    params = _params(train, eval_split_ratio=0.25, max_samples=16)
    plan = ev.plan_data("sft", params, 0, 7)
    items = list(iter_sft_conversations(str(train)))[:16]
    _, held = _split(items, 0.25, 42)
    assert plan.source == "held_out_split" and plan.samples == len(held) == 4
    assert sft_examples(plan.as_dict(), params) == held
    assert not plan.notes


def test_without_held_out_data_a_seeded_training_sample_is_used(tmp_path: Path) -> None:
    train = write_sft_jsonl(tmp_path / "train.jsonl", n=80)
    plan = ev.plan_data("sft", _params(train), 0, 7)
    assert plan.source == "train_sample" and plan.samples == ev.DEFAULT_SAMPLES and plan.notes
    small = ev.plan_data("sft", _params(train), 10, 7)
    chosen = sft_examples(small.as_dict(), _params(train))
    everything = list(iter_sft_conversations(str(train)))
    indexes = [everything.index(c) for c in chosen]
    assert len(chosen) == 10 and indexes == sorted(indexes)  # file order kept
    assert ev.plan_data("sft", _params(train), 500, 7).samples == 80


def test_an_empty_or_broken_data_set_is_refused(tmp_path: Path) -> None:
    train = write_sft_jsonl(tmp_path / "train.jsonl", n=4)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(FailedPrecondition, match="evaluation data set is empty"):
        ev.plan_data("sft", _params(train, eval_file=str(empty)), 0, 1)
    with pytest.raises(FailedPrecondition, match="evaluation data set is empty"):
        ev.plan_data("pretrain", _params(empty), 0, 1)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidArgument, match="line 1"):
        ev.plan_data("sft", _params(train, eval_file=str(broken)), 0, 1)
    with pytest.raises(PermissionDenied):
        ev.plan_data("sft", _params(train), 0, 1, roots=[tmp_path / "elsewhere"])


def test_generation_settings_default_to_greedy_and_are_checked() -> None:
    g = ev.generation(0, 0, 0, 0, 0, 9)
    assert g.as_dict() == {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "repetition_penalty": 1.0,
                           "max_new_tokens": ev.DEFAULT_MAX_NEW_TOKENS, "seed": 9}
    assert ev.generation(0, 0, 0, 0, 0, 1, limit=64).max_new_tokens == 64
    for bad in [dict(temperature=-1), dict(temperature=11), dict(top_p=1.5), dict(top_k=-1),
                dict(repetition_penalty=-0.5), dict(max_new_tokens=-1), dict(max_new_tokens=5000)]:
        args = {"temperature": 0, "top_p": 0, "top_k": 0, "repetition_penalty": 0, "max_new_tokens": 0, **bad}
        with pytest.raises(InvalidArgument):
            ev.generation(seed=0, **args)
    assert ev.check_samples(0) == 0
    with pytest.raises(InvalidArgument):
        ev.check_samples(ev.MAX_SAMPLES + 1)


def test_batches_respect_the_size_and_the_token_budget() -> None:
    groups = batches([5, 100, 3, 7, 50], batch_size=2, budget=1000)
    assert groups == [[2, 0], [3, 4], [1]]
    tight = batches([400, 400, 400, 10, 2000], batch_size=8, budget=1000)
    assert tight == [[3, 0], [1, 2], [4]]  # 2000 runs alone, even past the budget
    assert sorted(i for g in tight for i in g) == list(range(5))
