"""The evaluation engine in-process: perplexity checked independently, embeddings, pretraining, files."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from modxd.engine import metrics as M
from tests.evaluate.conftest import base_candidate, candidate, run_eval, task_params


def _independent_nll(model, input_ids: list[int], labels: list[int]) -> tuple[float, int]:
    """Sum of -log p(token | tokens before) over labelled tokens, one example at a time, in float64."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([input_ids])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    total, count = 0.0, 0
    for t in range(1, len(input_ids)):
        if labels[t] != -100:
            total -= float(logp[t - 1, input_ids[t]])
            count += 1
    return total, count


def _examples(params: dict, samples: int, seed: int):
    """The evaluation's examples, rebuilt from the plan with the training tokenization."""
    from modxd.engine.data import tokenize_conversation
    from modxd.engine.models import load_tokenizer
    from modxd.engine.eval_data import sft_examples
    from modxd.evaluations import plan_data

    tok = load_tokenizer(params["model_dir"])
    plan = plan_data("sft", params, samples, seed).as_dict()
    return tok, [tokenize_conversation(tok, conv, 128)[0] for conv in sft_examples(plan, params)]


def test_perplexity_is_exp_of_mean_token_nll_over_answers(sft_run: Path, tiny_llama_dir: Path, sft_jsonl: Path,
                                                          tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    params = task_params(tiny_llama_dir, sft_jsonl, tmp_path)
    cands = [base_candidate(tiny_llama_dir), candidate(sft_run, 16, True), candidate(sft_run, 32, True)]
    result, events = run_eval("sft", params, cands, samples=6)
    tok, examples = _examples(params, 6, 7)
    by_id = {s["checkpoint_id"]: s for s in result["scores"]}
    models = {"base": AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)).eval()}
    # a fresh base for the adapter: a second LoRA checkpoint must not see the first one's adapter
    models["ckpt-32"] = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)),
                                                  str(sft_run / "checkpoints" / "checkpoint-32")).eval()
    answer_bytes = sum(len("ANSWER: the answer is always the same.".encode()) for _ in examples)
    for ckpt_id, model in models.items():
        total = count = 0
        for ex in examples:
            nll, n = _independent_nll(model, ex["input_ids"], ex["labels"])
            total, count = total + nll, count + n
        labelled = sum(1 for ex in examples for label in ex["labels"] if label != -100)
        assert count == labelled == by_id[ckpt_id]["tokens"]  # answer tokens only: the prompt is masked
        assert by_id[ckpt_id]["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-4)
        assert by_id[ckpt_id]["n_bytes"] == answer_bytes
        assert by_id[ckpt_id]["bits_per_byte"] == pytest.approx(total / math.log(2) / answer_bytes, rel=1e-4)
    # a learnable task: training lowers perplexity and the latest checkpoint ranks first
    assert by_id["ckpt-32"]["perplexity"] < by_id["ckpt-16"]["perplexity"] < by_id["base"]["perplexity"]
    assert by_id["ckpt-32"]["rank"] < by_id["base"]["rank"]
    assert by_id["base"]["rank"] == 3 and result["best_checkpoint_id"] != "base"
    progress = [e for e in events if e["type"] == "progress"]
    assert {(e["checkpoint_index"], e["checkpoint_count"]) for e in progress} == {(0, 3), (1, 3), (2, 3)}
    assert progress[-1]["example_index"] == progress[-1]["example_count"] == 6
    assert {"perplexity", "similarity", "coherence", "coverage"} <= set(progress[-1]["running_scores"])
    assert [e["checkpoint_id"] for e in events if e["type"] == "score"] == ["base", "ckpt-16", "ckpt-32"]


def test_batched_nll_equals_one_at_a_time(tiny_llama_dir: Path, sft_jsonl: Path) -> None:
    from transformers import AutoModelForCausalLM

    from modxd.engine.evaluate import Example, nll_per_example

    params = task_params(tiny_llama_dir, sft_jsonl, Path("/unused"))
    tok, examples = _examples(params, 5, 3)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)).eval()
    exs = [Example(i, e["input_ids"], e["labels"], 1) for i, e in enumerate(examples)]
    batched = nll_per_example(model, exs, tok.pad_token_id, "cpu", batch_size=5)
    single = nll_per_example(model, exs, tok.pad_token_id, "cpu", batch_size=1)
    for (a, n), (b, m) in zip(batched, single):
        assert n == m and a == pytest.approx(b, rel=1e-4)


