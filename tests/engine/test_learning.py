"""Did it learn: the verdict's rule, and the worker's check on the tiny model (learns vs does not)."""
from __future__ import annotations

from pathlib import Path

import pytest

from modxd import params as P
from modxd.engine.learning import LEARNED_SHARE, LITTLE_SHARE, MAX_EXAMPLES, judge
from modxd.engine.train import run_training
from tests.fixtures.plugin import EventRecorder, engine_config, sft_jsonl, tiny_llama_dir  # noqa: F401


def _params(**changes) -> P.TrainParams:
    return P.resolve("sft", {}, {"model_dir": "/m", "train_file": "/d.jsonl", "output_dir": "/o", **changes})


@pytest.mark.parametrize(("final", "verdict"), [(1.0, "learned"), (1.95, "learned_little"),
                                                (1.99, "did_not_learn"), (2.01, "did_not_learn"),
                                                (2.5, "got_worse")])
def test_the_verdict_follows_the_relative_change(final: float, verdict: str) -> None:
    check = judge("eval_file", 10, 2.0, final, _params())
    assert check.verdict == verdict
    assert check.relative_improvement == pytest.approx((2.0 - final) / 2.0)
    assert "2.000" in check.sentence and f"{final:.3f}" in check.sentence
    assert bool(check.advice) == (verdict != "learned")
    assert LITTLE_SHARE < LEARNED_SHARE


def test_advice_names_what_to_change_from_the_run_settings() -> None:
    seed_like = _params(lora_target_modules="q_proj,v_proj", learning_rate=2e-4, num_train_epochs=2, lora_r=8)
    advice = " | ".join(judge("train_slice", 5, 2.0, 1.99, seed_like).advice)
    assert "lora_target_modules=all-linear" in advice and "learning_rate=0.001" in advice
    assert "num_train_epochs=4" in advice and "lora_r=16" in advice
    strong = _params(lora_target_modules="all-linear", learning_rate=1e-3, num_train_epochs=6, lora_r=16)
    advice = " | ".join(judge("eval_split", 5, 2.0, 1.99, strong).advice)
    assert "all-linear" not in advice and "learning_rate" not in advice and "num_train_epochs=12" in advice
    worse = judge("eval_file", 5, 2.0, 3.0, strong)
    assert worse.verdict == "got_worse" and any("learning_rate=0.000333" in a for a in worse.advice)
    assert any("num_train_epochs=3" in a for a in worse.advice)


def test_a_training_slice_says_it_does_not_measure_generalisation() -> None:
    assert "not how it generalises" in judge("train_slice", 5, 2.0, 1.0, _params()).sentence
    assert "generalises" not in judge("eval_file", 5, 2.0, 1.0, _params()).sentence


def _run(model: Path, data: Path, out: Path, **overrides) -> EventRecorder:
    events = EventRecorder()
    run_training(engine_config(model, data, out, **overrides), events, lambda *_a: None)
    return events


def test_a_run_that_learns_says_so(tiny_llama_dir: Path, sft_jsonl: Path, tmp_path: Path) -> None:
    events = _run(tiny_llama_dir, sft_jsonl, tmp_path / "o", learning_rate=1e-2, num_train_epochs=3)
    (learning,) = events.of("learning")
    assert learning["verdict"] == "learned" and learning["data"] == "train_slice"
    assert learning["examples"] == min(32, MAX_EXAMPLES)
    assert learning["final_loss"] < learning["base_loss"] * (1 - LEARNED_SHARE)
    assert not learning.get("advice")
    (measured,) = events.of("measured")
    assert measured["training_seconds"] > 0 and measured["peak_memory_bytes"] > 0
    assert measured["memory_kind"] == "host_rss"
    # the check adds no metrics point: every logged point is a training step
    assert all("loss" in e for e in events.of("metrics"))


def test_a_run_that_does_not_learn_says_what_to_change(tiny_llama_dir: Path, sft_jsonl: Path,
                                                        tmp_path: Path) -> None:
    events = _run(tiny_llama_dir, sft_jsonl, tmp_path / "o", learning_rate=1e-6, num_train_epochs=1,
                  eval_split_ratio=0.25, eval_strategy="no")
    (learning,) = events.of("learning")
    assert learning["data"] == "eval_split" and learning["examples"] == 8
    assert learning["verdict"] == "did_not_learn", learning
    assert any("learning_rate" in a for a in learning["advice"])
    assert "try" in learning["sentence"]


def test_a_stopped_run_reports_no_verdict(tiny_llama_dir: Path, sft_jsonl: Path, tmp_path: Path) -> None:
    from modxd.protocol import Stop

    calls = iter([None, Stop(reason="user", save=False)])
    events = EventRecorder()
    run_training(engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "o"), events, lambda *_a: next(calls, None))
    assert events.of("learning") == []
