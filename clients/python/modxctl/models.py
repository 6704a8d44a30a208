"""models: bring GGUF models in as trainable dirs, and manage models loaded for chat."""
from __future__ import annotations

import os

import click

from modx.v1 import inference_pb2, package_pb2

from .connection import get_app
from .output import echo, emit_json, fmt_bytes, fmt_time, table


@click.group()
def models() -> None:
    """Import GGUF models; list and unload loaded models.

    A .gguf file cannot be trained directly; 'models import-gguf' turns it
    into a Hugging Face dir (dequantized) that 'train create --model-dir'
    accepts.
    """


@models.command("import-gguf")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace DIR if it already holds something else.")
def import_gguf(file: str, directory: str, overwrite: bool) -> None:
    """Turn a GGUF FILE into a trainable model DIR.

    DIR becomes a Hugging Face model dir (dequantized weights).

    Paths are made absolute here and read on the daemon's host. Converting a
    large model takes minutes: this call has no deadline unless --timeout is
    given.

    \b
    Example:
      modxctl models import-gguf ~/Downloads/qwen2.5-0.5b-q8_0.gguf ~/models/qwen-0.5b
    """
    app = get_app()
    req = package_pb2.ImportGgufRequest(
        gguf_path=os.path.abspath(os.path.expanduser(file)),
        output_dir=os.path.abspath(os.path.expanduser(directory)),
        overwrite=overwrite,
    )
    resp = app.call(app.packages.ImportGguf, req, long=True)
    if app.json:
        emit_json(resp)
        return
    size = f"{resp.parameters / 1e9:.2f}B parameters" if resp.parameters else "unknown size"
    if resp.cached:
        echo(f"{resp.output_dir} already holds this import ({resp.architecture}, {size}); kept it")
    else:
        echo(f"imported {resp.architecture} ({size}) into {resp.output_dir}")
    echo(f"train on it with: modxctl train create --model-dir {resp.output_dir} ...")


@models.command("loaded")
def loaded() -> None:
    """List the models the daemon keeps in memory for chat."""
    app = get_app()
    resp = app.call(app.inference.ListLoadedModels, inference_pb2.ListLoadedModelsRequest())
    if app.json:
        emit_json(resp)
        return
    if not resp.models:
        echo("no models loaded")
    else:
        rows = [[m.key, m.task_id, m.target, m.backend, m.device, fmt_bytes(m.memory_bytes), fmt_time(m.last_used_time)] for m in resp.models]
        echo(table(["KEY", "TASK", "TARGET", "BACKEND", "DEVICE", "MEMORY", "LAST USED"], rows, align="lllllrl"))
    if resp.memory_limit_bytes:
        echo(f"memory limit: {fmt_bytes(resp.memory_limit_bytes)}")


@models.command("unload")
@click.argument("key", required=False, default="")
def unload(key: str) -> None:
    """Unload a chat model (no KEY: all of them).

    KEY comes from 'models loaded'.
    """
    app = get_app()
    resp = app.call(app.inference.UnloadModel, inference_pb2.UnloadModelRequest(key=key))
    if app.json:
        emit_json(resp)
        return
    echo(f"unloaded {resp.unloaded} model{'s' if resp.unloaded != 1 else ''}")
