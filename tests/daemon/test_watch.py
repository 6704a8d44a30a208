"""WatchTask: replay from the store after `after_seq`, then follow live, no gaps and no duplicates."""
from __future__ import annotations

import threading

from modx.v1 import training_pb2 as T

from .helpers import create_request, sft_params, state_name, wait_for_state

RUN = dict(num_train_epochs=2, save_steps=3, logging_steps=1, max_seq_length=64, per_device_train_batch_size=2,
           gradient_accumulation_steps=2)


def _seqs(responses) -> list[int]:
    return [r.event.seq for r in responses]


def test_two_live_watchers_and_replays_agree(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    tr = daemon.training
    task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", **RUN))).task.id
    seen: dict[str, list] = {}

    def follow(name: str, after: int = 0) -> None:
        seen[name] = list(tr.WatchTask(T.WatchTaskRequest(task_id=task_id, after_seq=after)))

    watchers = [threading.Thread(target=follow, args=(n,)) for n in ("a", "b")]
    for w in watchers:
        w.start()
    tr.StartTask(T.StartTaskRequest(task_id=task_id))
    for w in watchers:
        w.join(timeout=600)
    task = wait_for_state(daemon, task_id, {"completed", "failed"})
    assert state_name(task.state) == "completed"
    a, b = _seqs(seen["a"]), _seqs(seen["b"])
    assert a == b == list(range(1, len(a) + 1)), "live watchers saw gaps, duplicates or different orders"
    assert seen["a"][-1].event.state_change.to_state == task.state  # the stream ends at the terminal state
    replay = list(tr.WatchTask(T.WatchTaskRequest(task_id=task_id)))
    assert [r.event for r in replay] == [r.event for r in seen["a"]]
    k = len(a) // 2
    assert _seqs(tr.WatchTask(T.WatchTaskRequest(task_id=task_id, after_seq=k))) == a[k:]
    metrics = [r.event.metrics for r in seen["a"] if r.event.HasField("metrics")]
    assert [m.step for m in metrics if m.HasField("loss")] == list(range(1, task.total_steps + 1))
    assert all(m.HasField("learning_rate") and m.HasField("perplexity") for m in metrics if m.HasField("loss"))
    checkpoints = [r.event.checkpoint_saved for r in seen["a"] if r.event.HasField("checkpoint_saved")]
    assert len(checkpoints) == task.quota_estimate.checkpoints
    kinds = tr.WatchTask(T.WatchTaskRequest(task_id=task_id, kinds=[T.EVENT_KIND_CHECKPOINT_SAVED]))
    assert [r.event.checkpoint_saved.id for r in kinds] == [c.id for c in checkpoints]


def test_watch_joins_mid_run_without_gaps(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    tr = daemon.training
    task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", **RUN))).task.id
    tr.StartTask(T.StartTaskRequest(task_id=task_id))
    first = []
    for response in tr.WatchTask(T.WatchTaskRequest(task_id=task_id)):
        first.append(response)
        if response.event.HasField("metrics") and response.event.metrics.step >= 2:
            break
    rest = list(tr.WatchTask(T.WatchTaskRequest(task_id=task_id, after_seq=first[-1].event.seq)))
    seqs = _seqs(first) + _seqs(rest)
    assert seqs == list(range(1, len(seqs) + 1))
    # The stream reaches the terminal state. (Once, under heavy load, the last event of such a
    # stream was not the state change itself: kept visible here until understood.)
    finals = [state_name(r.event.state_change.to_state) for r in rest if r.event.HasField("state_change")]
    assert finals and finals[-1] == "completed", [r.event.WhichOneof("payload") for r in rest[-5:]]


def test_history_only_returns_at_once(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    tr = daemon.training
    task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o"))).task.id
    events = list(tr.WatchTask(T.WatchTaskRequest(task_id=task_id, history_only=True), timeout=10))
    assert [e.event.seq for e in events] == [1]
