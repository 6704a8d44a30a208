"""run_preference (DPO, ORPO through TRL) end to end on tiny models: metrics, checkpoints, quota,
stop/resume, the reference model, padding-free batches, length limits and refusals."""

from __future__ import annotations

import dataclasses
import json
import math
import queue
import shutil
from pathlib import Path

import pytest

from modxd.engine.formats import DataError
from modxd.engine.models import EngineError
from modxd.engine.preference import read_pairs, run_preference, trl_args
from modxd.errors import InvalidArgument
from modxd.protocol import QUOTA_EXHAUSTED, QuotaReply, QuotaReserve
from modxd.train_config import TrainConfig
from modxd.engine.preference_metrics import POINT_FIELDS
from modxd.engine.preference_trainers import fit_prompt
from tests.fixtures.plugin import EventRecorder, StopAt, engine_config, tiny_llama_dir  # noqa: F401
from tests.fixtures.preference import write_pairs

# perplexity is left unset in a preference point (exp of a preference loss means nothing): not sent
SFT_POINT = {"type", "step", "total_steps", "epoch", "percent", "eta_seconds", "loss", "learning_rate",
             "grad_norm", "tokens_per_second", "time", "host_memory_rss_bytes"}
DPO_FIELDS = {"reward_chosen", "reward_rejected", "reward_margin", "reward_accuracy", "logps_chosen", "logps_rejected"}
ORPO_FIELDS = DPO_FIELDS | {"nll_loss", "log_odds_ratio", "log_odds_chosen"}


def no_command() -> None:
    return None


@pytest.fixture(scope="module")
def conv_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs") / "conv.jsonl", 16)


@pytest.fixture(scope="module")
def std_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs") / "std.jsonl", 16, fmt="standard")


def config(model: Path, data: Path, out: Path, task: str = "dpo", **overrides: object) -> TrainConfig:
    return engine_config(model, data, out, task_type=task, **{"learning_rate": 1e-2, **overrides})


def finite_points(rec: EventRecorder) -> list[dict]:
    points = rec.train_metrics
    assert points
    for point in points:
        for key, value in point.items():
            if key not in ("type", "perplexity", "eta_seconds") and value is not None:
                assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
    return points


def test_dpo_conversational_learns_the_preference(tmp_path: Path, tiny_llama_dir: Path, conv_pairs: Path) -> None:  # noqa: F811
    rec = EventRecorder()
    out = tmp_path / "out"
    result = run_preference(config(tiny_llama_dir, conv_pairs, out, num_train_epochs=2, save_strategy="epoch",
                                   gradient_checkpointing=True), rec, no_command)
    assert (result["outcome"], result["reason"], result["final_step"]) == ("completed", "completed", 8)
    points = finite_points(rec)
    assert all(set(p) == SFT_POINT | DPO_FIELDS for p in points)
    assert all("perplexity" not in p for p in points)  # exp(DPO loss) means nothing
    first, last = points[0], points[-1]
    # policy == reference at the start: DPO's loss is ln 2 and every reward 0
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-6) and first["reward_margin"] == 0.0
    assert last["reward_margin"] > 1.0 and last["reward_accuracy"] == 1.0 and last["loss"] < 0.3
    assert last["reward_margin"] == pytest.approx(last["reward_chosen"] - last["reward_rejected"], abs=1e-5)
    assert last["tokens_per_second"] > 0 and result["final_loss"] == last["loss"]
    assert any("padding-free pair batches" in e["message"] for e in rec.of("log"))
    saved = rec.of("checkpoint")
    assert [c["step"] for c in saved] == [4, 8] and saved[-1]["loss"] == result["final_loss"]
    files = {p.name for p in Path(saved[-1]["path"]).iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "optimizer.pt", "rng_state.pth",
            "trainer_state.json", "tokenizer.json"} <= files
    assert "ref" not in files  # a new adapter: the reference is the model with adapters disabled, nothing kept
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "runs"]  # TRL's README.md model card is not written
    assert list((out / "runs").rglob("events.out.tfevents.*"))
    manifest = {e["path"] for m in rec.of("files") for e in m["wrote"]}
    assert str(Path(saved[-1]["path"]) / "adapter_model.safetensors") in manifest


