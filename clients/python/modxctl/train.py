"""train: create, run, follow and inspect training tasks."""
from __future__ import annotations

import sys

import click

from modx.v1 import common_pb2, training_pb2

from .connection import App, get_app
from .output import (
    TAB,
    echo,
    emit_json,
    enum_choices,
    enum_label,
    enum_value,
    fmt_num,
    fmt_time,
    kv,
    opt,
    printable,
    table,
    warn,
)
from .first_run import print_first_run, print_outcome, print_settings
from .paging import all_pages
from .templates import (
    absolute_paths,
    abspath,
    param_map,
    print_params,
    set_option,
    task_type_choice,
    task_type_value,
)
from .watch import fraction_done, state_label, train_checkpoints, train_logs, train_metrics, train_watch, watch_task

state_choice = click.Choice(enum_choices(common_pb2.TaskState), case_sensitive=False)


def build_params(app: App, sets: dict[str, str], flags: dict[str, str | None]) -> dict[str, common_pb2.ParamValue]:
    """--set values plus the path flags, every path absolute; a key given both ways is a usage error."""
    values = absolute_paths(app, sets)
    for key, value in flags.items():
        if value is None:
            continue
        if key in values and values[key] != abspath(value):
            flag = "--" + key.replace("_", "-")
            raise click.UsageError(f"{key} is given twice (by {flag} and by --set); keep one")
        values[key] = abspath(value)
    return param_map(values)


def print_warnings(warnings) -> None:  # noqa: ANN001 - repeated Warning
    for w in warnings:
        warn(w.code, w.message)


def quota_text(est: training_pb2.QuotaEstimate) -> str:
    """'10 checkpoints = 10 quota units; balance 100: fits' plus the daemon's explanation."""
    verdict = "fits" if est.fits else "DOES NOT FIT"
    text = f"{est.checkpoints} checkpoints = {est.checkpoints} quota units; balance {est.balance}: {verdict}"
    if est.explanation:
        text += f"\n  {est.explanation}"
    elif est.total_steps:
        text += f"\n  {est.total_steps} steps ({est.steps_per_epoch} per epoch, {est.num_examples} examples)"
    return text


def progress_cell(t: training_pb2.Task) -> str:
    if not t.total_steps and not t.current_step:
        return "-"
    frac = fraction_done(t.current_step, t.total_steps, t.percent)
    return f"{t.current_step}/{t.total_steps or '?'} ({frac * 100:.0f}%)"


@click.group()
def train() -> None:
    """Create training tasks, run them and follow them live.

    \b
    A task goes created → pending (queued) → running → completed; a running
    task can be stopped (it saves a checkpoint first) and a stopped or
    failed one resumed from its last checkpoint.
    """


