"""Create-time validation: every bad input gets the right code, a sentence naming the field, and no task."""
from __future__ import annotations

import json
import os
from pathlib import Path

import grpc
import pytest
from modx.v1 import training_pb2 as T

from .helpers import create_request, sft_params


def _count(daemon) -> int:
    return daemon.training.ListTasks(T.ListTasksRequest()).total_size


def _expect(daemon, req, code: grpc.StatusCode, *fragments: str) -> None:
    before = _count(daemon)
    with pytest.raises(grpc.RpcError) as info:
        daemon.training.CreateTask(req)
    assert info.value.code() == code, info.value.details()
    for fragment in fragments:
        assert fragment in info.value.details(), info.value.details()
    assert _count(daemon) == before, "a failed create must not store a task"


def test_create_stores_a_snapshot_with_estimate(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out", save_steps=2,
                                      num_train_epochs=1, lora_r=8), )
    resp = daemon.training.CreateTask(req)
    task = resp.task
    assert task.id.startswith("t-") and task.state == 1  # CREATED
    assert task.params["lora_r"].int_value == 8
    assert task.params["learning_rate"].double_value == pytest.approx(1e-3)  # SFT's automatic rate (auto_settings.py)
    assert task.params["weight_decay"].double_value == pytest.approx(0.01)  # a schema default
    assert task.params["train_file"].string_value == os.path.realpath(sft_jsonl)
    est = task.quota_estimate
    # 32 examples, batch 2 x accum 4 -> 16 batches -> 4 steps; save every 2 -> 2 checkpoints.
    assert (est.num_examples, est.steps_per_epoch, est.total_steps, est.checkpoints) == (32, 4, 4, 2)
    assert est.fits and "ceil(4 / save_steps 2)" in est.explanation
    got = daemon.training.GetTask(T.GetTaskRequest(task_id=task.id)).task
    assert got.params == task.params


