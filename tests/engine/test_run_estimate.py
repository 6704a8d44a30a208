"""The run estimate's arithmetic (engine/run_estimate.py) and the memory rule (modxd/memory_plan.py)."""
from __future__ import annotations

import math
import random
from array import array

import pytest

from modxd.engine.data import held_out_indexes
from modxd.engine.data_report import DataReport, distribution
from modxd.engine.memory import estimate_training_memory, model_shape
from modxd.engine.run_estimate import (CPU_RUNTIME_BYTES, Calibration, compare, epoch_cost, estimate_run,
                                       example_cost, select_examples, step_activation_bytes)
from modxd.errors import FailedPrecondition
from modxd.memory_plan import Capacity, consequences
from modxd.memory_plan import judge as judge_memory
from modxd.task_estimate import judge

SHAPE = model_shape({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "intermediate_size": 128, "vocab_size": 100})
PARAMS = {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "num_train_epochs": 3,
          "max_seq_length": 32, "seed": 42, "use_lora": True, "lora_r": 8, "lora_target_modules": ["q_proj"],
          "max_samples": 0, "eval_split_ratio": 0.0, "eval_file": "", "eval_strategy": "no", "eval_steps": 10,
          "gradient_checkpointing": False}
GiB = 1024**3


def report(kept: list[int], labelled: list[int], task_type: str = "sft") -> DataReport:
    return DataReport("train_file", "/data.jsonl", task_type, 32, "messages", {"messages": len(kept)}, len(kept),
                      distribution([k for k in kept if k], 32), sum(kept), sum(labelled), sum(kept), sum(labelled),
                      0, 0, kept_lengths=array("I", kept), kept_labelled=array("I", labelled))