@train.command("create")
@click.option("--type", "task_type", type=task_type_choice, required=True, help="sft: conversations with LoRA; pretrain: plain text, full weights; dpo, orpo: preference pairs (docs/preference.md).")
@click.option("--train-file", type=click.Path(), required=True, metavar="FILE", help="Training data (JSONL; .txt for pretrain; pairs of answers for dpo/orpo).")
@click.option("--model-dir", type=click.Path(), required=True, metavar="DIR", help="Hugging Face model dir (config.json + *.safetensors).")
@click.option("--output-dir", type=click.Path(), required=True, metavar="DIR", help="Where checkpoints, logs and reports go.")
@click.option("--eval-file", type=click.Path(), metavar="FILE", help="Held-out data for eval loss and evaluations.")
@click.option("--tokenizer-dir", type=click.Path(), metavar="DIR", help="Tokenizer, when not the model's own.")
@click.option("--template", metavar="NAME", help="Start from this template instead of the type's default.")
@click.option("--name", default="", help="A name for people; the task id stays the key.")
@set_option
@click.option("--validate-only", is_flag=True, help="Check parameters and data, estimate quota, store nothing.")
def train_create(
    task_type: str,
    train_file: str,
    model_dir: str,
    output_dir: str,
    eval_file: str | None,
    tokenizer_dir: str | None,
    template: str | None,
    name: str,
    sets: dict[str, str],
    validate_only: bool,
) -> None:
    """Create a training task (start it with 'train start').

    The daemon validates the parameters and reads the data first: a malformed
    line is reported with its file and line number and nothing is created.
    Paths are made absolute here and read on the daemon's host.

    \b
    Examples:
      modxctl train create --type sft --train-file chats.jsonl \\
          --model-dir ~/models/Qwen2.5-0.5B --output-dir ~/runs/qa
      modxctl train create --type pretrain --train-file corpus.txt \\
          --model-dir ~/models/tiny --output-dir ~/runs/pt \\
          --set learning_rate=5e-5 --set save_steps=500 --validate-only
    """
    app = get_app()
    flags = {
        "train_file": train_file,
        "model_dir": model_dir,
        "output_dir": output_dir,
        "eval_file": eval_file,
        "tokenizer_dir": tokenizer_dir,
    }
    req = training_pb2.CreateTaskRequest(
        type=task_type_value(task_type),
        template=template or "",
        params=build_params(app, sets, flags),
        name=name,
        validate_only=validate_only,
    )
    resp = app.call(app.training.CreateTask, req, long=True)  # the data report reads the whole file
    if app.json:
        emit_json(resp)
        return
    t = resp.task
    kind = enum_label(common_pb2.TaskType, t.type)
    if validate_only:
        echo(f"valid: the {kind} parameters and data check out (nothing was stored)")
    else:
        echo(f"created task {t.id}")
        echo(f"  {kind}, template {t.template or '(default)'}" + (f", name {t.name}" if t.name else ""))
    echo(f"quota: {quota_text(t.quota_estimate)}")
    echo()
    print_first_run(t.train_data if t.HasField("train_data") else None,
                    t.eval_data if t.HasField("eval_data") else None,
                    t.quota_estimate.run if t.quota_estimate.HasField("run") else None, list(t.settings))
    print_warnings(resp.warnings)
    if not validate_only:
        echo(f"start it with: modxctl train start {t.id} --watch")


def _list_tasks(app: App, states: list[int], task_type: int, limit: int | None) -> training_pb2.ListTasksResponse:
    """All pages (or the first `limit` tasks) merged into one response."""
    return all_pages(app, app.training.ListTasks, training_pb2.ListTasksRequest(states=states, type=task_type), "tasks",
                     limit=limit)


@train.command("list")
@click.option("--state", "states", multiple=True, type=state_choice, help="Only tasks in this state (repeatable).")
@click.option("--type", "task_type", type=task_type_choice, help="Only tasks of this type.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Show at most N tasks (newest first, as the daemon orders them).")
def train_list(states: tuple[str, ...], task_type: str | None, limit: int | None) -> None:
    """List training tasks with their state and progress.

    \b
    Examples:
      modxctl train list --state running --state pending
      modxctl --json train list --type sft | jq -r '.tasks[].id'
    """
    app = get_app()
    state_values = [enum_value(common_pb2.TaskState, s) for s in states]
    resp = _list_tasks(app, state_values, task_type_value(task_type), limit)
    if app.json:
        emit_json(resp)
        return
    if not resp.tasks:
        echo("no tasks")
        return
    rows = [
        [
            t.id,
            t.name or "-",
            enum_label(common_pb2.TaskType, t.type),
            state_label(t.state),
            progress_cell(t),
            fmt_num(opt(t, "last_loss"), ".4f"),
            str(t.checkpoints_saved),
            t.device or "-",
            fmt_time(t.create_time),
        ]
        for t in resp.tasks
    ]
    echo(table(["ID", "NAME", "TYPE", "STATE", "PROGRESS", "LOSS", "CKPTS", "DEVICE", "CREATED"], rows, align="llllrrrll"))
    if resp.total_size > len(resp.tasks):
        echo(f"({len(resp.tasks)} of {resp.total_size} tasks shown)")
    elif resp.next_page_token:
        echo(f"({len(resp.tasks)} tasks shown; there are more, raise --limit)")


