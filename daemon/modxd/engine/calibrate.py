"""Calibration: a few real optimizer steps of the task's model, timed, at the task's batch shape.

Runs in a worker process (a worker kind like ``train``: ``run_calibration(config, emit,
poll_command)``), never in the daemon. It is ``engine.train.run_training`` itself on synthetic
conversations of known token lengths, stopped through the command channel without a checkpoint,
so every cost of a real run is in it (the model as the task loads it, LoRA, precision, packing,
Trainer's own overhead). For SFT two runs: examples of ``max_seq_length`` tokens, then of an
eighth of it; the per-micro-batch overhead ``a`` and the seconds per unit of forward work ``b``
(engine/run_estimate.py) come from the two. Pretraining blocks always have ``max_seq_length``
tokens, so one run of padded full blocks gives the step time directly (``a`` = 0).

Each run's first step is a warm-up and is not timed into the line (what it costs beyond a typical
step, in the first run's fresh process, is kept as ``first_step_extra_seconds``); then at least
``MIN_STEPS`` and at most ``MAX_STEPS`` steps, stopping after ``STEP_BUDGET_SECONDS``. The line ``a + b * cost`` goes through
each run's fastest step and is then scaled by the median step's ratio to it (see ``_fit``): on a
busy host one disturbed step must not tilt the line, but the typical slowdown is real and the run
will meet it too. Memory: the peak RSS of the first run's training phase (the kernel's high-water
mark, reset when training begins: ``/proc/self/clear_refs``) and of model loading; on a GPU the
peak allocated VRAM (``run_training``'s own figure). The data preparation of the worker
(engine/data.py) is timed on the same files, so its cost per example and token can be estimated
for the task's real data.
"""
from __future__ import annotations

import gc
import json
import os
import statistics
import time
from typing import Any

from ..params import resolve
from ..protocol import Command, Emit, Log, Metrics, Poll, Report, Stop, TotalSteps
from .data_report import report_file
from .memory import estimate_training_memory, model_shape
from .run_estimate import example_cost, step_activation_bytes

__all__ = ["run_calibration", "CALIBRATION_VERSION", "MIN_STEPS", "MAX_STEPS"]

CALIBRATION_VERSION = 2  # 2: the first step's warm-up is measured (first_step_extra_seconds)
MIN_STEPS, MAX_STEPS = 3, 8
STEP_BUDGET_SECONDS = 20.0
_WORDS = ("the river carries small stones down to the sea while people on the bridge watch the boats and talk "
          "about weather markets music and the long road home before evening").split()


def _text(words: int, offset: int = 0) -> str:
    return " ".join(_WORDS[(offset + i) % len(_WORDS)] for i in range(max(words, 1)))


