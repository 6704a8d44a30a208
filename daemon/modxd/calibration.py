"""The calibration cache and how a calibration runs (pure Python in the daemon; torch only in the child).

A calibration (engine/calibrate.py) times real optimizer steps of one model on one device at one
batch shape; it takes seconds on the tiny model and a minute or so on a 135M model on two CPU
cores, so it is done once and kept in ``<state_dir>/calibration.json``, keyed by everything that
changes a step's time or memory: the model (a hash of its config.json), the device (the GPU's
name, or the CPU's model and how many cores this process may use), the task type, batch size,
max_seq_length, LoRA settings, quantization, precision flags, gradient checkpointing, the
optimizer, Liger kernels, and the versions of torch and transformers. Anything else (the data,
epochs, learning rate) does not change a step and reuses the entry.

The file is replaced atomically (write, fsync, rename): a crash leaves the old cache or the new
one. An unreadable cache is treated as empty, never as an error: it only costs a calibration.

Until the worker boundary (issue 22) gains a ``calibrate`` worker kind, :func:`run_calibration_process`
runs ``engine.calibrate.run_calibration`` in a spawned child confined to the allowed roots plus its
scratch dir, like a worker, and returns its result.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import multiprocessing as mp
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .durable import write_atomic
from .engine.run_estimate import Calibration

__all__ = ["CalibrationCache", "calibration_key", "key_digest", "run_calibration_process", "calibrate",
           "CACHE_FILE", "CalibrationFailed"]

CACHE_FILE = "calibration.json"
MAX_ENTRIES = 64
KEY_VERSION = 2  # 2: calibrations measure the first step's warm-up
# Parameters that change the time or memory of one optimizer step (with their defaults when absent).
STEP_KEYS = {"per_device_train_batch_size": 1, "max_seq_length": 512, "use_lora": None, "lora_r": 16,
             "lora_target_modules": None, "quantization_bit": 0, "fp16": False, "bf16": False, "tf32": False,
             "gradient_checkpointing": True, "optim": "adamw_torch", "use_liger_kernel": False,
             "chat_template": ""}


class CalibrationFailed(RuntimeError):
    """The calibration child failed or timed out; the sentence says how."""


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_identity(device: str, gpu_name: str = "", cpus: list[int] | None = None) -> str:
    """What the device is, not where: 'cuda NVIDIA H100 80GB HBM3' or 'cpu <model> x<cores>', the cores
    a training worker gets (``cpus``: the daemon's worker_cpus; else all this process may use)."""
    if device.startswith("cuda"):
        return f"cuda {gpu_name}".strip()
    cores = len(cpus) if cpus else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                    else (os.cpu_count() or 1))
    return f"cpu {_cpu_name()} x{cores}"


def calibration_key(task_type: str, params: dict[str, Any], model_config: dict[str, Any], device: str,
                    gpu_name: str = "", cpus: list[int] | None = None) -> dict[str, Any]:
    """Everything a calibration depends on (see the module docstring), as plain JSON data."""
    step = {name: params.get(name, default) for name, default in STEP_KEYS.items()}
    if step["use_lora"] is None:
        step["use_lora"] = task_type == "sft"
    if isinstance(step["lora_target_modules"], (list, tuple)):
        step["lora_target_modules"] = sorted(str(t) for t in step["lora_target_modules"])
    if not step["use_lora"]:  # LoRA settings do not matter for full fine-tuning
        step.update(lora_r=0, lora_target_modules=None, quantization_bit=0)
    model = hashlib.sha256(json.dumps(model_config, sort_keys=True).encode()).hexdigest()[:16]
    return {"version": KEY_VERSION, "model": model, "device": device_identity(device, gpu_name, cpus),
            "task_type": task_type, **step, "torch": _version("torch"), "transformers": _version("transformers")}


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


class CalibrationCache:
    """``<state_dir>/calibration.json``: {"entries": {digest: {"key": ..., "result": ..., "used": t}}}."""

    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.path = Path(state_dir) / CACHE_FILE

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return entries if isinstance(entries, dict) else {}

    def get(self, key: dict[str, Any]) -> Calibration | None:
        entry = self._read().get(key_digest(key))
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        try:
            return Calibration.from_dict(entry["result"])
        except (KeyError, TypeError):
            return None

    def put(self, key: dict[str, Any], result: dict[str, Any]) -> None:
        entries = self._read()
        entries[key_digest(key)] = {"key": key, "result": result, "stored": time.time()}
        if len(entries) > MAX_ENTRIES:  # the oldest go first
            for digest in sorted(entries, key=lambda d: entries[d].get("stored", 0))[:len(entries) - MAX_ENTRIES]:
                del entries[digest]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"entries": entries}, indent=1, sort_keys=True))


def _child(config: dict[str, Any], roots: list[str] | None, cpus: list[int] | None, conn: Any) -> None:
    """The calibration process: pinned and confined like a worker, one result or one error back."""
    from . import paths
    from .engine.calibrate import run_calibration

    if cpus:  # the training worker's CPUs (worker_cpus), before torch starts its threads
        os.sched_setaffinity(0, cpus)
    paths.confine(None if roots is None else [*roots, config["scratch_dir"]])
    try:
        conn.send({"type": "result", **run_calibration(config, lambda _e: None, lambda *_a: None)})
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        conn.send({"type": "error", "error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def run_calibration_process(config: dict[str, Any], scratch_parent: str | os.PathLike, roots: list[str] | None,
                            timeout: float = 900.0, cpus: list[int] | None = None) -> dict[str, Any]:
    """Run one calibration in a spawned child; its scratch dir (data, output) is removed afterwards."""
    Path(scratch_parent).mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="calibration-", dir=scratch_parent)
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=({**config, "scratch_dir": scratch}, roots, cpus, send), daemon=True)
    try:
        child.start()
        send.close()
        if not receive.poll(timeout):
            raise CalibrationFailed(f"the calibration did not finish within {timeout:.0f} s")
        try:
            message = receive.recv()
        except EOFError:
            raise CalibrationFailed(f"the calibration process died (exit code {child.exitcode})") from None
        if message.get("type") != "result":
            raise CalibrationFailed(f"the calibration failed: {message.get('error')}")
        message.pop("type")
        return message
    finally:
        if child.pid is not None:
            if child.is_alive():
                child.kill()
            child.join(timeout=30)
        send.close()
        receive.close()
        shutil.rmtree(scratch, ignore_errors=True)


def calibrate(task_type: str, params: dict[str, Any], model_config: dict[str, Any], device: str,
              state_dir: str | os.PathLike, roots: list[str] | None, gpu_name: str = "",
              timeout: float = 900.0, cpus: list[int] | None = None) -> tuple[Calibration, bool]:
    """The calibration for this task's step shape on ``device``: (calibration, whether it came from the cache)."""
    key = calibration_key(task_type, params, model_config, device, gpu_name, cpus)
    cache = CalibrationCache(state_dir)
    cached = cache.get(key)
    if cached is not None:
        return cached, True
    config = {**params, "task_type": task_type, "device": device, "calibration_key": key_digest(key)}
    result = run_calibration_process(config, state_dir, roots, timeout, cpus)
    cache.put(key, result)
    return Calibration.from_dict(result), False
