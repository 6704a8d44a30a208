"""Server streams over Connect and gRPC-Web: WatchTask of a tiny run, after_seq resume, errors, and
a client that goes away."""
from __future__ import annotations

import time
import urllib.parse

from modx.v1 import training_pb2 as T

from tests.daemon.helpers import create_request, sft_params, state_name, wait_for_state

from .wire import WebClient

WATCH = "/modx.v1.TrainingService/WatchTask"
RUN = dict(num_train_epochs=1, save_steps=2, logging_steps=1, max_seq_length=64, per_device_train_batch_size=2,
           gradient_accumulation_steps=1)


def watch(client: WebClient, request: T.WatchTaskRequest, protocol: str = "connect", codec: str = "json"):
    stream = client.open_stream(WATCH, request, protocol, codec)
    try:
        events = [r.event for r in stream.messages(T.WatchTaskResponse)]
    finally:
        stream.close()
    return events, stream


def test_watch_a_training_run_and_resume_after_seq(web, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    tr = web.daemon.training
    task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", **RUN))).task.id
    stream = web.client.open_stream(WATCH, T.WatchTaskRequest(task_id=task_id))
    assert stream.status == 200 and stream.headers["content-type"] == "application/connect+json"
    tr.StartTask(T.StartTaskRequest(task_id=task_id))
    live = [r.event for r in stream.messages(T.WatchTaskResponse)]  # follows until the terminal state
    stream.close()
    assert stream.end is not None and stream.end.error is None
    task = wait_for_state(web.daemon, task_id, {"completed", "failed"})
    assert state_name(task.state) == "completed"
    assert [e.seq for e in live] == list(range(1, len(live) + 1))
    assert live[-1].state_change.to_state == task.state
    assert [e.metrics.step for e in live if e.HasField("metrics") and e.metrics.HasField("loss")] == \
        list(range(1, task.total_steps + 1))
    # the same events as a gRPC watcher gets, in every protocol and codec
    over_grpc = [r.event for r in tr.WatchTask(T.WatchTaskRequest(task_id=task_id))]
    assert live == over_grpc
    for protocol, codec in (("connect", "proto"), ("grpc-web", "proto"), ("grpc-web", "json")):
        events, ended = watch(web.client, T.WatchTaskRequest(task_id=task_id), protocol, codec)
        assert events == over_grpc, (protocol, codec)
        if protocol == "grpc-web":
            assert ended.end.trailers.get("grpc-status") == "0"
    # a reload resumes where it was: after_seq gives exactly the rest
    k = len(live) // 2
    rest, _ = watch(web.client, T.WatchTaskRequest(task_id=task_id, after_seq=live[k - 1].seq))
    assert rest == live[k:]
    kinds, _ = watch(web.client, T.WatchTaskRequest(task_id=task_id, kinds=[T.EVENT_KIND_CHECKPOINT_SAVED]))
    assert kinds and all(e.HasField("checkpoint_saved") for e in kinds)


def test_stream_errors_are_the_grpc_errors(web) -> None:
    events, stream = watch(web.client, T.WatchTaskRequest(task_id="t-doesnotexist"))
    assert events == []
    assert stream.end.error == {"code": "not_found", "message": "task 't-doesnotexist' does not exist"}
    events, stream = watch(web.client, T.WatchTaskRequest(task_id="t-doesnotexist"), "grpc-web", "proto")
    assert stream.end.trailers["grpc-status"] == "5"
    assert urllib.parse.unquote(stream.end.trailers["grpc-message"]) == "task 't-doesnotexist' does not exist"
    events, stream = watch(web.client, T.WatchTaskRequest(task_id="t-x", after_seq=-1))
    assert stream.end.error["code"] == "invalid_argument" and "after_seq" in stream.end.error["message"]
    # a request that does not decode
    conn = web.client.connection()
    conn.request("POST", WATCH, body=b"\x00\x00\x00\x00\x03{x}", headers={
        "Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"})
    body = conn.getresponse().read()
    conn.close()
    assert b'"invalid_argument"' in body and b"modx.v1.WatchTaskRequest" in body


def _open_idle_watchers(web, task_id: str, n: int):
    """n follow_forever watchers of a finished task: they wait for events that never come."""
    streams = []
    for _ in range(n):
        stream = web.client.open_stream(WATCH, T.WatchTaskRequest(task_id=task_id, follow_forever=True))
        frames = stream.frames()
        next(frames)  # the task's history has arrived: the stream is open and now idle
        streams.append((stream, frames))
    return streams


def test_a_client_that_goes_away_frees_its_stream(web, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    """max_watchers_per_client is 3 here: three idle watchers fill it; after their tabs close, three
    new ones open, which only works if the daemon ended the first three when they went away."""
    tr = web.daemon.training
    task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", **RUN))).task.id
    tr.StartTask(T.StartTaskRequest(task_id=task_id))
    wait_for_state(web.daemon, task_id, {"completed", "failed"})
    first = _open_idle_watchers(web, task_id, 3)
    events, over = watch(web.client, T.WatchTaskRequest(task_id=task_id))
    assert events == [] and over.end.error["code"] == "resource_exhausted"
    assert "max_watchers_per_client" in over.end.error["message"]
    for stream, _ in first:
        stream.close()
    deadline = time.monotonic() + 120
    while True:  # the disconnects reach the daemon asynchronously: retry until the slots are free
        events, probe = watch(web.client, T.WatchTaskRequest(task_id=task_id, history_only=True))
        if probe.end.error is None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert probe.end.error is None, probe.end.error
    second = _open_idle_watchers(web, task_id, 3)
    for stream, _ in second:
        stream.close()
    # the daemon is fine and training was never in the way of any of this
    assert web.client.unary_json("/modx.v1.SystemService/GetStatus", b"").status == 200


def test_streams_end_unavailable_when_modxd_stops(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    """SIGTERM: an open browser stream ends with `unavailable` (resume with after_seq), and modxd exits."""
    from tests.service.support import free_port

    port = free_port()
    d = make_daemon(MODX_WEB_LISTEN=f"127.0.0.1:{port}")
    task_id = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o"))).task.id
    stream = WebClient("127.0.0.1", port).open_stream(WATCH, T.WatchTaskRequest(task_id=task_id, follow_forever=True))
    frames = stream.frames()
    next(frames)  # the history is in; the stream now waits for live events
    assert d.stop(timeout=120) == 0
    rest = list(frames)
    stream.close()
    assert rest == [] and stream.end is not None
    assert stream.end.error["code"] == "unavailable" and "after_seq" in stream.end.error["message"]
