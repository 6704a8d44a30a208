"""Benchmark: DPO throughput and memory, modx's engine vs a plain TRL ``DPOTrainer`` script.

    .venv/bin/python bench/dpo.py [--models tiny,smollm2] [--repeats 3] [--gradient-checkpointing] [--write]

The baseline is the script TRL's documentation shows: ``DPOTrainer`` with a ``peft_config``
(LoRA; the reference is the model with the adapter disabled), TRL's own tokenization and padded
batches. modx is ``modxd.engine.preference.run_preference`` exactly as a training worker calls
it (same TRL loss, its checkpoints, checks and events around it, pair batches packed without
padding). Both train the same pairs (conversational, lengths spread by bench/sft_data.py; each
rejected answer is another conversation's answer) with the same LoRA, hyperparameters, seed and
order, each run in a fresh spawned process, alternating baseline and modx. Time runs from the
Trainer's train-begin to the last step's log (loading, tokenizing and modx's final checkpoint save
are outside it); tokens/s counts the real (non-padding) tokens of both sequences of every pair;
memory is the child process's peak RSS (and peak CUDA allocation on a GPU). The target: modx's
tokens/s at least the baseline's, its peak memory no more. Prints a table; ``--write`` puts it in
the "Preference tuning (DPO)" section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, bench_model_dir, machine, median, run_in_child, write_section  # noqa: E402
from sft_data import make_conversations  # noqa: E402

COMMAND = ".venv/bin/python bench/dpo.py"
MODELS = {  # name: (pairs, batch, longest conversation in tokens) -- SmolLM2 on 2 cores is slow
    "tiny": (96, 8, 600),
    "smollm2": (16, 2, 400),
}
LORA = {"r": 16, "alpha": 32}


def make_pairs(tokenizer: Any, n: int, seed: int, max_tokens: int) -> list[dict[str, Any]]:
    """Conversational pairs: a conversation's last answer chosen over the next different answer."""
    conversations = make_conversations(tokenizer, n, seed=seed, max_tokens=max_tokens)
    pairs = []
    for i, conv in enumerate(conversations):
        other = next(c for c in conversations[i + 1:] + conversations[:i] if c[-1] != conv[-1])
        pairs.append({"prompt": conv[:-1], "chosen": conv[-1:], "rejected": other[-1:]})
    return pairs


def _config(model_dir: Path, data: Path, out: Path, batch: int, checkpointing: bool) -> dict[str, Any]:
    """The run as a worker receives it (TrainConfig.to_wire): the baseline reads the same values.
    (No lora_dropout: preference runs have none, TRL switches dropout off.)"""
    from tests.fixtures.plugin import engine_config

    return engine_config(model_dir, data, out, task_type="dpo", per_device_train_batch_size=batch,
                         max_seq_length=1024, learning_rate=5e-5, lr_scheduler_type="linear", warmup_ratio=0.0,
                         weight_decay=0.0, lora_r=LORA["r"], lora_alpha=LORA["alpha"],
                         lora_target_modules=["all-linear"], logging_steps=1, save_strategy="no",
                         num_train_epochs=1, beta=0.1, gradient_checkpointing=checkpointing).to_wire()


class _Clock:
    def __init__(self) -> None:
        self.begin = self.end = 0.0
        self.losses: list[float] = []
        self.margins: list[float] = []

    def begin_now(self) -> None:
        self.begin = time.perf_counter()

    def step_logged(self, loss: float, margin: float) -> None:
        self.end = time.perf_counter()
        self.losses.append(loss)
        self.margins.append(margin)


