"""Unit tests of modxctl: pure helpers, plus commands against an in-process fake daemon.

The fake servicers return canned messages and record what they received, so
these tests check the client's side of the contract (flags -> request fields,
response -> output, exit statuses, stream reconnection) without modxd. The
real daemon is exercised by the integration tests.
"""
from __future__ import annotations

import json
import os
from concurrent import futures
from typing import Any

import grpc
import pytest
from click.testing import CliRunner
from google.protobuf import timestamp_pb2

from modx.v1 import (
    common_pb2,
    eval_pb2,
    eval_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    package_pb2,
    package_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    training_pb2,
    training_pb2_grpc,
)
from modxctl import connection, output, plots
from modxctl.chat import sampling_message, set_sampling
from modxctl.main import cli
from modxctl.package import parse_quant
from modxctl.paging import all_pages
from modxctl.templates import param_map, parse_set
from modxctl.watch import TaskMonitor, event_line, fraction_done, progress_text

TS = timestamp_pb2.Timestamp(seconds=1_700_000_000)


# ================================================================ pure parts


class TestParseSet:
    def test_key_value(self) -> None:
        assert parse_set("learning_rate=1e-4") == ("learning_rate", "1e-4")

    def test_only_first_equals_splits(self) -> None:
        assert parse_set("name=a=b") == ("name", "a=b")

    def test_empty_value_allowed(self) -> None:
        assert parse_set("eval_file=") == ("eval_file", "")

    @pytest.mark.parametrize("bad", ["lora_r", "=32", " =1", "lora r=3"])
    def test_rejects(self, bad: str) -> None:
        import click

        with pytest.raises(click.BadParameter):
            parse_set(bad)

    def test_values_go_as_strings(self) -> None:
        pm = param_map({"lora_r": "32", "use_lora": "true"})
        assert pm["lora_r"].WhichOneof("kind") == "string_value"
        assert pm["lora_r"].string_value == "32"


class TestFormatting:
    @pytest.mark.parametrize(
        "seconds,text",
        [(None, "--"), (float("nan"), "--"), (0, "0s"), (42.4, "42s"), (200, "3m20s"), (3720, "1h02m"), (183600, "2d03h"), (-5, "0s")],
    )
    def test_eta(self, seconds: float | None, text: str) -> None:
        assert output.fmt_duration(seconds) == text

    @pytest.mark.parametrize(
        "n,text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**2, "5.0 MiB"), (3 * 1024**3 + 1, "3.0 GiB"), (None, "-")]
    )
    def test_bytes(self, n: int | None, text: str) -> None:
        assert output.fmt_bytes(n) == text

    def test_enum_labels(self) -> None:
        assert output.enum_label(common_pb2.TaskState, common_pb2.TASK_STATE_RUNNING) == "running"
        assert output.enum_label(common_pb2.TaskType, common_pb2.TASK_TYPE_SFT) == "sft"
        assert output.enum_label(common_pb2.TaskType, 0) == "-"
        assert output.enum_value(common_pb2.TaskState, "Completed") == common_pb2.TASK_STATE_COMPLETED
        assert output.quant_label(package_pb2.QuantType, package_pb2.QUANT_TYPE_Q4_K_M) == "Q4_K_M"

    def test_unset_timestamp(self) -> None:
        assert output.fmt_time(timestamp_pb2.Timestamp()) == "-"
        assert output.fmt_time(TS).startswith("2023-11-1")

    def test_param_values(self) -> None:
        assert output.fmt_param(common_pb2.ParamValue(bool_value=True)) == "true"
        assert output.fmt_param(common_pb2.ParamValue(double_value=2e-4)) == "0.0002"
        assert output.fmt_param(common_pb2.ParamValue(list_value=common_pb2.StringList(values=["q_proj", "v_proj"]))) == "q_proj,v_proj"
        assert output.fmt_param(common_pb2.ParamValue()) == "-"

    def test_table_aligns_wide_characters(self) -> None:
        text = output.table(["KEY", "LABEL", "N"], [["lr", "学习率", "1"], ["seed", "seed", "10"]], align="llr")
        lines = text.splitlines()
        assert [output.display_width(line) for line in lines] == [output.display_width(lines[0])] * 3
        assert lines[2].endswith("10") and lines[1].endswith(" 1")


class TestJson:
    def test_proto_names_and_defaults(self) -> None:
        task = training_pb2.Task(id="t1", type=common_pb2.TASK_TYPE_SFT, state=common_pb2.TASK_STATE_CREATED)
        data = output.to_dict(training_pb2.GetTaskResponse(task=task))
        t = data["task"]
        assert t["id"] == "t1"
        assert t["type"] == "TASK_TYPE_SFT"
        assert t["current_step"] == "0"  # int64 as a string, proto3 JSON
        assert t["checkpoints_saved"] == 0  # default-valued fields are printed
        assert "last_loss" not in t  # unset optional stays absent

    def test_stream_objects_are_one_line(self) -> None:
        ev = training_pb2.WatchTaskResponse(event=training_pb2.TaskEvent(task_id="t", seq=3, log=common_pb2.LogLine(message="a\nb")))
        line = output.to_json(ev, compact=True)
        assert "\n" not in line
        assert json.loads(line)["event"]["log"]["message"] == "a\nb"


class TestSparkline:
    def test_falling_series(self) -> None:
        line = plots.sparkline([4, 3, 2, 1])
        assert line[0] == "█" and line[-1] == "▁" and len(line) == 4

    def test_flat_series_is_mid_height(self) -> None:
        assert set(plots.sparkline([2.0] * 5)) == {"▄"}

    def test_skips_missing_and_nonfinite(self) -> None:
        assert len(plots.sparkline([1, None, float("nan"), 2, float("inf")])) == 2

    def test_resamples_to_width(self) -> None:
        line = plots.sparkline(list(range(1000)), width=30)
        assert len(line) == 30 and line[0] == "▁" and line[-1] == "█"

    def test_empty(self) -> None:
        assert plots.sparkline([]) == ""
        assert "no data" in plots.curve_line("loss", [])

    def test_curve_line_shows_last_and_range(self) -> None:
        text = plots.curve_line("loss", [2.0, 1.0, 1.5], 10, ".2f")
        assert "1.50" in text and "min 1.00" in text and "max 2.00" in text