@train.command("show")
@click.argument("task_id", metavar="ID")
def train_show(task_id: str) -> None:
    """Show everything about a task.

    State, times, progress, quota estimate, best checkpoint, parameters and,
    for a failed task, its last log lines.
    """
    app = get_app()
    resp = app.call(app.training.GetTask, training_pb2.GetTaskRequest(task_id=task_id))
    if app.json:
        emit_json(resp)
        return
    t = resp.task
    label = state_label(t.state)
    state = label + (f" ({t.state_reason})" if t.state_reason and t.state_reason != label else "")
    pairs = [
        ("id", t.id),
        ("name", t.name or "-"),
        ("type", enum_label(common_pb2.TaskType, t.type)),
        ("state", state),
        ("template", t.template or "-"),
        ("device", t.device or "-"),
        ("created", fmt_time(t.create_time)),
        ("started", fmt_time(t.start_time)),
        ("ended", fmt_time(t.end_time)),
        ("updated", fmt_time(t.update_time)),
        ("progress", progress_cell(t)),
        ("last loss", fmt_num(opt(t, "last_loss"), ".4f")),
        ("checkpoints", f"{t.checkpoints_saved} saved"),
        ("resumed", f"{t.resume_count} times"),
    ]
    if t.state == common_pb2.TASK_STATE_PENDING:
        pairs.append(("queue position", t.queue_position))
    if t.best_checkpoint_id:
        pairs.append(("best checkpoint", f"{t.best_checkpoint_id} (evaluation {t.best_evaluation_id or '-'})"))
    if t.error:
        pairs.append(("error", t.error))
    echo(kv(pairs))
    echo()
    echo(f"quota: {quota_text(t.quota_estimate)}")
    echo()
    if t.HasField("learning") or t.estimate_checks:
        print_outcome(t)
        echo()
    print_first_run(t.train_data if t.HasField("train_data") else None,
                    t.eval_data if t.HasField("eval_data") else None,
                    t.quota_estimate.run if t.quota_estimate.HasField("run") else None, [])
    print_settings(list(t.settings))
    print_params(t.params)
    if t.failure_log_tail:
        echo()
        echo("last log lines before the failure:")
        for line in t.failure_log_tail:
            echo(f"  {printable(line, keep=TAB)}")  # one log line, one line


@train.command("start")
@click.argument("task_id", metavar="ID")
@click.option("--watch", is_flag=True, help="Then follow it live, as 'train watch' does.")
def train_start(task_id: str, watch: bool) -> None:
    """Queue a created task; it runs as soon as a device is free.

    \b
    Example:
      modxctl train start TASK_ID --watch
    """
    app = get_app()
    resp = app.call(app.training.StartTask, training_pb2.StartTaskRequest(task_id=task_id),
                    long=True)  # the data is checked and reported again
    if app.json:
        emit_json(resp, stream=watch)
    else:
        t = resp.task
        where = f" (queue position {t.queue_position})" if t.state == common_pb2.TASK_STATE_PENDING and t.queue_position else ""
        echo(f"task {t.id} is {state_label(t.state)}{where}")
        print_warnings(resp.warnings)
    if watch:
        sys.exit(watch_task(app, task_id))


@train.command("stop")
@click.argument("task_id", metavar="ID")
def train_stop(task_id: str) -> None:
    """Stop a task after a final checkpoint.

    A running task finishes its step, saves a checkpoint (one quota unit)
    and ends as stopped.

    A pending task simply leaves the queue. Resume either later with
    'train resume'.
    """
    app = get_app()
    resp = app.call(app.training.StopTask, training_pb2.StopTaskRequest(task_id=task_id))
    if app.json:
        emit_json(resp)
        return
    t = resp.task
    echo(f"task {t.id} is {state_label(t.state)}")
    if t.state == common_pb2.TASK_STATE_STOPPING:
        echo(f"it saves a checkpoint, then stops (follow it with: modxctl train watch {t.id})")


