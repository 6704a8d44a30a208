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