def test_orpo_standard_pairs(tmp_path: Path, tiny_llama_dir: Path, std_pairs: Path) -> None:  # noqa: F811
    rec = EventRecorder()
    result = run_preference(config(tiny_llama_dir, std_pairs, tmp_path / "out", task="orpo", num_train_epochs=3,
                                   orpo_lambda=0.5), rec, no_command)
    assert result["outcome"] == "completed" and result["final_step"] == 12
    points = finite_points(rec)
    assert all(set(p) == SFT_POINT | ORPO_FIELDS for p in points)
    assert points[-1]["reward_margin"] > points[0]["reward_margin"]
    assert points[-1]["nll_loss"] < points[0]["nll_loss"]
    assert points[-1]["tokens_per_second"] > 0  # ORPO's chosen/rejected inputs are counted
    [ckpt] = rec.of("checkpoint")
    assert (Path(ckpt["path"]) / "adapter_model.safetensors").exists()


def test_implicit_prompts_train_on_the_same_pairs(tmp_path: Path) -> None:
    for fmt in ("standard", "conversational"):
        explicit = read_pairs(config("m", write_pairs(tmp_path / f"{fmt}.jsonl", 6, fmt=fmt), tmp_path).params)
        implicit = read_pairs(config("m", write_pairs(tmp_path / f"{fmt}-i.jsonl", 6, fmt=fmt, implicit=True),
                                     tmp_path).params)
        assert [p.row() for p in explicit.train] == [p.row() for p in implicit.train]
        assert explicit.conversational == (fmt == "conversational") and explicit.eval is None


def test_split_and_cap_are_seeded(tmp_path: Path, conv_pairs: Path) -> None:
    cfg = config("m", conv_pairs, tmp_path, max_samples=10, eval_split_ratio=0.2).params
    data = read_pairs(cfg)
    assert (len(data.train), len(data.eval or [])) == (8, 2)
    again = read_pairs(cfg)
    assert [p.row() for p in again.eval or []] == [p.row() for p in data.eval or []]


def test_evaluation_reports_preference_metrics(tmp_path: Path, tiny_llama_dir: Path, conv_pairs: Path) -> None:  # noqa: F811
    rec = EventRecorder()
    evals = write_pairs(tmp_path / "eval.jsonl", 4, seed=9)
    run_preference(config(tiny_llama_dir, conv_pairs, tmp_path / "o", eval_file=str(evals), eval_strategy="steps",
                          eval_steps=2), rec, no_command)
    points = rec.eval_metrics
    assert [p["step"] for p in points] == [2, 4]
    for point in points:
        assert {f"eval_{name}" for name in DPO_FIELDS} <= set(point) and "eval_perplexity" not in point
        assert all(math.isfinite(point[f"eval_{name}"]) for name in DPO_FIELDS)
    assert points[-1]["eval_reward_margin"] > points[0]["eval_reward_margin"]
    assert set(POINT_FIELDS) >= {k for p in rec.of("metrics") for k in p} - SFT_POINT - {"eval_loss", "eval_perplexity"}


@pytest.mark.parametrize("task", ["dpo", "orpo"])
def test_resume_matches_an_uninterrupted_run(tmp_path: Path, tiny_llama_dir: Path, conv_pairs: Path,  # noqa: F811
                                             task: str) -> None:
    common = dict(per_device_train_batch_size=4, gradient_accumulation_steps=2, num_train_epochs=3, seed=7)
    full = EventRecorder()
    whole = run_preference(config(tiny_llama_dir, conv_pairs, tmp_path / "a", task, **common), full, no_command)
    assert whole["final_step"] == 6
    first = EventRecorder()
    stopped = run_preference(config(tiny_llama_dir, conv_pairs, tmp_path / "b", task, **common), first, StopAt(2))
    assert (stopped["outcome"], stopped["final_step"]) == ("stopped", 2)
    checkpoint = first.of("checkpoint")[0]["path"]
    second = EventRecorder()
    resumed = run_preference(config(tiny_llama_dir, conv_pairs, tmp_path / "b", task, resume_from_checkpoint=checkpoint,
                                    **common), second, no_command)
    assert resumed["outcome"] == "completed" and second.train_metrics[0]["step"] == 3
    keys = ("loss", "reward_margin", "logps_chosen", "learning_rate")
    tail = [(m["step"], *(m[k] for k in keys)) for m in full.train_metrics if m["step"] > 2]
    again = [(m["step"], *(m[k] for k in keys)) for m in second.train_metrics]
    assert [row[0] for row in again] == [row[0] for row in tail]
    for column in range(1, len(keys) + 1):
        assert [row[column] for row in again] == pytest.approx([row[column] for row in tail], rel=1e-4, abs=1e-6)


