"""A task's data report and run estimate at create / estimate time, with the memory verdict.

This is what CreateTask (and ``--validate-only``) and EstimateQuota call once validation.validate_task
has passed: the data reports of the training and eval files (engine/data_report.py), the run
estimate (engine/run_estimate.py) from the cached calibration of this model and step shape on the
chosen device (modxd/calibration.py; ``calibrate=True`` runs one when none is cached), and the
verdict on memory, judged by the one rule in memory_plan.py (refused, or a warning saying what would
fit). All blocking
file I/O (and, with ``calibrate``, a child process): the API layer runs it in a thread.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import calibration, hardware, memory_plan
from .engine.data_report import DataReport, report_file
from .engine.formats import DataSummary
from .engine.memory import estimate_training_memory, memory_advice, model_shape
from .engine.run_estimate import CPU_RUNTIME_BYTES, Calibration, RunEstimate, compare, estimate_run
from .engine.safetensors_header import count_parameters

__all__ = ["TaskEstimate", "estimate_task", "report_task", "judge"]


@dataclass
class TaskEstimate:
    train: DataReport
    eval: DataReport | None
    run: RunEstimate
    calibration: Calibration | None
    calibration_cached: bool
    memory: dict[str, Any]
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def run_dict(self) -> dict[str, Any]:
        """What a task stores as its quota estimate's ``run`` (the RunEstimate message): the estimate,
        the calibration it came from and the memory verdict."""
        return {**self.run.to_dict(), "calibration_cached": self.calibration_cached,
                "calibration_time": self.calibration.created if self.calibration else None,
                "memory_capacity_bytes": self.memory["capacity_bytes"],
                "memory_available_bytes": self.memory["available_bytes"],
                "memory_fits": self.memory["fits"], "memory_tight": self.memory["tight"]}

    def to_dict(self) -> dict[str, Any]:
        """The plain data of the proposed DataReport / RunEstimate messages."""
        return {"train_data": self.train.to_dict(), "eval_data": self.eval.to_dict() if self.eval else None,
                "estimate": self.run.to_dict(), "memory": self.memory,
                "calibration": None if self.calibration is None else {
                    "key": self.calibration.key, "device": self.calibration.device,
                    "created": self.calibration.created, "cached": self.calibration_cached},
                "warnings": [{"code": c, "message": m} for c, m in self.warnings]}


def estimate_task(task_type: str, params: dict[str, Any], model_config: dict[str, Any], state_dir: str | Path,
                  roots: list[str] | None, device: str = "cpu", gpus: list[hardware.Gpu] | None = None,
                  train_summary: DataSummary | None = None, calibrate: bool = False,
                  cpus: list[int] | None = None,
                  reports: tuple[DataReport, DataReport | None] | None = None, world: int = 1) -> TaskEstimate:
    """Reports, estimate and memory verdict for validated ``params``; raises FailedPrecondition when the
    run cannot fit. Without ``calibrate`` only a cached calibration is used (no time without one).
    ``reports`` are the data reports when the caller already made them (:func:`report_task`)."""
    train, evals = reports or report_task(task_type, params, model_config, train_summary)
    gpu = next((g for g in gpus or [] if g.device == device), None)
    gpu_name = gpu.name if gpu else ""
    if calibrate:
        found, cached = calibration.calibrate(task_type, params, model_config, device, state_dir, roots, gpu_name,
                                              cpus=cpus)
    else:
        key = calibration.calibration_key(task_type, params, model_config, device, gpu_name, cpus)
        found, cached = calibration.CalibrationCache(state_dir).get(key), True
    shape = model_shape(model_config, count_parameters(str(params["model_dir"])))
    device_kind = "cuda" if device.startswith("cuda") else "cpu"
    run = estimate_run(task_type, params, shape, train, found, evals, device_kind)
    where = memory_plan.capacity(params, gpus or [], device, world)
    if found is not None:  # what the calibration held once the model had loaded
        floor = found.floor_memory_bytes
    else:
        floor = estimate_training_memory(shape, params, device_kind).fixed + (
            CPU_RUNTIME_BYTES if device_kind == "cpu" else 0)
    verdict = memory_plan.judge(run.peak_memory_bytes, floor, found is not None, where)
    advice = memory_advice(shape, params, where.total_bytes, device_kind) if not verdict["fits"] or verdict["tight"] else []
    warnings = list(train.warnings) + (list(evals.warnings) if evals else []) + memory_plan.consequences(verdict, advice)
    if found is None:  # not a warning: nothing is wrong, the estimate says what it lacks
        run.explanation.append("no time estimate yet: this model has not been timed on this device at this batch "
                               "shape (modxctl train estimate --calibrate runs a short calibration)")
    return TaskEstimate(train, evals, run, found, bool(found) and cached, verdict, warnings)


def report_task(task_type: str, params: dict[str, Any], model_config: dict[str, Any],
                train_summary: DataSummary | None = None) -> tuple[DataReport, DataReport | None]:
    """The data reports of the training file and (when there is one) the eval file."""
    context = model_config.get("max_position_embeddings") or (model_config.get("text_config") or {}).get(
        "max_position_embeddings")
    train = report_file(task_type, params, "train_file", train_summary, context_length=context)
    evals = report_file(task_type, params, "eval_file", against=train) if params.get("eval_file") else None
    return train, evals


def judge(estimate: dict[str, Any], training_seconds: float | None, peak_memory_bytes: int | None) -> list[dict[str, Any]]:
    """After the run: the stored estimate (``RunEstimate.to_dict()``) next to the actuals, as plain data."""
    run = RunEstimate(**estimate)
    return [check.__dict__ for check in compare(run, training_seconds, peak_memory_bytes)]