def _baseline(config: dict[str, Any], clock: _Clock) -> int:
    """The plain script: TRL's DPOTrainer with a LoRA peft_config, TRL's defaults otherwise."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    rows = [json.loads(line) for line in Path(config["train_file"]).read_text().splitlines() if line.strip()]
    tokenizer = AutoTokenizer.from_pretrained(config["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(config["model_dir"], dtype="float32")

    class Timing(TrainerCallback):
        def on_train_begin(self, *_a: Any, **_k: Any) -> None:
            clock.begin_now()

        def on_log(self, _args: Any, _state: Any, _control: Any, logs: dict | None = None, **_k: Any) -> None:
            if logs and "loss" in logs:
                clock.step_logged(float(logs["loss"]), float(logs["rewards/margins"]))

    on_gpu = str(config.get("device", "cpu")).startswith("cuda")
    args = DPOConfig(
        output_dir=config["output_dir"], per_device_train_batch_size=config["per_device_train_batch_size"],
        learning_rate=config["learning_rate"], lr_scheduler_type=config["lr_scheduler_type"], warmup_steps=0,
        num_train_epochs=config["num_train_epochs"], weight_decay=config["weight_decay"],
        max_grad_norm=config["max_grad_norm"], logging_steps=1, save_strategy="no", report_to=[],
        seed=config["seed"], data_seed=config["seed"], use_cpu=not on_gpu, disable_tqdm=True, bf16=False,
        gradient_checkpointing=config["gradient_checkpointing"], beta=config["beta"],
        max_length=config["max_seq_length"])
    peft_config = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.0, target_modules="all-linear",
                             task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         peft_config=peft_config, callbacks=[Timing()])
    limit = config["max_seq_length"]
    tokens = sum(min(len(r["prompt_ids"]) + len(r["chosen_ids"]), limit)
                 + min(len(r["prompt_ids"]) + len(r["rejected_ids"]), limit) for r in trainer.train_dataset)
    trainer.train()
    return tokens


def _modx(config: dict[str, Any], clock: _Clock) -> int:
    from modxd.engine.preference import run_preference
    from modxd.protocol import encode

    def emit(message: Any) -> None:
        event = encode(message)
        if event["type"] == "total_steps":
            clock.begin_now()
        elif event["type"] == "metrics" and event.get("loss") is not None:
            clock.step_logged(float(event["loss"]), float(event["reward_margin"]))

    run_preference(config, emit, lambda: None)
    return -1  # the same pairs as the baseline (checked by the step losses): its token count is used


def _child(side: str, config: dict[str, Any], queue: Any) -> None:
    clock = _Clock()
    try:
        tokens = (_baseline if side == "baseline" else _modx)(config, clock)
    except BaseException as exc:  # the parent reports it instead of waiting forever
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise
    peak_vram = None
    if str(config.get("device", "cpu")).startswith("cuda"):
        import torch

        peak_vram = torch.cuda.max_memory_allocated()
    queue.put({"seconds": clock.end - clock.begin, "tokens": tokens, "losses": clock.losses,
               "margins": clock.margins, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "peak_vram_bytes": peak_vram})


def run_side(side: str, config: dict[str, Any]) -> dict[str, Any]:
    result = run_in_child(_child, side, config)
    if "error" in result:
        raise RuntimeError(f"the {side} run failed: {result['error']}")
    return result


def bench_model(name: str, repeats: int, checkpointing: bool, device: str) -> dict[str, Any]:
    from transformers import AutoTokenizer

    pairs, batch, longest = MODELS[name]
    model_dir = bench_model_dir(name)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    data = CACHE / f"dpo-{name}.jsonl"
    data.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n"
                            for p in make_pairs(tokenizer, pairs, seed=1, max_tokens=longest)))
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "modx": []}
    for i in range(repeats):
        for side in ("baseline", "modx"):
            config = {**_config(model_dir, data, CACHE / f"out-dpo-{name}-{side}", batch, checkpointing),
                      "device": device}
            r = run_side(side, config)
            runs[side].append(r)
            print(f"{name} run {i + 1}/{repeats} {side}: {r['seconds']:.1f} s, final loss {r['losses'][-1]:.4f}, "
                  f"final margin {r['margins'][-1]:.4f}, peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
    tokens = runs["baseline"][0]["tokens"]
    row: dict[str, Any] = {"model": name, "pairs": pairs, "batch": batch, "tokens": tokens}
    for side, results in runs.items():
        row[side] = {"tps": median([tokens / r["seconds"] for r in results]),
                     "seconds": median([r["seconds"] for r in results]),
                     "mean_loss": median([sum(r["losses"]) / len(r["losses"]) for r in results]),
                     "final_margin": median([r["margins"][-1] for r in results]),
                     "rss": median([r["peak_rss_mib"] for r in results]),
                     "vram": median([r["peak_vram_bytes"] or 0 for r in results]) / 2**20}
    row["ratio"] = median([b["seconds"] / m["seconds"] for b, m in zip(runs["baseline"], runs["modx"])])
    row["loss_diff"] = max(abs(a - b) for a, b in zip(runs["baseline"][0]["losses"], runs["modx"][0]["losses"]))
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,smollm2", help="comma-separated: tiny, smollm2")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side per model (alternating)")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="on for both sides")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N], for both sides")
    parser.add_argument("--write", action="store_true", help="put the table in docs/benchmarks.md")
    args = parser.parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    rows = [bench_model(name, args.repeats, args.gradient_checkpointing, args.device)
            for name in args.models.split(",")]
    gpu = args.device.startswith("cuda")
    lines = ["| model | pairs x batch | real tokens | baseline tok/s | modx tok/s | speed-up | largest step-loss "
             "difference | final margin baseline / modx | peak RSS baseline / modx (MiB) |"
             + (" peak CUDA baseline / modx (MiB) |" if gpu else ""),
             "|---|---|---:|---:|---:|---:|---:|---|---|" + ("---|" if gpu else "")]
    for r in rows:
        b, m = r["baseline"], r["modx"]
        lines.append(f"| {r['model']} | {r['pairs']} x {r['batch']} | {r['tokens']:,} | {b['tps']:.0f} | "
                     f"{m['tps']:.0f} | {r['ratio']:.2f}x | {r['loss_diff']:.1e} | "
                     f"{b['final_margin']:.4f} / {m['final_margin']:.4f} | {b['rss']:.0f} / {m['rss']:.0f} |"
                     + (f" {b['vram']:.0f} / {m['vram']:.0f} |" if gpu else ""))
    table = "\n".join(lines)
    load = f"1-minute load average {load_before:.1f} before the runs, {os.getloadavg()[0]:.1f} after"
    ok = all(r["ratio"] >= 1.0 and r["modx"]["rss"] <= r["baseline"]["rss"] for r in rows)
    verdict = ("the target (tokens/s at least the plain TRL script's, peak memory no more) is met" if ok
               else "the target (tokens/s at least the plain TRL script's, peak memory no more) is NOT met")
    print(table + "\n" + verdict + f" ({load})")
    if not args.write:
        return
    command = " ".join([COMMAND, *(sys.argv[1:] if argv is None else argv)])
    write_section("Preference tuning (DPO)", f"""
DPO with LoRA (r {LORA['r']}, alpha {LORA['alpha']}, all linear layers, beta 0.1, lr 5e-5 linear, 1 epoch, seed 42,
gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}) on conversational pairs whose chosen
answer is a bench/sft_data.py conversation's and the rejected one the next conversation's, on {machine()},
{args.device}, fp32, {args.repeats} runs of each side alternating, each in a fresh process. Command:
`{command}`. Baseline: TRL's `DPOTrainer` with a `peft_config`, as its documentation shows (padded batches).
modx: `run_preference` as the worker runs it (pair batches packed without padding, engine/preference_packing.py).
Tokens/s counts the real tokens of both sequences of every pair; the speed-up is the median of per-run ratios;
{load} (other work shares the host: the spread of single runs is wide).

{table}

Result: {verdict}.
""")


if __name__ == "__main__":
    main()
