"""The API as a client written from the protos meets it: what one call returns, the next accepts."""
from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2
from modx.v1 import inference_pb2 as I
from modx.v1 import package_pb2 as P
from modx.v1 import training_pb2 as T

from .helpers import create_request, sft_params, state_name, wait_for_state

FAST = dict(num_train_epochs=1, save_steps=4, logging_steps=1, max_seq_length=64)
DAEMON = Path(__file__).resolve().parents[2] / "daemon" / "modxd"


def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        result = call(*args, **kwargs)
        if hasattr(result, "__iter__") and not hasattr(result, "ByteSize"):
            list(result)
    return info.value


def test_validate_only_names_no_task(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o"))
    req.validate_only = True
    task = daemon.training.CreateTask(req).task
    assert task.id == "" and task.quota_estimate.total_steps > 0 and task.params["learning_rate"]
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def trained(daemon, tiny_llama_dir, sft_jsonl, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("integrator") / "o"
    task_id = daemon.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, out, **FAST))).task.id
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    task = wait_for_state(daemon, task_id, {"completed", "failed", "stopped"})
    assert state_name(task.state) == "completed", task.state_reason
    return task_id


def test_base_is_a_target_where_a_checkpoint_is_taken(daemon, trained) -> None:
    """An evaluation's best may be "base": Chat and CreatePackage take it as `checkpoint`."""
    def reply(**target) -> tuple[str, str]:
        request = I.ChatRequest(task_id=trained, messages=[I.ChatMessage(role="user", content="Hi")],
                                sampling=I.SamplingParams(max_new_tokens=4, temperature=0.0), **target)
        done = [r.done for r in daemon.inference.Chat(request, timeout=300) if r.WhichOneof("payload") == "done"]
        return done[0].text, done[0].model_key

    by_ref, key = reply(checkpoint="base")
    assert key.startswith(f"{trained}/base@")
    assert reply(base=True) == (by_ref, key)  # the same model, however it is named
    created = daemon.packages.CreatePackage(P.CreatePackageRequest(
        task_id=trained, checkpoint="base", quant_types=[P.QUANT_TYPE_F16], skip_verification=True)).package
    assert created.checkpoint_id == "base"
    events = list(daemon.packages.WatchPackage(P.WatchPackageRequest(package_id=created.id), timeout=600))
    assert events[-1].event.state == 3, daemon.packages.GetPackage(P.GetPackageRequest(package_id=created.id))
    package = daemon.packages.GetPackage(P.GetPackageRequest(package_id=created.id)).package
    models = [f for f in package.files if f.kind == "model"]
    assert len(models) == 1 and "base" in Path(models[0].path).name and Path(models[0].path).is_file()


def test_resume_from_base_is_refused_with_the_reason(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    """Where the base makes no sense (a resume continues a run), the sentence says why and where to look."""
    tr = daemon.training
    task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", **FAST))).task.id
    tr.StartTask(T.StartTaskRequest(task_id=task_id))
    tr.StopTask(T.StopTaskRequest(task_id=task_id))
    assert state_name(wait_for_state(daemon, task_id, {"stopped", "completed", "failed"}).state) == "stopped"
    error = rpc_error(tr.ResumeTask, T.ResumeTaskRequest(task_id=task_id, checkpoint="base"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "base model" in error.details() and "ListCheckpoints" in error.details()
    assert state_name(tr.GetTask(T.GetTaskRequest(task_id=task_id)).task.state) == "stopped"  # nothing changed


def test_advice_names_the_rpc_a_browser_can_call(daemon, trained) -> None:
    error = rpc_error(daemon.training.GetTemplate, T.GetTemplateRequest(name="no-such-template"))
    assert "ListTemplates" in error.details()
    error = rpc_error(daemon.inference.Chat, I.ChatRequest(task_id=trained, checkpoint="999999", messages=[
        I.ChatMessage(role="user", content="Hi")]))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "ListCheckpoints" in error.details()


def _api_names() -> set[str]:
    """Every RPC name and every request field name of modx.v1."""
    from modx.v1 import eval_pb2, inference_pb2, package_pb2, system_pb2, training_pb2

    names: set[str] = set()
    for module in (training_pb2, eval_pb2, inference_pb2, package_pb2, system_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            names.update(m.name for m in service.methods)
        for message in module.DESCRIPTOR.message_types_by_name.values():
            if message.name.endswith("Request"):
                names.update(f.name for f in message.fields)
    return names


def test_every_modxctl_hint_in_the_daemon_names_the_rpc_too() -> None:
    """A sentence a client sees may mention a modxctl command only beside the RPC or field it calls."""
    names = _api_names()
    offenders = []
    for path in DAEMON.rglob("*.py"):
        if path.name == "main.py":  # modxd's own command line, not RPC errors
            continue
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            stripped = line.strip()
            if "modxctl " not in line or stripped.startswith("#") or ('"' not in line and "'" not in line):
                continue
            window = " ".join(lines[max(0, number - 3):number]).replace("modxctl", "")
            words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", window))
            if not words & names:
                offenders.append(f"{path.relative_to(DAEMON)}:{number}: {stripped}")
    assert not offenders, "\n".join(offenders)


def test_reflection_v1_and_v1alpha(daemon) -> None:
    for version in ("v1", "v1alpha"):
        method = f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"
        call = daemon.channel.stream_stream(method, request_serializer=reflection_pb2.ServerReflectionRequest
                                            .SerializeToString,
                                            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        responses = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services=""),
                                    reflection_pb2.ServerReflectionRequest(
                                        file_containing_symbol="modx.v1.TrainingService")]), timeout=60))
        names = {s.name for s in responses[0].list_services_response.service}
        assert {"modx.v1.TrainingService", "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection"} <= names, (version, names)
        assert responses[1].file_descriptor_response.file_descriptor_proto, version