def calibration(a: float = 0.5, b: float = 1e-6, packed: bool = True, peak: int = GiB, act: int = 10_000,
                scale: float = 2.0, floor: int = GiB // 2, load_peak: int = 0) -> Calibration:
    return Calibration("k", "cpu", packed, a, b, peak, load_peak, act, scale, floor, 3.0, 0.01, 1e-4)


def test_the_work_of_one_example_by_hand() -> None:
    # per layer q 64x64, k and v 64x32, o 64x64, gate and up 64x128, down 128x64: 36,864 weights; two layers
    assert SHAPE.block_linear_parameters == 73_728
    # linear 2 * 73,728 * 10 + attention 2 * 2 layers * 64 * 10^2 + logits 2 * 64 * 100 vocab * 4 positions
    assert example_cost(SHAPE, 10, 4) == 1_474_560 + 25_600 + 51_200


def test_time_steps_and_tokens_of_a_calibrated_run() -> None:
    r = report([10, 20, 0, 30], [4, 5, 0, 6])
    est = estimate_run("sft", PARAMS, SHAPE, r, calibration())
    assert (est.examples, est.dropped, est.steps_per_epoch, est.total_steps, est.micro_batches) == (3, 1, 2, 6, 6)
    assert (est.tokens_per_epoch, est.trainable_tokens_per_epoch, est.total_tokens) == (60, 15, 180)
    work = example_cost(SHAPE, 10, 4) + example_cost(SHAPE, 20, 5) + example_cost(SHAPE, 30, 6)
    assert est.training_seconds == pytest.approx(3 * (2 * 0.5 + 1e-6 * work))
    # startup: the measured 3 s + 0.01 s per selected example + 1e-4 s per token of them
    assert est.startup_seconds == pytest.approx(3.0 + 0.01 * 4 + 1e-4 * 60)
    assert est.eval_seconds == 0 and est.total_seconds == pytest.approx(est.training_seconds + est.startup_seconds)


def test_padded_batches_cost_their_longest_example() -> None:
    r = report([10, 20, 5, 30, 7], [4, 5, 2, 6, 3])
    order = [0, 1, 2, 3, 4]
    random.Random(42).shuffle(order)
    longest = [max(r.kept_lengths[i] for i in order[k:k + 2]) for k in range(0, 5, 2)]
    assert epoch_cost(SHAPE, r, range(5), 2, packed=False) == sum(2 * example_cost(SHAPE, n, n) for n in longest)
    assert epoch_cost(SHAPE, r, range(5), 2, packed=True) == sum(
        example_cost(SHAPE, n, m) for n, m in zip(r.kept_lengths, r.kept_labelled))


def test_examples_are_selected_as_the_worker_selects_them() -> None:
    r = report([10, 20, 0, 30, 12, 14, 0, 9, 11, 13], [1] * 10)
    train, split, dropped = select_examples(r, {**PARAMS, "max_samples": 8, "eval_split_ratio": 0.25})
    held = held_out_indexes(8, 0.25, 42)
    assert split == sorted(i for i in held if r.kept_lengths[i])
    assert train == [i for i in range(8) if i not in held and r.kept_lengths[i]]
    assert dropped == 2
    # an eval file: no split, the cap still applies
    train, split, dropped = select_examples(r, {**PARAMS, "max_samples": 3, "eval_split_ratio": 0.25,
                                                "eval_file": "/eval.jsonl"})
    assert (train, split, dropped) == ([0, 1], [], 1)


def test_evaluation_passes_are_counted() -> None:
    r = report([10, 20, 30, 40], [4, 5, 6, 7])
    params = {**PARAMS, "eval_split_ratio": 0.5, "eval_strategy": "epoch"}
    est = estimate_run("sft", params, SHAPE, r, calibration())
    assert est.eval_examples == 2 and est.examples == 2
    split = select_examples(r, params)[1]
    work = sum(example_cost(SHAPE, r.kept_lengths[i], r.kept_labelled[i]) for i in split)
    assert est.eval_seconds == pytest.approx(3 * (1 / 2.5) * (1 * 0.5 + 1e-6 * work))


def test_memory_moves_with_the_largest_step_and_never_below_the_floor() -> None:
    r = report([10, 20, 0, 30], [4, 5, 0, 6])
    cal = calibration()
    largest = step_activation_bytes(SHAPE, PARAMS, "cpu", [30, 20], packed=True)
    est = estimate_run("sft", PARAMS, SHAPE, r, cal)
    assert est.peak_memory_bytes == int(GiB + 2.0 * (largest - 10_000))
    assert est.memory_kind == "host_rss" and est.calibrated
    tiny = estimate_run("sft", PARAMS, SHAPE, report([1, 1], [1, 1]), calibration(act=10**9))
    assert tiny.peak_memory_bytes == GiB // 2  # the floor: what the process held when training began
    loaded = estimate_run("sft", PARAMS, SHAPE, report([1, 1], [1, 1]), calibration(act=10**9, load_peak=3 * GiB))
    assert loaded.peak_memory_bytes == 3 * GiB  # loading the model peaked higher than any step


def test_without_calibration_there_is_no_time_and_memory_is_modelled() -> None:
    r = report([10, 20, 0, 30], [4, 5, 0, 6])
    est = estimate_run("sft", PARAMS, SHAPE, r)
    assert est.training_seconds is None and est.total_seconds is None and not est.calibrated
    modelled = estimate_training_memory(SHAPE, {**PARAMS, "max_seq_length": 30}, "cpu", 2).total
    assert est.peak_memory_bytes == modelled + CPU_RUNTIME_BYTES


def test_pretraining_blocks() -> None:
    r = report([32] * 10, [32] * 10, "pretrain")
    est = estimate_run("pretrain", {**PARAMS, "use_lora": False}, SHAPE, r, calibration(a=0.0, packed=False))
    assert est.examples == 10 and est.micro_batches == 15 and est.tokens_per_epoch == 320
    assert est.training_seconds == pytest.approx(3 * 1e-6 * 5 * 2 * example_cost(SHAPE, 32, 32))


def test_actuals_next_to_the_estimate() -> None:
    est = estimate_run("sft", PARAMS, SHAPE, report([10, 20, 0, 30], [4, 5, 0, 6]), calibration())
    time_check, memory_check = compare(est, est.training_seconds / 1.25, int(est.peak_memory_bytes / 1.3))
    assert time_check.error == pytest.approx(0.25) and time_check.within_target
    assert memory_check.error == pytest.approx(0.3, abs=1e-6) and not memory_check.within_target
    assert "+25%" in time_check.sentence and "target within 30%" in time_check.sentence
    assert compare(est, None, None) == []
    stored = judge(est.to_dict(), est.training_seconds, est.peak_memory_bytes)
    assert [c["error"] for c in stored] == [0.0, 0.0] and all(c["within_target"] for c in stored)
    assert math.isinf(compare(est, 0.0001, 0)[0].error) is False


def test_memory_rule_refuses_what_surely_cannot_fit_and_warns_on_a_modelled_excess() -> None:
    est = estimate_run("sft", PARAMS, SHAPE, report([10, 20, 0, 30], [4, 5, 0, 6]), calibration())
    peak, floor = est.peak_memory_bytes, GiB // 2
    host = lambda total, free: Capacity("cpu", total, free, "host_rss")  # noqa: E731
    roomy = judge_memory(peak, floor, True, host(4 * peak, 4 * peak))
    assert (roomy["fits"], roomy["tight"], roomy["refuse"]) == (True, False, False)
    assert consequences(roomy, []) == []
    tight = judge_memory(peak, floor, True, host(4 * peak, peak // 2))  # fits the host, not what is free now
    assert tight["fits"] and tight["tight"] and not tight["refuse"]
    assert [c for c, _ in consequences(tight, ["a shorter max_seq_length"])] == ["memory_tight"]
    measured = judge_memory(peak, floor, True, host(peak - 1, peak - 1))  # a calibrated peak above the host
    assert measured["refuse"] and not measured["fits"] and "host memory" in measured["explanation"]
    with pytest.raises(FailedPrecondition, match="the run will not fit: estimated peak RSS .* try a shorter"):
        consequences(measured, ["a shorter max_seq_length"])
    modelled = judge_memory(peak, floor, False, host(peak - 1, peak - 1))  # only a model says it exceeds
    assert not modelled["fits"] and not modelled["refuse"] and "modelled" in modelled["explanation"]
    (code, sentence), = consequences(modelled, ["a shorter max_seq_length"])
    assert code == "memory_insufficient" and "probably not fit" in sentence and "max_seq_length" in sentence
    floor_over = judge_memory(peak, peak, False, host(peak - 1, 0))  # the weights alone exceed: no batch helps
    assert floor_over["refuse"] and "weights and optimizer state alone" in floor_over["explanation"]
    unknown = judge_memory(peak, floor, True, host(0, 0))  # no capacity known: nothing judged
    assert unknown["fits"] and not unknown["refuse"] and not unknown["tight"]
