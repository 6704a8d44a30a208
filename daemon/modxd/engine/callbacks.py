"""Trainer callbacks that turn training into events and obey the daemon.

:class:`EventCallback` is the only place that talks to the worker shim while
``Trainer`` runs: it emits metrics, polls for commands at every optimizer step
end (``Stop(reason, save)`` → finish the step, save if asked, end; ``Save()`` →
checkpoint at this step; modxd/protocol.py), and implements the save
policy ``Trainer`` lacks: time-based saves and "always save at the end unless
the last step was just saved". :func:`route_logs` mirrors Python logging (ours,
transformers', peft's and ``warnings``) into ``log`` events.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from typing import Any, Callable, Iterator

from transformers import TrainerCallback

from ..protocol import Emit, Log, Metrics, Save, Stop, TotalSteps

__all__ = ["EventCallback", "EventLogHandler", "route_logs", "finite"]

_OWN_LOGGERS = ("modxd.engine",)
_LIBRARY_LOGGERS = ("transformers", "peft", "accelerate", "py.warnings")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def finite(value: Any) -> float | None:
    """A JSON-safe float: tensors unwrapped, NaN/inf become None."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def perplexity(loss: float | None) -> float | None:
    """``exp(loss)``, or None when it is not a finite number."""
    if loss is None or loss >= 700:
        return None
    return math.exp(loss)


class EventLogHandler(logging.Handler):
    """Sends every log record as a ``Log`` report."""

    def __init__(self, emit: Emit, level: int):
        super().__init__(level)
        self._emit = emit
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelname.lower()
            level = {"warn": "warning", "critical": "error"}.get(level, level)
            self._emit(Log(level, self.format(record)))
        except Exception:  # a failing sink must not break training
            self.handleError(record)


@contextlib.contextmanager
def route_logs(emit: Emit, log_level: str) -> Iterator[None]:
    """Mirror logging into events: ours at ``log_level``; the libraries' warnings and
    errors (all their records at ``debug``, their info chatter is too noisy otherwise).
    Library deprecation warnings are not actionable for users and are dropped.
    """
    from transformers.utils import logging as hf_logging

    level = _LEVELS.get(log_level, logging.INFO)
    library_level = level if level == logging.DEBUG else max(level, logging.WARNING)
    handler = EventLogHandler(emit, logging.DEBUG)
    saved = []
    for names, lvl in ((_OWN_LOGGERS, level), (_LIBRARY_LOGGERS, library_level)):
        for name in names:
            logger = logging.getLogger(name)
            saved.append((logger, logger.level))
            logger.addHandler(handler)
            logger.setLevel(lvl)
    hf_verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity(library_level)
    hf_logging.disable_progress_bar()
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logging.captureWarnings(False)
        hf_logging.set_verbosity(hf_verbosity)
        for logger, old in saved:
            logger.removeHandler(handler)
            logger.setLevel(old)


class EventCallback(TrainerCallback):
    """Metrics, commands and the extra save policy of a modx run.

    Every metrics event carries ``time``: the wall clock (``time.time()``) when the worker
    logged the point. The daemon stores it with the point and serves it as
    ``MetricsPoint.time``, so step rates and delivery latency are measured from the
    worker's own clock, not from when the daemon got round to storing the point.
    """

    def __init__(self, emit: Emit, poll_command: Callable[[], Stop | Save | None],
                 save_interval_minutes: float = 0, save_strategy: str = "steps", steps_per_epoch: int = 0,
                 disable_saves: Callable[[], None] = lambda: None, telemetry: Any = None):
        self.telemetry = telemetry  # engine.telemetry.DeviceTelemetry: device readings in each point
        self.emit = emit
        self.poll_command = poll_command
        self.interval_s = float(save_interval_minutes or 0) * 60
        self.save_strategy = save_strategy
        self.steps_per_epoch = steps_per_epoch
        self.stop_command: Stop | None = None
        self.early_stopped = False
        self.disable_saves = disable_saves  # a stop without save must also skip the epoch-end save
        self.last_loss: float | None = None
        self.train_begin: float | None = None  # monotonic: Trainer's train-begin (the model is loaded)
        self.last_step_time: float | None = None  # monotonic: the last logged training step
        self._t0 = self._last_log_t = self._last_save_t = time.monotonic()
        self._step0 = 0
        self._last_tokens = 0

    # -- progress -----------------------------------------------------------------
    def _progress(self, state: Any) -> dict[str, Any]:
        step, total = state.global_step, state.max_steps
        done = step - self._step0
        elapsed = time.monotonic() - self._t0
        eta = (elapsed / done) * max(total - step, 0) if done > 0 else None
        return {"step": step, "total_steps": total, "epoch": finite(state.epoch),
                "percent": round(100.0 * step / total, 2) if total else 0.0,
                "eta_seconds": round(eta, 1) if eta is not None else None}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        self._t0 = self._last_log_t = self._last_save_t = now
        self.train_begin = now
        self._step0 = state.global_step
        self._last_tokens = state.num_input_tokens_seen
        if self.telemetry is not None:
            self.telemetry.reset_peak()
        self.emit(TotalSteps(int(state.max_steps)))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        command = self.poll_command()
        if isinstance(command, Stop) and self.stop_command is None:
            self.stop_command = command
            control.should_training_stop = True
            control.should_log = True
            if command.save:
                control.should_save = True
            else:
                control.should_save = False
                self.disable_saves()
            return
        if isinstance(command, Save):  # "checkpoint now", e.g. before a planned shutdown
            control.should_save = True
        if self.interval_s and time.monotonic() - self._last_save_t >= self.interval_s:
            control.should_save = True
        if state.global_step >= state.max_steps:
            control.should_save = True  # final save (deduplicated if this step is saved twice)
        if (self.save_strategy == "epoch" and self.steps_per_epoch
                and state.global_step % self.steps_per_epoch == 0):
            control.should_log = True  # so the epoch-end checkpoint carries this step's loss
        if control.should_save:
            control.should_log = True

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> None:
        metrics = metrics or {}
        eval_loss = finite(metrics.get("eval_loss"))
        self.emit(Metrics(**self._progress(state), eval_loss=eval_loss, eval_perplexity=perplexity(eval_loss),
                          time=time.time()))
        if control.should_training_stop and self.stop_command is None and state.global_step < state.max_steps:
            self.early_stopped = True  # EarlyStoppingCallback (registered before us) fired
            control.should_save = True

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._last_save_t = time.monotonic()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" not in logs:
            return
        now = time.monotonic()
        tokens = state.num_input_tokens_seen - self._last_tokens
        span = now - self._last_log_t
        self._last_tokens, self._last_log_t = state.num_input_tokens_seen, now
        loss = finite(logs.get("loss"))
        self.last_loss = loss
        self.last_step_time = now  # the training time a run reports (RunMeasured) ends here
        self.emit(Metrics(**self._progress(state), loss=loss, perplexity=perplexity(loss),
                          learning_rate=finite(logs.get("learning_rate")), grad_norm=finite(logs.get("grad_norm")),
                          tokens_per_second=round(tokens / span, 1) if span > 0 else None, time=time.time(),
                          **(self.telemetry.sample() if self.telemetry is not None else {})))
