"""The demo's preference pairs (demo/data/modi_pref_*.jsonl) pass the create-time check, and the
held-out pairs ask nothing the training pairs ask (their accuracy would otherwise be memory)."""

from __future__ import annotations

from pathlib import Path

from modxd.engine.preference_formats import CONVERSATIONAL, iter_preference_pairs

DATA = Path(__file__).resolve().parents[1] / "demo" / "data"


def test_demo_pairs_are_valid_and_held_out() -> None:
    train = [pair for _, pair in iter_preference_pairs(str(DATA / "modi_pref_train.jsonl"), "train_file")]
    held = [pair for _, pair in iter_preference_pairs(str(DATA / "modi_pref_eval.jsonl"), "eval_file")]
    assert len(train) >= 30 and len(held) >= 6
    assert all(pair.format == CONVERSATIONAL for pair in [*train, *held])
    asked = {pair.prompt[-1]["content"] for pair in train}  # type: ignore[index]
    assert not asked & {pair.prompt[-1]["content"] for pair in held}  # type: ignore[index]
    # the persona signs its answers; the rejected answers are the generic assistant's
    assert all(pair.chosen[0]["content"].endswith("— Modi 🦦") for pair in [*train, *held])  # type: ignore[index]
    assert not any("Modi" in pair.rejected[0]["content"] for pair in [*train, *held])  # type: ignore[index]