@train.command("resume")
@click.argument("task_id", metavar="ID")
@click.option("--checkpoint", metavar="C", default="", help="Checkpoint id, step or path.  [default: the last saved]")
@click.option("--watch", is_flag=True, help="Then follow it live.")
def train_resume(task_id: str, checkpoint: str, watch: bool) -> None:
    """Queue a stopped or failed task again from a checkpoint."""
    app = get_app()
    resp = app.call(app.training.ResumeTask, training_pb2.ResumeTaskRequest(task_id=task_id, checkpoint=checkpoint))
    if app.json:
        emit_json(resp, stream=watch)
    else:
        c = resp.checkpoint
        source = f"checkpoint {c.id} (step {c.step})" if c.id else "the start"
        echo(f"task {resp.task.id} resumes from {source}: {state_label(resp.task.state)}")
        print_warnings(resp.warnings)
    if watch:
        sys.exit(watch_task(app, task_id))


@train.command("delete")
@click.argument("task_id", metavar="ID")
@click.option("--files", is_flag=True, help="Also delete from disk the files the task wrote (checkpoints, logs, "
                                           "merged model, evaluation reports, packages).")
def train_delete(task_id: str, files: bool) -> None:
    """Delete a task that is not running, with its records.

    Its files stay on disk unless --files is given; then exactly the files the task, its
    evaluations and its packages wrote are deleted (the daemon keeps a list), and the dirs it
    made once they are empty. Other files in its output dir stay, and no symlink is followed.
    """
    app = get_app()
    resp = app.call(app.training.DeleteTask, training_pb2.DeleteTaskRequest(task_id=task_id, delete_files=files))
    if app.json:
        emit_json(resp)
        return
    echo(f"deleted task {task_id}" + (" and its files" if files else " (its files stay on disk)"))


@train.command("estimate")
@click.argument("task_id", metavar="[ID]", required=False)
@click.option("--type", "task_type", type=task_type_choice, help="Estimate a parameter set of this type instead of a task.")
@click.option("--template", metavar="NAME", help="Template of the parameter set.")
@click.option("--calibrate", is_flag=True, help="Time a few optimizer steps of the model on its device first "
              "when this step shape was never timed (seconds to minutes; cached per model and device).")
@set_option
def train_estimate(task_id: str | None, task_type: str | None, template: str | None, calibrate: bool,
                   sets: dict[str, str]) -> None:
    """Estimate a run: checkpoints (quota units), steps, tokens, time and peak memory.

    Shows the data report of the training (and eval) file too. Time needs a
    calibration of the model on this host's device: --calibrate runs one.

    \b
    Examples:
      modxctl train estimate TASK_ID --calibrate
      modxctl train estimate --type sft --set train_file=$PWD/chats.jsonl --set save_steps=50
    """
    if bool(task_id) == bool(task_type):
        raise click.UsageError("give a task ID or --type T (with --set), not both")
    app = get_app()
    values = absolute_paths(app, sets)
    req = training_pb2.EstimateQuotaRequest(
        task_id=task_id or "", type=task_type_value(task_type), template=template or "", params=param_map(values),
        calibrate=calibrate,
    )
    resp = app.call(app.training.EstimateQuota, req, long=True)  # the data report, and a calibration
    if app.json:
        emit_json(resp)
        return
    echo(f"quota: {quota_text(resp.estimate)}")
    echo()
    print_first_run(resp.train_data if resp.HasField("train_data") else None,
                    resp.eval_data if resp.HasField("eval_data") else None,
                    resp.estimate.run if resp.estimate.HasField("run") else None, list(resp.settings))
    print_warnings(resp.warnings)


for _command in (train_watch, train_logs, train_metrics, train_checkpoints):
    train.add_command(_command)
