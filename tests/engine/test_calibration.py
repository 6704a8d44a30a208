"""The calibration path: the key, the cache, and real calibration runs of the tiny model.

A real calibration spawns a child that trains the tiny model for a few steps (twice: full-length
and short examples), so the last test takes a minute or two on a busy 2-core machine."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from modxd.calibration import CACHE_FILE, MAX_ENTRIES, CalibrationCache, calibrate, calibration_key, key_digest
from modxd.engine.calibrate import MAX_STEPS, MIN_STEPS, _fit
from modxd.engine.run_estimate import Calibration
from modxd.task_estimate import estimate_task
from modxd import params as P
from tests.fixtures.plugin import SMALL_RUN

CONFIG = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 384}


def params(model_dir: Path | str = "/m", **overrides) -> dict:
    """A small run's parameters, as a task stores them, without its data and output paths."""
    p = {**P.defaults_for("sft"), **SMALL_RUN, "model_dir": str(model_dir), "per_device_train_batch_size": 2,
         "max_seq_length": 64, **overrides}
    return p


def test_the_key_holds_what_changes_a_step_and_nothing_else() -> None:
    base = calibration_key("sft", params(), CONFIG, "cpu")
    assert base == calibration_key("sft", params(learning_rate=1.0, num_train_epochs=9, seed=1), CONFIG, "cpu")
    for change in ({"per_device_train_batch_size": 4}, {"max_seq_length": 128}, {"lora_r": 4},
                   {"lora_target_modules": ["all-linear"]}, {"gradient_checkpointing": True}, {"bf16": True},
                   {"optim": "sgd"}):
        assert calibration_key("sft", params(**change), CONFIG, "cpu") != base, change
    assert calibration_key("sft", params(), {**CONFIG, "hidden_size": 64}, "cpu") != base
    assert calibration_key("pretrain", params(), CONFIG, "cpu") != base
    assert calibration_key("sft", params(), CONFIG, "cuda:0", "NVIDIA H100") != base
    # on the CPU the cores a worker gets (worker_cpus) are part of what was timed
    assert calibration_key("sft", params(), CONFIG, "cpu", cpus=[0])["device"].endswith(" x1")
    assert calibration_key("sft", params(), CONFIG, "cpu", cpus=[0, 1, 2])["device"].endswith(" x3")
    # the same GPU model in another slot is the same device
    assert calibration_key("sft", params(), CONFIG, "cuda:0", "X") == calibration_key("sft", params(), CONFIG, "cuda:1", "X")
    full = calibration_key("sft", params(use_lora=False), CONFIG, "cpu")
    assert full == calibration_key("sft", params(use_lora=False, lora_r=2, lora_target_modules=["q_proj"]), CONFIG, "cpu")
    assert calibration_key("sft", params(lora_target_modules=["v_proj", "q_proj"]), CONFIG, "cpu") == base


def _result(key: str = "k") -> dict:
    return Calibration(key, "cpu", True, 0.1, 1e-9, 10, 5, 3, 1.0, 4, 1.0, 0.0, 0.0, created=1.0).to_dict()


def test_the_cache_round_trip_and_what_it_forgives(tmp_path: Path) -> None:
    cache = CalibrationCache(tmp_path)
    key = calibration_key("sft", params(), CONFIG, "cpu")
    assert cache.get(key) is None
    cache.put(key, _result())
    assert cache.get(key) == Calibration.from_dict(_result())
    other = calibration_key("sft", params(max_seq_length=128), CONFIG, "cpu")
    assert cache.get(other) is None
    stored = json.loads((tmp_path / CACHE_FILE).read_text())
    assert list(stored["entries"]) == [key_digest(key)] and stored["entries"][key_digest(key)]["key"] == key
    assert [p.name for p in tmp_path.iterdir()] == [CACHE_FILE]  # no temporary file left
    (tmp_path / CACHE_FILE).write_text("{not json")
    assert cache.get(key) is None  # a damaged cache costs a calibration, never an error
    cache.put(key, _result())
    assert cache.get(key) is not None


