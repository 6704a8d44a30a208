"""Preference accuracy and margin on held-out pairs: TRL's tokenization and TRL's own eval numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from modxd.engine.preference_eval import adapter_disabled, score_pairs, tokenize_pair
from modxd.engine.preference_formats import normalize_preference_example
from modxd.engine.preference_metrics import PairLogps, pair_margins, summarize
from tests.fixtures.plugin import tiny_llama_dir  # noqa: F401
from tests.fixtures.preference import preference_pairs


def _trainer(model_dir: Path, rows: list[dict], out: Path, eval_rows: list[dict] | None = None,
             learning_rate: float = 1e-2, epochs: int = 1):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    args = DPOConfig(str(out), use_cpu=True, bf16=False, report_to=[], gradient_checkpointing=False,
                     per_device_train_batch_size=4, per_device_eval_batch_size=len(eval_rows or rows),
                     learning_rate=learning_rate, num_train_epochs=epochs, save_strategy="no", disable_tqdm=True)
    return DPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=args,
                      train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
                      peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))


@pytest.mark.parametrize("fmt, implicit", [("conversational", False), ("conversational", True),
                                           ("standard", False), ("standard", True)])
def test_pairs_are_tokenized_as_trl_trains_them(tmp_path: Path, tiny_llama_dir: Path, fmt: str,  # noqa: F811
                                                implicit: bool) -> None:
    raw = preference_pairs(6, fmt=fmt, implicit=implicit)
    pairs = [normalize_preference_example(r) for r in raw]
    trainer = _trainer(tiny_llama_dir, [p.row() for p in pairs], tmp_path)
    for pair, row in zip(pairs, trainer.train_dataset):
        assert tokenize_pair(trainer.processing_class, pair) == (row["prompt_ids"], row["chosen_ids"],
                                                                 row["rejected_ids"])


def test_scores_match_trls_evaluation(tmp_path: Path, tiny_llama_dir: Path) -> None:  # noqa: F811
    train = preference_pairs(16)
    held = [normalize_preference_example(r) for r in preference_pairs(6, seed=5)]
    trainer = _trainer(tiny_llama_dir, train, tmp_path, eval_rows=[p.row() for p in held], epochs=2)
    model, tokenizer = trainer.model, trainer.processing_class
    before = summarize(pair_margins(score_pairs(model, tokenizer, held, 1024, reference=adapter_disabled(model)),
                                    "dpo", 0.1))
    assert (before.pairs, before.accuracy, before.mean_margin) == (6, 0.0, 0.0)  # policy == reference: no preference
    trainer.train()
    theirs = trainer.evaluate()
    model.train()
    logps = score_pairs(model, tokenizer, held, 1024, reference=adapter_disabled(model), batch_size=3)
    assert model.training  # scored in eval mode, then given back as it was
    ours = summarize(pair_margins(logps, "dpo", 0.1))
    assert ours.accuracy == pytest.approx(theirs["eval_rewards/accuracies"]) and ours.accuracy == 1.0
    assert ours.mean_margin == pytest.approx(theirs["eval_rewards/margins"], rel=1e-4)
    assert sum(p.chosen for p in logps) / 6 == pytest.approx(theirs["eval_logps/chosen"], rel=1e-4)


def test_margins_and_summary() -> None:
    pairs = [PairLogps(-10.0, -14.0, 5, 7, ref_chosen=-11.0, ref_rejected=-13.0),
             PairLogps(-9.0, -8.0, 3, 2, ref_chosen=-9.0, ref_rejected=-8.0)]
    assert pair_margins(pairs, "dpo", 0.5) == pytest.approx([0.5 * ((-10 + 11) - (-14 + 13)), 0.0])
    assert pair_margins(pairs, "orpo", 1.0) == pytest.approx([-10 / 5 + 14 / 7, -9 / 3 + 8 / 2])
    scores = summarize(pair_margins(pairs, "dpo", 0.5))
    assert (scores.pairs, scores.accuracy) == (2, 0.5) and scores.mean_margin == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least one pair"):
        summarize([])


def _no_command() -> None:
    return None


def _last_eval_and_checkpoint(tiny_llama_dir: Path, tmp_path: Path, task: str, **overrides: object) -> tuple[dict, str]:
    """A short run evaluated and saved at its last step: (the trainer's eval point, the checkpoint)."""
    from modxd.engine.preference import run_preference
    from tests.fixtures.plugin import EventRecorder, engine_config
    from tests.fixtures.preference import write_pairs

    rec = EventRecorder()
    config = engine_config(tiny_llama_dir, write_pairs(tmp_path / "train.jsonl", 16), tmp_path / "out",
                           task_type=task, eval_file=str(write_pairs(tmp_path / "eval.jsonl", 4, seed=9)),
                           eval_strategy="steps", eval_steps=4, save_strategy="steps", save_steps=4, **overrides)
    result = run_preference(config, rec, _no_command)
    assert result["outcome"] == "completed" and result["final_step"] == 4
    [point] = rec.eval_metrics
    checkpoint = rec.of("checkpoint")[-1]
    assert point["step"] == checkpoint["step"] == 4
    return point, checkpoint["path"]


@pytest.mark.parametrize("case", ["dpo", "orpo", "dpo-full", "dpo-from-sft"])
def test_a_checkpoint_scores_as_its_run_evaluated_it(tmp_path: Path, tiny_llama_dir: Path,  # noqa: F811
                                                    case: str) -> None:
    """A checkpoint loaded from disk as the evaluation loads it (an adapter over model_dir, or full
    weights), against the reference it was trained with, gives the run's own eval accuracy and margin."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from modxd.engine.preference_eval import checkpoint_reference, held_out_pairs, preference_scores

    task = "orpo" if case == "orpo" else "dpo"
    overrides: dict = {"learning_rate": 1e-2}
    if case == "orpo":
        overrides["orpo_lambda"] = 0.5
    if case == "dpo-full":
        overrides.update(use_lora=False, learning_rate=1e-3, warmup_ratio=0.0)
    if case == "dpo-from-sft":
        from modxd.engine.train import run_training
        from tests.fixtures.datasets import write_sft_jsonl
        from tests.fixtures.plugin import EventRecorder, engine_config

        sft = EventRecorder()
        run_training(engine_config(tiny_llama_dir, write_sft_jsonl(tmp_path / "sft.jsonl", n=8), tmp_path / "sft",
                                   lora_r=4, lora_alpha=8, learning_rate=3e-2), sft, _no_command)
        overrides["start_from_checkpoint"] = sft.of("checkpoint")[-1]["path"]
    point, checkpoint = _last_eval_and_checkpoint(tiny_llama_dir, tmp_path, task, **overrides)
    params = {"max_seq_length": 128, "eval_file": str(tmp_path / "eval.jsonl"), **overrides}

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    if case == "dpo-full":
        model = AutoModelForCausalLM.from_pretrained(checkpoint)
        reference = checkpoint_reference(model, checkpoint, base_model=base)
    else:
        model = PeftModel.from_pretrained(base, checkpoint, is_trainable=False)
        reference = checkpoint_reference(model, checkpoint)
        assert ("ref" in model.peft_config) == (case == "dpo-from-sft")  # the continued run's frozen SFT adapter
    pairs = held_out_pairs({"source": "eval_file", "samples": 0, "seed": 0}, params)
    scores = preference_scores(model, tokenizer, pairs, task, params, reference if task == "dpo" else None)
    assert scores.pairs == 4
    assert scores.accuracy == pytest.approx(point["eval_reward_accuracy"])
    # dpo: TRL's DPOTrainer tokenization, the same numbers. orpo: TRL's experimental ORPOTrainer tokenizes
    # the chat template's text and adds an eos of its own, so its per-token means differ a little (the
    # evaluation scores every checkpoint of a task one way, which is what its ranking needs).
    tolerance = 2e-2 if task == "orpo" else 1e-3
    assert scores.mean_margin == pytest.approx(point["eval_reward_margin"], rel=tolerance, abs=1e-5)
    assert scores.mean_margin > 0  # trained: the held-out chosen answers are preferred
    if task == "dpo":
        with pytest.raises(ValueError, match="reference"):
            preference_scores(model, tokenizer, pairs, task, params)
        # against a wrong reference (the untrained model_dir, for the continued run) the numbers differ
        if case == "dpo-from-sft":
            wrong = preference_scores(model, tokenizer, pairs, task, params, adapter_disabled(model))
            assert wrong.mean_margin != pytest.approx(scores.mean_margin, rel=1e-3)
            assert model.active_adapter == "default"  # the ref adapter was active only inside the context


def test_held_out_pairs_repeat_the_evaluations_choice(tmp_path: Path) -> None:
    from modxd.engine.preference import read_pairs
    from modxd.engine.preference_eval import held_out_pairs
    from modxd.engine.eval_data import sample_indexes
    from tests.fixtures.plugin import engine_config
    from tests.fixtures.preference import write_pairs

    train, evals = write_pairs(tmp_path / "t.jsonl", 20), write_pairs(tmp_path / "e.jsonl", 7, seed=3)
    params = {"train_file": str(train), "eval_file": "", "eval_split_ratio": 0.25, "seed": 11, "max_samples": 16}
    trained = read_pairs(engine_config("m", train, tmp_path, task_type="dpo",
                                       **{k: v for k, v in params.items() if k != "train_file"}).params)
    held = held_out_pairs({"source": "held_out_split", "samples": 0, "seed": 1}, params)
    assert [p.row() for p in held] == [p.row() for p in trained.eval or []] and len(held) == 4
    sample = held_out_pairs({"source": "train_sample", "samples": 5, "seed": 2}, params)
    all_train = held_out_pairs({"source": "train_sample", "samples": 0, "seed": 2}, params)
    assert len(all_train) == 16 and [p.row() for p in sample] == [all_train[i].row() for i in sample_indexes(16, 5, 2)]
    from_file = held_out_pairs({"source": "eval_file", "samples": 0, "seed": 0}, {**params, "eval_file": str(evals)})
    assert len(from_file) == 7
