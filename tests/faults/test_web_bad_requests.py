"""Bad requests on the browser listener, byte by byte, as a curl user or a hand-written client sends them.

tests/faults/test_bad_requests.py sweeps every field over gRPC; this file is the HTTP side: the
framing a Connect or gRPC-Web streaming call puts around its request. Every malformed body must end
the call INVALID_ARGUMENT with a sentence that says what is wrong with it, in the protocol's own
form (a Connect end-stream message, gRPC-Web trailers), never INTERNAL or UNIMPLEMENTED; the daemon
keeps serving and nothing is created.
"""
from __future__ import annotations

import json
import struct
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from modx.v1 import training_pb2 as T

from tests.service.support import free_port, write_config
from tests.support.daemon import Daemon
from tests.web.wire import WebClient, envelope

from ..daemon.helpers import create_request, task_count

WATCH = "/modx.v1.TrainingService/WatchTask"


@dataclass
class WebDaemon:
    daemon: Daemon
    client: WebClient
    task_id: str


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, roots: Path, tiny_llama_dir: Path, sft_jsonl: Path
        ) -> Iterator[WebDaemon]:
    base = tmp_path_factory.mktemp("web-bad-requests")
    port = free_port()
    config = write_config(base / "modxd.toml", web_listen=f"127.0.0.1:{port}")
    d = Daemon(base / "state", [roots], quota=100, extra_env={"MODX_CONFIG": str(config)}).start()
    task = d.training.CreateTask(create_request("sft", train_file=sft_jsonl, model_dir=tiny_llama_dir,
                                                output_dir=base / "task-out")).task
    yield WebDaemon(d, WebClient("127.0.0.1", port), task.id)
    d.kill()


@pytest.fixture(autouse=True)
def unchanged(web: WebDaemon) -> Iterator[None]:
    """Whatever a test sends, the daemon stays healthy and no task appears."""
    before = task_count(web.daemon)
    yield
    assert web.daemon.proc.poll() is None and web.daemon.healthy(), web.daemon.log()[-3000:]
    assert task_count(web.daemon) == before, "a refused request created a task"


def stream_end(body: bytes, protocol: str) -> tuple[str, str]:
    """(code, message) of the error a whole streaming response ends with, read frame by frame."""
    while body:
        flags, length = struct.unpack(">BI", body[:5])
        payload, body = body[5:5 + length], body[5 + length:]
        if protocol == "connect" and flags & 0x02:
            error = json.loads(payload).get("error") or {}
            return error.get("code", "ok"), error.get("message", "")
        if protocol == "grpc-web" and flags & 0x80:
            trailers = dict(line.split(":", 1) for line in payload.decode().strip().split("\r\n") if line)
            code = int(trailers["grpc-status"].strip())
            names = {0: "ok", 2: "unknown", 3: "invalid_argument", 12: "unimplemented", 13: "internal"}
            return names.get(code, str(code)), urllib.parse.unquote(trailers.get("grpc-message", "").strip())
    raise AssertionError("the stream ended without its end frame")


def send_stream(web: WebDaemon, body: bytes, protocol: str, headers: dict[str, str] | None = None
                ) -> tuple[str, str]:
    content_type = "application/connect+json" if protocol == "connect" else "application/grpc-web+json"
    extra = {"Connect-Protocol-Version": "1"} if protocol == "connect" else {"X-Grpc-Web": "1"}
    reply = web.client.request("POST", WATCH, body, {"Content-Type": content_type, **extra, **(headers or {})})
    assert reply.status == 200, (reply.status, reply.body[:300])
    return stream_end(reply.body, protocol)


def watch_json(web: WebDaemon) -> bytes:
    return json.dumps({"taskId": web.task_id, "historyOnly": True}).encode()


