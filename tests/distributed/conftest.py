"""The one-process reference run every distributed test compares with.

A tiny Llama with LoRA on the 32-example SFT set: one process with 8 examples per step
(4 optimizer steps, checkpoints at steps 2 and 4). Distributed runs use 2 ranks x 4
examples, the same global batch, so their loss curve must match this one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.plugin import EventRecorder, engine_config

LOSS_RTOL = 1e-3  # float sums in another order (all-reduce); same data, same init


@dataclass
class Reference:
    model: Path
    data: Path
    losses: dict[int, float]
    checkpoints: dict[int, str]


def small_config(model: Path, data: Path, out: Path, **overrides):
    """The reference's config; distributed tests override the batch and devices."""
    return engine_config(model, data, out, **{"per_device_train_batch_size": 8, "save_strategy": "steps",
                                              "save_steps": 2, **overrides})


class Commands:
    """A ``poll_command`` (with the worker shim's timeout argument) that never commands."""

    def __call__(self, timeout: float | None = 0.0):
        if timeout:
            time.sleep(min(timeout, 0.05))
        return None


@pytest.fixture(scope="session")
def reference(tiny_llama_dir: Path, sft_jsonl: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    from modxd.engine.train import run_training

    out = tmp_path_factory.mktemp("reference")
    events = EventRecorder()
    result = run_training(small_config(tiny_llama_dir, sft_jsonl, out), events, lambda: None)
    assert result["outcome"] == "completed" and result["final_step"] == 4
    return Reference(tiny_llama_dir, sft_jsonl, {m["step"]: m["loss"] for m in events.train_metrics},
                     {e["step"]: e["path"] for e in events.of("checkpoint")})
