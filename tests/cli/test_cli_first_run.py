"""modxctl's first-run tables (data report, estimate, settings, did it learn) against a fake daemon,
and --json giving the RPC messages."""
from __future__ import annotations

import json
from concurrent import futures
from typing import Any

import grpc
import pytest
from click.testing import CliRunner

from modx.v1 import common_pb2, training_pb2, training_pb2_grpc
from modxctl.main import cli

T = training_pb2
REPORT = T.DataReport(
    field="train_file", path="/data/chats.jsonl", max_seq_length=128, format="messages",
    format_counts={"messages": 34}, examples=34, total_tokens=2400, trainable_tokens=700, kept_tokens=2300,
    kept_trainable_tokens=650, truncated_tokens_lost=100, truncated_trainable_tokens_lost=50,
    lengths=T.LengthDistribution(count=34, total_tokens=2400, min_tokens=20, p50_tokens=60, p90_tokens=120,
                                 p99_tokens=190, max_tokens=200, mean_tokens=70.6,
                                 histogram=[T.HistogramBin(low_tokens=0, high_tokens=16, count=0),
                                            T.HistogramBin(low_tokens=16, high_tokens=32, count=30),
                                            T.HistogramBin(low_tokens=128, high_tokens=0, count=4)]),
    findings=[T.DataFinding(code="duplicate", count=1, lines=[T.DataLine(line=1, value=1,
                                                                         detail="repeated 1 more time(s): line 33")]),
              T.DataFinding(code="truncated", count=4, lines=[T.DataLine(line=7, value=72, detail="200 tokens"),
                                                              T.DataLine(line=9, value=10, detail="138 tokens")])],
    warnings=[common_pb2.Warning(code="duplicate_examples", message="1 example repeats line 1")])
RUN = T.RunEstimate(examples=34, epochs=3, steps_per_epoch=9, total_steps=27, micro_batches=27, tokens_per_epoch=2300,
                    trainable_tokens_per_epoch=650, total_tokens=6900, training_seconds=95.0, startup_seconds=12.0,
                    total_seconds=107.0, peak_memory_bytes=3 * 2**30, memory_kind=T.RunEstimate.MEMORY_KIND_HOST_RSS,
                    calibrated=True, memory_capacity_bytes=8 * 2**30, memory_fits=True)
SETTINGS = [T.ResolvedSetting(key="num_train_epochs", value=common_pb2.ParamValue(int_value=3),
                              source=T.ResolvedSetting.SOURCE_AUTO, reason="34 examples: 3 epochs"),
            T.ResolvedSetting(key="max_seq_length", value=common_pb2.ParamValue(int_value=128),
                              source=T.ResolvedSetting.SOURCE_EXPLICIT),
            T.ResolvedSetting(key="lora_r", value=common_pb2.ParamValue(int_value=16),
                              source=T.ResolvedSetting.SOURCE_DEFAULT)]


def _task(**kw: Any) -> T.Task:
    return T.Task(id="t1", type=common_pb2.TASK_TYPE_SFT, state=common_pb2.TASK_STATE_COMPLETED, template="default-sft",
                  quota_estimate=T.QuotaEstimate(num_examples=34, steps_per_epoch=9, total_steps=27, checkpoints=1,
                                                 balance=10, fits=True, run=RUN),
                  train_data=REPORT, settings=SETTINGS, **kw)


class FakeTraining(training_pb2_grpc.TrainingServiceServicer):
    def __init__(self) -> None:
        self.requests: list[Any] = []

    def CreateTask(self, request, context):
        self.requests.append(request)
        return T.CreateTaskResponse(task=_task(), warnings=list(REPORT.warnings))

    def EstimateQuota(self, request, context):
        self.requests.append(request)
        return T.EstimateQuotaResponse(estimate=_task().quota_estimate, train_data=REPORT, settings=SETTINGS)

    def GetTask(self, request, context):
        learning = T.LearningCheck(data="train_slice", examples=32, base_loss=6.48, final_loss=5.95,
                                   relative_improvement=0.08, verdict=T.LearningCheck.VERDICT_LEARNED_LITTLE,
                                   sentence="it learned little: the loss fell only 8%; try more epochs",
                                   advice=["more epochs (--set num_train_epochs=6; now 3)"])
        checks = [T.EstimateCheck(quantity="training_seconds", estimated=95, actual=100, relative_error=-0.05,
                                  target=0.3, within_target=True, sentence="..."),
                  T.EstimateCheck(quantity="peak_memory_bytes", estimated=3 * 2**30, actual=2 * 2**30,
                                  relative_error=0.5, target=0.25, within_target=False, sentence="...")]
        return T.GetTaskResponse(task=_task(learning=learning, estimate_checks=checks))


