"""Benchmark: the time and memory estimates before start against the actual runs.

    .venv/bin/python bench/estimates.py [--models tiny,smollm2] [--no-write]

Targets (issue 19): the training-time estimate within 30 % of the actual training time, the memory
estimate within 25 % of the measured peak, on the tiny model and SmolLM2-135M across a few data
sizes. For each model: one calibration (modxd/calibration.py: a spawned child that runs
engine/calibrate.py, which times real optimizer steps through engine.train.run_training), then for
each data size the data report and the estimate (engine/data_report.py, engine/run_estimate.py)
and the actual run: ``run_training`` in a fresh spawned process, as a training worker calls it.
Training time is Trainer's train-begin to the last step's log (model loading and the final save
are outside it, for the estimate too); the peak is the child's peak RSS (VmHWM, model loading
included). The data are bench/sft_data.py's chat conversations, lengths spread uniformly between
20 tokens and max_seq_length. The host's load average is printed with every run: on a shared
machine the step times move with it, which no estimate made earlier can know.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, bench_model_dir, machine, run_in_child, write_section  # noqa: E402
from sft_data import make_conversations, write_jsonl  # noqa: E402

COMMAND = ".venv/bin/python bench/estimates.py"
# name: (examples per run, batch, max_seq_length) -- SmolLM2 steps take seconds each on 2 cores
MODELS = {
    "tiny": ([128, 512, 2048], 8, 512),
    "smollm2": ([8, 16, 32], 2, 256),
}


def _params(model_dir: Path, batch: int, max_seq_length: int) -> dict[str, Any]:
    """A task's parameters (the schema's defaults and these), without its data and output paths."""
    from modxd import params as P
    from tests.fixtures.plugin import SMALL_RUN

    return {**P.defaults_for("sft"), **SMALL_RUN, "model_dir": str(model_dir), "per_device_train_batch_size": batch,
            "max_seq_length": max_seq_length, "learning_rate": 2e-4, "lr_scheduler_type": "linear",
            "warmup_ratio": 0.0, "lora_r": 16, "lora_alpha": 32, "lora_target_modules": ["all-linear"],
            "save_strategy": "no", "num_train_epochs": 1, "logging_steps": 1}


def _status_bytes(name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _train_child(config: dict[str, Any], queue: Any) -> None:
    """One real run, as a worker runs it: training seconds from the events, the process's peak RSS."""
    started = time.time()
    marks: dict[str, float] = {}

    from modxd.engine.train import run_training
    from modxd.protocol import Metrics, TotalSteps

    def emit(event: Any) -> None:
        if isinstance(event, TotalSteps):
            marks["begin"] = time.time()
        elif isinstance(event, Metrics) and event.loss is not None:
            marks["last"] = float(event.time)

    run_training(config, emit, lambda *_a: None)
    queue.put({"training_seconds": marks["last"] - marks["begin"], "startup_seconds": marks["begin"] - started,
               "peak_rss_bytes": _status_bytes("VmHWM")})


def _bench_model(name: str, work: Path) -> list[dict[str, Any]]:
    from modxd.calibration import calibrate
    from modxd.engine.data_report import report_file
    from modxd.engine.memory import model_shape
    from modxd.engine.models import load_tokenizer
    from modxd.engine.run_estimate import compare, estimate_run
    from modxd.engine.safetensors_header import count_parameters

    sizes, batch, max_seq_length = MODELS[name]
    model = bench_model_dir(name)
    params = _params(model, batch, max_seq_length)
    model_config = json.loads((model / "config.json").read_text())
    shape = model_shape(model_config, count_parameters(str(model)))
    state = work / f"state-{name}"
    state.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    calibration, cached = calibrate("sft", params, model_config, "cpu", state, None)
    calibration_s = time.perf_counter() - started
    print(f"{name}: calibrated in {calibration_s:.0f} s (load {load:.1f} -> {os.getloadavg()[0]:.1f}): "
          f"a {calibration.step_overhead_seconds:.3f} s, b {calibration.seconds_per_cost:.3g} s/FLOP, "
          f"contention {calibration.measured.get('contention', 1):.2f}", flush=True)
    tokenizer = load_tokenizer(str(model))
    rows = []
    for size in sizes:
        data = write_jsonl(work / f"{name}-{size}.jsonl",
                           make_conversations(tokenizer, size, seed=size, min_tokens=20, max_tokens=max_seq_length))
        config = {**params, "train_file": str(data), "output_dir": str(work / f"out-{name}-{size}")}
        report = report_file("sft", config)
        estimate = estimate_run("sft", config, shape, report, calibration)
        load = os.getloadavg()[0]
        actual = run_in_child(_train_child, config)
        checks = {c.quantity: c for c in compare(estimate, actual["training_seconds"], actual["peak_rss_bytes"])}
        row = {"model": name, "examples": size, "steps": estimate.total_steps, "tokens": estimate.total_tokens,
               "load_before": load, "load_after": os.getloadavg()[0],
               "estimated_s": estimate.training_seconds, "actual_s": actual["training_seconds"],
               "time_error": checks["training_seconds"].error,
               "estimated_startup_s": estimate.startup_seconds, "actual_startup_s": actual["startup_seconds"],
               "estimated_peak": estimate.peak_memory_bytes, "actual_peak": actual["peak_rss_bytes"],
               "memory_error": checks["peak_memory_bytes"].error, "calibration_s": calibration_s}
        print(json.dumps(row), flush=True)
        rows.append(row)
        shutil.rmtree(work / f"out-{name}-{size}", ignore_errors=True)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | examples | steps | load avg | est. train s | actual s | error | est. peak RSS | "
             "actual peak | error |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['examples']} | {r['steps']} | {r['load_before']:.1f}-{r['load_after']:.1f} "
                     f"| {r['estimated_s']:.1f} | {r['actual_s']:.1f} | {r['time_error']:+.0%} | "
                     f"{r['estimated_peak'] / 2**30:.2f} GiB | {r['actual_peak'] / 2**30:.2f} GiB | "
                     f"{r['memory_error']:+.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,smollm2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="estimates-", dir=CACHE if CACHE.is_dir() else None))
    try:
        rows = [row for name in args.models.split(",") for row in _bench_model(name.strip(), work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    calibrations = ", ".join(sorted({f"{r['model']} {r['calibration_s']:.0f} s" for r in rows}))
    within_time = sum(abs(r["time_error"]) <= 0.30 for r in rows)
    within_memory = sum(abs(r["memory_error"]) <= 0.25 for r in rows)
    body = f"""
Measured on {machine()} (shared: the load average is given per run).
Command: `{COMMAND} --models {args.models}`. Calibration (once per model and shape): {calibrations}.
Targets: training time within 30 % ({within_time} of {len(rows)} runs), peak memory within 25 %
({within_memory} of {len(rows)} runs).

{_table(rows)}
"""
    print(body)
    if not args.no_write:
        write_section("Estimates before start", body)


if __name__ == "__main__":
    main()
