"""Run every benchmark, one after another, and rewrite docs/benchmarks.md.

    .venv/bin/python bench/run_all.py [--only train,daemon,web,latency,load,chat,export,studio,distributed] [--quick]

Each benchmark compares modx with the obvious alternative in one process tree, alternating the
two, and replaces its own section of docs/benchmarks.md (machine, date, command, medians, ratios
and whether the target is met). ``--quick`` runs fewer repeats: for checking that the
benchmarks work, not for numbers to keep (it does not write the file). ``distributed`` runs
only on a host with two or more GPUs (``bench/distributed.py --cpu 2`` checks it on a CPU).
About 90 minutes on 2 CPU cores; run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# name: (module, full arguments, quick arguments)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "train": ("train_throughput", [], ["--repeats", "1", "--models", "tiny", "--no-write"]),
    "daemon": ("daemon_overhead", [], ["--pairs", "1", "--alternate-pairs", "1", "--epochs", "10", "--no-write"]),
    "web": ("web_overhead", [], ["--pairs", "1", "--control-pairs", "1", "--epochs", "10", "--no-write"]),
    "studio": ("studio", [], ["--loads", "2", "--epochs", "2", "--points", "2000", "--no-write"]),
    "latency": ("metric_latency", [], ["--reps", "1", "--epochs", "5", "--no-write"]),
    "load": ("load_isolation", [], ["--rounds", "1", "--no-write"]),
    "chat": ("chat", [], ["--runs", "1", "--no-write"]),
    "export": ("export", [], ["--no-write"]),
    "distributed": ("distributed", [], ["--model", "tiny", "--no-write"]),
}


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of: "
                        + ", ".join(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="one short run each; do not write the results")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for name in chosen:
        module_name, full, quick = BENCHMARKS[name]
        if name == "distributed" and gpu_count() < 2:
            print("==> distributed: skipped (it compares 1 GPU with several; this host has fewer than 2)")
            continue
        print(f"==> {name} ({module_name})", flush=True)
        started = time.perf_counter()
        importlib.import_module(module_name).main(quick if args.quick else full)
        print(f"==> {name}: {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