def test_start_from_an_sft_checkpoint(tmp_path: Path, tiny_llama_dir: Path, conv_pairs: Path) -> None:  # noqa: F811
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from modxd.engine.train import run_training
    from tests.fixtures.datasets import write_sft_jsonl

    sft = EventRecorder()
    run_training(engine_config(tiny_llama_dir, write_sft_jsonl(tmp_path / "sft.jsonl", n=8), tmp_path / "sft",
                               lora_r=4, lora_alpha=8, learning_rate=3e-2), sft, no_command)
    start = sft.of("checkpoint")[-1]["path"]
    rec = EventRecorder()
    result = run_preference(config(tiny_llama_dir, conv_pairs, tmp_path / "dpo", start_from_checkpoint=start,
                                   save_strategy="steps", save_steps=2), rec, no_command)
    assert result["outcome"] == "completed"
    assert "lora_from_checkpoint" in rec.warning_codes()  # engine_config asks r 8; the adapter has r 4
    first = rec.train_metrics[0]
    # the reference is the SFT model: at the first step the policy equals it
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-6) and first["reward_margin"] == 0.0
    assert rec.train_metrics[-1]["reward_margin"] > 0.3
    final = Path(rec.of("checkpoint")[-1]["path"])
    reference = load_file(final / "ref" / "adapter_model.safetensors")
    trained = load_file(final / "adapter_model.safetensors")
    assert json.loads((final / "adapter_config.json").read_text())["r"] == 4
    # the reference copy is the SFT adapter, untouched; the trained adapter moved away from it
    original = load_file(Path(start) / "adapter_model.safetensors")
    assert set(reference) == set(original) == set(trained)
    assert all(torch.equal(reference[k], original[k]) for k in original)
    assert any(not torch.equal(trained[k], original[k]) for k in original)
    # a checkpoint is one adapter over model_dir, like an SFT one: chat and package load it as they are
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), final)
    assert model.peft_config["default"].r == 4


