"""A first run that explains itself, through the daemon: the data report and its warnings at create,
the resolved settings, the run estimate, and after the run the learning check and the estimate next
to the actual (issue 19)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from modx.v1 import common_pb2 as C
from modx.v1 import training_pb2 as T

from tests.fixtures.datasets import write_sft_jsonl

from .helpers import TERMINAL, create_request, sft_params, wait_for_state

SOURCE = T.ResolvedSetting


def _data_with_problems(path: Path) -> Path:
    """The 32 learnable examples, then a copy of the first and an example whose answer is 'ok'."""
    write_sft_jsonl(path, n=32, seed=0)
    lines = path.read_text().splitlines()
    extra = [lines[0], json.dumps({"messages": [{"role": "user", "content": "Fine?"},
                                                {"role": "assistant", "content": "ok"}]})]
    path.write_text("\n".join(lines + extra) + "\n")
    return path


def test_validate_only_returns_the_data_report_and_its_warnings(daemon, tiny_llama_dir, tmp_path) -> None:
    data = _data_with_problems(tmp_path / "data.jsonl")
    req = create_request(**sft_params(tiny_llama_dir, data, tmp_path / "out", max_seq_length=128))
    req.validate_only = True
    resp = daemon.training.CreateTask(req)
    report = resp.task.train_data
    assert report.field == "train_file" and report.examples == 34 and report.format == "messages"
    assert report.max_seq_length == 128 and report.lengths.count == 34
    assert report.lengths.min_tokens <= report.lengths.p50_tokens <= report.lengths.max_tokens
    assert sum(b.count for b in report.lengths.histogram) == 34
    assert 0 < report.trainable_tokens < report.total_tokens
    duplicate = next(f for f in report.findings if f.code == "duplicate")
    assert duplicate.count == 1 and duplicate.lines[0].line == 1 and "line 33" in duplicate.lines[0].detail
    codes = [w.code for w in resp.warnings]
    assert "duplicate_examples" in codes  # in the create response, not only in the log
    assert [w.code for w in report.warnings] == [c for c in codes if c in {w.code for w in report.warnings}]
    assert not resp.task.HasField("eval_data")
    # the settings: what the request named is explicit, the rest the type's defaults
    sources = {s.key: s.source for s in resp.task.settings}
    assert sources["max_seq_length"] == sources["train_file"] == SOURCE.SOURCE_EXPLICIT
    assert sources["learning_rate"] == sources["num_train_epochs"] == SOURCE.SOURCE_DEFAULT
    # the run estimate: steps and tokens now; time only after a calibration
    run = resp.task.quota_estimate.run
    assert run.examples == 34 and run.total_steps == resp.task.quota_estimate.total_steps
    assert run.tokens_per_epoch == report.kept_tokens and run.total_tokens == run.tokens_per_epoch * run.epochs
    assert not run.calibrated and not run.HasField("training_seconds")
    assert run.memory_kind == T.RunEstimate.MEMORY_KIND_HOST_RSS and run.peak_memory_bytes > 0
    assert run.memory_fits and run.memory_capacity_bytes > 0
    assert any("--calibrate" in line for line in run.explanation)


def test_estimate_quota_serves_the_reports_settings_and_run(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    req = T.EstimateQuotaRequest(type=create_request().type)
    for key, value in sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out", lora_r=4).items():
        req.params[key].string_value = str(value)
    resp = daemon.training.EstimateQuota(req)
    assert resp.train_data.examples == 32 and resp.estimate.run.examples == 32
    assert {s.key: s.source for s in resp.settings}["lora_r"] == SOURCE.SOURCE_EXPLICIT


def test_after_the_run_the_task_says_whether_it_learned(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    params = sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out", learning_rate=1e-2, num_train_epochs=3,
                        per_device_train_batch_size=4, lora_r=8, gradient_accumulation_steps=1,
                        lora_target_modules="all-linear", save_strategy="no", max_seq_length=128)
    # the calibration path through the API: timed once in a child process, then served from the cache
    estimate = T.EstimateQuotaRequest(type=create_request().type, calibrate=True)
    for key, value in params.items():
        estimate.params[key].string_value = str(value)
    first = daemon.training.EstimateQuota(estimate).estimate.run
    assert first.calibrated and not first.calibration_cached and first.training_seconds > 0
    assert first.HasField("calibration_time") and first.total_seconds >= first.training_seconds
    again = daemon.training.EstimateQuota(estimate).estimate.run
    assert again.calibration_cached and again.training_seconds == first.training_seconds
    req = create_request(**params)
    created = daemon.training.CreateTask(req).task
    assert created.quota_estimate.run.calibrated  # create reads the cache: no calibration of its own
    daemon.training.StartTask(T.StartTaskRequest(task_id=created.id))
    task_id = created.id
    wait_for_state(daemon, task_id, TERMINAL)
    task = daemon.training.GetTask(T.GetTaskRequest(task_id=task_id)).task
    assert task.state == C.TASK_STATE_COMPLETED, task.state_reason
    assert task.learning.verdict == T.LearningCheck.VERDICT_LEARNED, task.learning.sentence
    assert task.learning.data == "train_slice" and task.learning.final_loss < task.learning.base_loss
    assert task.learning.sentence.startswith("it learned")
    # the calibrated estimate next to the measured time and peak
    checks = {c.quantity: c for c in task.estimate_checks}
    assert set(checks) == {"training_seconds", "peak_memory_bytes"}
    for check in checks.values():
        assert check.actual > 0 and check.estimated > 0
        assert check.relative_error == pytest.approx((check.estimated - check.actual) / check.actual)
        assert check.within_target == (abs(check.relative_error) <= check.target)
    assert task.train_data.examples == 32
