"""Preference tasks (dpo, orpo) through the daemon: create (the pairs checked, file and line named),
run to completion with the preference metrics streamed and stored, checkpoints charged to the
quota, stop and resume, exactly as SFT tasks."""
from __future__ import annotations

import json
import math
import os

import grpc
import pytest
from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from tests.fixtures.preference import write_pairs

from .helpers import TERMINAL, create_request, rpc_error, run_task, state_name, task_count, wait_for_state

QUICK = dict(per_device_train_batch_size=4, gradient_accumulation_steps=1, max_seq_length=128, learning_rate=1e-2,
             logging_steps=1, fp16=False, gradient_checkpointing=False)
DPO_FIELDS = ("reward_chosen", "reward_rejected", "reward_margin", "reward_accuracy", "logps_chosen",
              "logps_rejected")
ORPO_FIELDS = (*DPO_FIELDS, "nll_loss", "log_odds_ratio", "log_odds_chosen")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("pairs")
    return {"conversational": write_pairs(root / "conv.jsonl", 16),
            "standard": write_pairs(root / "std.jsonl", 16, fmt="standard"),
            "eval": write_pairs(root / "eval.jsonl", 4, seed=9)}


def _streamed(daemon, task_id: str) -> list[T.MetricsPoint]:
    """The metrics points as WatchTask streams them (history replayed), training points only."""
    return [r.event.metrics for r in daemon.training.WatchTask(
        T.WatchTaskRequest(task_id=task_id, kinds=[T.EVENT_KIND_METRICS])) if r.event.metrics.HasField("loss")]


def _check_charged(daemon, task_id: str, task: T.Task) -> list[T.Checkpoint]:
    every = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id, include_deleted=True)).checkpoints
    assert every and len(every) == task.checkpoints_saved
    ledger = daemon.system.GetQuota(system_pb2.GetQuotaRequest(ledger_limit=1000)).ledger
    assert sorted(e.checkpoint_id for e in ledger if e.task_id == task_id) == sorted(c.id for c in every)
    for c in every:
        assert os.path.isfile(os.path.join(c.path, "adapter_model.safetensors"))
    return list(every)


def test_dpo_runs_to_completion_with_preference_metrics(daemon, tiny_llama_dir, pairs, tmp_path) -> None:
    req = create_request("dpo", train_file=pairs["conversational"], eval_file=pairs["eval"], model_dir=tiny_llama_dir,
                         output_dir=tmp_path / "o", num_train_epochs=2, save_strategy="epoch", eval_strategy="epoch",
                         **QUICK)
    created = daemon.training.CreateTask(req)
    assert created.task.quota_estimate.checkpoints == 2 and created.task.params["beta"].double_value == 0.1
    assert "16 training pairs" in created.task.quota_estimate.explanation
    daemon.training.StartTask(T.StartTaskRequest(task_id=created.task.id))
    task = wait_for_state(daemon, created.task.id, TERMINAL)
    assert state_name(task.state) == "completed", (task.state_reason, list(task.failure_log_tail))
    points = _streamed(daemon, task.id)
    assert [p.step for p in points] == list(range(1, 9))
    for point in points:
        assert not point.HasField("perplexity")  # exp of a preference loss means nothing
        for name in DPO_FIELDS:
            assert point.HasField(name) and math.isfinite(getattr(point, name)), (point.step, name)
    assert points[0].loss == pytest.approx(math.log(2), abs=1e-5) and points[0].reward_margin == 0.0
    assert points[-1].reward_margin > points[0].reward_margin and points[-1].reward_accuracy > 0.5
    stored = [p for p in daemon.training.ListMetrics(T.ListMetricsRequest(task_id=task.id)).points
              if p.HasField("eval_loss")]
    assert [p.step for p in stored] == [4, 8]
    assert all(math.isfinite(p.eval_reward_margin) and p.HasField("eval_reward_accuracy") for p in stored)
    ckpts = _check_charged(daemon, task.id, task)
    assert [c.step for c in ckpts] == [4, 8] and not os.path.isdir(os.path.join(ckpts[-1].path, "ref"))
    assert any(n.startswith("events.out.tfevents") for _, _, files in os.walk(tmp_path / "o" / "runs") for n in files)


def test_orpo_runs_to_completion_with_preference_metrics(daemon, tiny_llama_dir, pairs, tmp_path) -> None:
    req = create_request("orpo", train_file=pairs["standard"], model_dir=tiny_llama_dir, output_dir=tmp_path / "o",
                         num_train_epochs=2, orpo_lambda=0.5, **QUICK)
    task_id, task = run_task(daemon, req)
    assert state_name(task.state) == "completed", (task.state_reason, list(task.failure_log_tail))
    points = _streamed(daemon, task_id)
    assert len(points) == task.total_steps == 8
    for point in points:
        for name in ORPO_FIELDS:
            assert point.HasField(name) and math.isfinite(getattr(point, name)), (point.step, name)
    assert points[-1].nll_loss < points[0].nll_loss and points[-1].reward_margin > points[0].reward_margin
    assert len(_check_charged(daemon, task_id, task)) == task.quota_estimate.checkpoints == 1


