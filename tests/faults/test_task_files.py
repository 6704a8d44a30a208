"""A task's files are its own: an output dir that holds other data is refused at create, and
`train delete ID --files` deletes exactly what the task (its training, evaluations and packages)
wrote, from a manifest the daemon keeps, never a directory blindly and never through a symlink.

The daemon here is laid out like a default install: a user's home is an allowed root nested in a
wider one, and the state dir (database, tokens, socket) lives inside that home.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from modx.v1 import eval_pb2 as E
from modx.v1 import package_pb2 as P
from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from tests.support.daemon import Daemon

from ..daemon.helpers import create_request, rpc_error, sft_params, state_name, task_count, wait_for_state

S = grpc.StatusCode
QUICK = dict(num_train_epochs=1, max_samples=8, per_device_train_batch_size=2, gradient_accumulation_steps=1,
             logging_steps=1, max_seq_length=64)
# 8 steps, a checkpoint every 2, the oldest deleted by retention; a merged model and TensorBoard logs.
FULL = {**QUICK, "num_train_epochs": 2, "save_steps": 2, "save_total_limit": 3, "merge_lora_after_training": True}


@pytest.fixture(scope="module")
def outside() -> Iterator[Path]:
    """A dir outside the daemon's allowed roots."""
    path = Path(tempfile.mkdtemp(prefix="modx-outside-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def home_daemon(tmp_path_factory, roots) -> Iterator[tuple[Daemon, Path]]:
    """(daemon, home): roots = the test base dir and `home` inside it; the state dir inside `home`."""
    base = tmp_path_factory.mktemp("files")
    home = base / "home" / "alice"
    state = home / ".local" / "state" / "modx"
    d = Daemon(state, [roots, home], quota=1000)
    d.env["HOME"] = str(home)
    d.start()
    yield d, home
    d.kill()


def _refused(d: Daemon, out: str | Path, code: grpc.StatusCode, *phrases: str, model: Path, data: Path) -> str:
    before = task_count(d)
    for validate_only in (True, False):
        req = create_request(**sft_params(model, data, out))
        req.validate_only = validate_only
        err = rpc_error(lambda: d.training.CreateTask(req))
        assert err.code() == code, (out, err.code(), err.details())
        details = err.details()
        assert "output_dir" in details, details
        for phrase in phrases:
            assert phrase in details, (phrase, details)
    assert task_count(d) == before
    return details


def test_an_output_dir_that_holds_other_data_is_refused(home_daemon, roots, tiny_llama_dir, sft_jsonl) -> None:
    d, home = home_daemon
    state = d.state_dir
    files = dict(model=tiny_llama_dir, data=sft_jsonl)
    denied = S.PERMISSION_DENIED
    # the state dir (database, tokens, socket), inside it, and every dir above it
    _refused(d, state, denied, str(state), "state dir", **files)
    _refused(d, f"{state}/", denied, "state dir", **files)
    _refused(d, f"{home}/.local/../.local/state/modx/.", denied, "state dir", **files)
    _refused(d, state / "outputs" / "t1", denied, "inside the daemon's state dir", **files)
    _refused(d, state.parent, denied, "state dir", str(state), **files)
    _refused(d, home / ".local", denied, "state dir", **files)
    assert not (state / "outputs").exists()
    # an allowed root ($HOME), a parent of one, the widest root
    _refused(d, home, denied, "allowed root", **files)
    _refused(d, home.parent, denied, "allowed root", str(home), **files)
    _refused(d, roots, denied, "allowed root", **files)
    # a symlink that leads to the state dir
    link = home / "link-to-state"
    link.symlink_to(state)
    _refused(d, link, denied, "state dir", **files)
    _refused(d, link / "sub", denied, "inside the daemon's state dir", **files)
    assert d.healthy()


def test_an_output_dir_in_use_by_another_task_is_refused(home_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    d, _home = home_daemon
    files = dict(model=tiny_llama_dir, data=sft_jsonl)
    shared = tmp_path / "shared"
    out = shared / "first"
    first = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, out))).task.id
    failed = S.FAILED_PRECONDITION
    _refused(d, out, failed, first, str(out), **files)
    _refused(d, f"{out}/", failed, first, **files)
    _refused(d, out / "checkpoints", failed, first, "inside", **files)
    _refused(d, shared, failed, first, str(out), **files)
    _refused(d, tmp_path, failed, first, **files)
    # a sibling is fine, and so is the same dir once the task is gone
    second = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, shared / "second"))).task.id
    d.training.DeleteTask(T.DeleteTaskRequest(task_id=first))
    again = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, out))).task.id
    for task_id in (second, again):
        d.training.DeleteTask(T.DeleteTaskRequest(task_id=task_id))