@pytest.fixture
def fake(tmp_path: Any):
    servicer = FakeTraining()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    training_pb2_grpc.add_TrainingServiceServicer_to_server(servicer, server)
    address = f"unix://{tmp_path}/modxd.sock"
    server.add_insecure_port(address)
    server.start()
    yield address, servicer
    server.stop(None)


def _cli(address: str, *args: str):
    return CliRunner().invoke(cli, ["--address", address, *args], env={"MODX_TOKEN": "", "MODX_TOKEN_FILE": ""},
                              catch_exceptions=False)


def _lines_with(text: str, *words: str) -> list[str]:
    return [line for line in text.splitlines() if all(w in line for w in words)]


def test_create_prints_the_report_estimate_and_settings(fake, tmp_path) -> None:
    address, _ = fake
    result = _cli(address, "train", "create", "--type", "sft", "--train-file", str(tmp_path / "d.jsonl"),
                  "--model-dir", str(tmp_path), "--output-dir", str(tmp_path / "o"), "--validate-only")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "data report (train_file):" in out
    assert _lines_with(out, "examples:", "34 (messages 34)")
    assert _lines_with(out, "tokens per example:", "median 60", "p99 190", "max 200")
    assert _lines_with(out, "cut by max_seq_length:", "100 tokens", "50 of them")
    assert _lines_with(out, "16-31", "30", "#" * 30)  # the histogram: the fullest bin is the longest bar
    assert _lines_with(out, ">= 128", "4")
    assert _lines_with(out, "truncated", "4 (12%)", "7, 9", "200 tokens")
    assert _lines_with(out, "steps:", "27 (9 per epoch x 3 epochs)")
    assert _lines_with(out, "time:", "about 1m47s", "training 1m35s")
    assert _lines_with(out, "peak RSS:", "3.0 GiB", "8.0 GiB", "fits")
    assert _lines_with(out, "num_train_epochs", "3", "auto", "34 examples: 3 epochs")
    assert _lines_with(out, "max_seq_length", "128", "--set")
    assert not _lines_with(out, "lora_r")  # defaults are not listed at create
    assert "1 example repeats line 1" in result.stderr or "1 example repeats line 1" in out


def test_estimate_asks_for_a_calibration_and_prints_the_tables(fake) -> None:
    address, servicer = fake
    result = _cli(address, "train", "estimate", "t1", "--calibrate")
    assert result.exit_code == 0, result.output
    assert servicer.requests[-1].calibrate and servicer.requests[-1].task_id == "t1"
    assert "data report (train_file):" in result.stdout and _lines_with(result.stdout, "steps:", "27")
    uncalibrated = _cli(address, "train", "estimate", "t1")
    assert not servicer.requests[-1].calibrate and uncalibrated.exit_code == 0


def test_show_says_whether_it_learned_and_the_estimate_next_to_the_actual(fake) -> None:
    address, _ = fake
    out = _cli(address, "train", "show", "t1").stdout
    assert "did it learn: learned little" in out and "it learned little: the loss fell only 8%" in out
    assert _lines_with(out, "training seconds", "1m35s", "1m40s", "-5%", "yes")
    assert _lines_with(out, "peak memory bytes", "3.0 GiB", "2.0 GiB", "+50%", "NO")
    assert _lines_with(out, "num_train_epochs", "auto")


def test_json_gives_the_rpc_messages(fake) -> None:
    address, _ = fake
    shown = json.loads(_cli(address, "--json", "train", "show", "t1").stdout)
    task = shown["task"]
    assert task["learning"]["verdict"] == "VERDICT_LEARNED_LITTLE"
    assert task["train_data"]["lengths"]["p50_tokens"] == "60"  # int64 as JSON strings (proto3 JSON)
    assert task["quota_estimate"]["run"]["memory_kind"] == "MEMORY_KIND_HOST_RSS"
    assert task["settings"][0] == {"key": "num_train_epochs", "value": {"int_value": "3"}, "source": "SOURCE_AUTO",
                                   "reason": "34 examples: 3 epochs"}
    estimated = json.loads(_cli(address, "--json", "train", "estimate", "t1").stdout)
    assert estimated["train_data"]["findings"][0]["code"] == "duplicate"
