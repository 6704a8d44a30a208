"""Paths stay confined to the allowed roots where files are opened and created, not only when a
request is checked: in the daemon and in its workers.

Every case changes the filesystem after the daemon accepted the request (a symlink planted in an
output dir, an input swapped for a symlink that leads outside the roots while the task waits in
the queue), then checks that nothing was written or read outside and that the refusal names the
parameter and the path.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from modx.v1 import inference_pb2 as I
from modx.v1 import package_pb2 as P
from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from ..daemon.helpers import create_request, rpc_error, sft_params, state_name, wait_event, wait_for_state

S = grpc.StatusCode
QUICK = dict(num_train_epochs=1, max_samples=8, per_device_train_batch_size=2, gradient_accumulation_steps=1,
             logging_steps=1, max_seq_length=64, save_steps=2)
SLOW = dict(num_train_epochs=50, per_device_train_batch_size=1, gradient_accumulation_steps=1, logging_steps=1,
            max_seq_length=64, save_strategy="no")
TERMINAL = {"completed", "failed", "stopped"}


@pytest.fixture(scope="module")
def outside() -> Iterator[Path]:
    """A dir outside the daemon's allowed root (the pytest base temp dir)."""
    path = Path(tempfile.mkdtemp(prefix="modx-outside-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _everything(root: Path) -> list[str]:
    return sorted(str(Path(dirpath, name).relative_to(root)) for dirpath, dirs, names in os.walk(root)
                  for name in dirs + names)


@pytest.mark.parametrize("planted", ["checkpoints", "runs"])
def test_a_symlink_planted_in_the_output_dir_is_not_followed(daemon, tiny_llama_dir, sft_jsonl, tmp_path, outside,
                                                             planted) -> None:
    out = tmp_path / "out"
    out.mkdir()
    task_id = daemon.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, out, **QUICK))).task.id
    target = outside / f"planted-{planted}"
    target.mkdir()
    (out / planted).symlink_to(target)
    balance = daemon.system.GetQuota(system_pb2.GetQuotaRequest()).balance
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    task = wait_for_state(daemon, task_id, TERMINAL)
    assert state_name(task.state) == "failed", task.state_reason
    assert str(out / planted) in task.state_reason and "symlink" in task.state_reason, task.state_reason
    assert _everything(target) == []
    assert not daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert daemon.system.GetQuota(system_pb2.GetQuotaRequest()).balance == balance


def _swap_for_outside_link(path: Path, outside: Path) -> Path:
    """Move `path` outside the roots and leave a symlink to it in its place; returns the outside copy."""
    moved = outside / f"{path.parent.name}-{path.name}"
    shutil.move(str(path), str(moved))
    path.symlink_to(moved)
    return moved


def test_inputs_swapped_for_outside_symlinks_after_start_are_refused_when_read(
        make_daemon, tiny_llama_dir, sft_jsonl, tmp_path, outside) -> None:
    """Each victim waits in the queue behind a running task (StartTask checked its paths); then its
    input is swapped for a symlink to an identical file outside the roots; when it runs, the worker
    refuses to open it and the task fails with a sentence naming the parameter and the path."""
    d = make_daemon()
    tr = d.training
    blocker = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "blocker",
                                                        **SLOW))).task.id
    tr.StartTask(T.StartTaskRequest(task_id=blocker))
    wait_event(d, blocker, T.EVENT_KIND_METRICS)
    victims: dict[str, tuple[str, Path]] = {}
    for field in ("train_file", "eval_file", "model_dir", "tokenizer_dir", "train_file-parent"):
        own = tmp_path / field
        own.mkdir()
        data_dir = own / "data"
        data_dir.mkdir()
        data = data_dir / "train.jsonl"
        shutil.copy(sft_jsonl, data)
        shutil.copy(sft_jsonl, own / "eval.jsonl")
        shutil.copytree(tiny_llama_dir, own / "model")
        shutil.copytree(tiny_llama_dir, own / "tokenizer")
        params = sft_params(own / "model", data, own / "out", eval_file=str(own / "eval.jsonl"),
                            tokenizer_dir=str(own / "tokenizer"), **QUICK)
        task_id = tr.CreateTask(create_request(**params)).task.id
        tr.StartTask(T.StartTaskRequest(task_id=task_id))
        swapped = {"train_file": data, "eval_file": own / "eval.jsonl", "model_dir": own / "model",
                   "tokenizer_dir": own / "tokenizer", "train_file-parent": data_dir}[field]
        victims[field] = (task_id, swapped)
    for field, (task_id, swapped) in victims.items():
        assert state_name(tr.GetTask(T.GetTaskRequest(task_id=task_id)).task.state) == "pending"
        _swap_for_outside_link(swapped, outside)
    tr.StopTask(T.StopTaskRequest(task_id=blocker))
    for field, (task_id, swapped) in victims.items():
        task = wait_for_state(d, task_id, TERMINAL, timeout=600)
        param = field.removesuffix("-parent")
        assert state_name(task.state) == "failed", (field, task.state_reason)
        assert f"parameter {param}" in task.state_reason and "outside the allowed roots" in task.state_reason, \
            (field, task.state_reason)
        assert str(swapped) in task.state_reason, (field, task.state_reason)
        assert not (swapped.parent / "out" / "checkpoints").exists() or not any(
            (swapped.parent / "out" / "checkpoints").iterdir()), field


