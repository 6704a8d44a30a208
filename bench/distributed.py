"""Data-parallel scaling: the same SFT run on 1 device and on N devices through modx's launcher.

    .venv/bin/python bench/distributed.py                 # every GPU of the host vs one of them
    .venv/bin/python bench/distributed.py --devices 4     # 4 GPUs vs 1
    .venv/bin/python bench/distributed.py --cpu 2 --model tiny   # 2 gloo processes: a check, no speed-up

Both sides call ``modxd.worker.launch.run_train_task`` exactly as the training worker does
(N > 1: the coordinator starts one rank per device with torch's elastic launcher, DDP). Weak
scaling: every rank keeps the per-device batch, so N devices see N times the examples per
step; the data set is large enough for the same number of steps on every side. Throughput is
examples per second between the worker's timestamps of the first steady step and the last
(start-up left out); the ``tokens_per_second`` the worker reports is shown beside it.
Scaling efficiency = examples/s on N / (N x examples/s on 1). With ``--write`` (the default on a host with 2 or more
GPUs) it replaces the "Distributed training" section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, bench_model_dir, machine, median, write_section  # noqa: E402
from sft_data import make_conversations, write_jsonl  # noqa: E402

SECTION = "Distributed training"
STEPS = 30  # optimizer steps per side
SKIP = 5  # start-up steps left out of the median


def run(model_dir: Path, data: Path, devices: list[str], batch: int, out: Path) -> dict[str, Any]:
    from modxd.worker.launch import run_train_task
    from tests.fixtures.plugin import engine_config

    from modxd.protocol import Metrics

    points: list[dict[str, Any]] = []

    def emit(message: Any) -> None:
        if isinstance(message, Metrics) and message.loss is not None:
            points.append(message.point())

    def poll(timeout: float | None = 0.0) -> None:
        if timeout:
            time.sleep(timeout)
        return None

    config = engine_config(model_dir, data, out, per_device_train_batch_size=batch, max_seq_length=1024,
                           learning_rate=2e-4, lr_scheduler_type="linear", warmup_ratio=0.0, lora_r=16,
                           lora_alpha=32, lora_target_modules=["all-linear"], logging_steps=1, save_strategy="no",
                           num_train_epochs=1, max_samples=STEPS * batch * len(devices),
                           fp16=devices[0].startswith("cuda"), process_devices=devices)
    started = time.perf_counter()
    run_train_task(config.to_wire(), emit, poll)  # what the training worker receives
    steady = points[SKIP:]
    span = steady[-1]["time"] - steady[0]["time"] if len(steady) > 1 else float("nan")
    examples = (steady[-1]["step"] - steady[0]["step"]) * batch * len(devices) if len(steady) > 1 else 0
    rates = [p["tokens_per_second"] for p in steady if p.get("tokens_per_second")]
    return {"devices": len(devices), "eps": examples / span, "tps": median(rates),
            "seconds": time.perf_counter() - started, "steps": points[-1]["step"] if points else 0,
            "final_loss": points[-1]["loss"] if points else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("smollm2", "tiny"), default="smollm2")
    parser.add_argument("--devices", type=int, default=0, help="GPUs for the N side (default: all)")
    parser.add_argument("--cpu", type=int, default=0, help="N gloo processes on the CPU instead of GPUs")
    parser.add_argument("--batch", type=int, default=4, help="examples per device per step")
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args(argv)

    import torch

    gpus = torch.cuda.device_count()
    if args.cpu:
        many = ["cpu"] * args.cpu
        # Each rank gets cpu_count / N threads (worker/launch.py); the one-process side gets as many,
        # so the comparison is per process (a loaded host punishes oversubscribed OpenMP threads).
        torch.set_num_threads(max((os.cpu_count() or 1) // args.cpu, 1))
    else:
        n = args.devices or gpus
        if n < 2 or gpus < n:
            sys.exit(f"this host has {gpus} GPU(s): scaling needs 2 or more (or --cpu N for a CPU check)")
        many = [f"cuda:{i}" for i in range(n)]
    one = [many[0]]
    from modxd.engine.models import load_tokenizer

    model_dir = bench_model_dir(args.model)
    tokenizer = load_tokenizer(str(model_dir), lambda _m: None)
    data = write_jsonl(CACHE / f"sft-dist-{args.model}.jsonl",
                       make_conversations(tokenizer, STEPS * args.batch * len(many), seed=1))
    rows = []
    for devices in (one, many):
        r = run(model_dir, data, devices, args.batch, CACHE / f"out-dist-{len(devices)}")
        rows.append(r)
        print(f"{len(devices)} x {devices[0]}: {r['eps']:.1f} examples/s ({r['tps']:.0f} tok/s reported) over "
              f"{r['steps']} steps, {r['seconds']:.1f} s", flush=True)
    single, multi = rows
    efficiency = multi["eps"] / (multi["devices"] * single["eps"])
    print(f"scaling efficiency on {multi['devices']} devices: {efficiency:.2f}")
    write = args.write if args.write is not None else (not args.cpu and gpus >= 2)
    if not write:
        return
    kind = "CPU processes (gloo)" if args.cpu else "GPUs (NCCL)"
    body = (f"{args.model}, LoRA r16 on all linear layers, {args.batch} examples per device per step, "
            f"{STEPS} steps per side, DDP through modx's launcher, on {machine()}. Command: "
            f"`.venv/bin/python bench/distributed.py {' '.join(argv or sys.argv[1:])}`. Weak scaling: each rank keeps "
            "its batch. examples/s: optimizer steps x global batch between the worker's timestamps of "
            f"step {SKIP + 1} and the last step (start-up left out); tokens/s: the median the worker "
            "reports (non-padding tokens of all ranks between two logged steps); seconds: the whole "
            "run, launch and model loading included.\n\n"
            f"| {kind} | examples/s | tokens/s | seconds | final loss |\n|---:|---:|---:|---:|---:|\n"
            + "".join(f"| {r['devices']} | {r['eps']:.1f} | {r['tps']:.0f} | {r['seconds']:.1f} | "
                      f"{r['final_loss']:.4f} |\n" for r in rows)
            + f"\nScaling efficiency on {multi['devices']}: {efficiency:.2f} "
              f"(examples/s on {multi['devices']} / ({multi['devices']} x examples/s on 1)).")
    write_section(SECTION, body)


if __name__ == "__main__":
    main()
