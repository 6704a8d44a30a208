"""Did it learn? The trained model's loss next to the base model's, on the same held-out examples.

An SFT run that ends without error and with a falling training loss may still have learned
nothing a user asked for (issue 19: LoRA on two projections, a small learning rate and two epochs
taught none of six facts). So the worker measures the mean loss of the model on a few examples
before training starts (the model as loaded: LoRA's B matrices start at zero, so it is the base
model, and a resumed run loads its checkpoint only inside ``Trainer.train``) and again after the
run, on the same examples, with Trainer's own evaluation loop (so packing, padding and the loss are
the training's). The examples are the eval data when there is some (the eval file, or the split
held out by ``eval_split_ratio``), else a seeded slice of the training examples, which shows what
it learned of them but not how it generalises (the sentence says so).

:func:`judge` (pure) turns the two losses into a verdict, a plain sentence and, when it did not
learn or got worse, what to change. One process only: under DDP/FSDP the check is skipped (every
rank would have to run it in step).
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from ..params import TrainParams

__all__ = ["LearningCheck", "judge", "pick_examples", "mean_loss", "MAX_EXAMPLES", "LEARNED_SHARE", "LITTLE_SHARE"]

MAX_EXAMPLES = 64  # examples measured: enough for a stable mean, a second or two on a CPU
LEARNED_SHARE = 0.10  # the loss fell by at least a tenth: it learned
LITTLE_SHARE = 0.02  # within 2 % either way: it did not move
DATA_WORDS = {"eval_file": "the eval file", "eval_split": "the held-out eval split",
              "train_slice": "training examples"}


@dataclass(frozen=True)
class LearningCheck:
    data: str  # eval_file, eval_split or train_slice
    examples: int
    base_loss: float
    final_loss: float
    relative_improvement: float  # (base - final) / base
    verdict: str  # learned, learned_little, did_not_learn, got_worse
    sentence: str
    advice: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _advice_to_learn_more(params: TrainParams) -> list[str]:
    out = []
    targets = [t.lower() for t in params.lora_target_modules or []]
    if params.use_lora and "all-linear" not in targets:
        out.append("LoRA on every linear layer, not only " + ", ".join(targets or ["the default modules"])
                   + " (--set lora_target_modules=all-linear)")
    ceiling = 1e-3 if params.use_lora else 1e-4
    if params.learning_rate < ceiling:
        out.append(f"a higher learning rate (--set learning_rate={min(params.learning_rate * 5, ceiling):g}; "
                   f"now {params.learning_rate:g})")
    out.append(f"more epochs (--set num_train_epochs={max(params.num_train_epochs * 2, 3)}; "
               f"now {params.num_train_epochs})")
    if params.use_lora and params.lora_r < 16:
        out.append(f"a larger LoRA rank (--set lora_r=16; now {params.lora_r})")
    return out


def _advice_to_learn_less(params: TrainParams, data: str) -> list[str]:
    out = [f"a lower learning rate (--set learning_rate={params.learning_rate / 3:g}; now {params.learning_rate:g})"]
    if params.num_train_epochs > 1:
        out.append(f"fewer epochs (--set num_train_epochs={max(params.num_train_epochs // 2, 1)}; "
                   f"now {params.num_train_epochs})")
    if data != "train_slice":
        out.append("more varied training examples: the model fits its training file but does worse on other text")
    return out


def judge(data: str, examples: int, base_loss: float, final_loss: float, params: TrainParams) -> LearningCheck:
    """The verdict on two mean losses of the same examples (see the module docstring)."""
    change = (base_loss - final_loss) / base_loss if base_loss > 0 else 0.0
    where = f"{examples} {'examples of ' if data != 'train_slice' else ''}{DATA_WORDS[data]}"
    numbers = f"from {base_loss:.3f} (base model) to {final_loss:.3f}"
    advice: list[str] = []
    if change >= LEARNED_SHARE:
        verdict, sentence = "learned", f"it learned: the loss on {where} fell {numbers} ({change:.0%} lower)"
    elif change >= LITTLE_SHARE:
        verdict = "learned_little"
        sentence = f"it learned little: the loss on {where} fell only {change:.0%}, {numbers}"
        advice = _advice_to_learn_more(params)
    elif change > -LITTLE_SHARE:
        verdict = "did_not_learn"
        sentence = f"it did not learn: the loss on {where} barely moved, {numbers} ({change:+.1%})"
        advice = _advice_to_learn_more(params)
    else:
        verdict = "got_worse"
        sentence = f"it got worse: the loss on {where} rose {numbers} ({-change:.0%} higher)"
        advice = _advice_to_learn_less(params, data)
    if data == "train_slice":
        sentence += ("; measured on examples it trained on, so it shows what it learned of them, not how it "
                     "generalises (an eval_file or eval_split_ratio measures that)")
    if advice:
        sentence += "; try " + "; ".join(advice)
    return LearningCheck(data, examples, base_loss, final_loss, change, verdict, sentence, advice)


def pick_examples(params: TrainParams, train: Any, evals: Any) -> tuple[str, Any] | None:
    """(which data, a dataset of at most MAX_EXAMPLES of it), or None when there is nothing to measure."""
    from .data import TokenDataset

    if evals is not None and len(evals):
        data, source = ("eval_file" if params.eval_file else "eval_split"), evals
    elif train is not None and len(train):
        data, source = "train_slice", train
    else:
        return None
    indexes = sorted(random.Random(params.seed).sample(range(len(source)), min(len(source), MAX_EXAMPLES)))
    return data, TokenDataset([source[i] for i in indexes])


def mean_loss(trainer: Any, dataset: Any) -> float:
    """The mean eval loss of ``dataset`` through Trainer's evaluation loop, without the evaluation
    callbacks (no metrics point, no early-stopping count)."""
    loader = trainer.get_eval_dataloader(dataset)
    output = trainer.evaluation_loop(loader, "learning check", prediction_loss_only=True,
                                     metric_key_prefix="learning")
    return float(output.metrics["learning_loss"])