class TestAddress:
    @pytest.mark.parametrize(
        "given,target",
        [
            ("unix:///run/modx/modxd.sock", "unix:///run/modx/modxd.sock"),
            ("unix:/run/modx/modxd.sock", "unix:///run/modx/modxd.sock"),
            ("/run/modx/modxd.sock", "unix:///run/modx/modxd.sock"),
            ("localhost:50051", "localhost:50051"),
            ("10.0.0.5:7000", "10.0.0.5:7000"),
        ],
    )
    def test_normalize(self, given: str, target: str) -> None:
        assert connection.normalize_address(given) == target

    def test_relative_socket_is_resolved_here(self, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        assert connection.normalize_address("unix:modxd.sock") == f"unix://{tmp_path}/modxd.sock"

    def test_default_follows_state_dir(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("MODX_LISTEN", raising=False)
        monkeypatch.setenv("MODX_STATE_DIR", "/srv/modx")
        assert connection.default_address() == "unix:///srv/modx/modxd.sock"

    def test_default_without_state_dir(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
        for var in ("MODX_LISTEN", "MODX_STATE_DIR", "XDG_STATE_HOME"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
        assert connection.default_address() == f"unix://{tmp_path}/.local/state/modx/modxd.sock"


class TestToken:
    def test_env_wins(self, tmp_path: Any) -> None:
        f = tmp_path / "tok"
        f.write_text("from-file\n")
        assert connection.read_token({"MODX_TOKEN": "abc", "MODX_TOKEN_FILE": str(f)}) == "abc"

    def test_file_is_stripped(self, tmp_path: Any) -> None:
        f = tmp_path / "tok"
        f.write_text("  secret \n")
        assert connection.read_token({"MODX_TOKEN_FILE": str(f)}) == "secret"

    def test_none(self) -> None:
        assert connection.read_token({}) is None

    def test_unreadable_file(self, tmp_path: Any) -> None:
        with pytest.raises(connection.CliError):
            connection.read_token({"MODX_TOKEN_FILE": str(tmp_path / "missing")})


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class TestFollow:
    def _ev(self, seq: int) -> training_pb2.WatchTaskResponse:
        return training_pb2.WatchTaskResponse(event=training_pb2.TaskEvent(seq=seq))

    def test_reconnects_after_last_seq_without_duplicates(self) -> None:
        calls: list[int] = []

        def open_call(after: int):
            calls.append(after)
            if len(calls) == 1:
                def first():
                    yield self._ev(1)
                    yield self._ev(2)
                    raise _FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed")
                return first()
            if len(calls) == 2:
                def down():
                    raise _FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect")
                    yield  # pragma: no cover
                return down()
            return iter([self._ev(2), self._ev(3), self._ev(4)])  # a replay overlapping what was seen

        lost: list[str] = []
        seqs = [r.event.seq for r in connection.follow(open_call, lambda r: r.event.seq, 0, on_lost=lost.append, sleep=lambda s: None)]
        assert seqs == [1, 2, 3, 4]
        assert calls == [0, 2, 2]
        assert lost == ["Socket closed"]

    def test_unreachable_at_first_call_fails_at_once(self) -> None:
        def open_call(after: int):
            raise _FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect")
            yield  # pragma: no cover

        with pytest.raises(grpc.RpcError):
            list(connection.follow(open_call, lambda r: r.event.seq, 0, sleep=lambda s: None))

    def test_other_errors_are_not_retried(self) -> None:
        def open_call(after: int):
            yield self._ev(1)
            raise _FakeRpcError(grpc.StatusCode.NOT_FOUND, "no task")

        with pytest.raises(grpc.RpcError):
            list(connection.follow(open_call, lambda r: r.event.seq, 0, connected=True, sleep=lambda s: None))

    def test_error_sentences(self) -> None:
        unreachable = _FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")
        assert connection.describe_rpc_error(unreachable, "unix:///x.sock").startswith("cannot reach modxd at unix:///x.sock: is it running?")
        shutting = _FakeRpcError(grpc.StatusCode.UNAVAILABLE, "modxd is shutting down")
        assert connection.describe_rpc_error(shutting, "a") == "UNAVAILABLE: modxd is shutting down"
        assert connection.describe_rpc_error(_FakeRpcError(grpc.StatusCode.NOT_FOUND, "task x does not exist"), "a") == "NOT_FOUND: task x does not exist"


class TestWatchRendering:
    def test_progress_text(self) -> None:
        m = training_pb2.MetricsPoint(step=120, total_steps=1000, eta_seconds=200, loss=1.23456, learning_rate=1.9e-4)
        text = progress_text(m, with_bar=False)
        assert text.startswith("step 120/1000 (12.0%)")
        assert "ETA 3m20s" in text and "loss 1.2346" in text and "lr 1.90e-04" in text
        assert "█" in progress_text(m, with_bar=True)

    def test_fraction(self) -> None:
        assert fraction_done(5, 10, 0) == 0.5
        assert fraction_done(0, 0, 25.0) == 0.25

    def test_event_lines(self) -> None:
        sc = training_pb2.TaskEvent(time=TS, state_change=training_pb2.StateChange(from_state=3, to_state=5, reason="quota_exhausted"))
        assert event_line(sc).endswith("state: running → stopped (quota_exhausted)")
        ck = training_pb2.TaskEvent(time=TS, checkpoint_saved=training_pb2.Checkpoint(id="c1", step=100, loss=0.5, size_bytes=2048))
        assert "checkpoint saved: step 100, loss 0.5000, 2.0 KiB → c1" in event_line(ck)
        quiet = training_pb2.TaskEvent(time=TS, log=common_pb2.LogLine(level="info", message="hi"))
        assert event_line(quiet, show_logs=False) is None
        loud = training_pb2.TaskEvent(time=TS, log=common_pb2.LogLine(level="error", message="oom"))
        assert "ERROR" in event_line(loud, show_logs=False)

    def test_monitor_plain_lines_and_final_state(self, capsys: pytest.CaptureFixture[str]) -> None:
        mon = TaskMonitor(output.LiveBlock(enabled=False))
        for i, loss in enumerate([2.0, 1.5, 1.0], start=1):
            mon.handle(training_pb2.TaskEvent(seq=i, metrics=training_pb2.MetricsPoint(step=i * 10, total_steps=30, loss=loss, learning_rate=1e-4)))
        mon.handle(training_pb2.TaskEvent(seq=4, state_change=training_pb2.StateChange(from_state=3, to_state=6)))
        mon.finish()
        out = capsys.readouterr().out
        assert out.count("step ") == 3
        assert "running → completed" in out
        assert "loss  █" in out  # final sparkline, highest loss first
        assert mon.final_state == common_pb2.TASK_STATE_COMPLETED and mon.last_seq == 4


class TestChatHelpers:
    def test_set_sampling(self) -> None:
        s: dict[str, Any] = {}
        set_sampling(s, "top-p", "0.9")
        set_sampling(s, "max_new_tokens", "64")
        set_sampling(s, "stop", "###")
        assert s == {"top_p": 0.9, "max_new_tokens": 64, "stop": ["###"]}
        set_sampling(s, "top_p", "-")
        assert "top_p" not in s
        with pytest.raises(ValueError):
            set_sampling(s, "top_k", "many")
        with pytest.raises(ValueError):
            set_sampling(s, "beam", "4")

    def test_only_given_fields_are_set(self) -> None:
        msg = sampling_message({"temperature": 0.0, "stop": ["x"]})
        assert msg.HasField("temperature") and msg.temperature == 0.0
        assert not msg.HasField("top_p")
        assert list(msg.stop) == ["x"]


def test_parse_quant() -> None:
    assert parse_quant("q4_k_m") == package_pb2.QUANT_TYPE_Q4_K_M
    assert parse_quant("Q8-0") == package_pb2.QUANT_TYPE_Q8_0
    assert parse_quant("f16") == package_pb2.QUANT_TYPE_F16
    with pytest.raises(ValueError):
        parse_quant("q9")


# ================================================================ CLI without a daemon


def _run(args: list[str], env: dict[str, str] | None = None, input: str | None = None):
    return CliRunner().invoke(cli, args, env=env, input=input, catch_exceptions=False)


def test_unreachable_address_exits_1_with_a_sentence(tmp_path: Any) -> None:
    addr = f"unix://{tmp_path}/none.sock"
    result = _run(["--address", addr, "--json", "status"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"cannot reach modxd at {addr}: is it running? (start it with: modxd)" in result.stderr


def test_unreachable_tcp(tmp_path: Any) -> None:
    result = _run(["--address", "127.0.0.1:1", "train", "list"])
    assert result.exit_code == 1
    assert "cannot reach modxd at 127.0.0.1:1" in result.stderr


def test_unix_socket_channels_skip_bandwidth_probing_and_still_stream_in_bulk(tmp_path: Any) -> None:
    """No BDP pings for the daemon to answer on the local socket; a fixed large window instead."""
    unix = dict(connection.channel_options("unix:///run/modx/modxd.sock"))
    assert unix["grpc.http2.bdp_probe"] == 0 and unix["grpc.http2.lookahead_bytes"] >= 4 << 20
    assert "grpc.http2.bdp_probe" not in dict(connection.channel_options("gpu-host:50051"))  # TCP sizes its window

    def chunks(request: bytes, context: Any) -> Any:
        for _ in range(int(request)):
            yield b"x" * (1 << 20)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "bulk.Test", {"Chunks": grpc.unary_stream_rpc_method_handler(chunks, bytes, lambda b: b)}),))
    address = f"unix://{tmp_path}/bulk.sock"
    server.add_insecure_port(address)
    server.start()
    try:
        channel = connection.make_channel(address)
        call = channel.unary_stream("/bulk.Test/Chunks", request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
        assert sum(len(m) for m in call(b"48", timeout=60)) == 48 << 20
        channel.close()
    finally:
        server.stop(None)


def test_address_from_environment(tmp_path: Any) -> None:
    result = _run(["status"], env={"MODX_ADDRESS": f"unix:{tmp_path}/env.sock", "MODX_LISTEN": ""})
    assert result.exit_code == 1
    assert f"unix://{tmp_path}/env.sock" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["train", "create", "--type", "sft", "--train-file", "a", "--model-dir", "b", "--output-dir", "c", "--set", "lora_r"],
        ["train", "create", "--type", "sft", "--train-file", "a", "--model-dir", "b"],
        ["train", "create", "--type", "chat", "--train-file", "a", "--model-dir", "b", "--output-dir", "c"],
        ["templates", "save", "x"],
        ["templates", "save", "x", "--type", "sft", "--from-task", "t"],
        ["chat", "t", "--base", "--checkpoint", "3", "-m", "hi"],
        ["package", "create", "t", "--checkpoint", "1", "--quant", "q9"],
        ["--timeout", "-1", "status"],
        ["train", "list", "--state", "sleeping"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = _run(["--address", "unix:///nonexistent.sock"] + args)
    assert result.exit_code == 2, result.output


def test_help_reads(tmp_path: Any) -> None:
    result = _run(["--help"])
    assert result.exit_code == 0
    for name in ("status", "env", "advice", "quota", "params", "templates", "train", "eval", "chat", "package", "models"):
        assert f"  {name} " in result.stdout
    for sub in (["train", "create"], ["train", "watch"], ["chat"], ["package", "create"], ["eval", "run"], ["templates", "save"]):
        r = _run(sub + ["--help"])
        assert r.exit_code == 0 and "Usage:" in r.stdout


class _PagedApp:
    """`App.call` without a channel: the List method is a plain function over ten items."""

    def __init__(self) -> None:
        self.requests: list[eval_pb2.ListEvaluationsRequest] = []

    def call(self, method: Any, request: Any) -> Any:
        self.requests.append(type(request).FromString(request.SerializeToString()))  # as sent
        return method(request)


def _ten_evaluations(request: eval_pb2.ListEvaluationsRequest) -> eval_pb2.ListEvaluationsResponse:
    start = int(request.page.page_token or 0)
    end = min(start + request.page.page_size, 10)
    return eval_pb2.ListEvaluationsResponse(evaluations=[eval_pb2.Evaluation(id=f"e{i}") for i in range(start, end)],
                                            next_page_token=str(end) if end < 10 else "")


class TestAllPages:
    def test_every_page_is_merged(self) -> None:
        app = _PagedApp()
        merged = all_pages(app, _ten_evaluations, eval_pb2.ListEvaluationsRequest(task_id="t1"), "evaluations",
                           page_size=4)
        assert [e.id for e in merged.evaluations] == [f"e{i}" for i in range(10)] and not merged.next_page_token
        assert [r.page.page_token for r in app.requests] == ["", "4", "8"]
        assert all(r.task_id == "t1" and r.page.page_size == 4 for r in app.requests)

    def test_a_limit_asks_for_no_more_and_says_more_remain(self) -> None:
        app = _PagedApp()
        merged = all_pages(app, _ten_evaluations, eval_pb2.ListEvaluationsRequest(), "evaluations", page_size=4,
                           limit=6)
        assert [e.id for e in merged.evaluations] == [f"e{i}" for i in range(6)] and merged.next_page_token == "6"
        assert [r.page.page_size for r in app.requests] == [4, 2]


# ================================================================ CLI against a fake daemon


def _task(task_id: str = "t1", **kw: Any) -> training_pb2.Task:
    base = dict(
        id=task_id,
        type=common_pb2.TASK_TYPE_SFT,
        state=common_pb2.TASK_STATE_CREATED,
        name="demo",
        template="sft-default",
        create_time=TS,
        quota_estimate=training_pb2.QuotaEstimate(num_examples=40, steps_per_epoch=10, total_steps=20, checkpoints=2, balance=100, fits=True, explanation="20 steps, saving every 10"),
    )
    base.update(kw)
    return training_pb2.Task(**base)


class Recorder:
    def __init__(self) -> None:
        self.requests: dict[str, list[Any]] = {}
        self.metadata: list[dict[str, str]] = []
        self.watch_script: list[list[training_pb2.TaskEvent] | str] = []
        self.final_state = common_pb2.TASK_STATE_COMPLETED

    def log(self, name: str, request: Any, context: grpc.ServicerContext) -> None:
        self.requests.setdefault(name, []).append(request)
        self.metadata.append(dict(context.invocation_metadata()))


class FakeSystem(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def GetStatus(self, request, context):
        self.rec.log("GetStatus", request, context)
        return system_pb2.GetStatusResponse(
            version="0.1.0", api_version="v1", start_time=TS, uptime_seconds=3725, state_dir="/srv/modx", listen="unix:///srv/modx/modxd.sock",
            devices=[system_pb2.DeviceSlot(device="cuda:0", task_id="t1"), system_pb2.DeviceSlot(device="cpu")],
            tasks_pending=1, tasks_running=1, tasks_total=4, quota_balance=98, pid=42,
        )

    def GetQuota(self, request, context):
        self.rec.log("GetQuota", request, context)
        entry = system_pb2.QuotaEntry(id=1, time=TS, delta=-1, balance_after=99, kind="checkpoint", task_id="t1", checkpoint_id="c1")
        return system_pb2.GetQuotaResponse(balance=99, consumed=1, granted=100, ledger=[entry])

    def GrantQuota(self, request, context):
        self.rec.log("GrantQuota", request, context)
        return system_pb2.GrantQuotaResponse(balance=99 + request.amount)


class FakeTraining(training_pb2_grpc.TrainingServiceServicer):
    TASKS = [_task(f"t{i}") for i in range(1, 6)]

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def CreateTask(self, request, context):
        self.rec.log("CreateTask", request, context)
        if request.params.get("lora_r") and request.params["lora_r"].string_value == "bad":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "lora_r must be an integer from 1 to 512, got 'bad'")
        warn = common_pb2.Warning(code="quota_low", message="this task needs 2 units and 1 remain")
        return training_pb2.CreateTaskResponse(task=_task("t9"), warnings=[warn])

    def GetTask(self, request, context):
        self.rec.log("GetTask", request, context)
        if request.task_id == "missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "task missing does not exist")
        return training_pb2.GetTaskResponse(
            task=_task(request.task_id, state=self.rec.final_state, best_checkpoint_id="c2", failure_log_tail=["Traceback", "CUDA out of memory"],
                       params={"lora_r": common_pb2.ParamValue(int_value=16)})
        )

    def ListTasks(self, request, context):
        self.rec.log("ListTasks", request, context)
        start = int(request.page.page_token or 0)
        size = request.page.page_size or 2
        page = self.TASKS[start : start + size]
        nxt = str(start + size) if start + size < len(self.TASKS) else ""
        return training_pb2.ListTasksResponse(tasks=page, next_page_token=nxt, total_size=len(self.TASKS))

    def StartTask(self, request, context):
        self.rec.log("StartTask", request, context)
        return training_pb2.StartTaskResponse(task=_task(request.task_id, state=common_pb2.TASK_STATE_PENDING, queue_position=1))

    def WatchTask(self, request, context):
        self.rec.log("WatchTask", request, context)
        script = self.rec.watch_script.pop(0) if self.rec.watch_script else []
        if isinstance(script, tuple):  # ("fail_after", events): the daemon goes away mid-stream
            for ev in script[1]:
                yield training_pb2.WatchTaskResponse(event=ev)
            context.abort(grpc.StatusCode.UNAVAILABLE, "Socket closed")
        for ev in script:
            if ev.seq > request.after_seq or ev.seq == request.after_seq:  # replays one old event on purpose
                if request.kinds and ev.WhichOneof("payload") != "log":
                    continue
                yield training_pb2.WatchTaskResponse(event=ev)

    def ListMetrics(self, request, context):
        self.rec.log("ListMetrics", request, context)
        start = int(request.page.page_token or 0)
        points = [training_pb2.MetricsPoint(step=s, total_steps=30, loss=3.0 / s, learning_rate=1e-4, grad_norm=0.5, time=TS) for s in range(1, 31)]
        page = points[start : start + 20]
        return training_pb2.ListMetricsResponse(points=page, next_page_token="20" if start == 0 else "")

    def ListCheckpoints(self, request, context):
        self.rec.log("ListCheckpoints", request, context)
        return training_pb2.ListCheckpointsResponse(
            checkpoints=[training_pb2.Checkpoint(id="c1", step=10, loss=1.0, size_bytes=1024**2, path="/o/c1"), training_pb2.Checkpoint(id="c2", step=20, loss=0.5, size_bytes=1024**2, path="/o/c2")]
        )

    def EstimateQuota(self, request, context):
        self.rec.log("EstimateQuota", request, context)
        return training_pb2.EstimateQuotaResponse(estimate=training_pb2.QuotaEstimate(checkpoints=1, balance=100, fits=True))

    def SaveTemplate(self, request, context):
        self.rec.log("SaveTemplate", request, context)
        return training_pb2.SaveTemplateResponse(template=training_pb2.Template(name=request.name, type=request.type))

    def GetParamSchema(self, request, context):
        self.rec.log("GetParamSchema", request, context)
        return training_pb2.GetParamSchemaResponse(
            params=[
                training_pb2.ParamSpec(key="train_file", type=training_pb2.PARAM_TYPE_PATH, label_en="Training data file", label_zh="训练数据文件路径", required=True),
                training_pb2.ParamSpec(key="eval_file", type=training_pb2.PARAM_TYPE_PATH, label_en="Evaluation data file", fold_group="optional"),
                training_pb2.ParamSpec(key="resume_from_checkpoint", type=training_pb2.PARAM_TYPE_PATH, label_en="Resume from checkpoint", fold_group="optional"),
                training_pb2.ParamSpec(key="lora_r", type=training_pb2.PARAM_TYPE_INT, default_value=common_pb2.ParamValue(int_value=16), min=1, max=512, label_en="LoRA rank", label_zh="LoRA秩", fold_group="advanced"),
                training_pb2.ParamSpec(
                    key="use_lora", type=training_pb2.PARAM_TYPE_BOOL, label_en="Use LoRA", label_zh="使用LoRA微调", fold_group="advanced",
                    type_defaults=[training_pb2.TypeDefault(type=1, value=common_pb2.ParamValue(bool_value=True)), training_pb2.TypeDefault(type=2, value=common_pb2.ParamValue(bool_value=False))],
                ),
                training_pb2.ParamSpec(key="save_strategy", type=training_pb2.PARAM_TYPE_CHOICE, choices=["steps", "epoch", "no"], default_value=common_pb2.ParamValue(string_value="steps"), fold_group="save", label_en="Save strategy", label_zh="保存策略"),
            ],
            fold_groups=["", "advanced", "save"],
        )


class FakeInference(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def Chat(self, request, context):
        self.rec.log("Chat", request, context)
        for piece in ["Hel", "lo", "!"]:
            yield inference_pb2.ChatResponse(delta=inference_pb2.ChatDelta(text=piece))
        yield inference_pb2.ChatResponse(
            done=inference_pb2.ChatDone(finish_reason=inference_pb2.FINISH_REASON_STOP_TOKEN, prompt_tokens=5, completion_tokens=3, tokens_per_second=30.0, text="Hello!", model_key="t1/c2")
        )


class FakePackages(package_pb2_grpc.PackageServiceServicer):
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def _package(self, state: int) -> package_pb2.Package:
        return package_pb2.Package(
            id="p1", task_id="t1", checkpoint_id="c2", state=state, quant_types=[package_pb2.QUANT_TYPE_Q4_K_M], merge=True, output_dir="/o/packages/p1",
            files=[package_pb2.PackageFile(path="/o/packages/p1/model-Q4_K_M.gguf", kind="model", quant_type=package_pb2.QUANT_TYPE_Q4_K_M, size_bytes=300 * 1024**2, sha256="ab" * 32)],
            verifications=[package_pb2.Verification(tokenizer_match=True, top1_agreement=0.97, max_logit_diff=1.2, mean_logit_diff=0.1, prompts=8, quant_type=package_pb2.QUANT_TYPE_Q4_K_M)],
        )

    def CreatePackage(self, request, context):
        self.rec.log("CreatePackage", request, context)
        return package_pb2.CreatePackageResponse(package=self._package(common_pb2.JOB_STATE_PENDING))

    def WatchPackage(self, request, context):
        self.rec.log("WatchPackage", request, context)
        yield package_pb2.WatchPackageResponse(event=package_pb2.PackageEvent(package_id="p1", seq=1, state=common_pb2.JOB_STATE_RUNNING))
        yield package_pb2.WatchPackageResponse(event=package_pb2.PackageEvent(package_id="p1", seq=2, progress=package_pb2.PackageProgress(phase="quantize", tensors_done=5, tensors_total=10, quant_type=11)))
        yield package_pb2.WatchPackageResponse(event=package_pb2.PackageEvent(package_id="p1", seq=3, state=common_pb2.JOB_STATE_COMPLETED))

    def GetPackage(self, request, context):
        self.rec.log("GetPackage", request, context)
        return package_pb2.GetPackageResponse(package=self._package(common_pb2.JOB_STATE_COMPLETED))

    def ImportGguf(self, request, context):
        self.rec.log("ImportGguf", request, context)
        return package_pb2.ImportGgufResponse(output_dir=request.output_dir, architecture="qwen2", parameters=494_000_000)


class FakeEvals(eval_pb2_grpc.EvalServiceServicer):
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def _evaluation(self, state: int) -> eval_pb2.Evaluation:
        scores = [
            eval_pb2.CheckpointScore(checkpoint_id="c1", label="step 10", step=10, perplexity=9.0, composite=0.4, rank=2),
            eval_pb2.CheckpointScore(checkpoint_id="c2", label="step 20", step=20, perplexity=6.0, composite=0.7, rank=1, is_best=True, coherence=0.8),
        ]
        return eval_pb2.Evaluation(id="e1", task_id="t1", state=state, checkpoint_ids=["c1", "c2"], scores=scores, best_checkpoint_id="c2", verdict="best beats runner-up (p=0.01)")

    def CreateEvaluation(self, request, context):
        self.rec.log("CreateEvaluation", request, context)
        return eval_pb2.CreateEvaluationResponse(evaluation=self._evaluation(common_pb2.JOB_STATE_PENDING))

    def WatchEvaluation(self, request, context):
        self.rec.log("WatchEvaluation", request, context)
        yield eval_pb2.WatchEvaluationResponse(event=eval_pb2.EvalEvent(evaluation_id="e1", seq=1, progress=eval_pb2.EvalProgress(checkpoint_index=0, checkpoint_count=2, example_index=3, example_count=10, checkpoint_id="c1")))
        yield eval_pb2.WatchEvaluationResponse(event=eval_pb2.EvalEvent(evaluation_id="e1", seq=2, state=common_pb2.JOB_STATE_FAILED))

    def GetEvaluation(self, request, context):
        self.rec.log("GetEvaluation", request, context)
        return eval_pb2.GetEvaluationResponse(evaluation=self._evaluation(common_pb2.JOB_STATE_FAILED))


@pytest.fixture
def daemon(tmp_path: Any):
    """A fake modxd on a Unix socket; yields (address, recorder)."""
    rec = Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    system_pb2_grpc.add_SystemServiceServicer_to_server(FakeSystem(rec), server)
    training_pb2_grpc.add_TrainingServiceServicer_to_server(FakeTraining(rec), server)
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(FakeInference(rec), server)
    package_pb2_grpc.add_PackageServiceServicer_to_server(FakePackages(rec), server)
    eval_pb2_grpc.add_EvalServiceServicer_to_server(FakeEvals(rec), server)
    address = f"unix://{tmp_path}/modxd.sock"
    server.add_insecure_port(address)
    server.start()
    yield address, rec
    server.stop(None)


def _cli(address: str, *args: str, env: dict[str, str] | None = None, input: str | None = None):
    base_env = {"MODX_TOKEN": "", "MODX_TOKEN_FILE": ""}
    base_env.update(env or {})
    return _run(["--address", address, *args], env=base_env, input=input)


def test_status_human_and_json(daemon) -> None:
    address, rec = daemon
    human = _cli(address, "status")
    assert human.exit_code == 0, human.output
    assert "0.1.0 (API v1), pid 42" in human.stdout and "1h02m" in human.stdout
    assert "cuda:0  t1" in human.stdout and "cpu     free" in human.stdout
    machine = _cli(address, "--json", "status")
    data = json.loads(machine.stdout)
    assert data["quota_balance"] == "98" and data["tasks_running"] == 1 and data["devices"][1]["task_id"] == ""


def test_token_sent_as_bearer_metadata(daemon, tmp_path: Any) -> None:
    address, rec = daemon
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    assert _cli(address, "status", env={"MODX_TOKEN_FILE": str(tok)}).exit_code == 0
    assert rec.metadata[-1]["authorization"] == "Bearer s3cret"
    assert _cli(address, "status").exit_code == 0
    assert "authorization" not in rec.metadata[-1]


def test_train_create_sends_absolute_paths_and_strings(daemon, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    address, rec = daemon
    monkeypatch.chdir(tmp_path)
    result = _cli(
        address, "train", "create", "--type", "sft", "--train-file", "data.jsonl", "--model-dir", "model", "--output-dir", "out",
        "--set", "learning_rate=1e-4", "--set", "lora_r=32", "--set", "eval_file=held.jsonl", "--name", "x", "--template", "fast",
    )
    assert result.exit_code == 0, result.output
    req = rec.requests["CreateTask"][0]
    assert req.type == common_pb2.TASK_TYPE_SFT and req.template == "fast" and req.name == "x" and not req.validate_only
    assert req.params["train_file"].string_value == str(tmp_path / "data.jsonl")
    assert req.params["eval_file"].string_value == str(tmp_path / "held.jsonl")
    assert req.params["lora_r"].string_value == "32"
    assert req.params["learning_rate"].string_value == "1e-4"
    assert "created task t9" in result.stdout
    assert "2 checkpoints = 2 quota units; balance 100: fits" in result.stdout
    assert "warning: this task needs 2 units and 1 remain (quota_low)" in result.stderr


def test_every_path_the_schema_names_is_sent_absolute(daemon, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path keys come from the daemon's schema (GetParamSchema), not from a list in the CLI."""
    address, rec = daemon
    monkeypatch.chdir(tmp_path)
    result = _cli(address, "train", "create", "--type", "sft", "--train-file", "d.jsonl", "--model-dir", "m", "--output-dir",
                  "o", "--set", "resume_from_checkpoint=./ckpt", "--set", "lora_r=./not-a-path")
    assert result.exit_code == 0, result.output
    req = rec.requests["CreateTask"][0]
    assert req.params["resume_from_checkpoint"].string_value == str(tmp_path / "ckpt")
    assert req.params["lora_r"].string_value == "./not-a-path"  # not a path: the daemon judges it
    assert _cli(address, "train", "estimate", "--type", "sft", "--set", "eval_file=e.jsonl").exit_code == 0
    assert rec.requests["EstimateQuota"][0].params["eval_file"].string_value == str(tmp_path / "e.jsonl")
    assert _cli(address, "templates", "save", "t", "--type", "sft", "--set", "resume_from_checkpoint=c").exit_code == 0
    assert rec.requests["SaveTemplate"][0].params["resume_from_checkpoint"].string_value == str(tmp_path / "c")
    assert len(rec.requests["GetParamSchema"]) == 3  # asked once per command that had --set
    plain = _cli(address, "train", "create", "--type", "sft", "--train-file", "d", "--model-dir", "m", "--output-dir", "o")
    assert plain.exit_code == 0 and len(rec.requests["GetParamSchema"]) == 3  # no --set: no schema call


def test_train_create_conflicting_flag_and_set(daemon) -> None:
    address, _ = daemon
    result = _cli(address, "train", "create", "--type", "sft", "--train-file", "/a", "--model-dir", "/m", "--output-dir", "/o", "--set", "train_file=/b")
    assert result.exit_code == 2


def test_server_error_is_one_sentence(daemon) -> None:
    address, _ = daemon
    result = _cli(address, "train", "create", "--type", "sft", "--train-file", "/a", "--model-dir", "/m", "--output-dir", "/o", "--set", "lora_r=bad")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: INVALID_ARGUMENT: lora_r must be an integer from 1 to 512, got 'bad'"
    missing = _cli(address, "--json", "train", "show", "missing")
    assert missing.exit_code == 1 and missing.stdout == ""
    assert "error: NOT_FOUND: task missing does not exist" in missing.stderr


def test_train_list_paginates_and_limits(daemon) -> None:
    address, rec = daemon
    result = _cli(address, "--json", "train", "list", "--state", "running", "--state", "PENDING", "--type", "sft")
    data = json.loads(result.stdout)
    assert [t["id"] for t in data["tasks"]] == ["t1", "t2", "t3", "t4", "t5"]
    first = rec.requests["ListTasks"][0]
    assert list(first.states) == [common_pb2.TASK_STATE_RUNNING, common_pb2.TASK_STATE_PENDING] and first.type == common_pb2.TASK_TYPE_SFT
    limited = _cli(address, "train", "list", "--limit", "3")
    assert limited.exit_code == 0
    assert "t3" in limited.stdout and "t4" not in limited.stdout and "(3 of 5 tasks shown)" in limited.stdout


def test_train_show_human(daemon) -> None:
    address, _ = daemon
    result = _cli(address, "train", "show", "t1")
    assert result.exit_code == 0
    for text in ("state:", "completed", "best checkpoint:", "c2", "lora_r", "16", "2 checkpoints = 2 quota units"):
        assert text in result.stdout


def _events(*final: training_pb2.TaskEvent) -> list[training_pb2.TaskEvent]:
    evs = [
        training_pb2.TaskEvent(task_id="t1", seq=1, time=TS, state_change=training_pb2.StateChange(from_state=2, to_state=3)),
        training_pb2.TaskEvent(task_id="t1", seq=2, time=TS, metrics=training_pb2.MetricsPoint(step=10, total_steps=20, loss=1.5, learning_rate=2e-4, eta_seconds=30)),
        training_pb2.TaskEvent(task_id="t1", seq=3, time=TS, checkpoint_saved=training_pb2.Checkpoint(id="c1", step=10, loss=1.5)),
        training_pb2.TaskEvent(task_id="t1", seq=4, time=TS, log=common_pb2.LogLine(level="info", message="step 10 done")),
    ]
    return evs + list(final)


def test_watch_completed_exits_0_in_a_pipe(daemon) -> None:
    address, rec = daemon
    done = training_pb2.TaskEvent(task_id="t1", seq=5, time=TS, state_change=training_pb2.StateChange(from_state=3, to_state=6))
    rec.watch_script = [_events(done)]
    result = _cli(address, "train", "watch", "t1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "pending → running" in out and "step 10/20 (50.0%)" in out and "checkpoint saved: step 10" in out
    assert "step 10 done" not in out  # info logs only with --logs
    assert "task t1 completed" in out
    assert "Ctrl-C detaches" in result.stderr


def test_watch_failed_exits_1_with_log_tail(daemon) -> None:
    address, rec = daemon
    rec.final_state = common_pb2.TASK_STATE_FAILED
    fail = training_pb2.TaskEvent(task_id="t1", seq=5, time=TS, state_change=training_pb2.StateChange(from_state=3, to_state=7, reason="worker_exited"))
    rec.watch_script = [_events(fail)]
    result = _cli(address, "train", "watch", "t1", "--logs")
    assert result.exit_code == 1
    assert "step 10 done" in result.stdout
    assert "task t1 failed" in result.stderr and "CUDA out of memory" in result.stderr


def test_watch_json_reconnects_without_duplicates(daemon) -> None:
    address, rec = daemon
    done = training_pb2.TaskEvent(task_id="t1", seq=5, time=TS, state_change=training_pb2.StateChange(from_state=3, to_state=5))
    evs = _events(done)
    # The first stream dies after two events; the second replays from after_seq (one old event included).
    rec.watch_script = [("fail_after", evs[:2]), evs]
    result = _cli(address, "--json", "train", "watch", "t1")
    assert result.exit_code == 0, result.output
    seqs = [int(json.loads(line)["event"]["seq"]) for line in result.stdout.splitlines()]
    assert seqs == [1, 2, 3, 4, 5]
    assert [r.after_seq for r in rec.requests["WatchTask"]] == [0, 2]
    assert "reconnecting" in result.stderr


def test_logs_history_only_unless_follow(daemon) -> None:
    address, rec = daemon
    rec.watch_script = [_events(), _events()]
    result = _cli(address, "train", "logs", "t1")
    assert result.exit_code == 0
    assert "INFO    step 10 done" in result.stdout
    assert "checkpoint" not in result.stdout
    req = rec.requests["WatchTask"][0]
    assert req.history_only and list(req.kinds) == [training_pb2.EVENT_KIND_LOG]
    _cli(address, "train", "logs", "t1", "--follow")
    assert not rec.requests["WatchTask"][1].history_only


def test_metrics_all_pages_and_plot(daemon, tmp_path: Any) -> None:
    address, _ = daemon
    png = tmp_path / "curves.png"
    result = _cli(address, "--json", "train", "metrics", "t1", "--plot", str(png))
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["points"]) == 30
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    human = _cli(address, "train", "metrics", "t1")
    assert human.stdout.count("\n") > 30 and "loss  █" in human.stdout


def test_checkpoints_star_the_best(daemon) -> None:
    address, _ = daemon
    result = _cli(address, "train", "checkpoints", "t1", "--all")
    assert "*c2" in result.stdout and "1.0 MiB" in result.stdout


def test_params_grouped(daemon) -> None:
    address, _ = daemon
    result = _cli(address, "params", "--type", "pretrain")
    assert result.exit_code == 0
    out = result.stdout
    assert out.index("[core]") < out.index("[advanced]") < out.index("[save]")
    assert "train_file *" in out and "1–512" in out and "steps|epoch|no" in out and "保存策略" in out
    use_lora = next(line for line in out.splitlines() if line.startswith("use_lora"))
    assert "false" in use_lora and "true" not in use_lora


def test_quota_and_grant(daemon) -> None:
    address, rec = daemon
    result = _cli(address, "quota")
    assert "99 units" in result.stdout and "checkpoint" in result.stdout
    grant = _cli(address, "quota", "grant", "5", "--note", "more")
    assert grant.exit_code == 0 and "balance is now 104" in grant.stdout
    assert rec.requests["GrantQuota"][0].note == "more"


def test_chat_one_shot_streams_and_json_prints_done(daemon) -> None:
    address, rec = daemon
    result = _cli(address, "chat", "t1", "--checkpoint", "20", "-m", "hi", "--temperature", "0", "--stop", "###", "--system", "be brief")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Hello!\n"
    assert "3 tokens" in result.stderr and "finish: stop_token" in result.stderr
    req = rec.requests["Chat"][0]
    assert req.checkpoint == "20" and req.system_prompt == "be brief" and req.messages[0].content == "hi"
    assert req.sampling.HasField("temperature") and not req.sampling.HasField("top_k") and list(req.sampling.stop) == ["###"]
    machine = _cli(address, "--json", "chat", "t1", "--base", "-m", "hi")
    assert json.loads(machine.stdout)["text"] == "Hello!"
    assert rec.requests["Chat"][1].base


def test_chat_repl_keeps_history(daemon) -> None:
    address, rec = daemon
    result = _cli(address, "chat", "t1", input="first\n/set top_k 5\n/system be kind\nsecond\n/reset\nthird\n/quit\n")
    assert result.exit_code == 0, result.output
    reqs = rec.requests["Chat"]
    assert [len(r.messages) for r in reqs] == [1, 3, 1]
    assert reqs[1].messages[1].content == "Hello!" and reqs[1].sampling.top_k == 5 and reqs[1].system_prompt == "be kind"


def test_chat_json_needs_message(daemon) -> None:
    address, _ = daemon
    assert _cli(address, "--json", "chat", "t1").exit_code == 2


def test_package_create_watches_and_lists_files(daemon, tmp_path: Any) -> None:
    address, rec = daemon
    result = _cli(address, "package", "create", "t1", "--checkpoint", "20", "--quant", "q4_k_m", "--quant", "F16", "--no-merge", "--output-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    req = rec.requests["CreatePackage"][0]
    assert list(req.quant_types) == [package_pb2.QUANT_TYPE_Q4_K_M, package_pb2.QUANT_TYPE_F16]
    assert req.HasField("merge") and req.merge is False
    assert "300.0 MiB" in result.stdout and "ab" * 32 in result.stdout and "97.0%" in result.stdout
    _cli(address, "package", "create", "t1", "--checkpoint", "20", "--quant", "q8_0", "--detach")
    assert not rec.requests["CreatePackage"][1].HasField("merge")


def test_eval_run_failed_exits_1_and_ranks(daemon) -> None:
    address, rec = daemon
    result = _cli(address, "eval", "run", "t1", "--checkpoint", "10", "--checkpoint", "20", "--base", "--samples", "10", "--max-new-tokens", "32")
    assert result.exit_code == 1
    req = rec.requests["CreateEvaluation"][0]
    assert list(req.checkpoints) == ["10", "20"] and req.include_base and req.samples == 10 and req.generation.max_new_tokens == 32
    lines = result.stdout.splitlines()
    ranked = [line for line in lines if line.lstrip().startswith(("1 ", "2 "))]
    assert "*step 20" in ranked[0] and "step 10" in ranked[1]
    json_run = _cli(address, "--json", "eval", "run", "t1", "--checkpoint", "10", "--checkpoint", "20")
    objs = [json.loads(line) for line in json_run.stdout.splitlines()]
    assert "evaluation" in objs[0] and "event" in objs[1] and objs[-1]["evaluation"]["state"] == "JOB_STATE_FAILED"


def test_import_gguf_absolute_paths_and_no_deadline(daemon, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    address, rec = daemon
    monkeypatch.chdir(tmp_path)
    result = _cli(address, "models", "import-gguf", "m.gguf", "hf")
    assert result.exit_code == 0, result.output
    req = rec.requests["ImportGguf"][0]
    assert req.gguf_path == os.path.join(str(tmp_path), "m.gguf") and req.output_dir == os.path.join(str(tmp_path), "hf")
    assert "imported qwen2 (0.49B parameters)" in result.stdout


def test_sparklines_redraw_on_time_or_doubling() -> None:
    now = [0.0]
    mon = TaskMonitor(output.LiveBlock(enabled=False), spark_every=3.0, clock=lambda: now[0])
    mon.losses = [3.0]
    first = mon.sparklines()
    mon.losses = [3.0, 2.0, 1.0, 0.5]  # doubled: redrawn at once
    assert mon.sparklines() != first
    drawn = mon.sparklines()
    mon.losses.append(0.4)  # not doubled, too soon: the same drawing
    assert mon.sparklines() == drawn
    now[0] = 3.5
    assert mon.sparklines() != drawn


def test_json_after_the_command(daemon) -> None:
    address, _ = daemon
    result = _cli(address, "quota", "--json")
    assert json.loads(result.stdout)["balance"] == "99"
    grant = _cli(address, "quota", "grant", "1", "--json")
    assert json.loads(grant.stdout)["balance"] == "100"


@pytest.fixture
def tls_daemon(tmp_path: Any):
    """The fake SystemService behind TLS with a self-signed certificate for localhost."""
    import shutil
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    rec = Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    system_pb2_grpc.add_SystemServiceServicer_to_server(FakeSystem(rec), server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())]))
    server.start()
    yield f"localhost:{port}", str(cert), rec
    server.stop(None)


def test_tls_with_ca_and_token(tls_daemon) -> None:
    address, cert, rec = tls_daemon
    ok = _cli(address, "--json", "status", env={"MODX_TLS_CA": cert, "MODX_TOKEN": "tok"})
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["pid"] == 42
    assert rec.metadata[-1]["authorization"] == "Bearer tok"
    plain = _cli(address, "status", env={"MODX_TLS_CA": ""})
    assert plain.exit_code == 1 and "error:" in plain.stderr
    half = _cli(address, "status", env={"MODX_TLS_CA": cert, "MODX_TLS_CERT": cert})
    assert half.exit_code == 1 and "MODX_TLS_KEY" in half.stderr
