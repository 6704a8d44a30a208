"""Evaluations of preference tasks (dpo, orpo): beside the composite, each candidate's preference
accuracy, mean margin and pair count on the held-out pairs, against the reference it was trained
with; in-process (as the worker runs) and through the daemon (EvalService)."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest
from modx.v1 import common_pb2 as C
from modx.v1 import eval_pb2 as E
from modx.v1 import training_pb2 as T

from tests.daemon.helpers import create_request, run_task, state_name
from tests.evaluate.conftest import base_candidate, candidate, run_eval, task_params
from tests.fixtures.plugin import EventRecorder, engine_config
from tests.fixtures.preference import write_pairs

RUN = dict(learning_rate=1e-2, save_strategy="steps", save_steps=2, num_train_epochs=1, eval_strategy="steps",
           eval_steps=4)


def _train(tiny_llama_dir: Path, work: Path, task: str, fmt: str, **extra: object) -> tuple[Path, dict, dict]:
    """A 4-step run (16 pairs, batch 4) saved at steps 2 and 4; (its dir, its last eval point, its params)."""
    from modxd.engine.preference import run_preference

    train = write_pairs(work / "train.jsonl", 16, fmt=fmt)
    evals = write_pairs(work / "eval.jsonl", 4, seed=9, fmt=fmt)
    rec = EventRecorder()
    config = engine_config(tiny_llama_dir, train, work / "out", task_type=task, eval_file=str(evals),
                           **{**RUN, **extra})
    result = run_preference(config, rec, lambda *_a: None)
    assert result["outcome"] == "completed" and result["final_step"] == 4
    params = task_params(tiny_llama_dir, train, work / "out", eval_file=str(evals), **extra)
    return work / "out", rec.eval_metrics[-1], params


@pytest.mark.parametrize("task,fmt", [("dpo", "conversational"), ("orpo", "standard")])
def test_scores_carry_preference_accuracy_and_margin(tmp_path: Path, tiny_llama_dir: Path, task: str,
                                                     fmt: str) -> None:
    extra = {"orpo_lambda": 0.5} if task == "orpo" else {}
    out, point, params = _train(tiny_llama_dir, tmp_path, task, fmt, **extra)
    result, events = run_eval(task, params, [base_candidate(tiny_llama_dir), candidate(out, 2, True),
                                             candidate(out, 4, True)], samples=0)
    scores = {s["checkpoint_id"]: s for s in result["scores"]}
    for s in scores.values():
        assert s["preference_pairs"] == 4 and 0 <= s["preference_accuracy"] <= 1
        assert math.isfinite(s["preference_margin"]) and math.isfinite(s["composite"])
    last = scores["ckpt-4"]
    # the checkpoint against its reference: the numbers its run's own evaluation logged at that step
    assert last["preference_accuracy"] == pytest.approx(point["eval_reward_accuracy"])
    # orpo: TRL's experimental ORPOTrainer tokenizes answers its own way (an eos of its own), so its per-token
    # means differ (here about 14% on standard pairs); every candidate is scored the same way, which the
    # comparison needs (tests/engine/test_preference_eval.py has the conversational case at 2%)
    assert last["preference_margin"] == pytest.approx(point["eval_reward_margin"],
                                                      rel=0.25 if task == "orpo" else 1e-3, abs=1e-5)
    assert last["preference_margin"] > scores["base"]["preference_margin"]
    if task == "dpo":  # the base model is every dpo run's start point: no margin against itself
        assert scores["base"]["preference_margin"] == 0.0 and scores["base"]["preference_accuracy"] == 0.0
    # conversational pairs are scored (composite) as conversations, with generated answers; standard ones as text
    assert result["conversations"] == (fmt == "conversational")
    assert (last.get("semantic_similarity") is not None) == (fmt == "conversational")
    sent = [e for e in events if e["type"] == "score"]
    assert {e["checkpoint_id"]: e["preference_pairs"] for e in sent} == {"base": 4, "ckpt-2": 4, "ckpt-4": 4}
    report_dir = Path(result["report_path"]).parent
    rows = list(csv.DictReader(io.StringIO((report_dir / "scores.csv").read_text())))
    assert {r["checkpoint_id"]: float(r["preference_accuracy"]) for r in rows}["ckpt-4"] == last["preference_accuracy"]
    assert "| preference accuracy | mean margin | pairs |" in (report_dir / "report.md").read_text()


def test_a_dpo_task_is_evaluated_through_the_daemon(daemon, tiny_llama_dir: Path, tmp_path: Path) -> None:
    train = write_pairs(tmp_path / "train.jsonl", 16, fmt="standard")
    req = create_request("dpo", train_file=train, model_dir=tiny_llama_dir, output_dir=tmp_path / "out",
                         eval_split_ratio=0.25, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                         learning_rate=1e-2, save_steps=1, max_seq_length=128, fp16=False)
    task_id, task = run_task(daemon, req)
    assert state_name(task.state) == "completed", (task.state_reason, list(task.failure_log_tail))
    created = daemon.evals.CreateEvaluation(E.CreateEvaluationRequest(task_id=task_id, checkpoints=["all"],
                                                                      include_base=True))
    evaluation = created.evaluation
    for response in daemon.evals.WatchEvaluation(E.WatchEvaluationRequest(evaluation_id=evaluation.id), timeout=600):
        if response.event.HasField("state") and response.event.state in (C.JOB_STATE_COMPLETED,
                                                                         C.JOB_STATE_FAILED):
            break
    evaluation = daemon.evals.GetEvaluation(E.GetEvaluationRequest(evaluation_id=evaluation.id)).evaluation
    assert evaluation.state == C.JOB_STATE_COMPLETED, evaluation.state_reason
    ckpts = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert len(evaluation.scores) == len(ckpts) + 1
    for score in evaluation.scores:  # the held-out split: 4 of the 16 pairs
        assert score.preference_pairs == 4 and score.HasField("preference_accuracy"), score
        assert math.isfinite(score.preference_margin)
    by_id = {s.checkpoint_id: s for s in evaluation.scores}
    assert by_id["base"].preference_margin == 0.0
    assert by_id[ckpts[-1].id].preference_margin > 0