def test_full_finetuning_keeps_a_frozen_reference(tmp_path: Path, tiny_llama_dir: Path, conv_pairs: Path) -> None:  # noqa: F811
    rec = EventRecorder()
    result = run_preference(config(tiny_llama_dir, conv_pairs, tmp_path / "o", use_lora=False, learning_rate=1e-3,
                                   warmup_ratio=0.0, num_train_epochs=2), rec, no_command)
    assert result["outcome"] == "completed"
    assert rec.train_metrics[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert rec.train_metrics[-1]["reward_margin"] > 0
    assert any("second, frozen copy" in e["message"] for e in rec.of("log"))
    assert (Path(rec.of("checkpoint")[0]["path"]) / "model.safetensors").exists()


class ScriptedDaemon:
    """Answers the worker's quota reservations: ``units`` granted, then refused (quota_exhausted)."""

    def __init__(self, units: int):
        self.units = units
        self.inbox: "queue.Queue[object]" = queue.Queue()
        self.events = EventRecorder()

    def emit(self, message: object) -> None:
        self.events(message)
        if isinstance(message, QuotaReserve):
            granted = self.units > 0
            self.units -= granted
            self.inbox.put(QuotaReply(message.request_id, hold_id=f"hold-{message.step}" if granted else "",
                                      reason="" if granted else QUOTA_EXHAUSTED))

    def poll(self, timeout: float | None = 0.0) -> object | None:
        try:
            return self.inbox.get(timeout=timeout) if timeout else self.inbox.get_nowait()
        except queue.Empty:
            return None


def test_checkpoints_are_paid_and_the_quota_stops_the_run(tmp_path: Path, tiny_llama_dir: Path,  # noqa: F811
                                                           conv_pairs: Path) -> None:
    daemon = ScriptedDaemon(units=2)
    result = run_preference(config(tiny_llama_dir, conv_pairs, tmp_path / "o", reserve_quota=True, save_steps=1,
                                   save_strategy="steps", per_device_train_batch_size=2), daemon.emit, daemon.poll)
    assert (result["outcome"], result["reason"], result["final_step"]) == ("stopped", "quota_exhausted", 3)
    saved = daemon.events.of("checkpoint")
    assert [(c["step"], c["hold_id"]) for c in saved] == [(1, "hold-1"), (2, "hold-2")]
    assert sorted(p.name for p in (tmp_path / "o" / "checkpoints").iterdir()) == ["checkpoint-1", "checkpoint-2"]


def test_packed_pairs_compute_the_padded_loss_and_gradients(tmp_path: Path, tiny_llama_dir: Path) -> None:  # noqa: F811
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from modxd.engine.preference_packing import use_packed_pairs
    from tests.fixtures.preference import preference_pairs

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    rows = preference_pairs(6)
    rows[1]["chosen"][0]["content"] *= 5  # lengths far apart: much padding
    args = DPOConfig(str(tmp_path), use_cpu=True, bf16=False, report_to="none", gradient_checkpointing=False,
                     per_device_train_batch_size=6)
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(6)])
    assert (batch["attention_mask"] == 0).sum() > 50

    def loss_and_grads() -> tuple[float, dict, list]:
        model.zero_grad()
        trainer._metrics["train"].clear()
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        return loss.item(), {k: v[-1] for k, v in trainer._metrics["train"].items()}, grads

    model.train()
    padded = loss_and_grads()
    use_packed_pairs(trainer.model)
    packed = loss_and_grads()
    assert packed[0] == pytest.approx(padded[0], rel=1e-5)
    for key in ("rewards/margins", "rewards/chosen", "logps/chosen", "logps/rejected", "entropy"):
        assert packed[1][key] == pytest.approx(padded[1][key], rel=1e-4, abs=1e-5), key
    for a, b in zip(packed[2], padded[2]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_prompt_limit_keeps_the_answers(tmp_path: Path, tiny_llama_dir: Path) -> None:  # noqa: F811
    assert fit_prompt([1, 2, 3, 4, 5], 0, 1) == [1, 2, 3, 4, 5]
    assert fit_prompt([1, 2, 3, 4, 5], 3, 1) == [1, 4, 5]  # the bos token stays in front
    assert fit_prompt([9, 2, 3, 4, 5], 3, 1) == [3, 4, 5]
    assert fit_prompt([1, 2, 3], 1, 1) == [3]
    long_prompt = write_pairs(tmp_path / "long.jsonl", 8, fmt="standard")
    lines = [json.loads(line) for line in long_prompt.read_text().splitlines()]
    for i, pair in enumerate(lines):
        if i % 2:
            pair["prompt"] = "Background: " + "the fox jumps over the lazy dog. " * 20 + pair["prompt"]
    long_prompt.write_text("".join(json.dumps(p) + "\n" for p in lines))
    for task in ("dpo", "orpo"):
        rec = EventRecorder()
        run_preference(config(tiny_llama_dir, long_prompt, tmp_path / task, task, max_seq_length=96,
                              max_prompt_length=48), rec, no_command)
        warnings = {w["code"]: w["message"] for w in rec.of("warning")}
        assert warnings["prompts_truncated"].startswith("4 of 8 training pairs have prompts longer than "
                                                        "max_prompt_length 48 tokens"), warnings
        assert "examples_dropped" not in warnings
        assert "DPO on 8 pairs" in " ".join(e["message"] for e in rec.of("log")) or task == "orpo"
        rec = EventRecorder()
        run_preference(config(tiny_llama_dir, long_prompt, tmp_path / f"{task}-2", task, max_seq_length=96),
                       rec, no_command)
        assert any(w["code"] == "examples_dropped" and w["message"].startswith("4 of 8 training pairs were dropped")
                   for w in rec.of("warning")), rec.of("warning")
        with pytest.raises(EngineError, match="no pair keeps an answer token within max_seq_length 20"):
            run_preference(config(tiny_llama_dir, long_prompt, tmp_path / f"{task}-3", task, max_seq_length=20),
                           EventRecorder(), no_command)


def test_refusals(tmp_path: Path, tiny_llama_dir: Path, conv_pairs: Path, std_pairs: Path) -> None:  # noqa: F811
    with pytest.raises(EngineError, match="task_type must be dpo or orpo"):
        run_preference(config(tiny_llama_dir, conv_pairs, tmp_path / "o", task="sft"), EventRecorder(), no_command)
    # the parameters are the schema's (params.resolve): refused when the config is made, as at create
    with pytest.raises(InvalidArgument, match="loss_type exo_pair needs label_smoothing above 0"):
        config(tiny_llama_dir, conv_pairs, tmp_path, loss_type="exo_pair")
    with pytest.raises(InvalidArgument, match="parameter beta must be between 0.001 and 10, got 0"):
        config(tiny_llama_dir, conv_pairs, tmp_path, beta=0)
    with pytest.raises(InvalidArgument, match="max_prompt_length \\(128\\) must be below max_seq_length \\(128\\)"):
        config(tiny_llama_dir, conv_pairs, tmp_path, max_prompt_length=128)
    with pytest.raises(InvalidArgument, match="start_from_checkpoint continues a LoRA adapter, so it needs use_lora"):
        config(tiny_llama_dir, conv_pairs, tmp_path, use_lora=False, start_from_checkpoint=str(tiny_llama_dir))
    with pytest.raises(EngineError, match=f"start_from_checkpoint {tiny_llama_dir} is not a LoRA checkpoint .*it is a "
                                          "full model: set model_dir to it instead"):
        run_preference(config(tiny_llama_dir, conv_pairs, tmp_path / "o", start_from_checkpoint=str(tiny_llama_dir)),
                       EventRecorder(), no_command)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(std_pairs.read_text() + '{"prompt": "p", "chosen": "same", "rejected": "same"}\n')
    with pytest.raises(DataError, match=f"train_file {bad} line 17: 'chosen' and 'rejected' are the same answer"):
        run_preference(config(tiny_llama_dir, bad, tmp_path / "o"), EventRecorder(), no_command)
    no_template = tmp_path / "no-template"
    shutil.copytree(tiny_llama_dir, no_template)
    (no_template / "chat_template.jinja").unlink()
    tokenizer_config = json.loads((no_template / "tokenizer_config.json").read_text())
    tokenizer_config.pop("chat_template", None)
    (no_template / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    with pytest.raises(EngineError, match="has no chat template, so conversational pairs cannot be formatted"):
        run_preference(config(no_template, conv_pairs, tmp_path / "o"), EventRecorder(), no_command)
    # standard pairs need no chat template
    assert run_preference(config(no_template, std_pairs, tmp_path / "o2", max_samples=4), EventRecorder(),
                          no_command)["outcome"] == "completed"


def test_trl_arguments_are_the_sft_arguments(tmp_path: Path) -> None:
    from transformers import TrainingArguments

    from modxd.engine.precision import resolve_precision
    from modxd.engine.train import _training_args

    for task in ("dpo", "orpo"):
        params = config("m", "t", tmp_path, task, save_strategy="steps", save_steps=3, warmup_ratio=0.2,
                        weight_decay=0.05, seed=11).params
        base = _training_args(params, str(tmp_path), resolve_precision("cpu", False, False, False), "cpu", 10,
                              False, packed=True)
        args = trl_args(base, params)
        ours, theirs = base.to_dict(), args.to_dict()
        differ = {k for k in ours if ours[k] != theirs[k]}
        assert differ == {"activation_checkpointing_kwargs", "gradient_checkpointing_kwargs"}, differ
        assert args.gradient_checkpointing_kwargs == {"use_reentrant": False}
        assert args.gradient_checkpointing is False and args.bf16 is False
        assert dataclasses.is_dataclass(args) and isinstance(args, TrainingArguments)
    assert args.beta == 0.1
    dpo = config("m", "t", tmp_path, "dpo", beta=0.3, loss_type="ipo", max_seq_length=64).params
    assert trl_args(base, dpo).loss_type == ["ipo"] and trl_args(base, dpo).beta == 0.3
