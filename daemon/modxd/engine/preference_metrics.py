"""What preference runs measure, under the names the daemon stores (pure Python, no torch).

TRL's trainers log ``rewards/chosen``, ``logps/rejected``, ...; a metrics point of a dpo or
orpo task carries them as the flat names of :data:`TRAINER_KEYS` (``eval_`` in front for an
evaluation), which are the MetricsPoint fields the wiring adds. :func:`pair_margins` and
:func:`summarize` are the evaluation's preference accuracy and mean margin on held-out pairs,
from per-pair log-probabilities (engine/preference_eval.py gathers them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["TRAINER_KEYS", "POINT_FIELDS", "point_fields", "PairLogps", "pair_margins", "summarize",
           "PreferenceScores"]

# TRL's log key -> the metrics point field. DPO logs rewards as beta x (policy - reference)
# log-probability of an answer; ORPO (no reference) as lambda x the answer's mean log-probability
# per token, and adds its SFT term (nll_loss) and the log odds ratio.
TRAINER_KEYS: dict[str, str] = {
    "rewards/chosen": "reward_chosen",
    "rewards/rejected": "reward_rejected",
    "rewards/margins": "reward_margin",
    "rewards/accuracies": "reward_accuracy",
    "logps/chosen": "logps_chosen",
    "logps/rejected": "logps_rejected",
    "nll_loss": "nll_loss",
    "log_odds_ratio": "log_odds_ratio",
    "log_odds_chosen": "log_odds_chosen",
}
POINT_FIELDS: tuple[str, ...] = (*TRAINER_KEYS.values(), *(f"eval_{name}" for name in TRAINER_KEYS.values()))


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def point_fields(logs: Mapping[str, Any], evaluation: bool = False) -> dict[str, float | None]:
    """The preference fields of one logged point (non-finite values become None, as in SFT points).

    The loss of a preference run is not a language-model loss, so the point's perplexity
    (``exp(loss)``) is left empty rather than shown as a number that means nothing.
    """
    prefix = "eval_" if evaluation else ""
    out: dict[str, float | None] = {f"{prefix}perplexity": None}
    for key, name in TRAINER_KEYS.items():
        if f"{prefix}{key}" in logs:
            out[f"{prefix}{name}"] = _finite(logs[f"{prefix}{key}"])
    return out


@dataclass(frozen=True)
class PairLogps:
    """Summed log-probabilities of one pair's answers (and their token counts) under a checkpoint, and
    under the reference (the task's start point) for dpo."""

    chosen: float
    rejected: float
    chosen_tokens: int
    rejected_tokens: int
    ref_chosen: float = 0.0
    ref_rejected: float = 0.0


def pair_margins(pairs: Iterable[PairLogps], task_type: str, beta: float) -> list[float]:
    """Each pair's reward margin, as the trainer logs it: dpo ``beta x ((chosen - ref chosen) -
    (rejected - ref rejected))``; orpo ``lambda x (mean chosen - mean rejected)`` per answer token."""
    out = []
    for p in pairs:
        if task_type == "orpo":
            margin = p.chosen / max(p.chosen_tokens, 1) - p.rejected / max(p.rejected_tokens, 1)
        else:
            margin = (p.chosen - p.ref_chosen) - (p.rejected - p.ref_rejected)
        out.append(beta * margin)
    return out


@dataclass(frozen=True)
class PreferenceScores:
    """Preference accuracy (share of pairs whose margin is above 0: a tie prefers nothing) and mean margin."""

    pairs: int
    accuracy: float
    mean_margin: float


def summarize(margins: Sequence[float]) -> PreferenceScores:
    if not margins:
        raise ValueError("preference accuracy needs at least one pair")
    return PreferenceScores(len(margins), sum(m > 0 for m in margins) / len(margins), sum(margins) / len(margins))
