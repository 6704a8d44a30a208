"""Unary calls over Connect (JSON and binary) and gRPC-Web: the gRPC handlers' answers and errors."""
from __future__ import annotations

import gzip
import subprocess

import grpc
import pytest
from modx.v1 import system_pb2 as S
from modx.v1 import training_pb2 as T

from tests.daemon.helpers import create_request, sft_params

from .wire import envelope

STATUS = "/modx.v1.SystemService/GetStatus"


def grpc_error(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    return info.value.code(), info.value.details()


def test_curl_with_an_empty_body_gets_the_status(web) -> None:
    """The issue's own check, with curl as a person types it."""
    out = subprocess.run(["curl", "-s", "-X", "POST", "-H", "Content-Type: application/json", "-d", "",
                          f"{web.base}{STATUS}"], capture_output=True, text=True, timeout=60)
    if out.returncode == 127 or "not found" in out.stderr:
        pytest.skip("curl is not installed")
    import json

    status = json.loads(out.stdout)
    assert status["apiVersion"] == "modx.v1" and status["version"]
    assert int(status["quotaBalance"]) == web.daemon.system.GetStatus(S.GetStatusRequest()).quota_balance


def test_json_and_binary_unary_answer_like_grpc(web) -> None:
    expected = web.daemon.training.GetParamSchema(T.GetParamSchemaRequest())
    reply = web.client.unary_json("/modx.v1.TrainingService/GetParamSchema", {})
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert [p["key"] for p in body["params"]] == [p.key for p in expected.params]
    assert body["foldGroups"] == list(expected.fold_groups)
    reply, message = web.client.unary_proto("/modx.v1.TrainingService/GetParamSchema", T.GetParamSchemaRequest(),
                                            T.GetParamSchemaResponse)
    assert reply.headers["content-type"] == "application/proto"
    assert message == expected
    # an empty binary body is the empty message, as protobuf defines it
    reply, status = web.client.unary_proto(STATUS, S.GetStatusRequest(), S.GetStatusResponse)
    assert status.api_version == "modx.v1"


def test_grpc_web_unary(web) -> None:
    reply = web.client.request("POST", STATUS, envelope(b""), {"Content-Type": "application/grpc-web+proto",
                                                               "X-Grpc-Web": "1"})
    assert reply.status == 200 and reply.headers["content-type"] == "application/grpc-web+proto"
    flags, length = reply.body[0], int.from_bytes(reply.body[1:5], "big")
    assert flags == 0 and S.GetStatusResponse.FromString(reply.body[5:5 + length]).api_version == "modx.v1"
    trailer = reply.body[5 + length:]
    assert trailer[0] == 0x80 and b"grpc-status: 0" in trailer.replace(b"grpc-status:0", b"grpc-status: 0")


def test_errors_carry_the_grpc_code_and_sentence(web, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    tr = web.daemon.training
    # NOT_FOUND
    code, sentence = grpc_error(tr.GetTask, T.GetTaskRequest(task_id="t-doesnotexist"))
    reply = web.client.unary_json("/modx.v1.TrainingService/GetTask", {"taskId": "t-doesnotexist"})
    assert (reply.status, reply.json()) == (404, {"code": "not_found", "message": sentence})
    assert code == grpc.StatusCode.NOT_FOUND
    # INVALID_ARGUMENT from a parameter check, naming the field
    bad = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", learning_rate="fast"))
    code, sentence = grpc_error(tr.CreateTask, bad)
    reply, _ = web.client.unary_proto("/modx.v1.TrainingService/CreateTask", bad, T.CreateTaskResponse)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "learning_rate" in sentence
    assert reply.status == 400 and reply.json() == {"code": "invalid_argument", "message": sentence}
    assert not (tmp_path / "o").exists()  # bad input changes nothing
    # a required field left out
    reply = web.client.unary_json("/modx.v1.TrainingService/GetTask", b"")
    assert reply.json() == {"code": "invalid_argument", "message": "task_id is required"}


def test_malformed_and_unknown_requests(web) -> None:
    for body, kind in ((b"{not json", "JSON"), (b'{"taskId": 7}', "JSON"), (b'{"noSuchField": 1}', "JSON")):
        reply = web.client.unary_json("/modx.v1.TrainingService/GetTask", body)
        assert reply.status == 400, body
        assert reply.json()["code"] == "invalid_argument"
        assert reply.json()["message"].startswith(f"the request is not a valid modx.v1.GetTaskRequest in {kind}")
    reply = web.client.request("POST", "/modx.v1.TrainingService/GetTask", b"\xff\xff\xff",
                               {"Content-Type": "application/proto"})
    assert reply.status == 400 and "binary protobuf" in reply.json()["message"]
    reply = web.client.unary_json("/modx.v1.TrainingService/NoSuchMethod", {})
    assert reply.status == 404
    # GET is no side door: every modx.v1 method is POST only
    reply = web.client.request("GET", "/modx.v1.TrainingService/DeleteTask?encoding=json&message=%7B%7D")
    assert reply.status == 405
    # a browser's "simple" request (no preflight) is not Connect
    reply = web.client.request("POST", STATUS, b"{}", {"Content-Type": "text/plain"})
    assert reply.status == 415
    # native gRPC belongs on the gRPC listener
    reply = web.client.request("POST", STATUS, envelope(b""), {"Content-Type": "application/grpc"})
    assert reply.json()["code"] == "unimplemented" and "gRPC listener" in reply.json()["message"]


def test_request_size_limits(web) -> None:
    """max_request_bytes (65536 here) holds for plain and for compressed bodies."""
    big = {"name": "x" * 70_000, "type": "TASK_TYPE_SFT"}
    reply = web.client.unary_json("/modx.v1.TrainingService/SaveTemplate", big)
    assert reply.status == 429 and reply.json()["code"] == "resource_exhausted"
    assert "max_request_bytes" in reply.json()["message"]
    bomb = gzip.compress(b'{"name": "' + b"x" * 5_000_000 + b'"}')
    assert len(bomb) < 65536
    reply = web.client.request("POST", "/modx.v1.TrainingService/SaveTemplate", bomb,
                               {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert reply.json()["code"] == "resource_exhausted" and "max_request_bytes" in reply.json()["message"]
    # a compressed request within the limit works
    small = gzip.compress(b'{"taskId": "t-nope"}')
    reply = web.client.request("POST", "/modx.v1.TrainingService/GetTask", small,
                               {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert reply.json()["code"] == "not_found"


def test_responses_are_compressed_when_asked(web) -> None:
    reply = web.client.unary_json("/modx.v1.TrainingService/GetParamSchema", {}, {"Accept-Encoding": "gzip"})
    assert reply.headers["content-encoding"] == "gzip"
    assert b"learning_rate" in gzip.decompress(reply.body)


def test_origin_and_host_rules(web) -> None:
    same = web.client.unary_json(STATUS, b"", {"Origin": web.base})
    assert same.status == 200 and "access-control-allow-origin" not in same.headers
    other = web.client.unary_json(STATUS, b"", {"Origin": "https://evil.example"})
    assert other.status == 403 and "web_allowed_origins" in other.json()["message"]
    # an allowed development origin: preflight, then the call with CORS headers
    pre = web.client.request("OPTIONS", STATUS, headers={"Origin": "http://localhost:5173",
                                                         "Access-Control-Request-Method": "POST",
                                                         "Access-Control-Request-Headers": "content-type"})
    assert pre.status == 204 and pre.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "authorization" in pre.headers["access-control-allow-headers"]
    allowed = web.client.unary_json(STATUS, b"", {"Origin": "http://localhost:5173"})
    assert allowed.status == 200 and allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    refused = web.client.request("OPTIONS", STATUS, headers={"Origin": "https://evil.example"})
    assert refused.status == 403 and "access-control-allow-origin" not in refused.headers
    # DNS rebinding: a foreign name pointed at 127.0.0.1 gets nothing from the token-less listener
    rebound = web.client.unary_json(STATUS, b"", {"Host": f"evil.example:{web.port}",
                                                 "Origin": f"http://evil.example:{web.port}"})
    assert rebound.status == 403 and "loopback" in rebound.json()["message"]
    assert web.client.request("GET", "/", headers={"Host": "evil.example"}).status == 403
    for host in (f"localhost:{web.port}", f"127.0.0.1:{web.port}"):
        assert web.client.unary_json(STATUS, b"", {"Host": host}).status == 200
