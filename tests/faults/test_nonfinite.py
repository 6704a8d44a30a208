"""Non-finite training never passes as perfect (issue 18, item 3).

The model here has finite weights (every check of the files passes) but one token that
breaks it: its embedding is the unit vector of a dimension no other token uses, and layer
0's q_proj multiplies that dimension by 1e38, so the query of that token overflows to inf
and the attention of any example containing it is NaN. One example of the data has the
token, so the loss is finite for some steps and NaN at the step that draws that example,
as when a run diverges. Before the fix such a run ended `completed`, showed the loss as
0.0000 (Trainer's NaN filter), and saved and charged checkpoints of NaN weights.
"""
from __future__ import annotations

import glob
import json
import math
import re
import sqlite3
from pathlib import Path

import grpc
import pytest
from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from tests.fixtures.datasets import sft_conversations
from tests.fixtures.plugin import EventRecorder, engine_config
from tests.fixtures.tiny_models import make_tiny_llama

from ..daemon.helpers import create_request, rpc_error, run_task, sft_params, state_name

POISON = "§"
QUOTA = 50
RUN = dict(per_device_train_batch_size=1, gradient_accumulation_steps=1, max_seq_length=64, learning_rate=1e-3,
           num_train_epochs=1, save_steps=2, logging_steps=3, seed=42)
SENTENCE = re.compile(r"^loss is NaN at step (\d+): .*learning_rate.*", re.S)