def test_embedder_similarity_on_known_cases() -> None:
    from modxd.engine.embedder import Embedder

    emb = Embedder("cpu")
    texts = ["The capital of France is Paris.", "The capital of France is Paris.",
             "Paris is the capital city of France.", "Bananas grow in tropical climates and are rich in potassium."]
    v = emb.encode(texts)
    assert all(abs(sum(x * x for x in vec) - 1) < 1e-4 for vec in v)  # unit length
    assert M.similarity_score(texts[1], v[1], v[0]) == pytest.approx(1.0, abs=1e-5)
    paraphrase = M.similarity_score(texts[2], v[2], v[0])
    off_topic = M.similarity_score(texts[3], v[3], v[0])
    assert paraphrase > 0.8 and off_topic < 0.2
    # the published model: the sentence-transformers model card pair scores 0.7553
    pair = emb.encode(["A man is eating food.", "A man is eating a piece of bread."])
    assert M.cosine(*pair) == pytest.approx(0.7553, abs=2e-3)


def test_pretraining_uses_the_perplexity_family_on_held_out_text(pretrain_run: Path, tiny_llama_dir: Path,
                                                                 pretrain_txt: Path, tmp_path: Path) -> None:
    steps = sorted(int(p.name.split("-")[1]) for p in (pretrain_run / "checkpoints").iterdir())
    params = task_params(tiny_llama_dir, pretrain_txt, tmp_path, max_seq_length=32, eval_split_ratio=0.2)
    cands = [base_candidate(tiny_llama_dir), candidate(pretrain_run, steps[0], False),
             candidate(pretrain_run, steps[-1], False)]
    result, events = run_eval("pretrain", params, cands, samples=6)
    assert result["data_source"] == "held_out_split" and result["samples"] == 6
    for s in result["scores"]:
        assert s["semantic_similarity"] is None and s["coherence"] is None and s["coverage"] is None
        assert s["composite"] == pytest.approx(2 ** -s["bits_per_byte"])
    by_id = {s["checkpoint_id"]: s for s in result["scores"]}
    assert by_id[f"ckpt-{steps[-1]}"]["rank"] < by_id["base"]["rank"]
    lines = [json.loads(line) for line in open(result["examples_path"], encoding="utf-8")]
    assert len(lines) == 18 and "generation" not in lines[0] and lines[0]["text"]
    rows = list(csv.DictReader(open(result["csv_path"], encoding="utf-8")))
    assert rows[0]["semantic_similarity"] == "" and rows[0]["data_source"] == "held_out_split"
    report = Path(result["report_path"]).read_text(encoding="utf-8")
    assert "similarity" not in report.split("## How")[0]  # the table has the perplexity family only


def test_equal_candidates_are_a_tie_within_noise(sft_run: Path, tiny_llama_dir: Path, sft_jsonl: Path,
                                                 tmp_path: Path) -> None:
    params = task_params(tiny_llama_dir, sft_jsonl, tmp_path)
    same = candidate(sft_run, 32, True)
    copy = {**same, "checkpoint_id": "ckpt-copy", "label": "step 40", "step": 40}
    result, _ = run_eval("sft", params, [copy, same], samples=6, max_new_tokens=8)
    first, second = result["scores"]
    assert first["composite"] == second["composite"] and first["bits_per_byte"] == second["bits_per_byte"]
    assert (first["checkpoint_id"], second["checkpoint_id"]) == ("ckpt-32", "ckpt-copy")  # tie: earlier step first
    assert result["tie"] and result["verdict"].startswith("tie within noise: step 32 vs step 40")
    assert result["p_value"] == 1.0 and second["p_vs_best"] == 1.0 and second["diff_vs_best"] == 0.0
    assert result["verdict"] in Path(result["report_path"]).read_text(encoding="utf-8")
    rows = list(csv.DictReader(open(result["csv_path"], encoding="utf-8")))
    assert [r["is_best"] for r in rows] == ["true", "false"] and rows[1]["p_vs_best"] == "1.0"
