"""The GPU check's measurements (bench/gpu_check.sh runs this after the `gpu` tests).

    python bench/gpu_check.py [--dry-run] [--out DIR]

Side by side in one run, each side in a fresh process: SFT throughput of modx
(``run_training``: packed batches, varlen FlashAttention, logits at labelled positions only)
and of a plain ``Trainer`` + PEFT script (bf16, SDPA, batches padded to their longest
example) on the same variable-length chat data (bench/sft_data.py), on two models built
with random weights from published configs (speed needs no trained weights, and nothing is
downloaded): SmolLM2-135M's architecture and Llama-3.2-1B's (1.24B parameters). Then modx
with Liger's kernels, a QLoRA (4-bit) run, and chat decode speed. Reported: real tokens/s,
MFU (model FLOPs of the real tokens, below, over the card's dense bf16 peak) and peak VRAM
(``torch.cuda.max_memory_allocated``) next to engine/memory.py's estimate.

MFU's FLOPs, the same for both sides (work that must be done, not work a side chose to do):
per real token 2 x (non-embedding parameters + the LM head) forward, and as much again for
the input gradients in the backward pass (the base is frozen under LoRA: no weight
gradients; the adapters' own FLOPs are under 1% and left out); attention 2 x layers x
len x q_dim per token forward (causal: half of 4 x len x q_dim), times 3 with its backward.
Gradient-checkpointing recomputation is not counted (it is hardware work, not model work).

``--dry-run`` runs every step on the CPU with tiny models and tiny data, prints the table and
writes nothing into docs/ (it exists to prove the script before a GPU is spent on it).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modxd.train_config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, REPO, write_section  # noqa: E402
from sft_data import make_conversations, write_jsonl  # noqa: E402

# Published configs (config.json of each model), used with random weights.
SMOLLM2_135M = dict(model_type="llama", hidden_size=576, num_hidden_layers=30, intermediate_size=1536,
                    num_attention_heads=9, num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True,
                    max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5)
LLAMA_32_1B = dict(model_type="llama", hidden_size=2048, num_hidden_layers=16, intermediate_size=8192,
                   num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256,
                   tie_word_embeddings=True, max_position_embeddings=131072, rope_theta=500000.0, rms_norm_eps=1e-5)
TINY = dict(model_type="llama", hidden_size=64, num_hidden_layers=2, intermediate_size=128, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=1024, tie_word_embeddings=True, max_position_embeddings=1024)
# Dense bf16 peaks from NVIDIA's datasheets (TFLOP/s, without sparsity), by a word of the device name.
PEAK_TFLOPS = (("H200", 989.4), ("H100 PCIe", 756.0), ("H100", 989.4), ("A100", 312.0), ("L40S", 362.0),
               ("A10", 125.0), ("L4", 121.0))
PACKAGES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "liger-kernel", "flash-attn",
            "nvidia-ml-py", "triton", "safetensors", "tokenizers")


def say(text: str) -> None:
    print(text, flush=True)


# ------------------------------------------------------------------ what is here

def environment() -> dict[str, Any]:
    import torch

    from modxd.engine import attention

    env: dict[str, Any] = {"python": sys.version.split()[0], "torch": torch.__version__,
                           "cuda_runtime": torch.version.cuda or "", "cuda_available": torch.cuda.is_available()}
    for name in PACKAGES:
        try:
            env[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            env[name] = "not installed"
    if env["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        env.update(card=torch.cuda.get_device_name(0), capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                   memory_gib=round(props.total_memory / 1024**3, 1), sms=props.multi_processor_count)
    device = torch.device("cuda", 0) if env["cuda_available"] else torch.device("cpu")
    backend, why = attention.choose_backend(attention.detect_support(device))
    env["packed_attention"] = f"{backend}: {why}"
    try:
        env["torch_varlen_keywords"] = sorted(attention._torch_varlen_keywords())
    except Exception as exc:  # torch without varlen
        env["torch_varlen_keywords"] = f"unavailable ({type(exc).__name__})"
    return env


def measured_matmul_tflops() -> float | None:
    """A bf16 8192^3 matrix product on random data (median of 10 after warm-up): the card as found."""
    import torch

    if not torch.cuda.is_available():
        return None
    a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    times.sort()
    return 2 * 8192**3 / times[len(times) // 2] / 1e12


def datasheet_tflops(card: str) -> float | None:
    return next((tflops for word, tflops in PEAK_TFLOPS if word in card), None)


# ------------------------------------------------------------------ models and data

def build_model(name: str, shape: dict[str, Any], on_gpu: bool) -> Path:
    """A model dir with random weights (bf16 on a GPU) and the tests' ChatML tokenizer."""
    out = CACHE / f"gpu-check-{name}"
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.fixtures.tiny_models import make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer(out)
    config = LlamaConfig(**{k: v for k, v in shape.items() if k != "model_type"},
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device("cuda" if on_gpu else "cpu"):
        model = LlamaForCausalLM(config)
    if on_gpu:
        model = model.to(torch.bfloat16)
    model.save_pretrained(str(out))
    say(f"built {name}: {sum(p.numel() for p in model.parameters()) / 1e9:.3f}B parameters, random weights -> {out}")
    return out


def make_data(model_dir: Path, examples: int, max_tokens: int) -> Path:
    from modxd.engine.models import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    path = CACHE / f"gpu-check-sft-{examples}-{max_tokens}.jsonl"
    if not path.is_file():
        write_jsonl(path, make_conversations(tokenizer, examples, seed=1, max_tokens=max_tokens))
    return path


def train_config(model_dir: Path, data: Path, out: Path, batch: int, device: str, **extra: Any) -> "TrainConfig":
    from tests.fixtures.plugin import engine_config

    on_gpu = device.startswith("cuda")
    return engine_config(model_dir, data, out, **{
        "per_device_train_batch_size": batch, "max_seq_length": 1024, "learning_rate": 2e-4,
        "lr_scheduler_type": "linear", "warmup_ratio": 0.0, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
        "lora_target_modules": ["all-linear"], "logging_steps": 1, "save_strategy": "no", "num_train_epochs": 1,
        "device": device, "bf16": on_gpu, "fp16": False, "gradient_checkpointing": False, **extra})


# ------------------------------------------------------------------ FLOPs and memory

def model_flops(shape: dict[str, Any], lengths: list[int]) -> float:
    """Model FLOPs of one LoRA training pass over examples of these lengths (module docstring)."""
    from modxd.engine.memory import model_shape

    s = model_shape({**shape, "architectures": ["LlamaForCausalLM"]})
    dense = s.block_linear_parameters + s.vocab * s.hidden  # the LM head runs once per token
    q_dim = s.heads * s.head_dim
    tokens = sum(lengths)
    linear = 2 * dense * tokens * 2  # forward + input gradients
    attention = sum(2 * s.layers * n * n * q_dim for n in lengths) * 3
    return float(linear + attention)


def estimate_bytes(shape: dict[str, Any], config: "TrainConfig") -> int:
    from modxd.engine.memory import estimate_training_memory, model_shape

    params = {**config.params, "max_seq_length": 1024}
    return estimate_training_memory(model_shape(shape), params).total


# ------------------------------------------------------------------ the runs

def run_pair(name: str, shape: dict[str, Any], model_dir: Path, data: Path, batch: int, device: str,
             peak_tflops: float | None, liger: bool) -> list[dict[str, Any]]:
    from modxd.engine.data import prepare_data
    from modxd.engine.models import load_tokenizer
    from train_throughput import run_side

    rows = []
    variants = [("baseline", "plain Trainer + PEFT (bf16, SDPA, padded)", {}),
                ("modx", "modx (packed, varlen attention)", {})]
    if liger:
        variants.append(("modx", "modx + Liger kernels", {"use_liger_kernel": True}))
    base_config = train_config(model_dir, data, CACHE / "gpu-check-out", batch, device)
    tokenizer = load_tokenizer(str(model_dir))
    lengths = [len(e["input_ids"]) for e in prepare_data(base_config.params, tokenizer, lambda _m: None).train.examples]
    flops = model_flops(shape, lengths)
    for side, label, extra in variants:
        config = train_config(model_dir, data, CACHE / f"gpu-check-out-{name}-{len(rows)}", batch, device, **extra)
        started = time.perf_counter()
        r = run_side(side, config)
        mfu = flops / r["seconds"] / (peak_tflops * 1e12) if peak_tflops else None
        row = {"model": name, "variant": label, "tokens": r["tokens"], "tps": r["tokens_per_second"],
               "seconds": r["seconds"], "mean_loss": sum(r["losses"]) / len(r["losses"]),
               "final_loss": r["losses"][-1], "peak_vram": r["peak_vram_bytes"], "mfu": mfu,
               "estimate": estimate_bytes(shape, config) if device.startswith("cuda") else None,
               "wall": time.perf_counter() - started}
        rows.append(row)
        say(f"{name} / {label}: {row['tps']:.0f} tok/s, mean loss {row['mean_loss']:.4f}, "
            f"peak VRAM {_gib(row['peak_vram'])}, MFU {_pct(mfu)}, {row['wall']:.0f} s wall")
    return rows


def run_qlora(name: str, shape: dict[str, Any], model_dir: Path, data: Path, batch: int, device: str,
              peak_tflops: float | None) -> dict[str, Any]:
    """One QLoRA (NF4) run of modx; on the CPU the refusal sentence is the expected result."""
    from train_throughput import run_side

    config = train_config(model_dir, data, CACHE / f"gpu-check-out-{name}-qlora", batch, device, quantization_bit=4)
    try:
        r = run_side("modx", config)
    except RuntimeError as exc:
        say(f"{name} / QLoRA: {exc}")
        return {"model": name, "variant": "modx QLoRA (4-bit NF4)", "error": str(exc)}
    from modxd.engine.data import prepare_data
    from modxd.engine.models import load_tokenizer

    lengths = [len(e["input_ids"]) for e in prepare_data(config.params, load_tokenizer(str(model_dir)),
                                                          lambda _m: None).train.examples]
    mfu = model_flops(shape, lengths) / r["seconds"] / (peak_tflops * 1e12) if peak_tflops else None
    row = {"model": name, "variant": "modx QLoRA (4-bit NF4)", "tokens": r["tokens"], "tps": r["tokens_per_second"],
           "seconds": r["seconds"], "mean_loss": sum(r["losses"]) / len(r["losses"]), "final_loss": r["losses"][-1],
           "peak_vram": r["peak_vram_bytes"], "mfu": mfu, "estimate": estimate_bytes(shape, config)}
    say(f"{name} / QLoRA: {row['tps']:.0f} tok/s, mean loss {row['mean_loss']:.4f}, peak VRAM {_gib(row['peak_vram'])}")
    return row


def _chat_child(model_dir: str, device: str, new_tokens: int, queue: Any) -> None:
    from modxd.engine.generate import HFChatModel
    from modxd.engine.sampling import check_sampling

    model = HFChatModel.load(model_dir, device)
    sampling = check_sampling({"temperature": 1.0, "top_k": 0, "top_p": 1.0, "max_new_tokens": new_tokens,
                               "seed": 7})
    messages = [{"role": "user", "content": "Explain how to maintain a bicycle gearbox."}]
    model.generate(messages, {**sampling, "max_new_tokens": 8}, lambda *_a: None)  # warm-up
    results = [model.generate(messages, sampling, lambda *_a: None) for _ in range(3)]
    queue.put({"dtype": str(next(model.model.parameters()).dtype),
               "tps": sorted(r["tokens_per_second"] for r in results)[1],
               "tokens": [r["completion_tokens"] for r in results],
               "ttft_ms": sorted(r["time_to_first_token_ms"] for r in results)[1]})


def run_chat(name: str, model_dir: Path, device: str, new_tokens: int) -> dict[str, Any]:
    from common import run_in_child

    r = run_in_child(_chat_child, str(model_dir), device, new_tokens)
    say(f"{name} / chat on {device} ({r['dtype']}): {r['tps']:.1f} tok/s decode, first token {r['ttft_ms']:.0f} ms, "
        f"{r['tokens']} tokens")
    return {"model": name, **r}


# ------------------------------------------------------------------ report

def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024**3:.2f} GiB"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def report(env: dict[str, Any], matmul: float | None, peak: float | None, rows: list[dict[str, Any]],
           qlora: list[dict[str, Any]], chats: list[dict[str, Any]], plan: dict[str, Any]) -> str:
    lines = ["| model | variant | real tokens | tok/s | vs baseline | mean loss | peak VRAM | estimate | MFU |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    baseline = {r["model"]: r["tps"] for r in rows if r["variant"].startswith("plain")}
    for r in rows + [q for q in qlora if "error" not in q]:
        ratio = r["tps"] / baseline[r["model"]] if r["model"] in baseline else float("nan")
        lines.append(f"| {r['model']} | {r['variant']} | {r['tokens']:,} | {r['tps']:.0f} | {ratio:.2f}x | "
                     f"{r['mean_loss']:.4f} | {_gib(r['peak_vram'])} | {_gib(r['estimate'])} | {_pct(r['mfu'])} |")
    for q in qlora:
        if "error" in q:
            lines.append(f"| {q['model']} | {q['variant']} | - | - | - | - | - | - | refused: {q['error'][:120]} |")
    chat_lines = [f"- {c['model']}: {c['tps']:.1f} tokens/s decode ({c['dtype']}), first token {c['ttft_ms']:.0f} ms"
                  for c in chats]
    versions = ", ".join(f"{k} {env[k]}" for k in PACKAGES if k in env)
    return f"""
Measured by `bench/gpu_check.sh` on {env.get('card', 'no GPU')} (compute capability {env.get('capability', '-')},
{env.get('memory_gib', '-')} GiB), {time.strftime('%Y-%m-%d')}; Python {env['python']}, CUDA runtime
{env['cuda_runtime'] or '-'}; {versions}. Packed attention: {env['packed_attention']}.
A bf16 8192^3 matrix product ran at {f'{matmul:.0f}' if matmul else '-'} TFLOP/s here; MFU is over the
datasheet's dense bf16 peak of {peak or '-'} TFLOP/s.

SFT with LoRA (r 16, alpha 32, all linear layers, lr 2e-4, bf16, no gradient checkpointing, 1 epoch, seed 42)
on {plan['examples']} synthetic conversations of 20-1000 tokens (bench/sft_data.py), batch {plan['batch']},
each run in a fresh process, one run per variant. Models with random weights built from the published
configs of SmolLM2-135M and Llama-3.2-1B (the tests' byte-level tokenizer; the real vocabulary size, so the LM
head costs what it does in the real model). Baseline: a plain `Trainer` + PEFT script, base loaded in bf16,
SDPA, batches padded to their longest example. Tokens/s counts real tokens; "vs baseline" is the ratio of
tokens/s; the estimate is engine/memory.py's at max_seq_length 1024 (the worst case); MFU's FLOPs are
defined in bench/gpu_check.py.

{chr(10).join(lines)}

Chat decode on the GPU (HFChatModel, 1 warm-up then the median of 3 replies of {plan['chat_tokens']} tokens):

{chr(10).join(chat_lines) or '- not run'}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny models on the CPU; writes nothing into docs/")
    parser.add_argument("--out", default=os.environ.get("OUT", ""), help="also copy results here ($OUT)")
    parser.add_argument("--env-only", action="store_true", help="print what is here and stop")
    args = parser.parse_args(argv)
    import torch

    CACHE.mkdir(parents=True, exist_ok=True)
    env = environment()
    say("found: " + json.dumps(env, indent=1))
    if args.env_only:
        return 0
    on_gpu = env["cuda_available"] and not args.dry_run
    if not on_gpu and not args.dry_run:
        say("no CUDA GPU: nothing to measure (use --dry-run to exercise the steps on the CPU)")
        return 2
    device = "cuda:0" if on_gpu else "cpu"
    matmul = measured_matmul_tflops() if on_gpu else None
    peak = datasheet_tflops(env.get("card", "")) if on_gpu else None
    if on_gpu:
        say(f"bf16 matmul: {matmul:.0f} TFLOP/s measured; datasheet peak {peak} TFLOP/s")
    plan = ({"examples": 256, "batch": 8, "big_examples": 96, "chat_tokens": 128} if on_gpu
            else {"examples": 8, "batch": 4, "big_examples": 8, "chat_tokens": 8})
    models = ([("smollm2-135m", SMOLLM2_135M, plan["examples"]), ("llama-1b", LLAMA_32_1B, plan["big_examples"])]
              if on_gpu else [("tiny-a", TINY, plan["examples"]), ("tiny-b", {**TINY, "hidden_size": 96}, 8)])
    rows, qlora, chats = [], [], []
    for index, (name, shape, examples) in enumerate(models):
        model_dir = build_model(name, shape, on_gpu)
        data = make_data(model_dir, examples, 1000 if on_gpu else 200)
        big = index == len(models) - 1
        rows += run_pair(name, shape, model_dir, data, plan["batch"], device, peak, liger=True)
        if big:
            qlora.append(run_qlora(name, shape, model_dir, data, plan["batch"], device, peak))
            chats.append(run_chat(name, model_dir, device, plan["chat_tokens"]))
        if on_gpu:
            torch.cuda.empty_cache()
    body = report(env, matmul, peak, rows, qlora, chats, plan)
    say(body)
    results = {"env": env, "matmul_tflops": matmul, "peak_tflops": peak, "rows": rows, "qlora": qlora,
               "chat": chats, "dry_run": args.dry_run}
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str))
    if args.dry_run:
        say("dry run: docs/benchmarks.md is not written (no GPU figures from a CPU)")
        return 0
    write_section("GPU", body)
    if args.out:
        (Path(args.out) / "benchmarks.md").write_text((REPO / "docs" / "benchmarks.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
