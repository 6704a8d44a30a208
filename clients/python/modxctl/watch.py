"""Monitoring a training task: live watch, logs, metrics history, checkpoints.

The rendering (a pure function of the events seen) is kept in plain functions
and TaskMonitor, so it is tested without a daemon or a terminal; the
`train watch|logs|metrics|checkpoints` commands at the bottom are thin.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Callable, Iterator

import click
import grpc

from modx.v1 import common_pb2, training_pb2

from .connection import App, CliError, follow, get_app
from .output import (
    TAB,
    LiveBlock,
    bar,
    echo,
    emit_json,
    enum_label,
    fmt_bytes,
    fmt_clock,
    fmt_duration,
    fmt_num,
    fmt_time,
    note,
    opt,
    printable,
    table,
)
from .paging import all_pages
from .plots import curve_line

TERMINAL = {common_pb2.TASK_STATE_COMPLETED, common_pb2.TASK_STATE_STOPPED, common_pb2.TASK_STATE_FAILED}
# Warnings arrive as their own events too, so only errors are loud among log lines.
_LOUD_LEVELS = {"error", "critical", "fatal"}


def state_label(state: int) -> str:
    return enum_label(common_pb2.TaskState, state)


def fraction_done(step: int, total: int, percent: float) -> float:
    """Progress as 0..1: from step/total when known, else `percent` (0-100)."""
    if total > 0:
        return min(1.0, max(0.0, step / total))
    return min(1.0, max(0.0, percent / 100.0))


def progress_text(m: training_pb2.MetricsPoint, *, with_bar: bool) -> str:
    """'step 120/1000 ████░░ 12.0%  ETA 3m20s  loss 1.2345  lr 1.90e-04'."""
    frac = fraction_done(m.step, m.total_steps, m.percent)
    total = str(m.total_steps) if m.total_steps else "?"
    if with_bar:
        parts = [f"step {m.step}/{total} {bar(frac)} {frac * 100:5.1f}%"]
    else:
        parts = [f"step {m.step}/{total} ({frac * 100:.1f}%)"]
    parts.append(f"ETA {fmt_duration(opt(m, 'eta_seconds'))}")
    for field, label, spec in (
        ("loss", "loss", ".4f"),
        ("learning_rate", "lr", ".2e"),
        ("grad_norm", "grad", ".3g"),
        ("eval_loss", "eval_loss", ".4f"),
        ("reward_margin", "margin", ".3f"),  # preference tasks (dpo, orpo)
        ("reward_accuracy", "acc", ".2f"),
        ("eval_reward_margin", "eval_margin", ".3f"),
        ("tokens_per_second", "tok/s", ".0f"),
    ):
        value = opt(m, field)
        if value is not None:
            parts.append(f"{label} {fmt_num(value, spec)}")
    device = device_text(m)
    if device:
        parts.append(device)
    return "  ".join(parts)


def device_text(m: training_pb2.MetricsPoint) -> str:
    """'gpu 12.3 GiB (peak 14.1 GiB) 97% 512 W 61°C' when the point carries device telemetry."""
    allocated, peak = opt(m, "device_memory_allocated_bytes"), opt(m, "device_memory_peak_bytes")
    parts = []
    if allocated is not None:
        parts.append(f"gpu {fmt_bytes(allocated)}" + (f" (peak {fmt_bytes(peak)})" if peak is not None else ""))
    for field, fmt in (("gpu_utilization_percent", "{:.0f}%"), ("gpu_power_watts", "{:.0f} W"),
                       ("gpu_temperature_celsius", "{:.0f}°C")):
        value = opt(m, field)
        if value is not None:
            parts.append(fmt.format(value))
    return " ".join(parts)


def event_line(ev: training_pb2.TaskEvent, show_logs: bool = True) -> str | None:
    """The permanent line for an event, or None for metrics (and quiet log lines)."""
    clock = fmt_clock(ev.time)
    kind = ev.WhichOneof("payload")
    if kind == "state_change":
        sc = ev.state_change
        to = state_label(sc.to_state)
        if sc.from_state:
            text = f"{clock} state: {state_label(sc.from_state)} → {to}"
        else:
            text = f"{clock} state: {to}"
        return text + (f" ({sc.reason})" if sc.reason and sc.reason != to else "")
    if kind == "checkpoint_saved":
        c = ev.checkpoint_saved
        loss = opt(c, "loss")
        extra = f", loss {fmt_num(loss, '.4f')}" if loss is not None else ""
        size = f", {fmt_bytes(c.size_bytes)}" if c.size_bytes else ""
        return f"{clock} checkpoint saved: step {c.step}{extra}{size} → {c.id}"
    if kind == "checkpoint_deleted":
        c = ev.checkpoint_deleted
        return f"{clock} checkpoint files deleted by retention: step {c.step} ({c.checkpoint_id})"
    if kind == "warning":
        w = ev.warning
        return f"{clock} warning: {w.message}" + (f" ({w.code})" if w.code else "")
    if kind == "log":
        log = ev.log
        if not show_logs and log.level.lower() not in _LOUD_LEVELS:
            return None
        return f"{fmt_clock(log.time) if log.HasField('time') else clock} {log.level.upper():<7} {log.message}"
    return None


class TaskMonitor:
    """Turns a task's events into a live display (TTY) or plain lines (pipe)."""

    def __init__(
        self,
        block: LiveBlock,
        *,
        show_logs: bool = False,
        spark_every: float = 3.0,
        spark_width: int = 40,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.block = block
        self.show_logs = show_logs
        self.spark_every = spark_every
        self.spark_width = spark_width
        self.clock = clock
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.margins: list[float] = []  # preference tasks: the reward margin
        self.last_metrics: training_pb2.MetricsPoint | None = None
        self.final_state: int | None = None
        self.last_seq = 0
        self._sparks: list[str] = []
        self._sparks_at = -math.inf
        self._sparks_n = 0

    def sparklines(self, force: bool = False) -> list[str]:
        """Loss and learning-rate curves, recomputed every `spark_every` seconds.

        Also whenever the points have doubled since the last drawing, so a
        fast history replay shows its curve at once (and stays linear in cost).
        """
        now = self.clock()
        n = len(self.losses) + len(self.lrs)
        if force or now - self._sparks_at >= self.spark_every or n >= 2 * self._sparks_n:
            self._sparks_n = max(n, 1)
            self._sparks = [
                curve_line("loss", self.losses, self.spark_width, ".4f"),
                curve_line("lr", self.lrs, self.spark_width, ".2e"),
            ] + ([curve_line("margin", self.margins, self.spark_width, ".3f")] if self.margins else [])
            self._sparks_at = now
        return self._sparks

    def handle(self, ev: training_pb2.TaskEvent) -> None:
        self.last_seq = max(self.last_seq, ev.seq)
        kind = ev.WhichOneof("payload")
        if kind == "metrics":
            m = ev.metrics
            self.last_metrics = m
            if m.HasField("loss"):
                self.losses.append(m.loss)
            if m.HasField("learning_rate"):
                self.lrs.append(m.learning_rate)
            if m.HasField("reward_margin"):
                self.margins.append(m.reward_margin)
            if self.block.enabled:
                self.block.update(self.sparklines() + [progress_text(m, with_bar=True)])
            else:
                self.block.line(f"{fmt_clock(ev.time)} {progress_text(m, with_bar=False)}")
            return
        if kind == "state_change" and ev.state_change.to_state in TERMINAL:
            self.final_state = ev.state_change.to_state
        elif kind == "state_change":
            self.final_state = None
        line = event_line(ev, self.show_logs)
        if line is not None:
            self.block.line(line)

    def finish(self) -> None:
        """Leave the final curves on screen (printed once when not a TTY)."""
        if self.block.enabled:
            lines = self.sparklines(force=True)
            if self.last_metrics is not None:
                lines = lines + [progress_text(self.last_metrics, with_bar=True)]
            self.block.update(lines)
            self.block.close(keep=True)
        elif self.losses or self.lrs:
            for line in self.sparklines(force=True):
                self.block.line(line)


def task_events(
    app: App, task_id: str, after_seq: int, *, kinds: list[int] | None = None, history_only: bool = False
) -> Iterator[training_pb2.WatchTaskResponse]:
    """WatchTask responses, reopened after `after_seq` if the daemon restarts."""

    def open_call(seq: int):
        req = training_pb2.WatchTaskRequest(task_id=task_id, after_seq=seq, kinds=kinds or [], history_only=history_only)
        return app.training.WatchTask(req)

    return follow(
        open_call,
        lambda r: r.event.seq,
        after_seq,
        connected=True,
        on_lost=lambda why: note(f"lost the connection to modxd ({why}); reconnecting…"),
        on_back=lambda: note("reconnected"),
    )


def watch_task(app: App, task_id: str, after_seq: int = 0, *, show_logs: bool = False) -> int:
    """Follow a task until it is terminal; the exit status: 1 if it failed, else 0."""
    task = app.call(app.training.GetTask, training_pb2.GetTaskRequest(task_id=task_id)).task
    # Every kind is asked for: quiet log lines are dropped here, loud ones shown.
    block = LiveBlock(enabled=False) if app.json else LiveBlock()
    monitor = TaskMonitor(block, show_logs=show_logs)
    if not app.json:
        where = f" on {task.device}" if task.device else ""
        note(f"watching task {task.id}{' (' + task.name + ')' if task.name else ''}: {state_label(task.state)}{where}; Ctrl-C detaches")
        if task.state == common_pb2.TASK_STATE_CREATED:
            note(f"the task has not been started; start it with: modxctl train start {task.id}")
    try:
        for resp in task_events(app, task_id, after_seq):
            monitor.last_seq = max(monitor.last_seq, resp.event.seq)
            if app.json:
                emit_json(resp, stream=True)
                kind = resp.event.WhichOneof("payload")
                if kind == "state_change":
                    to = resp.event.state_change.to_state
                    monitor.final_state = to if to in TERMINAL else None
            else:
                monitor.handle(resp.event)
    except KeyboardInterrupt:
        if not app.json:
            monitor.block.close(keep=True)
        note(
            f"\ndetached: task {task_id} keeps running (stop it with: modxctl train stop {task_id}; "
            f"follow again with: modxctl train watch {task_id} --after-seq {monitor.last_seq})"
        )
        raise click.exceptions.Exit(130) from None
    if not app.json:
        monitor.finish()
    final = monitor.final_state
    task = None
    if final is None or not app.json:
        try:
            task = app.call(app.training.GetTask, training_pb2.GetTaskRequest(task_id=task_id)).task
            final = task.state
        except grpc.RpcError:
            pass
    if not app.json:
        summarize(task_id, final, task)
    return 1 if final == common_pb2.TASK_STATE_FAILED else 0


def summarize(task_id: str, state: int | None, task: training_pb2.Task | None) -> None:
    """One closing sentence; a failure also gets its reason and log tail on stderr."""
    if state == common_pb2.TASK_STATE_FAILED:
        reason = (task.error or task.state_reason) if task else ""
        note(f"task {task_id} failed" + (f": {reason}" if reason else ""))
        if task and task.failure_log_tail:
            note("last log lines:")
            for line in task.failure_log_tail:
                note(f"  {printable(line, keep=TAB)}")  # one log line, one line
        return
    if state is None:
        echo(f"the stream of task {task_id} ended")
        return
    label = state_label(state)
    reason = f" ({task.state_reason})" if task and task.state_reason and task.state_reason != label else ""
    echo(f"task {task_id} {label}{reason}")


def print_logs(app: App, task_id: str, follow_live: bool, after_seq: int = 0) -> None:
    """Log lines of a task: history, and live ones with `follow_live`."""
    kinds = [training_pb2.EVENT_KIND_LOG]
    try:
        for resp in task_events(app, task_id, after_seq, kinds=kinds, history_only=not follow_live):
            if app.json:
                emit_json(resp, stream=True)
                continue
            line = event_line(resp.event, show_logs=True)
            if line is not None:
                echo(printable(line, keep=TAB))  # one event, one line
    except KeyboardInterrupt:
        raise click.exceptions.Exit(130) from None


# ---------------------------------------------------------------- commands (train watch/logs/metrics/checkpoints)


@click.command("watch")
@click.argument("task_id", metavar="ID")
@click.option("--after-seq", type=click.IntRange(min=0), default=0, metavar="N", help="Skip events up to sequence number N.")
@click.option("--logs", "show_logs", is_flag=True, help="Also print info and debug log lines (warnings and errors always show).")
def train_watch(task_id: str, after_seq: int, show_logs: bool) -> None:
    """Follow a task live until it completes, stops or fails.

    On a terminal: a progress line (step, bar, ETA, loss, learning rate)
    under loss and learning-rate sparklines, with checkpoints, warnings and
    state changes printed above. In a pipe: one plain line per event.

    Exits 0 when the task completes or stops, 1 when it fails. Ctrl-C only
    detaches: the task keeps running. If modxd restarts, the watch
    reconnects and continues where it left off.
    """
    app = get_app()
    sys.exit(watch_task(app, task_id, after_seq, show_logs=show_logs))


@click.command("logs")
@click.argument("task_id", metavar="ID")
@click.option("--follow", "-f", "follow_live", is_flag=True, help="Keep printing new lines until the task ends.")
@click.option("--after-seq", type=click.IntRange(min=0), default=0, metavar="N", help="Skip events up to sequence number N.")
def train_logs(task_id: str, follow_live: bool, after_seq: int) -> None:
    """Print a task's log lines, or follow them live."""
    print_logs(get_app(), task_id, follow_live, after_seq)


def list_metrics(app: App, task_id: str) -> training_pb2.ListMetricsResponse:
    """Every metrics point of a task, all pages merged."""
    return all_pages(app, app.training.ListMetrics, training_pb2.ListMetricsRequest(task_id=task_id), "points",
                     page_size=1000)


@click.command("metrics")
@click.argument("task_id", metavar="ID")
@click.option("--plot", type=click.Path(dir_okay=False, writable=True), metavar="FILE.png", help="Also write loss, perplexity (preference tasks: reward margin, rewards, accuracy), learning-rate and grad-norm curves as a PNG.")
def train_metrics(task_id: str, plot: str | None) -> None:
    """Print a task's logged metrics, one row per logged step.

    \b
    Example:
      modxctl train metrics TASK_ID --plot curves.png
    """
    from .plots import plot_metrics

    app = get_app()
    resp = list_metrics(app, task_id)
    points = list(resp.points)
    if app.json:
        emit_json(resp)
    elif not points:
        echo("no metrics logged yet")
    else:
        rows = [
            [
                str(p.step),
                f"{p.epoch:.2f}",
                fmt_num(opt(p, "loss"), ".4f"),
                fmt_num(opt(p, "perplexity"), ".2f"),
                fmt_num(opt(p, "learning_rate"), ".2e"),
                fmt_num(opt(p, "grad_norm"), ".3f"),
                fmt_num(opt(p, "eval_loss"), ".4f"),
                fmt_num(opt(p, "tokens_per_second"), ".0f"),
                fmt_time(p.time),
            ]
            for p in points
        ]
        headers, align = ["STEP", "EPOCH", "LOSS", "PPL", "LR", "GRAD", "EVAL LOSS", "TOK/S", "TIME"], "rrrrrrrrl"
        for field, header, spec in (("reward_margin", "MARGIN", ".3f"), ("reward_accuracy", "ACC", ".2f"),
                                    ("eval_reward_margin", "EVAL MARGIN", ".3f"),
                                    ("eval_reward_accuracy", "EVAL ACC", ".2f"),  # preference tasks
                                    ("device_memory_peak_bytes", "GPU PEAK", ""), ("gpu_utilization_percent", "GPU %", ".0f"),
                                    ("gpu_power_watts", "W", ".0f")):  # device telemetry, on GPU runs
            if any(opt(p, field) is not None for p in points):
                headers.insert(-1, header)
                align = align[:-1] + "r" + align[-1]
                for row, p in zip(rows, points):
                    value = opt(p, field)
                    row.insert(-1, fmt_bytes(value) if field.endswith("_bytes") and value is not None
                               else fmt_num(value, spec or ".0f"))
        echo(table(headers, rows, align=align))
        echo()
        echo(curve_line("loss", [opt(p, "loss") for p in points], 60, ".4f"))
        echo(curve_line("lr", [opt(p, "learning_rate") for p in points], 60, ".2e"))
        if any(opt(p, "reward_margin") is not None for p in points):
            echo(curve_line("margin", [opt(p, "reward_margin") for p in points], 60, ".3f"))
    if plot:
        if not points:
            raise CliError("no metrics to plot yet")
        empty = plot_metrics(points, plot, title=f"task {task_id}")
        note(f"wrote {plot}" + (f" (no data for: {', '.join(empty)})" if empty else ""))


@click.command("checkpoints")
@click.argument("task_id", metavar="ID")
@click.option("--all", "include_deleted", is_flag=True, help="Include checkpoints whose files retention deleted.")
def train_checkpoints(task_id: str, include_deleted: bool) -> None:
    """List a task's saved checkpoints.

    The best one, when an evaluation recommended it, is starred.
    """
    app = get_app()
    resp = app.call(app.training.ListCheckpoints, training_pb2.ListCheckpointsRequest(task_id=task_id, include_deleted=include_deleted))
    if app.json:
        emit_json(resp)
        return
    if not resp.checkpoints:
        echo("no checkpoints saved yet")
        return
    best = app.call(app.training.GetTask, training_pb2.GetTaskRequest(task_id=task_id)).task.best_checkpoint_id
    rows = [
        [
            ("*" if c.id == best else "") + c.id,
            str(c.step),
            f"{c.epoch:.2f}",
            fmt_num(opt(c, "loss"), ".4f"),
            fmt_bytes(c.size_bytes) if not c.deleted else "deleted",
            fmt_time(c.create_time),
            c.path,
        ]
        for c in resp.checkpoints
    ]
    echo(table(["ID", "STEP", "EPOCH", "LOSS", "SIZE", "SAVED", "PATH"], rows, align="lrrrrll"))
    if best:
        echo("* best checkpoint of the last evaluation")
