"""params and templates: the parameter schema and named parameter sets.

Also home of the `--set KEY=VALUE` parser shared with `train`: values go over
the wire as strings and the daemon converts them with its schema, so the
client never has to know a parameter's type.
"""
from __future__ import annotations

import os
from typing import Any

import click

from modx.v1 import common_pb2, training_pb2

from .connection import App, get_app
from .output import echo, emit_json, enum_label, fmt_bool, fmt_param, fmt_time, kv, table

# The proto's TaskType enum is the list of types: TASK_TYPE_SFT -> "sft".
TASK_TYPES = {name.removeprefix("TASK_TYPE_").lower(): value for name, value in common_pb2.TaskType.items()
              if value != common_pb2.TASK_TYPE_UNSPECIFIED}

task_type_choice = click.Choice(list(TASK_TYPES), case_sensitive=False)


def task_type_value(label: str | None) -> int:
    """'sft' -> TASK_TYPE_SFT; None -> UNSPECIFIED."""
    return TASK_TYPES[label.lower()] if label else common_pb2.TASK_TYPE_UNSPECIFIED


def parse_set(item: str) -> tuple[str, str]:
    """'lora_r=32' -> ('lora_r', '32'). Only the first '=' splits; the value may be empty."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep:
        raise click.BadParameter(f"{item!r} has no '=': write KEY=VALUE, e.g. learning_rate=1e-4", param_hint="'--set'")
    if not key or any(c.isspace() for c in key):
        raise click.BadParameter(f"{item!r} does not start with a parameter name, e.g. lora_r=32", param_hint="'--set'")
    return key, value


def parse_sets(ctx: click.Context | None, param: click.Parameter | None, values: tuple[str, ...]) -> dict[str, str]:
    """Click callback for a repeated --set: later settings of a key win."""
    out: dict[str, str] = {}
    for item in values or ():
        key, value = parse_set(item)
        out[key] = value
    return out


def abspath(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path)) if path else path


def path_keys(app: App) -> frozenset[str]:
    """The parameters the daemon's schema types as paths (GetParamSchema): no list kept here."""
    resp = app.call(app.training.GetParamSchema, training_pb2.GetParamSchemaRequest())
    return frozenset(spec.key for spec in resp.params if spec.type == training_pb2.PARAM_TYPE_PATH)


def absolute_paths(app: App, sets: dict[str, str]) -> dict[str, str]:
    """--set values with every path made absolute here, where the user typed it (the daemon reads
    paths on its own host and refuses relative ones); the schema is asked only when --set was used."""
    if not sets:
        return {}
    keys = path_keys(app)
    return {key: abspath(value) if key in keys else value for key, value in sets.items()}


def param_map(values: dict[str, str]) -> dict[str, common_pb2.ParamValue]:
    """Strings as ParamValue(string_value=...): the daemon converts by its schema."""
    return {k: common_pb2.ParamValue(string_value=v) for k, v in values.items()}


set_option = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    callback=parse_sets,
    help="Set a parameter (repeatable), e.g. --set learning_rate=1e-4. See 'modxctl params'.",
)


# ---------------------------------------------------------------- params


def _bound(value: float) -> str:
    """100000000.0 -> '100000000' (not '1e+08'); 1e-06 stays as is."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def _range(spec: training_pb2.ParamSpec) -> str:
    if spec.choices:
        return "|".join(spec.choices)
    lo = spec.min if spec.HasField("min") else None
    hi = spec.max if spec.HasField("max") else None
    text = ""
    if lo is not None and hi is not None:
        text = f"{_bound(lo)}–{_bound(hi)}"
    elif lo is not None:
        text = f">= {_bound(lo)}"
    elif hi is not None:
        text = f"<= {_bound(hi)}"
    if spec.unit:
        text = f"{text} {spec.unit}".strip()
    return text or "-"


def _default(spec: training_pb2.ParamSpec, task_type: int) -> str:
    if spec.type_defaults:
        if task_type:
            for td in spec.type_defaults:
                if td.type == task_type:
                    return fmt_param(td.value)
        else:
            return ", ".join(f"{fmt_param(td.value)} ({enum_label(common_pb2.TaskType, td.type)})" for td in spec.type_defaults)
    value = spec.default_value if spec.HasField("default_value") else None
    if value is None or value.WhichOneof("kind") is None or (value.WhichOneof("kind") == "string_value" and not value.string_value):
        return "-"
    return fmt_param(value)


def group_params(resp: training_pb2.GetParamSchemaResponse) -> list[tuple[str, list[training_pb2.ParamSpec]]]:
    """Parameters by fold group, in the daemon's group order ('' first, called core)."""
    order = list(resp.fold_groups)
    for spec in resp.params:
        if spec.fold_group not in order:
            order.append(spec.fold_group)
    if "" in order:
        order.remove("")
        order.insert(0, "")
    groups = [(g, [s for s in resp.params if s.fold_group == g]) for g in order]
    return [(g or "core", specs) for g, specs in groups if specs]


