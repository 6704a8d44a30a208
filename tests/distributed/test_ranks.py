"""Two CPU ranks (gloo) train like one process with twice the batch, and their checkpoints resume
on one process.

The ranks are real: the test calls the training worker's entry (``run_train_task``), which
becomes the coordinator and starts ``python -m modxd.worker.rank`` twice through torch's
elastic launcher, exactly as in a daemon's worker.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.plugin import EventRecorder

from .conftest import LOSS_RTOL, Commands, Reference, small_config


@pytest.fixture(scope="module")
def two_ranks(reference: Reference, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, EventRecorder]:
    from modxd.worker.launch import run_train_task

    out = tmp_path_factory.mktemp("two-ranks")
    events = EventRecorder()
    config = small_config(reference.model, reference.data, out, per_device_train_batch_size=4,
                          process_devices=["cpu", "cpu"], task_id="t-ddp")
    return run_train_task(config.to_wire(), events, Commands()), events  # what the worker receives


def test_two_ranks_follow_the_loss_curve_of_one_process_with_twice_the_batch(reference, two_ranks) -> None:
    result, events = two_ranks
    assert result["outcome"] == "completed" and result["final_step"] == 4
    losses = {m["step"]: m["loss"] for m in events.train_metrics}
    assert sorted(losses) == sorted(reference.losses) == [1, 2, 3, 4]
    for step, loss in reference.losses.items():
        assert losses[step] == pytest.approx(loss, rel=LOSS_RTOL), (step, losses, reference.losses)
    assert events.of("total_steps")[-1]["total_steps"] == 4  # the plan counts both ranks
    assert any("2 processes (2 ranks, ddp)" in e["message"] for e in events.of("log"))


def test_only_rank_0_reports_and_each_checkpoint_is_reported_once(two_ranks) -> None:
    _, events = two_ranks
    saved = events.of("checkpoint")
    assert [e["step"] for e in saved] == [2, 4]  # one event (one quota unit) per checkpoint, not per rank
    assert len(events.of("total_steps")) == 1
    final = Path(saved[-1]["path"])
    names = {p.name for p in final.iterdir()}
    assert {"rng_state_0.pth", "rng_state_1.pth", "rng_state.pth", "adapter_model.safetensors",
            "optimizer.pt", "trainer_state.json"} <= names
    assert json.loads((final / "trainer_state.json").read_text())["global_step"] == 4
    assert not [p for p in final.parent.iterdir() if p.name.startswith(".tmp-")]


def test_a_two_rank_checkpoint_resumes_on_one_process(reference, two_ranks, tmp_path) -> None:
    from modxd.engine.train import run_training

    _, events = two_ranks
    checkpoint = next(e["path"] for e in events.of("checkpoint") if e["step"] == 2)
    resumed = EventRecorder()
    result = run_training(small_config(reference.model, reference.data, tmp_path / "out",
                                       resume_from_checkpoint=checkpoint), resumed, lambda: None)
    assert result["outcome"] == "completed" and result["final_step"] == 4
    losses = {m["step"]: m["loss"] for m in resumed.train_metrics}
    for step in (3, 4):  # the same continuation as the uninterrupted one-process run
        assert losses[step] == pytest.approx(reference.losses[step], rel=LOSS_RTOL), (step, losses)


def test_every_rank_config_reads_back_through_the_schema(tmp_path) -> None:
    """A rank's config is the worker's wire config with its own device: every task type alike."""
    from modxd.worker.rank import rank_config
    from modxd.train_config import TrainConfig

    for task_type in ("sft", "pretrain", "dpo", "orpo"):
        wire = TrainConfig.from_params(task_type, train_file=str(tmp_path / "d.jsonl"), output_dir=str(tmp_path / "o"),
                                       model_dir=str(tmp_path / "m"), save_interval_minutes=5,
                                       process_devices=["cpu", "cpu"]).to_wire()
        for rank in (0, 1):
            run = TrainConfig.from_wire(rank_config({"config": wire, "device_type": "cuda"}, rank, rank))
            assert run.device == f"cuda:{rank}" and run.params.save_interval_minutes == 0 and run.task_type == task_type
            assert run.params.merge_lora_after_training is False
