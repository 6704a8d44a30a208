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
from .preference_formats import PreferencePair, iter_preference_pairs

__all__ = ["DataPlan", "sample_indexes", "select_sft", "sft_examples", "select_pairs", "plan_pairs", "checked_path",
           "DEFAULT_SAMPLES", "MAX_SAMPLES"]

DEFAULT_SAMPLES = 50
MAX_SAMPLES = 10_000


@dataclass
class DataPlan:
    """Which examples an evaluation uses (SFT: conversations; preference tasks: pairs; pretraining: text
    blocks, cut in the worker)."""

    source: str
    path: str
    available: int  # examples (SFT), pairs (dpo, orpo) or documents (pretraining) in the source
    samples: int  # how many to use (SFT, pairs: exact; pretraining: blocks, at most)
    seed: int
    notes: list[str] = field(default_factory=list)
    format: str = ""  # preference pairs: standard or conversational (the latter are scored as conversations too)

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
    return _select(lambda path, key: iter_sft_conversations(path, field=key), "examples", eval_file, train_file,
                   ratio, task_seed, max_samples, samples, seed, roots)


def sft_examples(plan: dict[str, Any], params: dict[str, Any]) -> list[list[dict[str, str]]]:
    """The conversations of a plan: the worker repeats the daemon's choice (same files, seeds and sizes)."""
    source = plan["source"]
    conversations, _ = select_sft(str(params.get("eval_file") or "") if source == "eval_file" else "",
                                  str(params.get("train_file") or ""),
                                  float(params.get("eval_split_ratio") or 0) if source == "held_out_split" else 0.0,
                                  int(params.get("seed") or 0), int(params.get("max_samples") or 0),
                                  int(plan["samples"]), int(plan["seed"]), None)
    return conversations


def _select(items_of: Any, what: str, eval_file: str, train_file: str, ratio: float, task_seed: int,
            max_samples: int, samples: int, seed: int, roots: list[Path] | None) -> tuple[list[Any], DataPlan]:
    """The eval file, else the held-out split training made, else a seeded training sample."""
    if eval_file:
        items = list(items_of(checked_path("eval_file", eval_file, roots), "eval_file"))
        idx = sample_indexes(len(items), samples or MAX_SAMPLES, seed)
        notes = [] if len(idx) == len(items) or samples else [
            f"the eval file has {len(items)} {what}: a seeded sample of {MAX_SAMPLES} is scored"]
        return [items[i] for i in idx], DataPlan("eval_file", eval_file, len(items), len(idx), seed, notes)
    items = take_samples(items_of(checked_path("train_file", train_file, roots), "train_file"), max_samples)
    if ratio > 0:
        _, held = split_held_out(items, ratio, task_seed)  # exactly the split training made
        if held:
            idx = sample_indexes(len(held), samples or MAX_SAMPLES, seed)
            return [held[i] for i in idx], DataPlan("held_out_split", train_file, len(held), len(idx), seed)
    idx = sample_indexes(len(items), samples or DEFAULT_SAMPLES, seed)
    return [items[i] for i in idx], DataPlan(
        "train_sample", train_file, len(items), len(idx), seed,
        [f"no eval_file and no eval_split_ratio: scored on training {what} the model has seen"])


def select_pairs(eval_file: str, train_file: str, ratio: float, task_seed: int, max_samples: int, samples: int,
                 seed: int, roots: list[Path] | None) -> tuple[list[PreferencePair], DataPlan]:
    """The preference pairs a dpo or orpo evaluation scores (as training read and split them,
    engine/preference.py read_pairs), and the plan that names them."""
    pairs, plan = _select(lambda path, key: (pair for _, pair in iter_preference_pairs(path, key)), "pairs",
                          eval_file, train_file, ratio, task_seed, max_samples, samples, seed, roots)
    plan.format = pairs[0].format if pairs else ""
    return pairs, plan


def plan_pairs(plan: dict[str, Any], params: dict[str, Any]) -> list[PreferencePair]:
    """The pairs of a plan: the worker repeats the daemon's choice (same files, seeds and sizes)."""
    source = plan["source"]
    pairs, _ = select_pairs(str(params.get("eval_file") or "") if source == "eval_file" else "",
                            str(params.get("train_file") or ""),
                            float(params.get("eval_split_ratio") or 0) if source == "held_out_split" else 0.0,
                            int(params.get("seed") or 0), int(params.get("max_samples") or 0),
                            int(plan["samples"]), int(plan["seed"]), None)
    return pairs