@click.command()
@click.option("--type", "task_type", type=task_type_choice, help="Only parameters (and defaults) of this training type.")
def params(task_type: str | None) -> None:
    """List the training parameters that --set accepts.

    For each: key, type, default, range or choices, and its English and
    Chinese labels.

    Use them in 'train create', 'train estimate' and 'templates save'.
    Parameters are grouped as a form shows them: core first, then the folded
    groups.

    \b
    Examples:
      modxctl params --type sft
      modxctl --json params | jq '.params[] | {key, help}'
    """
    app = get_app()
    resp = app.call(app.training.GetParamSchema, training_pb2.GetParamSchemaRequest(type=task_type_value(task_type)))
    if app.json:
        emit_json(resp)
        return
    ttype = task_type_value(task_type)
    first = True
    for group, specs in group_params(resp):
        if not first:
            echo()
        first = False
        echo(f"[{group}]")
        rows = [
            [
                s.key + (" *" if s.required else ""),
                enum_label(training_pb2.ParamType, s.type),
                _default(s, ttype),
                _range(s),
                s.label_en,
                s.label_zh,
            ]
            for s in specs
        ]
        echo(table(["KEY", "TYPE", "DEFAULT", "RANGE/CHOICES", "LABEL", "标签"], rows))
    echo()
    echo("* required.  Set any of them with --set KEY=VALUE.")


# ---------------------------------------------------------------- templates


@click.group()
def templates() -> None:
    """Save, inspect and reuse named parameter sets.

    Each training type has a built-in default template. A task copies its
    template's parameters when it is created, so editing a template later
    never changes an existing task.
    """


@templates.command("list")
@click.option("--type", "task_type", type=task_type_choice, help="Only templates of this training type.")
def templates_list(task_type: str | None) -> None:
    """List built-in and saved templates."""
    app = get_app()
    resp = app.call(app.training.ListTemplates, training_pb2.ListTemplatesRequest(type=task_type_value(task_type)))
    if app.json:
        emit_json(resp)
        return
    if not resp.templates:
        echo("no templates")
        return
    rows = [
        [
            t.name,
            enum_label(common_pb2.TaskType, t.type),
            "built-in" if t.builtin else "user",
            str(len(t.params)),
            fmt_time(t.update_time),
            t.description,
        ]
        for t in resp.templates
    ]
    echo(table(["NAME", "TYPE", "KIND", "PARAMS", "UPDATED", "DESCRIPTION"], rows, align="lllrll"))


def print_params(values: Any) -> None:
    """A key/value table of a params map, sorted by key."""
    if not values:
        echo("(no parameters)")
        return
    echo(table(["PARAMETER", "VALUE"], [(k, fmt_param(values[k])) for k in sorted(values)]))


def _print_template(t: training_pb2.Template) -> None:
    echo(
        kv(
            [
                ("name", t.name),
                ("type", enum_label(common_pb2.TaskType, t.type)),
                ("built-in", fmt_bool(t.builtin)),
                ("description", t.description or "-"),
                ("created", fmt_time(t.create_time)),
                ("updated", fmt_time(t.update_time)),
            ]
        )
    )
    echo()
    print_params(t.params)


@templates.command("show")
@click.argument("name")
def templates_show(name: str) -> None:
    """Show a template's type, description and parameters."""
    app = get_app()
    resp = app.call(app.training.GetTemplate, training_pb2.GetTemplateRequest(name=name))
    if app.json:
        emit_json(resp)
        return
    _print_template(resp.template)


@templates.command("save")
@click.argument("name")
@click.option("--type", "task_type", type=task_type_choice, help="Start from this type's default template.")
@click.option("--from-task", metavar="ID", help="Start from the parameters of an existing task.")
@set_option
@click.option("--description", default="", metavar="TEXT", help="One line saying what the template is for.")
@click.option("--overwrite", is_flag=True, help="Replace a saved template of the same name.")
def templates_save(
    name: str, task_type: str | None, from_task: str | None, sets: dict[str, str], description: str, overwrite: bool
) -> None:
    """Save a named template from a type or a task, plus --set.

    The template starts from the type's default template (--type) or from
    the parameters of an existing task (--from-task); --set changes some.

    \b
    Examples:
      modxctl templates save long-ctx --type sft --set max_seq_length=4096
      modxctl templates save winner --from-task TASK_ID --description "best run so far"
    """
    if bool(task_type) == bool(from_task):
        raise click.UsageError("give exactly one of --type T or --from-task ID")
    app = get_app()
    req = training_pb2.SaveTemplateRequest(
        name=name,
        type=task_type_value(task_type),
        from_task_id=from_task or "",
        params=param_map(absolute_paths(app, sets)),
        description=description,
        overwrite=overwrite,
    )
    resp = app.call(app.training.SaveTemplate, req)
    if app.json:
        emit_json(resp)
        return
    t = resp.template
    echo(f"saved template {t.name} ({enum_label(common_pb2.TaskType, t.type)}, {len(t.params)} parameters)")


@templates.command("delete")
@click.argument("name")
def templates_delete(name: str) -> None:
    """Delete a saved template (built-in ones stay).

    Tasks created from it keep their own copy of the parameters.
    """
    app = get_app()
    resp = app.call(app.training.DeleteTemplate, training_pb2.DeleteTemplateRequest(name=name))
    if app.json:
        emit_json(resp)
        return
    echo(f"deleted template {name}")
