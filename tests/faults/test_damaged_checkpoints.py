"""A checkpoint damaged on disk after training is refused by every RPC that hands it to a worker.

Chat, CreateEvaluation and CreatePackage each load a checkpoint in a worker. A checkpoint whose
adapter weights were deleted, whose adapter_config.json or config.json is not JSON, or whose
safetensors header is broken once reached the worker, where the library's exception (an
HFValidationError, a JSONDecodeError) made Chat answer INTERNAL and the evaluation or package fail
later as a job. Each is FAILED_PRECONDITION now, naming the checkpoint, its dir and what is wrong
(engine/checkpoints.checkpoint_kind, the one rule), and nothing is created.
"""
from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
import pytest
from modx.v1 import eval_pb2 as E
from modx.v1 import inference_pb2 as I
from modx.v1 import package_pb2 as P
from modx.v1 import training_pb2 as T

from tests.support.daemon import Daemon

from ..daemon.helpers import create_request, rpc_error, sft_params, state_name, wait_for_state

QUICK = dict(num_train_epochs=1, max_samples=16, per_device_train_batch_size=2, gradient_accumulation_steps=1,
             logging_steps=1, max_seq_length=64, save_steps=1, save_total_limit=10)


def _broken_header(directory: Path) -> None:
    raw = json.dumps({"w": {"dtype": "F32", "shape": "abc", "data_offsets": [0, 4]}}).encode()
    (directory / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)


def _full_model_bad_config(directory: Path) -> None:
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (directory / name).unlink()
    (directory / "config.json").write_text("{not json")


# damage -> (what it does to a checkpoint dir, the words the refusal must hold)
DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "adapter-weights-deleted": (lambda d: (d / "adapter_model.safetensors").unlink(), "no adapter weights"),
    "adapter-config-not-json": (lambda d: (d / "adapter_config.json").write_text("garbage"),
                                "adapter_config.json, which cannot be read as JSON"),
    "adapter-config-a-list": (lambda d: (d / "adapter_config.json").write_text("[1, 2]"), "not a JSON object"),
    "adapter-header-broken": (_broken_header, "damaged adapter_model.safetensors"),
    "neither-adapter-nor-model": (lambda d: (d / "adapter_config.json").unlink(), "holds neither a LoRA adapter"),
    "full-model-config-not-json": (_full_model_bad_config, "config.json, which cannot be read as JSON"),
}


@dataclass
class Trained:
    daemon: Daemon
    task_id: str
    damaged: dict[str, Any]  # damage name -> its checkpoint record
    healthy: Any             # an undamaged checkpoint, to compare with
    broken_base_task: str    # a task whose base model's weights were damaged after it was created


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, roots: Path, tiny_llama_dir: Path, sft_jsonl: Path
            ) -> Iterator[Trained]:
    base = tmp_path_factory.mktemp("damaged-checkpoints")
    d = Daemon(base / "state", [roots], quota=100).start()
    try:
        task_id = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, base / "out",
                                                                    **QUICK))).task.id
        d.training.StartTask(T.StartTaskRequest(task_id=task_id))
        task = wait_for_state(d, task_id, {"completed", "failed", "stopped"}, timeout=600)
        assert state_name(task.state) == "completed", (task.state_reason, list(task.failure_log_tail))
        ckpts = list(d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints)
        assert len(ckpts) > len(DAMAGE), ckpts
        damaged = {}
        for (name, (damage, _)), ckpt in zip(DAMAGE.items(), ckpts):
            damage(Path(ckpt.path))
            damaged[name] = ckpt
        model = base / "model-to-damage"
        shutil.copytree(tiny_llama_dir, model)
        other = d.training.CreateTask(create_request(**sft_params(model, sft_jsonl, base / "out-2"))).task.id
        (model / "model.safetensors").write_bytes(struct.pack("<Q", 10) + b"not json!!")
        yield Trained(d, task_id, damaged, ckpts[-1], other)
    finally:
        d.kill()


