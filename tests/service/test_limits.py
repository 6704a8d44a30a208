"""Caps: request size, queued tasks, watchers per client, chat tokens -> RESOURCE_EXHAUSTED."""
from __future__ import annotations

import grpc
import pytest
from modx.v1 import inference_pb2 as I
from modx.v1 import training_pb2 as T

from tests.daemon.helpers import create_request, sft_params, wait_for_state

from .support import bearer

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def test_oversized_message_is_refused(secured, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    user = bearer(secured.tokens["user"])
    tr = secured.daemon.training
    before = tr.ListTasks(T.ListTasksRequest(), metadata=user).total_size
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o"))
    req.name = "x" * 70_000  # max_request_bytes = 65536
    with pytest.raises(grpc.RpcError) as info:
        tr.CreateTask(req, metadata=user)
    assert info.value.code() == EXHAUSTED
    assert tr.ListTasks(T.ListTasksRequest(), metadata=user).total_size == before


def test_chat_tokens_are_capped(secured) -> None:
    chat = secured.daemon.inference.Chat
    req = I.ChatRequest(task_id="t-00000000", base=True, messages=[I.ChatMessage(role="user", content="hi")],
                        sampling=I.SamplingParams(max_new_tokens=65))  # max_chat_tokens = 64
    with pytest.raises(grpc.RpcError) as info:
        list(chat(req, metadata=bearer(secured.tokens["user"])))
    assert info.value.code() == EXHAUSTED and "max_chat_tokens" in info.value.details()
    req.sampling.max_new_tokens = 64
    with pytest.raises(grpc.RpcError) as info:  # within the cap: the handler answers (no such task here)
        list(chat(req, metadata=bearer(secured.tokens["user"])))
    assert info.value.code() != EXHAUSTED


def test_watchers_per_client_are_capped(secured, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    user, admin = bearer(secured.tokens["user"]), bearer(secured.tokens["admin"])
    tr = secured.daemon.training
    task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o")),
                            metadata=user).task.id
    watch = T.WatchTaskRequest(task_id=task_id, follow_forever=True)
    open_streams = []
    try:
        for _ in range(2):  # max_watchers_per_client = 2
            stream = tr.WatchTask(watch, metadata=user)
            next(stream)  # the 'created' event: the stream is open on the server
            open_streams.append(stream)
        with pytest.raises(grpc.RpcError) as info:
            next(tr.WatchTask(watch, metadata=user))
        assert info.value.code() == EXHAUSTED and "max_watchers_per_client" in info.value.details()
        other = tr.WatchTask(watch, metadata=admin)  # another client has its own count
        next(other)
        other.cancel()
        open_streams.pop().cancel()
        for _ in range(50):  # the server notices the cancel asynchronously
            try:
                again = tr.WatchTask(watch, metadata=user)
                next(again)
                open_streams.append(again)
                break
            except grpc.RpcError as err:
                assert err.code() == EXHAUSTED
                import time

                time.sleep(0.1)
        else:
            pytest.fail("a closed watch stream was never released")
    finally:
        for stream in open_streams:
            stream.cancel()


def test_queue_is_capped(secured, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    user = bearer(secured.tokens["user"])
    tr = secured.daemon.training
    ids = [tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / f"o{i}",
                                                     num_train_epochs=100, max_seq_length=64)),
                         metadata=user).task.id for i in range(3)]
    try:
        tr.StartTask(T.StartTaskRequest(task_id=ids[0]), metadata=user)  # runs on the one CPU slot
        tr.StartTask(T.StartTaskRequest(task_id=ids[1]), metadata=user)  # waits: the queue is full (1)
        with pytest.raises(grpc.RpcError) as info:
            tr.StartTask(T.StartTaskRequest(task_id=ids[2]), metadata=user)
        assert info.value.code() == EXHAUSTED and "queue" in info.value.details()
    finally:
        for task_id in ids[:2]:
            try:
                tr.StopTask(T.StopTaskRequest(task_id=task_id), metadata=user)
            except grpc.RpcError:
                pass
    wait_for_state(_Authed(secured), ids[0], {"stopped", "failed", "completed"}, timeout=300)


class _Authed:
    """Just enough of a Daemon for wait_for_state, with the user's token."""

    def __init__(self, secured) -> None:
        self._s = secured

    @property
    def training(self):
        tr, md = self._s.daemon.training, bearer(self._s.tokens["user"])

        class Stub:
            def GetTask(self, request):
                return tr.GetTask(request, metadata=md)
        return Stub()

    def log(self) -> str:
        return self._s.daemon.log()


def test_local_clients_each_get_their_own_watcher_allowance(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path,
                                                            monkeypatch) -> None:
    """Token-less Unix-socket callers are told apart by their `modx-client-id` (limits.client_key)."""
    from modxctl.connection import make_channel
    from modx.v1 import training_pb2_grpc

    from .support import write_config

    d = make_daemon(MODX_CONFIG=str(write_config(tmp_path / "modxd.toml", max_watchers_per_client=2)))
    tr = d.training
    task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o"))).task.id
    watch = T.WatchTaskRequest(task_id=task_id, follow_forever=True)
    opened, channels = [], []

    def open_stream(stub=tr, client: str | None = None):
        stream = stub.WatchTask(watch, metadata=[("modx-client-id", client)] if client else None)
        next(stream)  # the 'created' event: the stream is open on the server
        opened.append(stream)

    def refused(stub=tr, client: str | None = None) -> str:
        with pytest.raises(grpc.RpcError) as info:
            open_stream(stub, client)
        assert info.value.code() == EXHAUSTED and "max_watchers_per_client" in info.value.details()
        return info.value.details()

    try:
        for client in ("tool-a", "tool-b"):  # two local clients: two each, the limit
            open_stream(client=client)
            open_stream(client=client)
        refused(client="tool-a")  # one over its own limit; tool-b's streams do not count against it
        open_stream()  # callers that name themselves leave the shared anonymous allowance alone
        open_stream()
        assert "modx-client-id" in refused()
        monkeypatch.delenv("MODX_TOKEN", raising=False)
        monkeypatch.delenv("MODX_TOKEN_FILE", raising=False)
        channels += [make_channel(d.address) for _ in range(2)]  # modxctl names each channel
        for ch in channels:
            stub = training_pb2_grpc.TrainingServiceStub(ch)
            open_stream(stub)
            open_stream(stub)
        refused(training_pb2_grpc.TrainingServiceStub(channels[0]))
    finally:
        for stream in opened:
            stream.cancel()
        for ch in channels:
            ch.close()


def test_downloads_count_as_held_streams() -> None:
    """A download holds an fd and a chunk while its client reads: it counts against
    max_watchers_per_client like a watch stream; unary calls and chat do not."""
    from modxd.limits import is_watch

    for method in ("WatchTask", "WatchEvaluation", "WatchPackage"):
        assert is_watch(f"/modx.v1.X/{method}")
    assert is_watch("/modx.v1.PackageService/ReadPackageFile") and is_watch("/modx.v1.EvalService/ReadEvaluationFile")
    for method in ("/modx.v1.EvalService/ListEvaluationExamples", "/modx.v1.InferenceService/Chat",
                   "/grpc.health.v1.Health/Watch"):
        assert not is_watch(method)
