"""Path safety: every client path resolves (symlinks, '..') under the allowed roots, or PERMISSION_DENIED."""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from modx.v1 import system_pb2 as S
from modx.v1 import training_pb2 as T

from modxd.errors import PermissionDenied
from modxd.paths import make_dir_under_roots, resolve_under_roots
from tests.daemon.helpers import create_request, sft_params

DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture(scope="module")
def outside() -> Iterator[Path]:
    """A dir outside the daemon's allowed root (the pytest base temp dir)."""
    path = Path(tempfile.mkdtemp(prefix="modx-outside-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _denied(daemon, request) -> str:
    with pytest.raises(grpc.RpcError) as info:
        daemon.training.CreateTask(request)
    assert info.value.code() == DENIED, info.value.details()
    return info.value.details()


def test_dotdot_traversal_is_refused(daemon, tiny_llama_dir, sft_jsonl, tmp_path, outside) -> None:
    (outside / "data.jsonl").write_bytes(sft_jsonl.read_bytes())
    depth = len(tmp_path.parts)
    sneaky = str(tmp_path) + "/.." * depth + str(outside / "data.jsonl")
    details = _denied(daemon, create_request(**sft_params(tiny_llama_dir, sneaky, tmp_path / "o")))
    assert "train_file" in details and sneaky in details
    sneaky_out = f"{tmp_path}/{'../' * depth}{outside.relative_to('/')}/out"
    details = _denied(daemon, create_request(**sft_params(tiny_llama_dir, sft_jsonl, sneaky_out)))
    assert "output_dir" in details and "outside the allowed roots" in details
    assert not (outside / "out").exists()


def test_relative_paths_are_refused(daemon, tiny_llama_dir, sft_jsonl) -> None:
    details = _denied(daemon, create_request(**sft_params(tiny_llama_dir, sft_jsonl, "relative/out")))
    assert "output_dir" in details and "absolute" in details


@pytest.mark.parametrize("field", ["train_file", "eval_file", "model_dir", "tokenizer_dir", "output_dir"])
def test_symlink_escapes_are_refused(daemon, tiny_llama_dir, sft_jsonl, tmp_path, outside, field) -> None:
    target = outside / field
    if field in ("train_file", "eval_file"):
        target.write_bytes(sft_jsonl.read_bytes())
    elif field in ("model_dir", "tokenizer_dir"):
        if not target.exists():
            shutil.copytree(tiny_llama_dir, target)
    else:
        target.mkdir(exist_ok=True)
    link = tmp_path / f"link-{field}"
    link.symlink_to(target)
    params = sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o")
    params[field] = str(link / "out") if field == "output_dir" else str(link)
    details = _denied(daemon, create_request(**params))
    assert field in details and str(link) in details
    assert list((outside / "output_dir").iterdir()) == [] if field == "output_dir" else True


def test_symlink_in_a_parent_dir_is_refused(daemon, tiny_llama_dir, sft_jsonl, tmp_path, outside) -> None:
    (tmp_path / "data").symlink_to(outside)
    (outside / "x.jsonl").write_bytes(sft_jsonl.read_bytes())
    details = _denied(daemon, create_request(**sft_params(tiny_llama_dir, tmp_path / "data" / "x.jsonl",
                                                         tmp_path / "o")))
    assert "train_file" in details


def test_hardware_advice_model_dir_is_checked(daemon, outside) -> None:
    with pytest.raises(grpc.RpcError) as info:
        daemon.system.GetHardwareAdvice(S.GetHardwareAdviceRequest(model_dir=str(outside)))
    assert info.value.code() == DENIED and str(outside) in info.value.details()


def test_output_dir_swapped_for_a_symlink_after_create_is_not_followed(daemon, tiny_llama_dir, sft_jsonl,
                                                                       tmp_path, outside) -> None:
    """Create checks the path; start checks it again (and the launch once more, see
    test_make_dir_under_roots), so a symlink planted in between is never written through."""
    out = tmp_path / "out"
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, out, num_train_epochs=1, max_seq_length=64))
    task = daemon.training.CreateTask(req).task
    victim = outside / "victim"
    victim.mkdir()
    out.symlink_to(victim)
    with pytest.raises(grpc.RpcError) as info:
        daemon.training.StartTask(T.StartTaskRequest(task_id=task.id))
    assert info.value.code() == DENIED and "output_dir" in info.value.details()
    assert daemon.training.GetTask(T.GetTaskRequest(task_id=task.id)).task.state == task.state
    assert list(victim.iterdir()) == []


def test_make_dir_under_roots(tmp_path, outside) -> None:
    roots = [tmp_path.resolve()]
    old = os.umask(0o022)
    try:
        made = make_dir_under_roots("output_dir", tmp_path / "a" / "b", roots)
    finally:
        os.umask(old)
    assert made.is_dir()
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o750
    assert stat.S_IMODE(made.stat().st_mode) == 0o750
    (tmp_path / "esc").symlink_to(outside)
    with pytest.raises(PermissionDenied):
        make_dir_under_roots("output_dir", tmp_path / "esc" / "new", roots)
    assert not (outside / "new").exists()
    inside = tmp_path / "inside-target"
    inside.mkdir()
    (tmp_path / "alias").symlink_to(inside)
    with pytest.raises(PermissionDenied) as info:  # even a link within the root: writes go to real paths
        make_dir_under_roots("output_dir", tmp_path / "alias" / "x", roots)
    assert "symlink" in str(info.value)
    with pytest.raises(PermissionDenied):
        resolve_under_roots("model_dir", "/etc", roots)


def test_delete_files_never_follows_a_planted_symlink(daemon, tiny_llama_dir, sft_jsonl, tmp_path, outside) -> None:
    out = tmp_path / "a" / "out"
    out.mkdir(parents=True)
    task = daemon.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, out))).task
    (tmp_path / "a").rename(tmp_path / "a.real")
    (outside / "out").mkdir(exist_ok=True)
    (outside / "out" / "precious").write_text("keep me")
    (tmp_path / "a").symlink_to(outside)  # <root>/a/out now leads outside the root
    daemon.training.DeleteTask(T.DeleteTaskRequest(task_id=task.id, delete_files=True))
    assert (outside / "out" / "precious").read_text() == "keep me"
