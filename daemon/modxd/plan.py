"""Step and checkpoint arithmetic, pure Python (the daemon's quota estimate).

These functions mirror what ``transformers.Trainer`` (5.x) and the engine's save
policy actually do, and a test checks them against the checkpoint events of
real runs:

* one epoch has ``ceil(num_examples / (batch * devices))`` micro-batches (the
  dataloader keeps the last, smaller batch) and
  ``max(ceil(batches / gradient_accumulation_steps), 1)`` optimizer steps: the
  last accumulation window of an epoch may be shorter and still counts as a
  step (``Trainer.set_initial_training_values``);
* total steps = ``num_train_epochs * steps_per_epoch``;
* the engine saves a checkpoint when the save strategy says so **and always at
  the end of training unless that last step was just saved**. Hence ``steps``
  saves ``ceil(total_steps / save_steps)``, ``epoch`` saves
  ``num_train_epochs`` and ``no`` saves exactly 1. Time-based saves
  (``save_interval_minutes``) and a user stop may add more; early stopping may
  save fewer; the estimate is for a run that goes to the end.

"Examples" are what the engine trains on: conversations for SFT (minus any
whose assistant turns do not fit in ``max_seq_length``, reported with an
``examples_dropped`` warning), ``max_seq_length`` token blocks for pretraining
(documents tokenized without special tokens, one eos after each, concatenated,
remainder dropped). ``max_samples`` and ``eval_split_ratio`` count those
examples. The worker emits the real ``total_steps`` as soon as it knows it.
"""

from __future__ import annotations

import math

__all__ = [
    "effective_examples",
    "split_sizes",
    "estimate_steps_per_epoch",
    "estimate_total_steps",
    "estimate_checkpoints",
    "estimate_pretrain_examples",
    "eval_data_problem",
    "no_block_sentence",
    "SAVE_STRATEGIES",
]

SAVE_STRATEGIES = ("steps", "epoch", "no")


def split_sizes(num_examples: int, eval_split_ratio: float) -> tuple[int, int]:
    """``(train, eval)`` sizes of a seeded split of ``num_examples``.

    The eval part is ``round(n * ratio)``, at least 1 when the ratio is > 0,
    and never the whole set (at least one training example stays).
    """
    if eval_split_ratio <= 0 or num_examples < 2:
        return num_examples, 0
    eval_count = min(max(1, round(num_examples * eval_split_ratio)), num_examples - 1)
    return num_examples - eval_count, eval_count


def effective_examples(num_examples: int, max_samples: int = 0, eval_split_ratio: float = 0.0,
                       has_eval_file: bool = False) -> int:
    """Training examples after ``max_samples`` and the eval split.

    ``max_samples`` (0 = all) caps the training file first; the split only
    happens when there is no ``eval_file``.
    """
    n = min(num_examples, max_samples) if max_samples and max_samples > 0 else num_examples
    if has_eval_file:
        return n
    return split_sizes(n, eval_split_ratio)[0]


def estimate_steps_per_epoch(num_examples: int, per_device_train_batch_size: int,
                             gradient_accumulation_steps: int, devices: int = 1) -> int:
    """Optimizer steps in one epoch, as ``Trainer`` counts them."""
    if num_examples <= 0:
        return 0
    batches = math.ceil(num_examples / (per_device_train_batch_size * max(devices, 1)))
    return max(math.ceil(batches / gradient_accumulation_steps), 1)


def estimate_total_steps(num_examples: int, per_device_train_batch_size: int,
                         gradient_accumulation_steps: int, num_train_epochs: int, devices: int = 1) -> int:
    """Total optimizer steps of a run over ``num_examples`` training examples."""
    per_epoch = estimate_steps_per_epoch(num_examples, per_device_train_batch_size,
                                         gradient_accumulation_steps, devices)
    return math.ceil(num_train_epochs * per_epoch)


def estimate_checkpoints(total_steps: int, steps_per_epoch: int, save_strategy: str,
                         save_steps: int, num_train_epochs: int) -> int:
    """Checkpoints (= quota units) a run that reaches ``total_steps`` saves.

    ``steps_per_epoch`` is accepted for symmetry with the epoch strategy (the
    number of epoch ends is ``ceil(total_steps / steps_per_epoch)``).
    """
    if total_steps <= 0:
        return 0
    if save_strategy == "steps":
        if save_steps <= 0:
            return 1
        return math.ceil(total_steps / save_steps)
    if save_strategy == "epoch":
        if steps_per_epoch > 0:
            return math.ceil(total_steps / steps_per_epoch)
        return max(int(num_train_epochs), 1)
    if save_strategy == "no":
        return 1
    raise ValueError(f"save_strategy must be one of {', '.join(SAVE_STRATEGIES)} (got {save_strategy!r})")


def estimate_pretrain_examples(characters: int, max_seq_length: int, chars_per_token: float = 3.5) -> int:
    """Rough number of ``max_seq_length`` blocks a pretraining corpus gives.

    Only an estimate before tokenizing (the worker reports the real
    ``total_steps`` as soon as it knows it); ``chars_per_token`` ~3.5 suits
    English with a modern BPE, CJK text has fewer characters per token.
    """
    tokens = characters / max(chars_per_token, 0.1)
    return max(int(tokens // max(max_seq_length, 1)), 0)


def no_block_sentence(train_file: str, max_seq_length: int, tokens: int | None = None) -> str:
    """The refusal of a pretraining corpus with less than one block: said at create (validation.py,
    which counted the tokens) and by the worker (engine/data.py), in these words."""
    count = f"has {tokens} tokens, fewer" if tokens is not None else "has fewer tokens"
    return (f"train_file {train_file} {count} than one block of max_seq_length {max_seq_length} (pretraining cuts "
            "the text into such blocks and drops the rest), so there is nothing to train on; add text or lower "
            "max_seq_length")


def eval_data_problem(eval_strategy: str, eval_file: str, eval_split_ratio: float,
                      eval_examples: int | None = None) -> str:
    """Why evaluation cannot run, or '' when it can: the one rule of evaluation data.

    Evaluation (``eval_strategy`` steps or epoch) needs evaluation data: an ``eval_file`` or an
    eval split (``eval_split_ratio`` > 0) that holds at least one example. Without it the task is
    refused, never trained with evaluation silently off. The parameters decide the first half
    (params.py, at create); ``eval_examples``, where known, the second: the daemon's count of the
    split at create (validation.py) and the worker's count of what it prepared (engine/train.py).
    """
    if eval_strategy == "no":
        return ""
    if not eval_file and eval_split_ratio <= 0:
        return "parameter eval_strategy needs evaluation data: set eval_file or eval_split_ratio > 0"
    if eval_examples == 0:
        source = (f"eval_file {eval_file}" if eval_file
                  else f"the eval split (eval_split_ratio {eval_split_ratio:g}; it needs 2 training examples or more)")
        return (f"parameter eval_strategy {eval_strategy} needs evaluation data, but {source} holds no example "
                "that can be evaluated; add examples, set eval_file, or set eval_strategy no")
    return ""