def _chat(t: Trained, ref: str) -> Any:
    return list(t.daemon.inference.Chat(I.ChatRequest(
        task_id=t.task_id, checkpoint=ref, messages=[I.ChatMessage(role="user", content="hi")],
        sampling=I.SamplingParams(max_new_tokens=2, seed=1)), timeout=300))


def _package(t: Trained, ref: str, out: Path) -> Any:
    return t.daemon.packages.CreatePackage(P.CreatePackageRequest(
        task_id=t.task_id, checkpoint=ref, quant_types=[P.QUANT_TYPE_F16], output_dir=str(out),
        skip_verification=True))


def _evaluate(t: Trained, ref: str) -> Any:
    return t.daemon.evals.CreateEvaluation(E.CreateEvaluationRequest(
        task_id=t.task_id, checkpoints=[ref, t.healthy.id], samples=1,
        generation=E.GenerationSettings(max_new_tokens=2)))


def _resume_from(t: Trained, path: str, out: Path, model: Path, data: Path) -> Any:
    """A new task that resumes from the checkpoint (resume_from_checkpoint), refused at create."""
    return t.daemon.training.CreateTask(create_request(**sft_params(model, data, out, resume_from_checkpoint=path)))


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("rpc", ["chat", "package", "evaluate", "resume-from"])
def test_a_damaged_checkpoint_is_failed_precondition(trained: Trained, tmp_path: Path, damage: str, rpc: str,
                                                     tiny_llama_dir: Path, sft_jsonl: Path) -> None:
    ckpt = trained.damaged[damage]
    out = tmp_path / "pkg"
    call = {"chat": lambda: _chat(trained, ckpt.id), "package": lambda: _package(trained, ckpt.id, out),
            "evaluate": lambda: _evaluate(trained, ckpt.id),
            "resume-from": lambda: _resume_from(trained, ckpt.path, out, tiny_llama_dir, sft_jsonl)}[rpc]
    tasks = trained.daemon.training.ListTasks(T.ListTasksRequest()).total_size
    error = rpc_error(call)
    details = error.details() or ""
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, (error.code(), details)
    assert trained.daemon.training.ListTasks(T.ListTasksRequest()).total_size == tasks
    for fragment in (ckpt.path, DAMAGE[damage][1], *((ckpt.id,) if rpc != "resume-from" else ())):
        assert fragment in details, (fragment, details)
    assert "Traceback" not in details
    assert not out.exists(), "a refused package created its output dir"
    d = trained.daemon
    assert not d.packages.ListPackages(P.ListPackagesRequest(task_id=trained.task_id)).packages
    assert not d.evals.ListEvaluations(E.ListEvaluationsRequest(task_id=trained.task_id)).evaluations
    assert d.proc.poll() is None and d.healthy()


def test_an_undamaged_checkpoint_still_chats(trained: Trained) -> None:
    """The rule refuses damage, not checkpoints: the last one, untouched, answers."""
    replies = _chat(trained, trained.healthy.id)
    assert replies and replies[-1].HasField("done"), replies[-1:]



def test_a_damaged_base_model_is_failed_precondition(trained: Trained, tmp_path: Path) -> None:
    """The base model is loaded like a checkpoint (chat --base, a package of 'base'): the same rule."""
    d, task_id = trained.daemon, trained.broken_base_task
    calls = {
        "chat": lambda: list(d.inference.Chat(I.ChatRequest(
            task_id=task_id, base=True, messages=[I.ChatMessage(role="user", content="hi")]), timeout=300)),
        "package": lambda: d.packages.CreatePackage(P.CreatePackageRequest(
            task_id=task_id, checkpoint="base", quant_types=[P.QUANT_TYPE_F16], output_dir=str(tmp_path / "pkg"),
            skip_verification=True)),
    }
    for rpc, call in calls.items():
        error = rpc_error(call)
        details = error.details() or ""
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, (rpc, error.code(), details)
        assert "model-to-damage" in details and "damaged model.safetensors" in details, (rpc, details)
    assert not (tmp_path / "pkg").exists()
    assert not d.packages.ListPackages(P.ListPackagesRequest(task_id=task_id)).packages
