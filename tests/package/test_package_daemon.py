"""`modxctl package` against a real daemon, as a user drives it: train, package, show, list."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import grpc
import pytest
from modx.v1 import package_pb2 as P

from tests.daemon.helpers import create_request, sft_params, state_name, wait_for_state

FAST = dict(num_train_epochs=1, save_steps=4, logging_steps=1, max_seq_length=64)


@pytest.fixture(scope="module")
def trained(daemon, tiny_llama_dir, sft_jsonl, tmp_path_factory) -> tuple[str, int]:
    """A completed LoRA task and the step of its last checkpoint."""
    from modx.v1 import training_pb2 as T

    out = tmp_path_factory.mktemp("pkg-task") / "o"
    task_id = daemon.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, out, **FAST))).task.id
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    task = wait_for_state(daemon, task_id, {"completed", "failed", "stopped"})
    assert state_name(task.state) == "completed", task.state_reason
    ckpts = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    return task_id, ckpts[-1].step


def test_package_create_show_list(daemon, trained) -> None:
    task_id, step = trained
    run = daemon.cli("package", "create", task_id, "--checkpoint", str(step), "--quant", "f16", "--quant", "Q8_0",
                     timeout=300)
    assert "verification against the original checkpoint" in run.stdout, run.stdout
    assert "F16" in run.stdout and "Q8_0" in run.stdout and "100.0%" in run.stdout

    listed = daemon.cli_json("package", "list", "--task", task_id)["packages"]
    assert len(listed) >= 1
    package = daemon.cli_json("package", "show", listed[0]["id"])["package"]
    assert package["state"] == "JOB_STATE_COMPLETED" and package["merge"] is True
    assert package["output_dir"].endswith(os.path.join("o", "packages", package["id"]))
    files = package["files"]
    kinds = sorted(f["kind"] for f in files)
    assert kinds == ["model", "model", "model_card", "modelfile", "modelfile"]
    for f in files:
        assert Path(f["path"]).parent == Path(package["output_dir"])
        data = Path(f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == int(f["size_bytes"])
    assert not [n for n in os.listdir(package["output_dir"]) if n.startswith(".")]
    ver = {v["quant_type"]: v for v in package["verifications"]}
    assert ver["QUANT_TYPE_F16"]["tokenizer_match"] and ver["QUANT_TYPE_F16"]["top1_agreement"] == 1.0

    # The event stream: progress with tensor counts and bytes, then the files, then completed.
    stub = daemon.packages
    created = stub.CreatePackage(P.CreatePackageRequest(task_id=task_id, checkpoint=str(step), merge=False,
                                                        quant_types=[P.QUANT_TYPE_F32], skip_verification=True))
    events = list(stub.WatchPackage(P.WatchPackageRequest(package_id=created.package.id)))
    kinds_seen = [e.event.WhichOneof("payload") for e in events]
    assert kinds_seen[-1] == "state" and events[-1].event.state == 3  # JOB_STATE_COMPLETED
    progress = [e.event.progress for e in events if e.event.WhichOneof("payload") == "progress"]
    convert = [p for p in progress if p.phase == "convert"]
    assert convert and convert[-1].tensors_done == convert[-1].tensors_total and convert[-1].bytes_written > 0
    files = [e.event.file for e in events if e.event.WhichOneof("payload") == "file"]
    assert {f.kind for f in files} == {"model", "adapter", "modelfile", "model_card"}
    assert [e.event.seq for e in events] == sorted({e.event.seq for e in events})


def test_package_refusals(daemon, trained, tmp_path) -> None:
    task_id, step = trained
    bad = daemon.cli("package", "create", task_id, "--checkpoint", "999999", "--quant", "f16", check=False)
    assert bad.returncode != 0 and "has no checkpoint '999999'" in bad.stderr
    bad = daemon.cli("package", "create", task_id, "--checkpoint", str(step), "--quant", "f16", "--output-dir",
                     "/usr/share/modx-nope", check=False)
    assert bad.returncode != 0 and "outside the allowed roots" in bad.stderr
    bad = daemon.cli("package", "create", "t-nope", "--checkpoint", "1", "--quant", "f16", check=False)
    assert bad.returncode != 0 and "does not exist" in bad.stderr
    bad = daemon.cli("package", "create", task_id, "--checkpoint", str(step), "--quant", "q9_z", check=False)
    assert bad.returncode != 0 and "not a quantization type" in bad.stderr
    with pytest.raises(grpc.RpcError) as info:
        daemon.packages.CreatePackage(P.CreatePackageRequest(task_id=task_id, checkpoint=str(step)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "at least one" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        daemon.packages.GetPackage(P.GetPackageRequest(package_id="pkg-nope"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def package(daemon, trained) -> P.Package:
    """A completed F16 package (merged, not verified: the download is what these tests look at)."""
    task_id, step = trained
    created = daemon.packages.CreatePackage(P.CreatePackageRequest(
        task_id=task_id, checkpoint=str(step), quant_types=[P.QUANT_TYPE_F16], skip_verification=True)).package
    for _ in daemon.packages.WatchPackage(P.WatchPackageRequest(package_id=created.id)):
        pass
    done = daemon.packages.GetPackage(P.GetPackageRequest(package_id=created.id)).package
    assert done.state == 3, done.state_reason  # JOB_STATE_COMPLETED
    return done


def _read(daemon, package_id: str, path: str, offset: int = 0) -> list:
    request = P.ReadPackageFileRequest(package_id=package_id, path=path, offset=offset)
    return [r.chunk for r in daemon.packages.ReadPackageFile(request)]


def _refused(call, code: grpc.StatusCode, *fragments: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == code, info.value.details()
    for fragment in fragments:
        assert fragment in info.value.details(), info.value.details()


def test_package_files_download_whole_resumed_and_verified(daemon, package, tmp_path) -> None:
    from modxd.downloads import CHUNK_BYTES

    model = next(f for f in package.files if f.kind == "model")
    data = Path(model.path).read_bytes()
    chunks = _read(daemon, package.id, model.path)
    assert all(len(c.data) <= CHUNK_BYTES for c in chunks) and len(chunks) == -(-len(data) // CHUNK_BYTES)
    assert b"".join(c.data for c in chunks) == data and [c.offset for c in chunks] == list(
        range(0, len(data), CHUNK_BYTES))
    assert chunks[-1].sha256 == model.sha256 == hashlib.sha256(data).hexdigest()
    assert not any(c.sha256 for c in chunks[:-1]) and {c.size_bytes for c in chunks} == {model.size_bytes}
    offset = len(data) // 3  # (several chunks of a big file: tests/package/test_downloads.py)
    rest = _read(daemon, package.id, os.path.basename(model.path), offset=offset)  # by its name too
    assert rest[0].offset == offset and b"".join(c.data for c in rest) == data[offset:]
    assert rest[-1].sha256 == model.sha256
    for f in package.files:
        assert hashlib.sha256(b"".join(c.data for c in _read(daemon, package.id, f.path))).hexdigest() == f.sha256

    target = tmp_path / "model.gguf"
    (tmp_path / ".model.gguf.part").write_bytes(data[:offset])
    saved = daemon.cli_json("package", "download", package.id, os.path.basename(model.path), "-o", str(target))
    assert saved["resumedFrom"] == str(offset) and saved["sha256"] == model.sha256 and target.read_bytes() == data
    card = next(f for f in package.files if f.kind == "model_card")
    shown = daemon.cli("package", "download", package.id, card.path, "-o", str(tmp_path)).stdout
    assert "verified" in shown and (tmp_path / "README.md").read_bytes() == Path(card.path).read_bytes()


def test_package_downloads_serve_only_the_files_the_job_wrote(daemon, package, trained, tmp_path) -> None:
    not_found, denied = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED
    model = next(f for f in package.files if f.kind == "model")
    folder = Path(model.path).parent
    (folder / "notes.txt").write_text("not the job's")
    for path in ("/etc/passwd", str(folder / "notes.txt"), "notes.txt", str(folder), "../../etc/passwd", ""):
        _refused(lambda: _read(daemon, package.id, path), not_found, f"package {package.id} has no file",
                 os.path.basename(model.path))
    _refused(lambda: _read(daemon, "pkg-nope", model.path), not_found, "pkg-nope")
    _refused(lambda: _read(daemon, package.id, model.path, offset=model.size_bytes + 1),
             grpc.StatusCode.INVALID_ARGUMENT, "offset")
    bad = daemon.cli("package", "download", package.id, "notes.txt", "-o", str(tmp_path / "n"), check=False)
    assert bad.returncode != 0 and "has no file 'notes.txt'" in bad.stderr and not (tmp_path / "n").exists()

    real = Path(model.path)
    moved = tmp_path / "moved.gguf"
    real.rename(moved)
    real.symlink_to(moved)  # the listed path is now a symlink: refused, not followed
    _refused(lambda: _read(daemon, package.id, model.path), denied, "symlink", model.path)
    real.unlink()
    moved.rename(real)
    assert _read(daemon, package.id, model.path)[-1].sha256 == model.sha256
