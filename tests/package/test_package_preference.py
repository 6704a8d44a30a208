"""Packages of preference checkpoints (dpo, orpo) as of SFT ones. A dpo run that continued an SFT
adapter saves its frozen copy (the reference) under ref/ in every checkpoint: the export and the
merge after training take the trained adapter only."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.plugin import engine_config
from tests.fixtures.preference import write_pairs

from .conftest import LORA_TARGETS, run_export


@pytest.fixture(scope="module")
def continued_run(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, lora_checkpoint: Path) -> dict:
    """DPO continuing the SFT adapter of `lora_checkpoint`, merged after training."""
    from modxd.engine.preference import run_preference

    work = tmp_path_factory.mktemp("dpo-continued")
    cfg = engine_config(tiny_llama_dir, write_pairs(work / "pairs.jsonl", 8), work / "out", task_type="dpo",
                        start_from_checkpoint=str(lora_checkpoint), lora_target_modules=LORA_TARGETS,
                        learning_rate=5e-2, merge_lora_after_training=True)
    result = run_preference(cfg, lambda _m: None, lambda *_a: None)
    assert result["outcome"] == "completed" and result["merged_dir"], result
    [checkpoint] = sorted((work / "out" / "checkpoints").glob("checkpoint-*"))
    assert (checkpoint / "ref" / "adapter_model.safetensors").is_file()
    return {"checkpoint": checkpoint, "merged": Path(result["merged_dir"]), "sft": lora_checkpoint}


def _logits(model_dir: Path, adapter: Path | None) -> "object":
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    with torch.inference_mode():
        return model.eval()(input_ids=torch.tensor([[1, 300, 301, 302, 150, 42, 7, 250]])).logits


def test_merge_after_training_is_the_trained_adapter_not_the_reference(continued_run, tiny_llama_dir) -> None:
    merged = _logits(continued_run["merged"], None)
    trained = _logits(tiny_llama_dir, continued_run["checkpoint"])
    reference = _logits(tiny_llama_dir, continued_run["checkpoint"] / "ref")
    assert (merged - trained).abs().max() < 1e-4
    assert (merged - reference).abs().max() > 1e-3  # the dpo steps moved it away from the SFT adapter
    assert not (continued_run["merged"] / "ref").exists()


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "adapter"])
def test_export_of_a_continued_dpo_checkpoint(continued_run, tmp_path, merge: bool) -> None:
    result, _ = run_export(continued_run["checkpoint"], tmp_path / "pkg", ["F32"], merge=merge)
    v = result["verifications"][0]  # against transformers + peft loading the checkpoint: the trained adapter
    assert v["tokenizer_match"] and v["top1_agreement"] == 1.0 and v["max_logit_diff"] < 0.05, v
    assert result["merged"] == merge
    assert not any("/ref/" in f["path"] or Path(f["path"]).name == "ref" for f in result["files"])
