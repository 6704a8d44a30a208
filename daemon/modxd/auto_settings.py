"""The automatic SFT settings: epochs, learning rate and LoRA targets picked from the data's size.

Pure arithmetic (no torch, no file access): the daemon resolves these at create time from the counts
of the data report. The rules and the experiments they come from are in docs/training.md
("How modx picks its automatic settings"); the numbers there were measured with
``bench/auto_settings.py`` on SmolLM2-135M-Instruct, and every constant below names its evidence.

What the experiments showed: a style or a format is learned after a number of optimizer steps,
however many passes that takes (16-24 steps: 2-3 passes over 64 examples, a third of one pass over
500); a small file of invented facts needs more, 45-65 steps (about 5 passes). So the epochs are chosen
to reach a target number of optimizer steps, and a file that gives that many in one pass gets one
pass. What a count cannot tell is a file of many distinct facts: 500 examples of 100 facts were not
learned in one pass (docs/training.md), and only an explicit epoch count fixes that.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# Optimizer steps a run aims for (effective batch 8, rate 1e-3, LoRA on all linear layers): a style
# or a format was learned after 16-24 steps, the small facts files only after 45-65 (5 passes; 3
# passes = 27-39 steps: 8-15 % of held-out questions right); the target covers both.
TARGET_STEPS = 60
# Most passes over a tiny file: 8 passes over 66 or 100 examples still improved held-out answers;
# more were not measured, and a file of a handful of examples cannot teach much however long it runs.
MAX_EPOCHS = 10
# LoRA on all linear layers at 1e-3 learned every small set and the 500-example format; the seed's q/v
# at 2e-4 learned none of the small sets in the same number of steps, and on the style (24 steps) q/v
# at 1e-3 and all linear layers at 2e-4 each learned nothing: both changes are needed.
LORA_LEARNING_RATE = 1e-3
LORA_TARGET_MODULES = ["all-linear"]
# The experiments covered a 135M-parameter model; above this size the rate falls back to the seed's.
MEASURED_MODEL_LIMIT = 1_000_000_000
SEED_LEARNING_RATE = 2e-4


@dataclass(frozen=True)
class Resolved:
    """One automatic setting: the value a task gets and the sentence that says why."""

    value: int | float | list[str]
    reason: str


def steps_per_epoch(examples: int, effective_batch: int) -> int:
    """Optimizer steps in one pass: one step per ``effective_batch`` examples, the last one partial."""
    return max(1, math.ceil(examples / effective_batch))


def effective_batch(per_device_train_batch_size: int, gradient_accumulation_steps: int, devices: int = 1) -> int:
    """Examples per optimizer step."""
    return per_device_train_batch_size * gradient_accumulation_steps * devices


def resolve(examples: int, effective_batch_size: int, *, use_lora: bool = True,
            model_parameters: int | None = None) -> dict[str, Resolved]:
    """``num_train_epochs``, ``learning_rate`` and (with LoRA) ``lora_target_modules`` for an SFT run
    of ``examples`` training examples at ``effective_batch_size`` examples per optimizer step."""
    if examples < 1:
        raise ValueError(f"the training data has {examples} examples: there is nothing to train on")
    if effective_batch_size < 1:
        raise ValueError(f"the effective batch size is {effective_batch_size}: it must be at least 1")
    per_epoch = steps_per_epoch(examples, effective_batch_size)
    picked = {"num_train_epochs": _epochs(examples, effective_batch_size, per_epoch)}
    picked["learning_rate"] = _learning_rate(use_lora, model_parameters)
    if use_lora:
        picked["lora_target_modules"] = Resolved(
            list(LORA_TARGET_MODULES),
            "LoRA on every linear layer: adapting only q_proj/v_proj, a style was not learned in the 24 "
            "steps that taught it on all of them")
    return picked


def _epochs(examples: int, batch: int, per_epoch: int) -> Resolved:
    head = f"{examples:,} examples at {batch} per step = {per_epoch:,} optimizer step{'s' * (per_epoch != 1)} per epoch"
    if per_epoch >= TARGET_STEPS:
        return Resolved(1, f"{head}; 1 epoch already gives at least the {TARGET_STEPS} steps a run needs")
    wanted = math.ceil(TARGET_STEPS / per_epoch)
    if wanted > MAX_EPOCHS:
        return Resolved(MAX_EPOCHS, f"{head}; {MAX_EPOCHS} epochs ({MAX_EPOCHS * per_epoch} steps), the most "
                                    f"modx picks; a file this small may not teach much, add examples")
    return Resolved(wanted, f"{head}; {wanted} epochs so the run takes about {wanted * per_epoch} optimizer "
                            f"steps (it aims for {TARGET_STEPS})")


def _learning_rate(use_lora: bool, model_parameters: int | None) -> Resolved:
    if not use_lora:
        return Resolved(SEED_LEARNING_RATE, "full fine-tuning was not measured: the seed's rate is kept")
    if model_parameters is not None and model_parameters > MEASURED_MODEL_LIMIT:
        return Resolved(SEED_LEARNING_RATE,
                        f"a {model_parameters / 1e9:.1f}B-parameter model: 1e-3 was measured only on a 135M "
                        f"model, so the seed's {SEED_LEARNING_RATE:g} is kept")
    return Resolved(LORA_LEARNING_RATE, f"{LORA_LEARNING_RATE:g} for a LoRA adapter: at the seed's "
                                        f"{SEED_LEARNING_RATE:g} a style was not learned in the 24 steps that "
                                        f"taught it at {LORA_LEARNING_RATE:g}")


def sft_resolver(facts: object) -> dict[str, tuple[int | float | list[str], str]]:
    """The App's automatic-settings rule (param_sources.AutoResolver): SFT tasks that do not resume a
    checkpoint (pretraining and preference tuning were not measured), from the data report's example count, the effective batch
    (``devices`` a count or ids; 1 process otherwise) and the model's size."""
    if getattr(facts, "task_type", "") != "sft" or getattr(facts, "examples", 0) < 1:
        return {}
    params = getattr(facts, "params")
    if getattr(params, "resume_from_checkpoint", ""):
        return {}  # a resumed run continues the checkpoint's own run: its adapter's targets, its schedule
    devices = str(getattr(params, "devices", "1") or "1").strip()
    processes = int(devices) if devices.isdigit() and int(devices) > 0 else (
        len(devices.split(",")) if "," in devices else 1)
    batch = effective_batch(int(params.per_device_train_batch_size), int(params.gradient_accumulation_steps),
                            processes)
    picked = resolve(int(getattr(facts, "examples")), batch, use_lora=bool(params.use_lora),
                     model_parameters=int(getattr(facts, "model_parameters", 0) or 0) or None)
    return {key: (r.value, r.reason) for key, r in picked.items()}
