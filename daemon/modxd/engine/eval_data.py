"""Which examples an evaluation scores: the one seeded choice the daemon and the worker both make.

The daemon (evaluations.py) makes it before a job starts, to refuse an empty data set and
to say what will be scored; the worker (engine/evaluate.py) repeats it from the job's plan
and gets the same examples. Pure Python (stdlib and engine.formats/engine.data, no torch),
so the daemon imports it without loading the ML stack.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from .data import split_held_out, take_samples
from .formats import iter_sft_conversations

__all__ = ["DEFAULT_SAMPLES", "MAX_SAMPLES", "SftSelection", "sample_indexes", "select_sft", "sft_examples"]

DEFAULT_SAMPLES = 50
MAX_SAMPLES = 10_000

Conversation = list[dict[str, str]]


@dataclass
class SftSelection:
    """The chosen conversations, where they come from and what a person should know about them."""

    conversations: list[Conversation]
    source: str  # eval_file, held_out_split or train_sample
    path: str
    available: int  # examples in the source
    notes: list[str] = field(default_factory=list)


def sample_indexes(total: int, k: int, seed: int) -> list[int]:
    """k distinct indexes of range(total), seeded, in file order (all of them when k >= total)."""
    if k <= 0 or k >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), k))


def select_sft(eval_file: str, train_file: str, ratio: float, task_seed: int, max_samples: int, samples: int,
               seed: int, opened: Callable[[str, str], str] = lambda field_name, path: path) -> SftSelection:
    """The SFT evaluation set: the eval file, else training's held-out split, else a training sample.

    `opened(field, path)` returns the path to read (the daemon checks it against the allowed roots)."""
    if eval_file:
        items = list(iter_sft_conversations(opened("eval_file", eval_file), field="eval_file"))
        idx = sample_indexes(len(items), samples or MAX_SAMPLES, seed)
        notes = [] if len(idx) == len(items) or samples else [
            f"the eval file has {len(items)} examples: a seeded sample of {MAX_SAMPLES} is scored"]
        return SftSelection([items[i] for i in idx], "eval_file", eval_file, len(items), notes)
    items = take_samples(iter_sft_conversations(opened("train_file", train_file), field="train_file"), max_samples)
    if ratio > 0:
        _, held = split_held_out(items, ratio, task_seed)  # exactly the split training made
        if held:
            idx = sample_indexes(len(held), samples or MAX_SAMPLES, seed)
            return SftSelection([held[i] for i in idx], "held_out_split", train_file, len(held))
    idx = sample_indexes(len(items), samples or DEFAULT_SAMPLES, seed)
    return SftSelection([items[i] for i in idx], "train_sample", train_file, len(items),
                        ["no eval_file and no eval_split_ratio: scored on training examples the model has seen"])


def sft_examples(plan: dict[str, Any], params: dict[str, Any]) -> list[Conversation]:
    """The conversations of a plan: the worker repeats the daemon's choice (same files, seeds and sizes)."""
    source = plan["source"]
    return select_sft(str(params.get("eval_file") or "") if source == "eval_file" else "",
                      str(params.get("train_file") or ""),
                      float(params.get("eval_split_ratio") or 0) if source == "held_out_split" else 0.0,
                      int(params.get("seed") or 0), int(params.get("max_samples") or 0), int(plan["samples"]),
                      int(plan["seed"])).conversations