def _poisoned(base: Path) -> tuple[Path, Path]:
    """(model dir, data file): finite weights, one example that makes the loss NaN."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    model = make_tiny_llama(base / "poisoned-model")
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    token = tokenizer.encode(POISON, add_special_tokens=False)[-1]
    conversations = sft_conversations(24)
    assert all(token not in tokenizer.apply_chat_template(c, tokenize=True, return_dict=False)
               for c in conversations)
    conversations[10][-2]["content"] += " " + POISON
    data = base / "poisoned.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations))
    weights = load_file(str(model / "model.safetensors"))
    embed = weights["model.embed_tokens.weight"]
    embed[:, 0] = 0
    embed[token] = 0
    embed[token, 0] = 1.0
    weights["model.layers.0.self_attn.q_proj.weight"][:, 0] = 1e38  # finite: max float32 is 3.4e38
    assert all(bool(torch.isfinite(t).all()) for t in weights.values())
    save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})
    return model, data


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory) -> tuple[Path, Path]:
    return _poisoned(tmp_path_factory.mktemp("nonfinite"))


@pytest.fixture(scope="module")
def diverged(tmp_path_factory, roots, poisoned):
    """A task whose loss becomes NaN mid-run; yields (daemon, task id, task, NaN step, output dir)."""
    from tests.support.daemon import Daemon

    d = Daemon(tmp_path_factory.mktemp("nonfinite-modxd") / "state", [roots], quota=QUOTA).start()
    try:
        model, data = poisoned
        out = tmp_path_factory.mktemp("nonfinite-out") / "o"
        task_id, task = run_task(d, create_request(**sft_params(model, data, out, **RUN)))
        match = SENTENCE.match(task.state_reason)
        yield d, task_id, task, int(match.group(1)) if match else None, out
    finally:
        d.kill()


def test_a_loss_that_becomes_nan_fails_the_task_at_that_step(diverged) -> None:
    d, task_id, task, step, out = diverged
    assert state_name(task.state) == "failed", (state_name(task.state), task.state_reason)
    assert step is not None, task.state_reason
    assert step >= 3, "the NaN example must come after the first saves for this test to mean anything"
    assert step % RUN["logging_steps"] != 0 and step != 1, "checked at every step, not only at logging steps"
    assert "check the training data" in task.state_reason and "model weights" in task.state_reason


def test_nothing_is_saved_or_charged_after_the_nan_step(diverged) -> None:
    d, task_id, task, step, out = diverged
    records = d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id, include_deleted=True)).checkpoints
    assert [c.step for c in records] == list(range(RUN["save_steps"], step, RUN["save_steps"]))
    on_disk = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert on_disk == [f"checkpoint-{c.step}" for c in records], "a checkpoint at or after the NaN step"
    with sqlite3.connect(d.state_dir / "modx.db") as db:
        debits = db.execute("SELECT checkpoint_id FROM quota_ledger WHERE kind = 'checkpoint' AND task_id = ?",
                            (task_id,)).fetchall()
        assert sorted(r[0] for r in debits) == sorted(c.id for c in records)
    assert d.system.GetQuota(system_pb2.GetQuotaRequest()).balance == QUOTA - len(records)


def test_nan_is_never_shown_as_a_number(diverged) -> None:
    d, task_id, task, step, out = diverged
    points = d.training.ListMetrics(T.ListMetricsRequest(task_id=task_id)).points
    losses = [(p.step, p.loss) for p in points if p.HasField("loss")]
    assert losses and all(math.isfinite(v) and v > 0 for _, v in losses), losses
    assert all(s < step for s, _ in losses), "a loss was shown for the NaN step or after it"
    for p in points:
        for name in ("perplexity", "grad_norm", "learning_rate"):
            assert not p.HasField(name) or math.isfinite(getattr(p, name))
    assert task.HasField("last_loss") and task.last_loss > 0
    for args in (("train", "metrics", task_id), ("train", "show", task_id), ("train", "watch", task_id),
                 ("train", "checkpoints", task_id)):
        text = d.cli(*args, check=False).stdout
        assert "0.0000" not in text and not re.findall(r"(?i)\bnan\b(?! at step)", text), (args, text)
    # TensorBoard gets the same numbers: nothing at the NaN step, never a 0.0 or NaN loss
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = glob.glob(str(out / "runs" / "*"))
    assert runs, "no TensorBoard run"
    scalars = []
    for run in runs:
        acc = EventAccumulator(run)
        acc.Reload()
        if "train/loss" in acc.Tags()["scalars"]:
            scalars += [(s.step, s.value) for s in acc.Scalars("train/loss")]
    assert scalars and all(math.isfinite(v) and v > 0 and s < step for s, v in scalars), scalars


def test_resume_from_a_checkpoint_with_nan_weights_is_refused(diverged) -> None:
    from safetensors.torch import load_file, save_file

    d, task_id, task, step, out = diverged
    records = d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    latest, earlier = records[-1], records[0]
    weights_path = Path(latest.path) / "adapter_model.safetensors"
    weights = load_file(str(weights_path))
    name = sorted(weights)[-1]
    weights[name][0, 0] = float("nan")
    save_file(weights, str(weights_path), metadata={"format": "pt"})
    for request in (T.ResumeTaskRequest(task_id=task_id),
                    T.ResumeTaskRequest(task_id=task_id, checkpoint=latest.id)):
        err = rpc_error(lambda: d.training.ResumeTask(request))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
        assert f"step {latest.step}" in err.details() and "NaN" in err.details() and name in err.details(), \
            err.details()
        assert state_name(d.training.GetTask(T.GetTaskRequest(task_id=task_id)).task.state) == "failed"
    # an earlier, finite checkpoint still resumes (and the poisoned example fails it again, with the sentence)
    resumed = d.training.ResumeTask(T.ResumeTaskRequest(task_id=task_id, checkpoint=earlier.id))
    assert resumed.checkpoint.id == earlier.id


def test_the_worker_refuses_a_nan_checkpoint_before_training(poisoned, tmp_path) -> None:
    """The daemon checks only what is cheap to read; the worker checks every checkpoint it resumes."""
    from safetensors.torch import load_file, save_file

    from modxd.engine.models import EngineError
    from modxd.engine.train import run_training

    model, data = poisoned
    good = make_tiny_llama(tmp_path / "good")
    first = EventRecorder()
    run_training(engine_config(good, data, tmp_path / "a", max_samples=4, use_lora=False), first, lambda: None)
    checkpoint = Path(first.of("checkpoint")[0]["path"])
    weights = load_file(str(checkpoint / "model.safetensors"))
    weights["lm_head.weight"][1, 2] = float("inf")
    save_file(weights, str(checkpoint / "model.safetensors"), metadata={"format": "pt"})
    events = EventRecorder()
    with pytest.raises(EngineError, match=r"resume_from_checkpoint .*infinite.*lm_head\.weight"):
        run_training(engine_config(good, data, tmp_path / "b", use_lora=False, resume_from_checkpoint=str(checkpoint)),
                     events, lambda: None)
    assert not events.of("metrics") and not events.of("checkpoint")


def test_a_base_model_with_nan_weights_is_refused_at_start(make_daemon, sft_jsonl, tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    model = make_tiny_llama(tmp_path / "nan-model")
    weights = load_file(str(model / "model.safetensors"))
    weights["model.layers.1.mlp.down_proj.weight"][3, 4] = float("nan")
    save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})
    d = make_daemon(quota=5)
    task_id, task = run_task(d, create_request(**sft_params(model, sft_jsonl, tmp_path / "o", **RUN)))
    assert state_name(task.state) == "failed"
    assert str(model) in task.state_reason and "model.layers.1.mlp.down_proj.weight" in task.state_reason
    assert "NaN" in task.state_reason, task.state_reason
    assert not d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert not d.training.ListMetrics(T.ListMetricsRequest(task_id=task_id)).points
    assert d.system.GetQuota(system_pb2.GetQuotaRequest()).balance == 5


def test_a_distributed_run_fails_at_the_nan_step_on_every_rank(make_daemon, poisoned, tmp_path) -> None:
    """Two ranks on the CPU: only one rank draws the poisoned example, yet both stop at that step."""
    model, data = poisoned
    d = make_daemon(quota=QUOTA)
    task_id, task = run_task(d, create_request(**sft_params(model, data, tmp_path / "o", devices=2, **RUN)),
                             timeout=600)
    assert state_name(task.state) == "failed", task.state_reason
    match = re.search(r"loss is NaN at step (\d+): ", task.state_reason)
    assert match, task.state_reason
    step = int(match.group(1))
    records = d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id, include_deleted=True)).checkpoints
    assert all(c.step < step for c in records)
    assert sorted(p.name for p in (tmp_path / "o" / "checkpoints").iterdir()) == [
        f"checkpoint-{c.step}" for c in records]
    assert d.system.GetQuota(system_pb2.GetQuotaRequest()).balance == QUOTA - len(records)
    points = d.training.ListMetrics(T.ListMetricsRequest(task_id=task_id)).points
    assert all(math.isfinite(p.loss) and p.loss > 0 and p.step < step for p in points if p.HasField("loss"))