def _tree(root: Path) -> set[str]:
    """Every path under `root`, relative, dirs with a trailing slash; symlinks are not followed."""
    found = set()
    for dirpath, dirs, names in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        for name in dirs:
            p = Path(dirpath) / name
            found.add(str(rel / name) + ("" if p.is_symlink() else "/"))
        for name in names:
            found.add(str(rel / name))
    return {f.removeprefix("./") for f in found}


@pytest.fixture(scope="module")
def used_task(home_daemon, tiny_llama_dir, sft_jsonl, tmp_path_factory, outside) -> dict:
    """A task that trained (retention, merge, TensorBoard), was evaluated and packaged twice, in an
    output dir shared with another program's files; then some of its files were tampered with."""
    d, _home = home_daemon
    work = tmp_path_factory.mktemp("used")
    out = work / "out"
    (out / "data").mkdir(parents=True)
    (out / "notes.txt").write_text("another program's notes")
    (out / "data" / "x.bin").write_bytes(b"another program's data")
    eval_file = work / "held.jsonl"
    shutil.copy(sft_jsonl, eval_file)
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, out, eval_file=str(eval_file), **FULL))
    task_id = d.training.CreateTask(req).task.id
    d.training.StartTask(T.StartTaskRequest(task_id=task_id))
    task = wait_for_state(d, task_id, {"completed", "failed", "stopped"}, timeout=600)
    assert state_name(task.state) == "completed", (task.state_reason, list(task.failure_log_tail))
    ckpts = d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id, include_deleted=True)).checkpoints
    assert [c.deleted for c in ckpts] == [True, False, False, False], ckpts
    live = [c for c in ckpts if not c.deleted]

    # an evaluation (its report and CSV) and two packages: the default dir, and a dir shared with others
    ev = d.evals.CreateEvaluation(E.CreateEvaluationRequest(
        task_id=task_id, checkpoints=[live[0].id, live[-1].id], samples=2,
        generation=E.GenerationSettings(max_new_tokens=4))).evaluation
    shelf = work / "shelf"
    shelf.mkdir()
    (shelf / "other-model.gguf").write_bytes(b"GGUF another program's model")
    packages = [d.packages.CreatePackage(P.CreatePackageRequest(
        task_id=task_id, checkpoint=str(live[-1].step), quant_types=[P.QUANT_TYPE_F16], skip_verification=True,
        **extra)).package for extra in ({}, {"output_dir": str(shelf)})]
    _wait_job(lambda: d.evals.GetEvaluation(E.GetEvaluationRequest(evaluation_id=ev.id)).evaluation)
    for pkg in packages:
        _wait_job(lambda: d.packages.GetPackage(P.GetPackageRequest(package_id=pkg.id)).package)
    wrote = _tree(out)
    assert {"checkpoints/", "merged/", "runs/", "eval/", "packages/"} <= wrote, wrote
    assert any(p.endswith(".gguf") for p in _tree(shelf) - {"other-model.gguf"})

    # tampering: a file of the task replaced by a symlink to an outside file, another moved outside,
    # a whole checkpoint dir replaced by a symlink to an outside dir with the same file names, and
    # a foreign file dropped into a dir the task created
    kept_ckpt, linked_ckpt = Path(live[0].path), Path(live[1].path)
    (outside / "victim.json").write_text("outside, keep me")
    (kept_ckpt / "trainer_state.json").unlink()
    (kept_ckpt / "trainer_state.json").symlink_to(outside / "victim.json")
    shutil.move(kept_ckpt / "optimizer.pt", outside / "optimizer.pt")
    shutil.copytree(linked_ckpt, outside / "ckpt-copy")
    shutil.rmtree(linked_ckpt)
    linked_ckpt.symlink_to(outside / "ckpt-copy")
    (out / "checkpoints" / "mine.txt").write_text("dropped here by a person")
    return {"daemon": d, "task_id": task_id, "out": out, "shelf": shelf, "work": work,
            "kept_ckpt": kept_ckpt, "linked_ckpt": linked_ckpt, "outside_before": _tree(outside),
            "outside_bytes": {p: (outside / p).read_bytes() for p in _tree(outside) if not p.endswith("/")}}


def _wait_job(get, timeout: float = 600) -> None:
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        job = get()
        if job.state in (3, 4, 5):  # completed, failed, cancelled
            assert job.state == 3, job.state_reason
            return
        time.sleep(0.3)
    raise AssertionError("the job did not finish")


def test_package_output_dir_follows_the_same_rule(used_task, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    d, task_id = used_task["daemon"], used_task["task_id"]
    other = tmp_path / "other"
    other_id = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, other))).task.id
    step = d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints[-1].step
    for target, code, phrase in [(d.state_dir, S.PERMISSION_DENIED, "state dir"),
                                 (d.state_dir / "pkgs", S.PERMISSION_DENIED, "state dir"),
                                 (other, S.FAILED_PRECONDITION, other_id),
                                 (other / "pkgs", S.FAILED_PRECONDITION, other_id),
                                 (tmp_path, S.FAILED_PRECONDITION, other_id)]:
        err = rpc_error(lambda: d.packages.CreatePackage(P.CreatePackageRequest(
            task_id=task_id, checkpoint=str(step), quant_types=[P.QUANT_TYPE_F16], output_dir=str(target))))
        assert err.code() == code and "output_dir" in err.details() and phrase in err.details(), err.details()
    assert not (other / "pkgs").exists() and not (d.state_dir / "pkgs").exists()
    d.training.DeleteTask(T.DeleteTaskRequest(task_id=other_id))