def test_stop_and_resume_a_dpo_task(daemon, tiny_llama_dir, pairs, tmp_path) -> None:
    tr = daemon.training
    many = write_pairs(tmp_path / "many.jsonl", 96)
    req = create_request("dpo", train_file=many, model_dir=tiny_llama_dir, output_dir=tmp_path / "o",
                         num_train_epochs=4, **{**QUICK, "per_device_train_batch_size": 1})
    task_id = tr.CreateTask(req).task.id
    tr.StartTask(T.StartTaskRequest(task_id=task_id))
    for response in tr.WatchTask(T.WatchTaskRequest(task_id=task_id)):
        if response.event.HasField("metrics") and response.event.metrics.step >= 3:
            break
    tr.StopTask(T.StopTaskRequest(task_id=task_id))
    stopped = wait_for_state(daemon, task_id, TERMINAL)
    assert state_name(stopped.state) == "stopped" and stopped.state_reason == "user", stopped.state_reason
    [ckpt] = tr.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert ckpt.step == stopped.current_step >= 3
    tr.ResumeTask(T.ResumeTaskRequest(task_id=task_id, checkpoint=ckpt.id))
    done = wait_for_state(daemon, task_id, TERMINAL, timeout=900)
    assert state_name(done.state) == "completed", (done.state_reason, list(done.failure_log_tail))
    steps = [p.step for p in _streamed(daemon, task_id)]
    assert steps == list(range(1, done.total_steps + 1)), "the resumed run repeated or skipped steps"


def test_malformed_pairs_are_refused_at_create(daemon, tiny_llama_dir, pairs, tmp_path) -> None:
    lines = pairs["standard"].read_text().splitlines()
    cases = {
        "same": '{"prompt": "p", "chosen": "same", "rejected": "same"}',
        "missing": '{"prompt": "p", "chosen": "a"}',
        "mixed": json.dumps({"prompt": [{"role": "user", "content": "q"}],
                             "chosen": [{"role": "assistant", "content": "a"}],
                             "rejected": [{"role": "assistant", "content": "b"}]}),
        "json": '{"prompt": "p", "chosen": ',
    }
    before = task_count(daemon)
    for name, bad_line in cases.items():
        bad = tmp_path / f"{name}.jsonl"
        bad.write_text("\n".join([*lines[:5], bad_line, *lines[5:]]) + "\n")
        for task_type in ("dpo", "orpo"):
            err = rpc_error(lambda: daemon.training.CreateTask(create_request(
                task_type, train_file=bad, model_dir=tiny_llama_dir, output_dir=tmp_path / "o")))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, err.details())
            assert f"train_file {bad} line 6" in err.details(), (name, err.details())
    # an SFT file is not a preference file: refused at its first line
    sft = tmp_path / "sft.jsonl"
    sft.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
                   + "\n")
    err = rpc_error(lambda: daemon.training.CreateTask(create_request(
        "dpo", train_file=sft, model_dir=tiny_llama_dir, output_dir=tmp_path / "o")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and f"train_file {sft} line 1" in err.details()
    # parameters of another type, and the preference rules, are the schema's
    err = rpc_error(lambda: daemon.training.CreateTask(create_request(
        "orpo", train_file=pairs["standard"], model_dir=tiny_llama_dir, output_dir=tmp_path / "o", beta=0.2)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "beta does not apply to orpo" in err.details()
    err = rpc_error(lambda: daemon.training.CreateTask(create_request(
        "dpo", train_file=pairs["standard"], model_dir=tiny_llama_dir, output_dir=tmp_path / "o",
        start_from_checkpoint=tiny_llama_dir)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    assert "is not a LoRA checkpoint" in err.details() and "set model_dir to it instead" in err.details()
    assert task_count(daemon) == before  # bad input changes nothing


def test_conversational_pairs_need_a_chat_template_standard_ones_do_not(daemon, tiny_llama_dir, pairs,
                                                                          tmp_path) -> None:
    import shutil

    no_template = tmp_path / "no-template"
    shutil.copytree(tiny_llama_dir, no_template)
    (no_template / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((no_template / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (no_template / "tokenizer_config.json").write_text(json.dumps(config))
    err = rpc_error(lambda: daemon.training.CreateTask(create_request(
        "dpo", train_file=pairs["conversational"], model_dir=no_template, output_dir=tmp_path / "o")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "chat template" in err.details(), err.details()
    req = create_request("orpo", train_file=pairs["standard"], model_dir=no_template, output_dir=tmp_path / "o")
    req.validate_only = True
    task = daemon.training.CreateTask(req).task
    assert task.quota_estimate.checkpoints >= 1 and not task.id
