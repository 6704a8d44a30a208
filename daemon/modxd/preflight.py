"""Before a task exists: its data report, its automatic settings and its run estimate, in that order.

CreateTask (and ``validate_only``), EstimateQuota and StartTask call :func:`preflight` once
validation.validate_task has passed. The data reports come first (engine/data_report.py): the
automatic settings are chosen from their counts; then the resolver the App was given
(param_sources.apply_auto: only parameters whose value is a default) may change parameters, which
are then validated again on disk like a request's and, when they change what the report counts
(max_seq_length, the chat template, ...), reported again; last the run estimate and its memory
verdict (task_estimate.py), which refuses a run that cannot fit.

Blocking work (file reads, tokenizing the data, a calibration's child process): the App runs it in
a thread, never on the event loop. The data report tokenizes in this process with the ``tokenizers``
library and renders conversations with transformers' Jinja renderer, exactly as the create-time
tokenizer checks already do (modxd/tokenizer_checks.py): no model and no torch is loaded, and a
100,000-line file takes seconds (bench/data_report.py), where a worker process would first spend
longer importing torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import hardware
from .calibration import CalibrationFailed
from .errors import FailedPrecondition
from . import params as P
from .engine.data_report import DataReport
from .engine.safetensors_header import count_parameters
from .param_sources import AutoFacts, AutoResolver, Setting, apply_auto, settings_of
from .task_estimate import TaskEstimate, estimate_task, report_task
from .validation import Validated, validate_task

__all__ = ["Preflight", "preflight", "REPORT_KEYS"]

# Parameters the data report depends on: an automatic change to one of them means a new report.
REPORT_KEYS = ("train_file", "eval_file", "model_dir", "tokenizer_dir", "chat_template", "max_seq_length")


@dataclass
class Preflight:
    checked: Validated  # with the automatic values applied
    estimate: TaskEstimate | None  # None when the tokenizer cannot count tokens (no tokenizer.json)
    settings: list[Setting]
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def params(self) -> P.TrainParams:
        return self.checked.params

    @property
    def warnings(self) -> list[tuple[str, str]]:
        return self.problems + (list(self.estimate.warnings) if self.estimate else [])

    def reports(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The data reports as a task stores them (DataReport.to_dict())."""
        if self.estimate is None:
            return None, None
        evals = self.estimate.eval
        return self.estimate.train.to_dict(), evals.to_dict() if evals is not None else None

    def run_dict(self) -> dict[str, Any] | None:
        return self.estimate.run_dict() if self.estimate else None


def _facts(task_type: str, checked: Validated, train: DataReport, parameters: int) -> AutoFacts:
    examples = sum(1 for n in train.kept_labelled if n)
    return AutoFacts(task_type=task_type, params=checked.params, examples=examples,
                     tokens_per_epoch=train.kept_tokens, trainable_tokens_per_epoch=train.kept_trainable_tokens,
                     median_example_tokens=train.lengths.p50, longest_example_tokens=train.lengths.max,
                     model_parameters=parameters, model_type=str(checked.model_config.get("model_type", "")),
                     model_config=checked.model_config)


def preflight(task_type: str, checked: Validated, sources: dict[str, str], resolver: AutoResolver | None,
              roots: list[Path] | None, state_dir: str | Path, device: str, gpus: list[hardware.Gpu],
              calibrate: bool = False, world: int = 1, cpus: list[int] | None = None) -> Preflight:
    """The reports, the automatic settings and the estimate of a validated task (module docstring)."""
    if task_type in P.PREFERENCE_TYPES:  # the report counts SFT conversations and pretraining text, not pairs
        problem = ("no_data_report", f"no data report or run estimate for {task_type} tasks yet: the pairs were "
                                     "checked line by line; the quota estimate counts them")
        return Preflight(checked, None, settings_of(checked.params, sources), [problem])
    try:
        reports = report_task(task_type, checked.params, checked.model_config, checked.train)
    except ValueError as exc:  # a tokenizer without tokenizer.json: training works, counting here does not
        problem = ("no_data_report", f"no data report or run estimate: {exc}")
        return Preflight(checked, None, settings_of(checked.params, sources), [problem])
    if resolver is not None:
        parameters = count_parameters(str(checked.params["model_dir"]))
        params, sources, reasons = apply_auto(checked.params, sources,
                                              _facts(task_type, checked, reports[0], parameters), resolver)
        if params != checked.params:
            changed = {k for k in params if params[k] != checked.params[k]}
            checked = validate_task(task_type, params, roots)  # the automatic values checked like a request's
            if changed & set(REPORT_KEYS):
                reports = report_task(task_type, checked.params, checked.model_config, checked.train)
    else:
        reasons = {}
    try:
        estimate = estimate_task(task_type, checked.params, checked.model_config, state_dir, roots, device, gpus,
                                 checked.train, calibrate, cpus, reports=reports, world=world)
    except CalibrationFailed as exc:
        raise FailedPrecondition(f"{exc} (model_dir {checked.params['model_dir']} on {device}); the estimate "
                                 "without --calibrate still gives steps, tokens and memory") from None
    return Preflight(checked, estimate, settings_of(checked.params, sources, reasons))