# (id, body from the good request's JSON, the words the sentence must hold)
ENVELOPES = [
    ("empty-body", lambda m: b"", ("empty",)),
    ("json-without-envelope", lambda m: m, ("flags byte is 0x7b", "without its envelope")),
    ("shorter-than-the-prefix", lambda m: b"\x00\x00\x01", ("fewer than the 5-byte",)),
    ("truncated-message", lambda m: envelope(m)[:-3], (f"promises", "holds")),
    ("length-past-the-body", lambda m: struct.pack(">BI", 0, len(m) + 100) + m, ("promises",)),
    ("length-4-GiB", lambda m: struct.pack(">BI", 0, 0xFFFFFFFF) + m, ("promises 4294967295 bytes",)),
    ("length-short-of-the-body", lambda m: struct.pack(">BI", 0, 5) + m, ("exactly one request message",)),
    ("two-messages", lambda m: envelope(m) + envelope(m), ("exactly one request message",)),
    ("compressed-flag-without-compression", lambda m: envelope(m, flags=0x01), ("flagged compressed",)),
    ("end-stream-flag", lambda m: envelope(m, flags=0x02), ("flags byte is 0x02",)),
    ("trailers-flag", lambda m: envelope(m, flags=0x80), ("flags byte is 0x80",)),
    ("every-flag", lambda m: envelope(m, flags=0xFF), ("flags byte is 0xff",)),
]


@pytest.mark.parametrize("protocol", ["connect", "grpc-web"])
@pytest.mark.parametrize("case", ENVELOPES, ids=[c[0] for c in ENVELOPES])
def test_a_malformed_stream_envelope_is_invalid_argument(web: WebDaemon, case, protocol: str) -> None:
    _, make, fragments = case
    code, message = send_stream(web, make(watch_json(web)), protocol)
    assert code == "invalid_argument", (code, message)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "Traceback" not in message and len(message.split()) >= 5


def test_a_compressed_stream_message_with_an_unknown_encoding_is_invalid_argument(web: WebDaemon) -> None:
    """Connect falls back to no compression for an encoding it does not know: a message flagged
    compressed is then the client's mistake, not a bug."""
    code, message = send_stream(web, envelope(watch_json(web), flags=0x01), "connect",
                                {"Connect-Content-Encoding": "br"})
    assert code == "invalid_argument" and "connect-content-encoding" in message, (code, message)


def test_a_well_formed_stream_still_works(web: WebDaemon) -> None:
    """The check passes a good body through unchanged, whatever its codec."""
    for protocol in ("connect", "grpc-web"):
        code, message = send_stream(web, envelope(watch_json(web)), protocol)
        assert code == "ok", (protocol, code, message)
    request = T.WatchTaskRequest(task_id=web.task_id, history_only=True).SerializeToString()
    reply = web.client.request("POST", WATCH, envelope(request),
                               {"Content-Type": "application/connect+proto", "Connect-Protocol-Version": "1"})
    assert stream_end(reply.body, "connect")[0] == "ok"


def test_unary_calls_keep_serving_after_bad_streams(web: WebDaemon) -> None:
    for case in ENVELOPES:
        send_stream(web, case[1](watch_json(web)), "connect")
    reply = web.client.unary_json("/modx.v1.SystemService/GetStatus", {})
    assert reply.status == 200 and reply.json()["pid"] == web.daemon.proc.pid


@pytest.mark.parametrize("body, kind", [(b"[1, 2]", "array"), (b"null", "null"), (b'"t-1"', "string"),
                                        (b"7", "number"), (b"true", "boolean")])
def test_a_unary_json_body_that_is_not_an_object_is_named_as_such(web: WebDaemon, body: bytes, kind: str) -> None:
    """The parser's own words ("'NoneType' object is not iterable") name a Python type, not the body."""
    reply = web.client.unary_json("/modx.v1.TrainingService/GetTask", body)
    assert reply.status == 400 and reply.json()["code"] == "invalid_argument", reply.body[:300]
    message = reply.json()["message"]
    assert "must be a JSON object" in message and f"a JSON {kind}" in message, message
    assert "modx.v1.GetTaskRequest" in message and "NoneType" not in message and "int'" not in message


@pytest.mark.parametrize("case", [c for c in ENVELOPES if c[0] != "json-without-envelope"], ids=lambda c: c[0])
def test_a_malformed_grpc_web_unary_envelope_is_invalid_argument(web: WebDaemon, case) -> None:
    """gRPC-Web frames unary calls too: the same rule, the same answer."""
    _, make, fragments = case
    reply = web.client.request("POST", "/modx.v1.SystemService/GetStatus", make(b"\x08\x01" * 10),
                               {"Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1"})
    code, message = stream_end(reply.body, "grpc-web")
    assert code == "invalid_argument", (code, message)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
