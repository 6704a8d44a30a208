"""Which examples an evaluation scores: seeded and pure, so both ends pick the same ones.

The daemon chooses (modxd/evaluations.py, which checks the paths under the allowed roots and
refuses an empty data set before a job starts) and the evaluation worker repeats the choice from
the plan it is given (engine/evaluate.py): same files, seeds and sizes, same conversations. An
eval file is used as it is; without one, the held-out split training made
(engine/data.py, eval_split_ratio); without that, a seeded sample of the training data.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..paths import resolve_under_roots
from .data import split_held_out, take_samples
from .formats import iter_sft_conversations

__all__ = ["DataPlan", "sample_indexes", "select_sft", "sft_examples", "checked_path", "DEFAULT_SAMPLES",
           "MAX_SAMPLES"]

DEFAULT_SAMPLES = 50
MAX_SAMPLES = 10_000


@dataclass
class DataPlan:
    """Which examples an evaluation uses (SFT: conversations; pretraining: text blocks, cut in the worker)."""

    source: str
    path: str
    available: int  # examples (SFT) or documents (pretraining) in the source
    samples: int  # how many to use (SFT: exact; pretraining: blocks, at most)
    seed: int
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_indexes(total: int, k: int, seed: int) -> list[int]:
    """k distinct indexes of range(total), seeded, in file order (all of them when k >= total)."""
    if k <= 0 or k >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), k))


def checked_path(field_name: str, path: str, roots: list[Path] | None) -> str:
    """`path`, refused unless it lies under `roots` (None in the worker: opening the file checks it there)."""
    if roots is not None:
        resolve_under_roots(field_name, path, roots)
    return path


def select_sft(eval_file: str, train_file: str, ratio: float, task_seed: int, max_samples: int, samples: int, seed: int,
               roots: list[Path] | None) -> tuple[list[list[dict[str, str]]], DataPlan]:
    """The conversations an SFT evaluation scores, and the plan that names them."""
    if eval_file:
        items = list(iter_sft_conversations(checked_path("eval_file", eval_file, roots), field="eval_file"))
        idx = sample_indexes(len(items), samples or MAX_SAMPLES, seed)
        notes = [] if len(idx) == len(items) or samples else [
            f"the eval file has {len(items)} examples: a seeded sample of {MAX_SAMPLES} is scored"]
        return [items[i] for i in idx], DataPlan("eval_file", eval_file, len(items), len(idx), seed, notes)
    items = take_samples(iter_sft_conversations(checked_path("train_file", train_file, roots), field="train_file"),
                  max_samples)
    if ratio > 0:
        _, held = split_held_out(items, ratio, task_seed)  # exactly the split training made
        if held:
            idx = sample_indexes(len(held), samples or MAX_SAMPLES, seed)
            return [held[i] for i in idx], DataPlan("held_out_split", train_file, len(held), len(idx), seed)
    idx = sample_indexes(len(items), samples or DEFAULT_SAMPLES, seed)
    return [items[i] for i in idx], DataPlan(
        "train_sample", train_file, len(items), len(idx), seed,
        ["no eval_file and no eval_split_ratio: scored on training examples the model has seen"])


def sft_examples(plan: dict[str, Any], params: dict[str, Any]) -> list[list[dict[str, str]]]:
    """The conversations of a plan: the worker repeats the daemon's choice (same files, seeds and sizes)."""
    source = plan["source"]
    conversations, _ = select_sft(str(params.get("eval_file") or "") if source == "eval_file" else "",
                                  str(params.get("train_file") or ""),
                                  float(params.get("eval_split_ratio") or 0) if source == "held_out_split" else 0.0,
                                  int(params.get("seed") or 0), int(params.get("max_samples") or 0),
                                  int(plan["samples"]), int(plan["seed"]), None)
    return conversations
