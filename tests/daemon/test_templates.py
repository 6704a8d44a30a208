"""Templates: built-ins, user templates, and task snapshots that later edits never touch."""
from __future__ import annotations

import grpc
import pytest
from modx.v1 import common_pb2 as C
from modx.v1 import training_pb2 as T

from .helpers import create_request, sft_params


def _save(daemon, name: str, overwrite: bool = False, **params) -> T.Template:
    req = T.SaveTemplateRequest(name=name, type=C.TASK_TYPE_SFT, overwrite=overwrite, description="test")
    for key, value in params.items():
        req.params[key].string_value = str(value)
    return daemon.training.SaveTemplate(req).template


def test_builtins_are_listed_and_protected(daemon) -> None:
    names = {t.name: t for t in daemon.training.ListTemplates(T.ListTemplatesRequest()).templates}
    assert names["default-sft"].builtin and names["default-pretrain"].builtin
    assert names["default-sft"].params["use_lora"].bool_value is True
    assert names["default-pretrain"].params["use_lora"].bool_value is False
    with pytest.raises(grpc.RpcError) as info:
        daemon.training.DeleteTemplate(T.DeleteTemplateRequest(name="default-sft"))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_task_keeps_its_snapshot_when_the_template_changes(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    _save(daemon, "snap", lora_r=32, learning_rate=1e-3)
    task = daemon.training.CreateTask(create_request(
        template="snap", **sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", lora_alpha=64))).task
    assert task.template == "snap"
    assert task.params["lora_r"].int_value == 32 and task.params["lora_alpha"].int_value == 64
    with pytest.raises(grpc.RpcError) as info:
        _save(daemon, "snap", lora_r=4)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "overwrite" in info.value.details()
    _save(daemon, "snap", overwrite=True, lora_r=4, learning_rate=5e-5)
    assert daemon.training.GetTemplate(T.GetTemplateRequest(name="snap")).template.params["lora_r"].int_value == 4
    again = daemon.training.GetTask(T.GetTaskRequest(task_id=task.id)).task
    assert again.params["lora_r"].int_value == 32
    assert again.params["learning_rate"].double_value == pytest.approx(1e-3)
    daemon.training.DeleteTemplate(T.DeleteTemplateRequest(name="snap"))
    assert daemon.training.GetTask(T.GetTaskRequest(task_id=task.id)).task.params == again.params


def test_template_from_task(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    task = daemon.training.CreateTask(create_request(
        **sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", lora_r=12))).task
    req = T.SaveTemplateRequest(name="from-task", from_task_id=task.id)
    req.params["seed"].string_value = "7"
    tpl = daemon.training.SaveTemplate(req).template
    assert tpl.type == C.TASK_TYPE_SFT
    assert tpl.params["lora_r"].int_value == 12 and tpl.params["seed"].int_value == 7


@pytest.mark.parametrize("req, code, fragment", [
    (T.SaveTemplateRequest(name="bad name!", type=C.TASK_TYPE_SFT), grpc.StatusCode.INVALID_ARGUMENT, "template name"),
    (T.SaveTemplateRequest(name="notype"), grpc.StatusCode.INVALID_ARGUMENT, "needs a type"),
    (T.SaveTemplateRequest(name="default-sft", type=C.TASK_TYPE_SFT), grpc.StatusCode.FAILED_PRECONDITION, "built in"),
])
def test_bad_templates(daemon, req, code, fragment) -> None:
    with pytest.raises(grpc.RpcError) as info:
        daemon.training.SaveTemplate(req)
    assert info.value.code() == code and fragment in info.value.details()


def test_a_template_holds_no_path_outside_the_allowed_roots(daemon) -> None:
    """A template's paths are ones a task could use; refused at save, and nothing is stored."""
    req = T.SaveTemplateRequest(name="escapes", type=C.TASK_TYPE_SFT)
    req.params["model_dir"].string_value = "/etc"
    with pytest.raises(grpc.RpcError) as info:
        daemon.training.SaveTemplate(req)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "parameter model_dir" in info.value.details() and "outside the allowed roots" in info.value.details()
    names = [t.name for t in daemon.training.ListTemplates(T.ListTemplatesRequest()).templates]
    assert "escapes" not in names


def test_unknown_template(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    with pytest.raises(grpc.RpcError) as info:
        daemon.training.CreateTask(create_request(template="nope", **sft_params(tiny_llama_dir, sft_jsonl, tmp_path)))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "template 'nope'" in info.value.details()


def test_schema_rpc_filters_by_type(daemon) -> None:
    resp = daemon.training.GetParamSchema(T.GetParamSchemaRequest(type=C.TASK_TYPE_PRETRAIN))
    keys = {p.key for p in resp.params}
    assert "use_lora" in keys and "lora_r" not in keys and "train_file" in keys
    assert list(resp.fold_groups) == ["", "optional", "advanced", "optimization", "save", "eval"]
    spec = {p.key: p for p in daemon.training.GetParamSchema(T.GetParamSchemaRequest()).params}["lora_r"]
    assert (spec.min, spec.max, spec.default_value.int_value, spec.label_en) == (1, 512, 16, "LoRA rank")