def test_the_cache_keeps_the_newest_entries(tmp_path: Path) -> None:
    cache = CalibrationCache(tmp_path)
    keys = [calibration_key("sft", params(max_seq_length=16 + n), CONFIG, "cpu") for n in range(MAX_ENTRIES + 2)]
    for key in keys:
        cache.put(key, _result())
    assert cache.get(keys[0]) is None and cache.get(keys[1]) is None and cache.get(keys[-1]) is not None


def test_the_time_line_resists_one_disturbed_step() -> None:
    quiet = [{"cost": 10.0, "step_seconds": [2.0, 2.0, 2.0]}, {"cost": 1.0, "step_seconds": [1.1, 1.1, 1.1]}]
    a, b, contention = _fit(quiet)
    assert (a, b, contention) == pytest.approx((1.0, 0.1, 1.0))
    spiked = [quiet[0], {"cost": 1.0, "step_seconds": [1.1, 9.0, 1.1]}]  # one step of the short run disturbed
    assert _fit(spiked) == pytest.approx((1.0, 0.1, 1.0))
    busy = [{"cost": 10.0, "step_seconds": [2.0, 3.0, 3.0]}, {"cost": 1.0, "step_seconds": [1.1, 1.65, 1.65]}]
    a, b, contention = _fit(busy)  # everything 1.5 times slower most of the time: so is the estimate
    assert contention == pytest.approx(1.5) and (a, b) == pytest.approx((1.5, 0.15))


def test_a_real_calibration_is_cached_reused_and_redone_for_another_shape(tmp_path: Path, tiny_llama_dir: Path,
                                                                          sft_jsonl: Path) -> None:
    config = json.loads((tiny_llama_dir / "config.json").read_text())
    p = params(tiny_llama_dir)
    first, cached = calibrate("sft", p, config, "cpu", tmp_path / "state", None)
    assert not cached
    runs = first.measured["runs"]
    assert len(runs) == 2 and all(MIN_STEPS - 1 <= len(r["step_seconds"]) <= MAX_STEPS - 1 for r in runs)
    assert max(runs[0]["tokens"]) <= 64 and max(runs[1]["tokens"]) < max(runs[0]["tokens"])
    assert first.packed  # Llama takes padding-free batches (engine/packing.py)
    assert first.step_overhead_seconds >= 0 and first.seconds_per_cost >= 0
    assert first.step_overhead_seconds + first.seconds_per_cost > 0
    assert first.peak_memory_bytes >= first.floor_memory_bytes > 0 and first.startup_seconds > 0
    stored = (tmp_path / "state" / CACHE_FILE).read_bytes()
    assert [p.name for p in (tmp_path / "state").iterdir()] == [CACHE_FILE]  # the scratch dir is gone

    again, cached = calibrate("sft", params(tiny_llama_dir, learning_rate=0.5), config, "cpu", tmp_path / "state", None)
    assert cached and again == first and (tmp_path / "state" / CACHE_FILE).read_bytes() == stored

    longer, cached = calibrate("sft", params(tiny_llama_dir, max_seq_length=96), config, "cpu", tmp_path / "state",
                               None)
    assert not cached and longer.key != first.key
    assert len(json.loads((tmp_path / "state" / CACHE_FILE).read_text())["entries"]) == 2

    # the create-time estimate finds it: time and memory from the calibration
    task = {**p, "train_file": str(sft_jsonl), "output_dir": str(tmp_path / "out")}
    estimate = estimate_task("sft", task, config, tmp_path / "state", None)
    assert estimate.calibration == first and estimate.calibration_cached
    assert estimate.run.calibrated and estimate.run.training_seconds > 0 and estimate.run.examples == 32
    assert not any("no time estimate" in line for line in estimate.run.explanation)
    json.dumps(estimate.to_dict())
    uncalibrated = estimate_task("sft", {**task, "per_device_train_batch_size": 3}, config, tmp_path / "state", None)
    assert uncalibrated.run.training_seconds is None and not uncalibrated.run.calibrated
    assert any("--calibrate" in line for line in uncalibrated.run.explanation)