@pytest.fixture(scope="module")
def trained(daemon, tiny_llama_dir, sft_jsonl, tmp_path_factory) -> dict:
    """A stopped LoRA task (resumable) with checkpoints from step 2 on, and a second task beside it."""
    work = tmp_path_factory.mktemp("confined")
    out = work / "out"
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, out, **{**QUICK, "num_train_epochs": 50}))
    task_id = daemon.training.CreateTask(req).task.id
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    wait_event(daemon, task_id, T.EVENT_KIND_CHECKPOINT_SAVED, lambda e: e.checkpoint_saved.step >= 4)
    daemon.training.StopTask(T.StopTaskRequest(task_id=task_id))
    task = wait_for_state(daemon, task_id, TERMINAL)
    assert state_name(task.state) == "stopped", task.state_reason
    ckpts = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert [c.step for c in ckpts][:2] == [2, 4], ckpts
    neighbour = work / "neighbour"
    other = daemon.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, neighbour))).task.id
    return {"task_id": task_id, "out": out, "ckpts": list(ckpts), "neighbour": neighbour, "other": other}


def test_a_checkpoint_swapped_for_an_outside_symlink_is_not_loaded(daemon, trained, outside) -> None:
    """Chat, resume and package read a checkpoint through the same check at open."""
    task_id, ckpt = trained["task_id"], trained["ckpts"][0]
    path = Path(ckpt.path)
    moved = outside / "swapped-checkpoint"
    shutil.copytree(path, moved)
    saved = path.with_name(path.name + ".saved")
    path.rename(saved)
    path.symlink_to(moved)
    try:
        err = rpc_error(lambda: list(daemon.inference.Chat(I.ChatRequest(
            task_id=task_id, checkpoint=ckpt.id, messages=[I.ChatMessage(role="user", content="hi")],
            sampling=I.SamplingParams(max_new_tokens=2)), timeout=300)))
        assert err.code() == S.PERMISSION_DENIED and str(path) in err.details(), err.details()
        assert "outside the allowed roots" in err.details(), err.details()
        err = rpc_error(lambda: daemon.packages.CreatePackage(P.CreatePackageRequest(
            task_id=task_id, checkpoint=ckpt.id, quant_types=[P.QUANT_TYPE_F16], skip_verification=True)))
        assert err.code() == S.PERMISSION_DENIED and str(path) in err.details(), err.details()
        err = rpc_error(lambda: daemon.training.ResumeTask(T.ResumeTaskRequest(task_id=task_id, checkpoint=ckpt.id)))
        assert err.code() == S.PERMISSION_DENIED and str(path) in err.details(), err.details()
        assert state_name(daemon.training.GetTask(T.GetTaskRequest(task_id=task_id)).task.state) == "stopped"
    finally:
        path.unlink()
        saved.rename(path)


def test_a_packages_dir_planted_as_a_symlink_into_another_task_is_refused(daemon, trained) -> None:
    out, neighbour = trained["out"], trained["neighbour"]
    neighbour.mkdir(exist_ok=True)
    (out / "packages").symlink_to(neighbour)
    try:
        err = rpc_error(lambda: daemon.packages.CreatePackage(P.CreatePackageRequest(
            task_id=trained["task_id"], checkpoint=str(trained["ckpts"][-1].step), quant_types=[P.QUANT_TYPE_F16],
            skip_verification=True)))
        assert err.code() == S.PERMISSION_DENIED, err.details()
        assert str(out / "packages") in err.details() and "symlink" in err.details(), err.details()
        assert list(neighbour.iterdir()) == []
    finally:
        (out / "packages").unlink()


def test_a_pinned_dir_is_written_through_whatever_happens_to_its_path(tmp_path, outside) -> None:
    """The mechanism under all of the above (modxd/paths.py), in this process: a dir opened under the
    roots keeps receiving writes after its path is swapped for a symlink to outside, and says it
    was moved before anything more is written there; a symlink below a root is never walked."""
    from modxd import paths
    from modxd.errors import PermissionDenied

    root = tmp_path.resolve()
    paths.confine([root])
    try:
        pin, made = paths.pin_output_dir("output_dir", root / "a" / "out")
        assert made == [str(root / "a"), str(root / "a" / "out")]
        (root / "a" / "out").rename(root / "a" / "moved")
        (root / "a" / "out").symlink_to(outside)
        with os.fdopen(pin.create_file("x"), "w") as f:
            f.write("inside")
        assert (root / "a" / "moved" / "x").read_text() == "inside" and not (outside / "x").exists()
        with pytest.raises(PermissionDenied, match="moved or replaced"):
            pin.check_in_place()
        pin.close()
        with pytest.raises(PermissionDenied, match="is a symlink"):
            paths.pin_output_dir("output_dir", root / "a" / "out" / "deeper")
        assert not (outside / "deeper").exists()
        with pytest.raises(PermissionDenied, match="outside the allowed roots"):
            paths.pin_input("parameter model_dir", str(root / "a" / "out"))
    finally:
        paths.confine(None)


def test_a_new_run_dir_never_reuses_one_that_exists(tmp_path, outside) -> None:
    """Two runs started in the same second (a resume right after a stop) each get a directory of
    their own; a symlink already standing at the name is skipped, never followed."""
    from modxd import paths

    root = tmp_path.resolve()
    paths.confine([root])
    try:
        pin, _ = paths.pin_output_dir("output_dir", root / "out")
        before = sorted(outside.iterdir())
        (root / "out" / "Dec06_1").symlink_to(outside)
        first = pin.new_subdir("Dec06_1")
        second = pin.new_subdir("Dec06_1")
        assert {first.real, second.real} == {str(root / "out" / "Dec06_1-2"), str(root / "out" / "Dec06_1-3")}
        assert sorted(outside.iterdir()) == before
        first.close(), second.close(), pin.close()
    finally:
        paths.confine(None)