def _conversation(words: int, index: int) -> dict[str, Any]:
    prompt = max(words // 2, 1)
    return {"messages": [{"role": "user", "content": _text(prompt, index)},
                         {"role": "assistant", "content": _text(max(words - prompt, 1), index + 7)}]}


def _write_jsonl(path: str, objects: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for obj in objects:
            f.write(json.dumps(obj) + "\n")


def _sft_file(cfg: dict[str, Any], path: str, target: int, count: int) -> list[tuple[int, int]]:
    """``count`` conversations of about ``target`` tokens (never more); returns (tokens, labelled) of each."""
    params = {**cfg, "train_file": path}
    words = max(target // 2, 2)
    for _ in range(12):  # converge on the word count whose rendering fits the target
        _write_jsonl(path, [_conversation(words, i) for i in range(count)])
        report = report_file("sft", {**params, "max_seq_length": 1 << 30})
        longest = report.lengths.max
        if longest <= target and (target - longest) <= max(2, target // 32) or words <= 2:
            break
        words = max(2, int(words * target / max(longest, 1)) - (1 if longest > target else 0))
    final = report_file("sft", params)
    return list(zip(final.kept_lengths, final.kept_labelled))


def _pretrain_file(cfg: dict[str, Any], path: str, blocks: int) -> None:
    """Documents enough for ``blocks`` blocks of max_seq_length tokens, and a tenth more."""
    _write_jsonl(path, [{"text": _text(200)}])
    per_doc = max(report_file("pretrain", {**cfg, "train_file": path}).total_tokens, 1)
    needed = -(-int(blocks * int(cfg["max_seq_length"]) * 1.1) // per_doc)
    _write_jsonl(path, [{"text": _text(200, i)} for i in range(needed)])


# ------------------------------------------------------------------ memory readings (Linux; absent elsewhere)

def _status_bytes(name: str) -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ one timed run

class _Run:
    """run_training's events for one calibration run: step times, memory, the batching it chose."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.begin = self.data_ready = 0.0
        self.step_times: list[float] = []
        self.packed: bool | None = None
        self.load_peak = self.rss_begin = self.train_peak = 0
        self.reset_ok = False
        self.device_floor = 0

    def emit(self, event: Report) -> None:
        now = time.time()
        if isinstance(event, TotalSteps):  # Trainer's train-begin: the model is loaded
            self.begin = now
            self.load_peak = _status_bytes("VmHWM")
            self.reset_ok = _reset_high_water_mark()
            self.rss_begin = _status_bytes("VmRSS")
        elif isinstance(event, Metrics) and event.loss is not None:
            self.step_times.append(float(event.time or now))
            if not self.device_floor and event.device_memory_allocated_bytes:
                self.device_floor = int(event.device_memory_allocated_bytes)
        elif isinstance(event, Log):
            message = event.message
            if message.startswith("padding-free batches"):
                self.packed = True
            elif message.startswith("padded batches"):
                self.packed = False
            elif message.startswith("training data:"):
                self.data_ready = now

    def poll(self, timeout: float = 0.0) -> Command | None:
        """Stop, without a checkpoint, once enough steps are timed (this step is then the last logged)."""
        logged = len(self.step_times) + 1  # this step's own point is logged after the poll
        timed = logged - 1  # the first step is the warm-up
        spent = time.time() - self.step_times[0] if self.step_times else 0.0
        if timed + 1 >= MAX_STEPS or (timed + 1 >= MIN_STEPS and spent >= STEP_BUDGET_SECONDS):
            return Stop(reason="calibrated", save=False)
        return None

    def durations(self) -> list[float]:
        return [b - a for a, b in zip(self.step_times, self.step_times[1:])]


def _process_started() -> float:
    """When this process started (a worker's start-up includes its imports), or now when unknown."""
    try:
        import psutil

        return float(psutil.Process(os.getpid()).create_time())
    except Exception:  # psutil missing or unusable
        return time.time()


def _timed_run(cfg: dict[str, Any], data: str, out: str, started: float) -> tuple[_Run, dict[str, Any]]:
    from .train import run_training

    run = _Run(started)
    result = run_training({**cfg, "train_file": data, "output_dir": out, "eval_file": "", "eval_split_ratio": 0.0,
                           "eval_strategy": "no", "save_strategy": "no", "num_train_epochs": 1, "max_samples": 0,
                           "gradient_accumulation_steps": 1, "logging_steps": 1, "early_stopping_patience": 0,
                           "save_interval_minutes": 0, "merge_lora_after_training": False,
                           "resume_from_checkpoint": "", "reserve_quota": False, "log_level": "info"},
                          run.emit, run.poll)
    run.train_peak = _status_bytes("VmHWM") if run.reset_ok else 0
    gc.collect()
    return run, result


def _params(cfg: dict[str, Any], **changes: Any) -> Any:
    """The task's TrainParams (the schema checks them again) with ``changes``."""
    values = {k: v for k, v in {**cfg, **changes}.items() if k not in ("task_type", "device")}
    return resolve(str(cfg.get("task_type", "sft")), {}, values)


def _prep_seconds(cfg: dict[str, Any], files: list[tuple[str, list[tuple[int, int]]]]) -> tuple[float, float]:
    """Seconds per example and per token of the worker's data preparation (engine/data.py), from the files."""
    from .data import prepare_data
    from .models import load_tokenizer

    tokenizer = load_tokenizer(cfg["tokenizer_dir"] or cfg["model_dir"])
    if cfg.get("chat_template"):
        tokenizer.chat_template = cfg["chat_template"]
    points = []
    for path, examples in files:
        started = time.perf_counter()
        prepare_data(_params(cfg, train_file=path, output_dir=os.path.dirname(path), eval_file="", eval_split_ratio=0.0, max_samples=0),
                     tokenizer, lambda _m: None)
        points.append((len(examples), sum(t for t, _ in examples), time.perf_counter() - started))
    if len(points) == 2 and points[0][1] != points[1][1]:
        (e1, t1, s1), (e2, t2, s2) = points
        per_token = max((s1 - s2) / (t1 - t2), 0.0)
        per_example = max((s1 - per_token * t1) / e1, 0.0)
        return per_example, per_token
    examples, tokens, seconds = points[0]
    return 0.0, seconds / max(tokens, 1)


def _line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(a, b) of seconds = a + b * cost through one or two (cost, seconds) points, with a, b >= 0."""
    if len(points) == 1:
        cost, seconds = points[0]
        return 0.0, seconds / cost
    (c1, s1), (c2, s2) = sorted(points)
    b = (s2 - s1) / (c2 - c1) if c2 > c1 else 0.0
    a = s1 - b * c1
    if b <= 0:
        return (s1 + s2) / 2, 0.0
    if a < 0:
        return 0.0, s2 / c2
    return a, b


def _fit(runs: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(a, b, contention) from the runs' step times.

    The line goes through each run's fastest step (the least disturbed by other processes, so a
    spike in one run does not tilt it), then is scaled by the median ratio of every timed step to
    the line: the host's typical contention while calibrating, which the run will likely meet too."""
    a, b = _line([(r["cost"], min(r["step_seconds"])) for r in runs])
    ratios = [t / (a + b * r["cost"]) for r in runs for t in r["step_seconds"] if a + b * r["cost"] > 0]
    contention = statistics.median(ratios) if ratios else 1.0
    return a * contention, b * contention, contention


# ------------------------------------------------------------------ the entry point

def run_calibration(config: dict[str, Any], emit: Emit, poll_command: Poll) -> dict[str, Any]:
    """Calibrate for ``config`` (a task's parameters plus ``device``, ``task_type`` and ``scratch_dir``,
    an empty dir the run may fill); returns a dict for engine.run_estimate.Calibration.from_dict."""
    started = time.time()
    cfg = dict(config)
    scratch = str(cfg.pop("scratch_dir"))
    key = str(cfg.pop("calibration_key", ""))
    task_type = str(cfg.get("task_type", "sft"))
    batch = int(cfg["per_device_train_batch_size"])
    limit = int(cfg["max_seq_length"])
    with open(os.path.join(cfg["model_dir"], "config.json"), encoding="utf-8") as f:
        shape = model_shape(json.load(f))
    device_kind = "cuda" if str(cfg.get("device", "cpu")).startswith("cuda") else "cpu"
    count = batch * (MAX_STEPS + 2)
    targets = [limit] if task_type == "pretrain" else [limit, max(16, limit // 8)]
    runs: list[dict[str, Any]] = []
    files: list[tuple[str, list[tuple[int, int]]]] = []
    for number, target in enumerate(targets):
        path = os.path.join(scratch, f"calibration-{number}.jsonl")
        writing = time.time()
        if task_type == "pretrain":
            _pretrain_file(cfg, path, count)
            examples = [(limit, limit)] * batch
        else:
            examples = _sft_file(cfg, path, target, count)
        files.append((path, examples))
        emit(Log("info", f"calibration run {number + 1} of {len(targets)}: batch {batch} x {target} tokens"))
        written = time.time() - writing  # not a worker's start-up: taken off it
        run, result = _timed_run(cfg, path, os.path.join(scratch, f"out-{number}"),
                                 _process_started() + written if number == 0 else time.time())
        packed = bool(run.packed) if task_type == "sft" else False
        step = [t for t, _ in examples[:batch]]
        if packed:  # the mean example, batch times (their lengths differ by a token or two)
            step_cost = batch * statistics.fmean(example_cost(shape, t, m) for t, m in examples)
        else:
            longest = max(t for t, _ in examples)
            step_cost = batch * example_cost(shape, longest, longest)
        runs.append({
            "tokens": step, "cost": step_cost, "packed": packed, "step_seconds": run.durations(),
            "median_seconds": statistics.median(run.durations()) if run.durations() else 0.0,
            "startup_seconds": run.begin - run.started, "load_peak_bytes": run.load_peak,
            "first_step_seconds": run.step_times[0] - run.begin if run.step_times else 0.0,
            "rss_begin_bytes": run.rss_begin, "train_peak_bytes": run.train_peak,
            "device_peak_bytes": int(result.get("peak_device_memory_bytes") or 0),
            "device_floor_bytes": run.device_floor,
            "activation_bytes": step_activation_bytes(shape, cfg, device_kind, step, packed),
        })
    if not all(r["step_seconds"] for r in runs):
        raise RuntimeError("calibration: a run ended before any step could be timed")
    a, b, contention = _fit(runs)
    per_example, per_token = _prep_seconds(cfg, files) if task_type == "sft" else (0.0, 0.0)
    state = estimate_training_memory(shape, cfg, device_kind).parts["trainable_state"]
    result = _result(key, cfg, runs, a, b, per_example, per_token, device_kind, files, state)
    result["measured"].update(contention=contention, calibration_seconds=time.time() - started)
    return result


def _result(key: str, cfg: dict[str, Any], runs: list[dict[str, Any]], a: float, b: float, per_example: float,
            per_token: float, device_kind: str, files: list[tuple[str, list[tuple[int, int]]]],
            state: int) -> dict[str, Any]:
    """The Calibration fields. Memory comes from the first (full-length) run alone, which starts in a
    fresh process: the fixed part is what the process held when training began plus the gradients and
    optimizer state engine/memory.py counts (allocated by the first step); the rest of the training
    peak is activations, compared with engine/memory.py's model of them for the activation scale. (The
    second run inherits the first one's freed memory, so its RSS says nothing.)"""
    long = runs[0]
    if device_kind == "cuda":
        peak, fixed, load_peak = long["device_peak_bytes"], long["device_floor_bytes"], 0
    else:
        peak, fixed, load_peak = long["train_peak_bytes"], long["rss_begin_bytes"], long["load_peak_bytes"]
    scale = 1.0
    if peak and fixed and long["activation_bytes"] > 0:
        fixed += state
        scale = min(max((peak - fixed) / long["activation_bytes"], 0.05), 10.0)
    prep = per_example * len(files[0][1]) + per_token * sum(t for t, _ in files[0][1])
    return {
        "key": key, "device": str(cfg.get("device", "cpu")), "packed": bool(long["packed"]),
        "step_overhead_seconds": a, "seconds_per_cost": b,
        "peak_memory_bytes": int(peak or load_peak), "load_peak_memory_bytes": int(load_peak),
        "max_step_activation_bytes": int(long["activation_bytes"]), "activation_scale": scale,
        "floor_memory_bytes": int(fixed), "startup_seconds": max(long["startup_seconds"] - prep, 0.0),
        "prep_seconds_per_example": per_example, "prep_seconds_per_token": per_token,
        # A fresh process's first step (the first run's) costs more than the steps after it; the run
        # meets it once.
        "first_step_extra_seconds": max(long["first_step_seconds"] - long["median_seconds"], 0.0),
        "created": time.time(), "measured": {"runs": runs, "version": CALIBRATION_VERSION},
    }