def test_validate_only_stores_nothing(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    before = _count(daemon)
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out"))
    req.validate_only = True
    assert daemon.training.CreateTask(req).task.quota_estimate.total_steps > 0
    assert _count(daemon) == before


def test_quota_warning_when_estimate_exceeds_balance(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    d = make_daemon(quota=1)
    resp = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o",
                                                             save_steps=1)))
    assert [w.code for w in resp.warnings] == ["quota_insufficient"]
    assert not resp.task.quota_estimate.fits


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "malformed": ('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                      '{"messages": [oops\n'),
        "no_assistant": '{"messages": [{"role": "user", "content": "hi"}]}\n',
        "empty": "",
    }
    out = {}
    for name, text in files.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(text)
        out[name] = path
    out["binary"] = tmp_path / "binary.jsonl"
    out["binary"].write_bytes(b"\x00\xff\xfe\x00garbage")
    return out


def test_malformed_line_names_file_and_line(daemon, tiny_llama_dir, bad_files, tmp_path) -> None:
    req = create_request(**sft_params(tiny_llama_dir, bad_files["malformed"], tmp_path / "o"))
    _expect(daemon, req, grpc.StatusCode.INVALID_ARGUMENT, "train_file", str(bad_files["malformed"]), "line 2")


@pytest.mark.parametrize("name, fragment", [("no_assistant", "assistant"), ("empty", "no examples"),
                                            ("binary", "train_file")])
def test_bad_data_files(daemon, tiny_llama_dir, bad_files, tmp_path, name, fragment) -> None:
    req = create_request(**sft_params(tiny_llama_dir, bad_files[name], tmp_path / "o"))
    _expect(daemon, req, grpc.StatusCode.INVALID_ARGUMENT, fragment)


def test_missing_data_file(daemon, tiny_llama_dir, tmp_path) -> None:
    req = create_request(**sft_params(tiny_llama_dir, tmp_path / "nope.jsonl", tmp_path / "o"))
    _expect(daemon, req, grpc.StatusCode.FAILED_PRECONDITION, "train_file", "does not exist")


def test_unreadable_data_file(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "secret.jsonl"
    path.write_text(sft_jsonl.read_text())
    path.chmod(0)
    _expect(daemon, create_request(**sft_params(tiny_llama_dir, path, tmp_path / "o")),
            grpc.StatusCode.FAILED_PRECONDITION, "not readable")


def test_model_dir_without_config_or_weights(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    _expect(daemon, create_request(**sft_params(empty, sft_jsonl, tmp_path / "o")),
            grpc.StatusCode.FAILED_PRECONDITION, "model_dir", "config.json")
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tiny_llama_dir / "config.json").read_text())
    _expect(daemon, create_request(**sft_params(no_weights, sft_jsonl, tmp_path / "o")),
            grpc.StatusCode.FAILED_PRECONDITION, "model_dir", "safetensors")


def test_gguf_model_is_refused_with_an_explanation(daemon, sft_jsonl, tmp_path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\x00" * 64)
    _expect(daemon, create_request(**sft_params(gguf, sft_jsonl, tmp_path / "o")),
            grpc.StatusCode.INVALID_ARGUMENT, "model_dir", "GGUF", "inference", "import-gguf")


def test_non_causal_model_is_refused(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    model = tmp_path / "bert"
    model.mkdir()
    config = json.loads((tiny_llama_dir / "config.json").read_text())
    config["architectures"] = ["BertModel"]
    (model / "config.json").write_text(json.dumps(config))
    (model / "model.safetensors").write_bytes((tiny_llama_dir / "model.safetensors").read_bytes())
    _expect(daemon, create_request(**sft_params(model, sft_jsonl, tmp_path / "o")),
            grpc.StatusCode.INVALID_ARGUMENT, "not a causal language model")


def test_path_outside_roots(daemon, tiny_llama_dir, sft_jsonl) -> None:
    _expect(daemon, create_request(**sft_params(tiny_llama_dir, sft_jsonl, "/etc/modx-out")),
            grpc.StatusCode.PERMISSION_DENIED, "output_dir", "outside the allowed roots")
    _expect(daemon, create_request(**sft_params(tiny_llama_dir, "/etc/passwd", "/tmp/x")),
            grpc.StatusCode.PERMISSION_DENIED, "train_file")


def test_symlink_escape_is_refused(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    link = tmp_path / "escape"
    link.symlink_to("/etc")
    _expect(daemon, create_request(**sft_params(tiny_llama_dir, sft_jsonl, link / "out")),
            grpc.StatusCode.PERMISSION_DENIED, "output_dir")


def test_output_dir_that_cannot_be_written(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _expect(daemon, create_request(**sft_params(tiny_llama_dir, sft_jsonl, blocker)),
            grpc.StatusCode.FAILED_PRECONDITION, "output_dir", "not a dir")
    _expect(daemon, create_request(**sft_params(tiny_llama_dir, sft_jsonl, blocker / "sub")),
            grpc.StatusCode.FAILED_PRECONDITION, "output_dir", "cannot be written")


@pytest.mark.parametrize("key, value, code, fragment", [
    ("lora_r", "1000", grpc.StatusCode.INVALID_ARGUMENT, "lora_r must be between 1 and 512"),
    ("bogus", "1", grpc.StatusCode.INVALID_ARGUMENT, "unknown parameter 'bogus'"),
    ("max_seq_length", "100000", grpc.StatusCode.INVALID_ARGUMENT, "max_position_embeddings"),
])
def test_bad_parameters(daemon, tiny_llama_dir, sft_jsonl, tmp_path, key, value, code, fragment) -> None:
    _expect(daemon, create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", **{key: value})),
            code, fragment)


def test_tokenizer_without_chat_template_needs_the_parameter(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    tok = tmp_path / "tok"
    tok.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_llama_dir / name).exists():
            data = (tiny_llama_dir / name).read_text()
            if name == "tokenizer_config.json":
                cfg = json.loads(data)
                cfg.pop("chat_template", None)
                data = json.dumps(cfg)
            (tok / name).write_text(data)
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", tokenizer_dir=tok))
    _expect(daemon, req, grpc.StatusCode.FAILED_PRECONDITION, "chat template", "chat_template")
    req.params["chat_template"].string_value = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert daemon.training.CreateTask(req).task.id


def test_evaluation_without_evaluation_data_is_refused(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    """One rule (modxd/plan.py eval_data_problem): no eval data in the parameters, or a split that holds
    none, is refused at create; the worker applies the same rule to what it prepares."""
    _expect(daemon, create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", eval_strategy="steps")),
            grpc.StatusCode.INVALID_ARGUMENT, "eval_strategy needs evaluation data")
    one = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", eval_strategy="epoch",
                                      eval_split_ratio="0.5", max_samples="1"))
    _expect(daemon, one, grpc.StatusCode.INVALID_ARGUMENT, "eval split (eval_split_ratio 0.5", "holds no example")
    one.params["max_samples"].string_value = "4"
    assert daemon.training.CreateTask(one).task.quota_estimate.num_examples == 2


def test_resume_checkpoint_rule_at_create(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    """The rule of a resumable checkpoint (engine/checkpoints.py resume_problem) is the one ResumeTask
    and the worker apply: trainer_state.json in it, finite weights."""
    import numpy as np
    from safetensors.numpy import save_file

    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", resume_from_checkpoint=ckpt))
    _expect(daemon, req, grpc.StatusCode.FAILED_PRECONDITION, "resume_from_checkpoint", "not a training checkpoint")
    (ckpt / "trainer_state.json").write_text("{}")
    save_file({"w": np.array([[1.0, float("nan")]], dtype=np.float32)}, str(ckpt / "adapter_model.safetensors"))
    _expect(daemon, req, grpc.StatusCode.FAILED_PRECONDITION, "cannot be resumed", "NaN", "earlier checkpoint")


def test_missing_required_parameter(daemon, sft_jsonl, tmp_path) -> None:
    _expect(daemon, create_request(train_file=sft_jsonl, output_dir=tmp_path / "o"),
            grpc.StatusCode.INVALID_ARGUMENT, "model_dir is required")


def test_pretraining_estimate_counts_real_tokens(daemon, tiny_qwen2_dir, pretrain_txt, tmp_path) -> None:
    req = create_request("pretrain", train_file=pretrain_txt, model_dir=tiny_qwen2_dir, output_dir=tmp_path / "o",
                         max_seq_length=32, per_device_train_batch_size=1, gradient_accumulation_steps=1,
                         num_train_epochs=1, save_strategy="no")
    task = daemon.training.CreateTask(req).task
    assert task.params["use_lora"].bool_value is False
    assert task.quota_estimate.total_steps == task.quota_estimate.num_examples > 0
    assert task.quota_estimate.checkpoints == 1
