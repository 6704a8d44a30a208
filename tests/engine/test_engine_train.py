"""run_training end to end on tiny models: learning, masking, precision, merge, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modxd.engine.data import IGNORE_INDEX, prepare_data, tokenize_conversation
from modxd.engine.models import EngineError, inspect_model_dir
from modxd.engine.train import run_training
from modxd.errors import InvalidArgument
from tests.fixtures.datasets import ANSWER, write_pretrain_txt, write_sft_jsonl
from tests.fixtures.plugin import (  # noqa: F401
    EventRecorder,
    engine_config,
    pretrain_txt,
    sft_jsonl,
    sft_mixed_jsonl,
    tiny_llama_dir,
    tiny_qwen2_dir,
)
from tests.fixtures.tiny_models import make_non_causal_model, make_tiny_tokenizer


def no_command() -> None:
    return None


def labelled_groups(example: dict) -> list[list[int]]:
    groups, current = [], []
    for token, label in zip(example["input_ids"], example["labels"]):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def test_only_assistant_turns_are_labelled() -> None:
    tok = make_tiny_tokenizer()
    conv = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hi in Chinese 🙂"},
            {"role": "assistant", "content": "你好 🙂 hello"},
            {"role": "user", "content": "And thanks?"},
            {"role": "assistant", "content": "谢谢, thanks!\nSecond line."},
            {"role": "user", "content": "a trailing prompt is dropped"}]
    example, truncated = tokenize_conversation(tok, conv, 512)
    assert not truncated
    decoded = [tok.decode(g) for g in labelled_groups(example)]
    assert decoded == ["你好 🙂 hello<|im_end|>", "谢谢, thanks!\nSecond line.<|im_end|>"]
    assert "trailing" not in tok.decode(example["input_ids"])
    short, truncated = tokenize_conversation(tok, conv, 20)
    assert truncated and len(short["input_ids"]) == 20


def test_prepare_data_caps_splits_and_warns(tmp_path: Path, tiny_llama_dir: Path) -> None:  # noqa: F811
    tok = make_tiny_tokenizer()
    train = write_sft_jsonl(tmp_path / "t.jsonl", n=20, fmt="mixed")
    cfg = engine_config(tiny_llama_dir, train, tmp_path / "o", max_samples=10, eval_split_ratio=0.2,
                        max_seq_length=40).params
    data = prepare_data(cfg, tok, lambda m: None)
    # 10 capped, 2 split off (seeded); with a system prompt the answer starts after token 40:
    # those examples are dropped, the others truncated
    assert data.eval is not None and len(data.eval) + len(data.train) < 10
    codes = [w["code"] for w in data.warnings]
    assert "examples_dropped" in codes and "examples_truncated" in codes
    again = prepare_data(cfg, tok, lambda m: None)
    assert again.train.examples == data.train.examples  # the split is seeded
    data = prepare_data(cfg.replace(max_seq_length=128), tok, lambda m: None)
    assert (len(data.train), len(data.eval)) == (8, 2) and not data.warnings
    with pytest.raises(EngineError, match="no training example of train_file .* keeps an assistant token"):
        prepare_data(cfg.replace(max_seq_length=16), tok, lambda m: None)


def test_pretraining_blocks_match_the_quota_estimate(tmp_path: Path, tiny_qwen2_dir: Path) -> None:  # noqa: F811
    from tokenizers import Tokenizer

    from modxd.engine.formats import iter_pretrain_texts
    from modxd.plan import effective_examples

    corpus = write_pretrain_txt(tmp_path / "c.txt", n=40)
    tok = make_tiny_tokenizer()
    fast = Tokenizer.from_file(str(tiny_qwen2_dir / "tokenizer.json"))
    # the daemon's count: tokens without special tokens, plus one eos per document
    tokens = sum(len(fast.encode(t, add_special_tokens=False).ids) + 1 for t in iter_pretrain_texts(str(corpus)))
    for max_samples, ratio in [(0, 0.0), (0, 0.25), (5, 0.2), (10_000, 0.0)]:
        cfg = engine_config(tiny_qwen2_dir, corpus, tmp_path / "o", task_type="pretrain", max_seq_length=32,
                            max_samples=max_samples, eval_split_ratio=ratio).params
        data = prepare_data(cfg, tok, lambda m: None)
        assert len(data.train) == effective_examples(tokens // 32, max_samples, ratio, False)
        assert all(len(b["input_ids"]) == 32 and b["labels"] == b["input_ids"] for b in data.train.examples)
        assert (data.eval is not None) == (ratio > 0)
    stream = [t for b in data.train.examples for t in b["input_ids"]]
    assert stream.count(tok.eos_token_id) >= 30 and tok.bos_token_id not in stream  # eos between documents


def test_sft_lora_learns_saves_and_merges(tmp_path: Path, tiny_llama_dir: Path, sft_mixed_jsonl: Path) -> None:  # noqa: F811
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rec = EventRecorder()
    out = tmp_path / "out"
    cfg = engine_config(tiny_llama_dir, sft_mixed_jsonl, out, num_train_epochs=3, learning_rate=3e-2,
                        lora_target_modules=["all-linear"], merge_lora_after_training=True, fp16=True,
                        gradient_checkpointing=True, logging_steps=2)
    result = run_training(cfg, rec, no_command)
    assert result["outcome"] == "completed" and result["reason"] == "completed"
    assert result["final_step"] == 24 and rec.of("total_steps") == [{"type": "total_steps", "total_steps": 24}]
    losses = [m["loss"] for m in rec.train_metrics]
    assert losses[-1] < losses[0] - 1.0, losses
    assert result["final_loss"] == pytest.approx(losses[-1])
    last = rec.train_metrics[-1]
    assert set(last) == {"type", "step", "total_steps", "epoch", "percent", "eta_seconds", "loss", "perplexity",
                         "learning_rate", "grad_norm", "tokens_per_second", "time",
                         "host_memory_rss_bytes"}  # device telemetry on the CPU: the worker's RSS only
    assert last["host_memory_rss_bytes"] > 0
    assert last["percent"] == 100.0 and last["tokens_per_second"] > 0 and last["grad_norm"] is not None
    assert "fp16_unavailable" not in rec.warning_codes()  # fp16 is only the default: a note, not a warning
    assert any("fp16 is on (the default) and the CPU has no fp16" in e["message"] for e in rec.of("log"))
    assert any("training data: 32 examples" in e["message"] for e in rec.of("log"))
    assert list((out / "runs").rglob("events.out.tfevents.*")), "tensorboard event files"

    [ckpt] = rec.of("checkpoint")
    path = Path(ckpt["path"])
    assert path == out / "checkpoints" / "checkpoint-24" and ckpt["step"] == 24 and ckpt["size_bytes"] > 0
    assert {"adapter_model.safetensors", "adapter_config.json", "optimizer.pt", "scheduler.pt",
            "trainer_state.json", "rng_state.pth", "tokenizer.json"} <= {p.name for p in path.iterdir()}

    tok = AutoTokenizer.from_pretrained(path)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Question 99: what about 猫?"}],
                                     tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    adapted = PeftModel.from_pretrained(base, path).eval()
    merged = AutoModelForCausalLM.from_pretrained(result["merged_dir"]).eval()
    assert Path(result["merged_dir"]) == out / "merged" and (out / "merged" / "tokenizer.json").exists()
    with torch.no_grad():
        torch.testing.assert_close(adapted(ids).logits, merged(ids).logits, atol=1e-4, rtol=1e-4)
        generated = merged.generate(ids, max_new_tokens=12, do_sample=False)
    # the tiny model has learnt the fixed answer's opening
    assert tok.decode(generated[0, ids.shape[1]:]).startswith(ANSWER[:6])


def test_pretrain_full_finetune_learns_and_evaluates(tmp_path: Path, tiny_qwen2_dir: Path,  # noqa: F811
                                                     pretrain_txt: Path) -> None:  # noqa: F811
    from transformers import AutoModelForCausalLM

    rec = EventRecorder()
    out = tmp_path / "out"
    cfg = engine_config(tiny_qwen2_dir, pretrain_txt, out, task_type="pretrain", use_lora=None,
                        max_seq_length=64, num_train_epochs=3, learning_rate=1e-2, eval_split_ratio=0.2,
                        eval_strategy="steps", eval_steps=4, per_device_train_batch_size=4)
    result = run_training(cfg, rec, no_command)
    assert result["outcome"] == "completed"
    losses = [m["loss"] for m in rec.train_metrics]
    assert losses[-1] < losses[0] * 0.7, losses
    evals = rec.eval_metrics
    assert evals and all(e["eval_perplexity"] > 1 for e in evals)
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]
    assert evals[-1]["step"] == result["final_step"]  # step-based eval also runs at the end
    [ckpt] = rec.of("checkpoint")
    assert (Path(ckpt["path"]) / "model.safetensors").exists()
    model = AutoModelForCausalLM.from_pretrained(ckpt["path"])
    assert model.config.model_type == "qwen2" and model.config.use_cache is True


def test_precision_fallbacks_on_cpu(tmp_path: Path, tiny_llama_dir: Path, sft_jsonl: Path) -> None:  # noqa: F811
    rec = EventRecorder()
    cfg = engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "o", bf16=True, tf32=True, fp16=True,
                        fp16_explicit=True, max_samples=4, log_level="warning")
    assert run_training(cfg, rec, no_command)["outcome"] == "completed"
    codes = rec.warning_codes()
    assert {"bf16_unavailable", "fp16_unavailable", "tf32_unavailable"} <= set(codes)
    assert all(e["level"] in ("warning", "error") for e in rec.of("log"))


def test_eval_and_early_stopping_need_eval_data(tmp_path: Path, tiny_llama_dir: Path, sft_jsonl: Path) -> None:  # noqa: F811
    """One rule (modxd/plan.py eval_data_problem), one behaviour: refused, never trained without evaluation."""
    with pytest.raises(InvalidArgument, match="eval_strategy needs evaluation data"):
        engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "o", eval_strategy="steps", eval_steps=2)
    with pytest.raises(InvalidArgument, match="early_stopping_patience needs eval_strategy"):
        engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "o", early_stopping_patience=2)
    # the parameters ask for a split, but one example splits into nothing: the worker refuses too
    cfg = engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "o", eval_strategy="steps", eval_split_ratio=0.5,
                        max_samples=1)
    rec = EventRecorder()
    with pytest.raises(EngineError, match="eval split .eval_split_ratio 0.5.* holds no example"):
        run_training(cfg, rec, no_command)
    assert not rec.of("checkpoint") and not rec.train_metrics


def test_early_stopping_stops_and_saves(tmp_path: Path, tiny_llama_dir: Path, sft_jsonl: Path) -> None:  # noqa: F811
    rec = EventRecorder()
    # SGD on gradients clipped to a norm of 1e-12 changes no weight (the updates are below float32's
    # resolution): the eval loss never improves, so patience 1 stops at the 2nd evaluation
    cfg = engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "o", learning_rate=1e-6, optim="sgd",
                        max_grad_norm=1e-12, weight_decay=0.0, eval_split_ratio=0.25, eval_strategy="steps",
                        eval_steps=2, early_stopping_patience=1, num_train_epochs=4)
    result = run_training(cfg, rec, no_command)
    assert (result["outcome"], result["reason"], result["final_step"]) == ("completed", "early_stopping", 4)
    assert [c["step"] for c in rec.of("checkpoint")] == [4]
    assert len(rec.eval_metrics) == 2


def test_custom_chat_template_param(tmp_path: Path, tiny_llama_dir: Path, sft_jsonl: Path) -> None:  # noqa: F811
    model_dir = tmp_path / "no-template"
    shutil.copytree(tiny_llama_dir, model_dir)
    (model_dir / "chat_template.jinja").unlink()
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (model_dir / "tokenizer_config.json").write_text(json.dumps(config))
    cfg = engine_config(model_dir, sft_jsonl, tmp_path / "o", max_samples=4)
    with pytest.raises(EngineError, match="has no chat template.*chat_template parameter"):
        run_training(cfg, EventRecorder(), no_command)
    with pytest.raises(EngineError, match="chat template cannot format training example 1"):
        run_training(cfg.with_params(chat_template="{{ messages[0]['content'] | nofilter }}"), EventRecorder(),
                     no_command)
    template = ("{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}{{ eos_token }}\n{% endfor %}"
                "{% if add_generation_prompt %}### assistant: {% endif %}")
    rec = EventRecorder()
    result = run_training(cfg.with_params(chat_template=template), rec, no_command)
    assert result["outcome"] == "completed"
    saved = Path(rec.of("checkpoint")[0]["path"]) / "chat_template.jinja"
    assert saved.read_text() == template


def test_refusals(tmp_path: Path, tiny_llama_dir: Path, sft_jsonl: Path) -> None:  # noqa: F811
    bert = make_non_causal_model(tmp_path / "bert")
    with pytest.raises(EngineError, match="holds a BertModel model, which is not a causal language model"):
        run_training(engine_config(bert, sft_jsonl, tmp_path / "o"), EventRecorder(), no_command)
    with pytest.raises(EngineError, match="max_seq_length is 2048 but the model's context "
                                         r"\(max_position_embeddings\) is 1024 tokens"):
        run_training(engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "o", max_seq_length=2048),
                     EventRecorder(), no_command)
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00")
    with pytest.raises(EngineError, match="is a GGUF file, which is for inference only"):
        inspect_model_dir(str(gguf))
    with pytest.raises(EngineError, match="has no config.json"):
        inspect_model_dir(str(tmp_path))
    with pytest.raises(EngineError, match="not a training checkpoint"):
        run_training(engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "o", resume_from_checkpoint=str(tmp_path)),
                     EventRecorder(), no_command)
    with pytest.raises(EngineError, match="lora_target_modules c_attn matches no module of the model.*q_proj"):
        run_training(engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "o", lora_target_modules=["c_attn"]),
                     EventRecorder(), no_command)
    # a parameter is checked once, by the schema, however the engine is called
    with pytest.raises(InvalidArgument, match="save_strategy must be one of steps, epoch, no"):
        engine_config(tiny_llama_dir, sft_jsonl, tmp_path, save_strategy="best")
    with pytest.raises(InvalidArgument, match="optim must be one of"):
        engine_config(tiny_llama_dir, sft_jsonl, tmp_path, optim="nope")
    with pytest.raises(InvalidArgument, match="unknown parameter 'lora_rank'; did you mean lora_r"):
        run_training({**engine_config(tiny_llama_dir, sft_jsonl, tmp_path).to_wire(), "lora_rank": 8},
                     EventRecorder(), no_command)


def test_schema_choices_are_what_transformers_knows() -> None:
    """The schema's optimizers and schedulers are names TrainingArguments accepts (the engine no
    longer checks them at run time: the schema is the one list)."""
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    from modxd.params import BY_KEY

    assert set(BY_KEY["optim"].choices) <= {o.value for o in OptimizerNames}
    assert set(BY_KEY["lr_scheduler_type"].choices) <= {s.value for s in SchedulerType}


def test_too_little_pretraining_text(tmp_path: Path, tiny_qwen2_dir: Path) -> None:  # noqa: F811
    corpus = write_pretrain_txt(tmp_path / "c.txt", n=1)
    cfg = engine_config(tiny_qwen2_dir, corpus, tmp_path / "o", task_type="pretrain", use_lora=False,
                        max_seq_length=512)
    with pytest.raises(EngineError, match="has fewer tokens than one block of max_seq_length 512"):
        run_training(cfg, EventRecorder(), no_command)