def test_a_package_never_replaces_a_file_in_its_output_dir(used_task, tmp_path) -> None:
    """A package into a dir holding a person's README.md, or another package's files of the same names,
    once replaced them (and the other package's checksums then lied); the job fails naming them and
    every file stays as it was."""
    d, task_id, shelf = used_task["daemon"], used_task["task_id"], used_task["shelf"]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.md").write_text("a person's notes, keep me")
    step = d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints[-1].step
    for target, held in ((notes, "README.md"), (shelf, ".gguf")):
        before = {p: (target / p).read_bytes() for p in _tree(target) if not p.endswith("/")}
        pkg = d.packages.CreatePackage(P.CreatePackageRequest(
            task_id=task_id, checkpoint=str(step), quant_types=[P.QUANT_TYPE_F16], skip_verification=True,
            output_dir=str(target))).package
        job = _finished(lambda: d.packages.GetPackage(P.GetPackageRequest(package_id=pkg.id)).package)
        assert job.state == 4 and "already holds" in job.state_reason and held in job.state_reason, job.state_reason
        assert {p: (target / p).read_bytes() for p in _tree(target) if not p.endswith("/")} == before


def _finished(get, timeout: float = 600) -> Any:
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        job = get()
        if job.state in (3, 4, 5):
            return job
        time.sleep(0.3)
    raise AssertionError("the job did not finish")


def test_delete_files_removes_exactly_what_the_task_wrote(used_task, outside) -> None:
    d, task_id, out, shelf = used_task["daemon"], used_task["task_id"], used_task["out"], used_task["shelf"]
    kept_ckpt, linked_ckpt = used_task["kept_ckpt"], used_task["linked_ckpt"]
    d.kill()  # the manifest is durable: a crashed daemon still knows what the task wrote
    d.start()
    d.training.DeleteTask(T.DeleteTaskRequest(task_id=task_id, delete_files=True))
    ckpts = f"checkpoints/{kept_ckpt.name}"
    assert _tree(out) == {
        "notes.txt", "data/", "data/x.bin",  # another program's files
        "checkpoints/", "checkpoints/mine.txt",  # a person's file in a dir the task made: the dir stays
        f"{ckpts}/", f"{ckpts}/trainer_state.json",  # a symlink where the task's file was: not followed
        f"checkpoints/{linked_ckpt.name}",  # a symlink where the task's checkpoint was: not followed
    }, _tree(out)
    assert (out / "notes.txt").read_text() == "another program's notes"
    assert _tree(shelf) == {"other-model.gguf"}, _tree(shelf)
    # nothing outside was touched, through the symlinks or otherwise
    assert _tree(outside) == used_task["outside_before"]
    for rel, data in used_task["outside_bytes"].items():
        assert (outside / rel).read_bytes() == data, rel
    err = rpc_error(lambda: d.training.GetTask(T.GetTaskRequest(task_id=task_id)))
    assert err.code() == S.NOT_FOUND
    assert d.healthy()


def test_delete_files_removes_the_dirs_the_task_created(home_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    d, _home = home_daemon
    out = tmp_path / "new" / "out"
    task_id = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, out, save_steps=2,
                                                                **QUICK))).task.id
    d.training.StartTask(T.StartTaskRequest(task_id=task_id))
    task = wait_for_state(d, task_id, {"completed", "failed", "stopped"})
    assert state_name(task.state) == "completed", task.state_reason
    assert (out / "checkpoints").is_dir()
    d.training.DeleteTask(T.DeleteTaskRequest(task_id=task_id, delete_files=True))
    assert not (tmp_path / "new").exists(), _tree(tmp_path)
    assert tmp_path.is_dir()


def test_delete_without_files_keeps_them(home_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    d, _home = home_daemon
    out = tmp_path / "out"
    task_id = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, out, save_steps=4,
                                                                **QUICK))).task.id
    d.training.StartTask(T.StartTaskRequest(task_id=task_id))
    assert state_name(wait_for_state(d, task_id, {"completed", "failed", "stopped"}).state) == "completed"
    before = _tree(out)
    d.training.DeleteTask(T.DeleteTaskRequest(task_id=task_id))
    assert _tree(out) == before and any(p.startswith("checkpoints/checkpoint-") for p in before)
    quota = d.system.GetQuota(system_pb2.GetQuotaRequest())
    assert quota.balance >= 0
