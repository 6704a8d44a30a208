"""Case 4: the disk fills up while a checkpoint (or a package) is being written.

The output dir lives on a real 4 MiB tmpfs (mounted by the `small_disk`
fixture; the test skips, saying why, where mounting is not permitted). After
the first checkpoint is recorded the test fills the filesystem, so the next
save hits ENOSPC inside safetensors / torch.save. Expected: the task fails with
a reason that says the disk is full, the half-written checkpoint is removed,
nothing is recorded or debited for it, and the earlier checkpoint is intact.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import grpc
import pytest
from modx.v1 import common_pb2 as C
from modx.v1 import package_pb2
from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from tests.support.daemon import Daemon

from ..daemon.helpers import (check_checkpoint_usable, create_request, sft_params, state_name, wait_event,
                              wait_for_state)
from .conftest import fill_disk

SLOW = dict(num_train_epochs=50, per_device_train_batch_size=1, gradient_accumulation_steps=1, logging_steps=1,
            max_seq_length=64, save_steps=3)
QUOTA = 20


@pytest.fixture(scope="module")
def full_disk_run(tmp_path_factory, roots, small_disk, tiny_llama_dir, sft_jsonl):
    """A task whose second checkpoint meets a full disk; yields (daemon, task, out dir, first checkpoint)."""
    d = Daemon(tmp_path_factory.mktemp("disk-full-modxd") / "state", [roots], quota=QUOTA).start()
    try:
        out = small_disk / "out"
        tr = d.training
        task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, out, **SLOW))).task.id
        tr.StartTask(T.StartTaskRequest(task_id=task_id))
        first = wait_event(d, task_id, T.EVENT_KIND_CHECKPOINT_SAVED).checkpoint_saved
        fill_disk(small_disk)
        task = wait_for_state(d, task_id, {"failed", "stopped", "completed"}, timeout=60)
        yield d, task, out, first
    finally:
        d.kill()


def test_checkpoint_save_on_a_full_disk_fails_cleanly(full_disk_run) -> None:
    d, task, out, first = full_disk_run
    assert state_name(task.state) == "failed"
    step = first.step + 3
    assert task.state_reason == (
        f"disk full: could not save the checkpoint of step {step} in {out / 'checkpoints'}: no space left on "
        "device (0 bytes free); the incomplete checkpoint was removed and the 1 earlier checkpoint(s) are "
        "intact: free some space, then resume the task"), task.state_reason
    # nothing partial on disk, nothing recorded, nothing debited
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"checkpoint-{first.step}"]
    records = d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task.id, include_deleted=True)).checkpoints
    assert [c.id for c in records] == [first.id]
    quota = d.system.GetQuota(system_pb2.GetQuotaRequest(ledger_limit=100))
    assert quota.balance == QUOTA - 1
    assert [e.checkpoint_id for e in quota.ledger if e.kind == "checkpoint"] == [first.id]
    check_checkpoint_usable(first.path, first.step)
    # and the task can go on from it once there is room
    resumable = d.training.GetTask(T.GetTaskRequest(task_id=task.id)).task
    assert state_name(resumable.state) == "failed" and d.healthy()


@pytest.mark.parametrize("free_pages", [0, 24], ids=["no-room", "room-for-the-gguf-only"])
def test_package_on_a_full_disk_fails_cleanly(full_disk_run, small_disk, free_pages) -> None:
    """No room at all (refused before writing), then room for the F16 GGUF of the tiny model
    (96 KiB) but not for the files written after it (ENOSPC mid-package)."""
    d, task, out, first = full_disk_run
    filler = small_disk / "filler.bin"
    fill_disk(small_disk)
    if free_pages:
        os.truncate(filler, max(filler.stat().st_size - free_pages * 4096, 0))
    target = small_disk / f"package-{free_pages}"
    request = package_pb2.CreatePackageRequest(task_id=task.id, checkpoint=first.id,
                                               quant_types=[package_pb2.QUANT_TYPE_F16], merge=True,
                                               output_dir=str(target), skip_verification=True)
    try:
        package = d.packages.CreatePackage(request).package
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            pytest.skip(f"PackageService is not implemented yet: {exc.details()}")
        raise
    deadline = time.time() + 180
    while package.state in (C.JOB_STATE_UNSPECIFIED, C.JOB_STATE_PENDING, C.JOB_STATE_RUNNING):
        assert time.time() < deadline, "the package job did not end"
        time.sleep(0.3)
        package = d.packages.GetPackage(package_pb2.GetPackageRequest(package_id=package.id)).package
    assert package.state == C.JOB_STATE_FAILED, package.state_reason
    reason = package.state_reason.lower()
    assert any(words in reason for words in ("disk full", "no space left", "not enough disk space")), reason
    assert not package.files, "a failed package lists files"
    leftovers = [p for p in target.rglob("*") if p.is_file()] if target.exists() else []
    assert not leftovers, f"a failed package left {leftovers}"
    assert d.healthy() and Path(first.path).is_dir()
