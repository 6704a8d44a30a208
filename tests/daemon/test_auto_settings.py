"""The automatic SFT settings: the rules of docs/training.md, their bounds and their reasons."""
from __future__ import annotations

import subprocess
import sys

import pytest

from modxd import auto_settings as A
from modxd.params import BY_KEY, coerce


def _epochs(examples: int, batch: int = 8) -> int:
    return A.resolve(examples, batch)["num_train_epochs"].value  # type: ignore[return-value]


def test_the_issues_small_facts_file_gets_several_epochs() -> None:
    picked = A.resolve(66, 8)
    # 66 examples at 8 per step = 9 steps per epoch; 7 epochs = 63 steps >= the target of 60.
    assert picked["num_train_epochs"].value == 7
    assert picked["learning_rate"].value == 1e-3
    assert picked["lora_target_modules"].value == ["all-linear"]


def test_a_large_file_gets_one_epoch_never_dozens() -> None:
    assert _epochs(2000) == 1
    assert _epochs(100_000) == 1
    assert _epochs(2000, batch=64) == 2  # 32 steps per epoch: two passes reach the target


def test_epochs_reach_the_target_steps_and_no_more_than_one_epoch_past_it() -> None:
    for examples in range(1, 3000, 7):
        for batch in (1, 4, 8, 16, 32):
            epochs = _epochs(examples, batch)
            per_epoch = A.steps_per_epoch(examples, batch)
            assert 1 <= epochs <= A.MAX_EPOCHS
            if epochs < A.MAX_EPOCHS:
                assert epochs * per_epoch >= A.TARGET_STEPS
            if epochs > 1:
                assert (epochs - 1) * per_epoch < A.TARGET_STEPS


def test_epochs_never_grow_with_more_data() -> None:
    counts = [_epochs(n) for n in range(1, 5000)]
    assert all(a >= b for a, b in zip(counts, counts[1:]))


def test_boundaries_of_one_epoch_and_of_the_cap() -> None:
    target, batch = A.TARGET_STEPS, 8
    assert _epochs(target * batch) == 1  # exactly the target in one pass
    assert _epochs(target * batch - batch) == 2  # one step short
    assert _epochs(1) == A.MAX_EPOCHS
    assert _epochs(batch * (target // A.MAX_EPOCHS)) == A.MAX_EPOCHS  # the cap reaches the target exactly


def test_steps_per_epoch_counts_the_partial_last_step() -> None:
    assert A.steps_per_epoch(66, 8) == 9
    assert A.steps_per_epoch(64, 8) == 8
    assert A.steps_per_epoch(3, 8) == 1
    assert A.effective_batch(2, 4) == 8 and A.effective_batch(2, 4, devices=2) == 16


def test_reasons_name_the_numbers() -> None:
    reason = A.resolve(66, 8)["num_train_epochs"].reason
    for number in ("66 examples", "8 per step = 9 optimizer steps per epoch", "7 epochs", "63 optimizer steps",
                   str(A.TARGET_STEPS)):
        assert number in reason, (number, reason)
    large = A.resolve(2000, 8)["num_train_epochs"].reason
    assert "2,000 examples" in large and "250 optimizer steps per epoch" in large and "1 epoch" in large
    tiny = A.resolve(5, 8)["num_train_epochs"].reason
    assert f"{A.MAX_EPOCHS} epochs" in tiny and "add examples" in tiny
    assert "0.001" in A.resolve(66, 8)["learning_rate"].reason and "0.0002" in A.resolve(66, 8)["learning_rate"].reason
    assert "q_proj/v_proj" in A.resolve(66, 8)["lora_target_modules"].reason


def test_rate_outside_what_was_measured_keeps_the_seeds() -> None:
    big = A.resolve(66, 8, model_parameters=7_000_000_000)["learning_rate"]
    assert big.value == A.SEED_LEARNING_RATE and "7.0B" in big.reason
    assert A.resolve(66, 8, model_parameters=135_000_000)["learning_rate"].value == 1e-3
    full = A.resolve(66, 8, use_lora=False)
    assert full["learning_rate"].value == A.SEED_LEARNING_RATE
    assert "lora_target_modules" not in full


@pytest.mark.parametrize("examples,batch", [(0, 8), (-1, 8), (10, 0)])
def test_impossible_counts_are_refused_with_a_sentence(examples: int, batch: int) -> None:
    with pytest.raises(ValueError, match=str(examples) if examples < 1 else "batch"):
        A.resolve(examples, batch)


def test_every_resolved_value_is_a_valid_parameter() -> None:
    """The names are the schema's, and each value passes the schema's own type and range check."""
    for examples in (1, 66, 500, 2000, 100_000):
        for key, picked in A.resolve(examples, 8).items():
            assert coerce(BY_KEY[key], picked.value) == picked.value


def test_importing_it_loads_no_ml_library() -> None:
    """It runs inside the daemon at create time, which must not pay for (or depend on) torch."""
    code = ("import sys, modxd.auto_settings; "
            "bad = [m for m in ('torch', 'numpy', 'transformers', 'peft') if m in sys.modules]; "
            "sys.exit(', '.join(bad) or None)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_resolver_picks_for_sft_only_and_never_for_a_resumed_run() -> None:
    """The App's resolver: SFT from the report's count and the task's batch x accumulation x processes;
    nothing for other types, and nothing when the task resumes a checkpoint (its adapter's targets and
    its schedule are the checkpoint's run's)."""
    from types import SimpleNamespace

    from modxd.params import resolve

    def facts(task_type: str = "sft", **params):
        base = dict(train_file="/d.jsonl", model_dir="/m", output_dir="/o", per_device_train_batch_size=2,
                    gradient_accumulation_steps=4)
        return SimpleNamespace(task_type=task_type, examples=66, model_parameters=135_000_000,
                               params=resolve(task_type, {}, {**base, **params}))

    picked = A.sft_resolver(facts())
    assert picked["num_train_epochs"][0] == 7 and "66 examples at 8 per step" in picked["num_train_epochs"][1]
    two = A.sft_resolver(facts(devices="2"))["num_train_epochs"]  # 16 per step over two processes
    assert two[0] == 10 and "66 examples at 16 per step = 5 optimizer steps per epoch" in two[1]
    assert A.sft_resolver(facts(resume_from_checkpoint="/o/checkpoints/checkpoint-8")) == {}
    assert A.sft_resolver(facts("pretrain")) == {}
