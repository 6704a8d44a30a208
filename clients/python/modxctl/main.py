"""The `modxctl` entry point: global options, command groups, error handling.

Errors are handled once, here: any gRPC failure below becomes
`error: CODE: details` on stderr and exit status 1, so commands stay short.
"""
from __future__ import annotations

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # keep gRPC's C core quiet on stderr

from typing import Any  # noqa: E402

import click  # noqa: E402
import grpc  # noqa: E402

from . import __version__  # noqa: E402
from .chat import chat  # noqa: E402
from .connection import App, default_address, get_app, report_rpc_error  # noqa: E402
from .evaluate import eval_group  # noqa: E402
from .models import models  # noqa: E402
from .package import package  # noqa: E402
from .system import advice, env, quota, status  # noqa: E402
from .templates import params, templates  # noqa: E402
from .train import train  # noqa: E402

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class ModxGroup(click.Group):
    """A group that turns RPC errors into one sentence and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except grpc.RpcError as err:
            app = ctx.find_object(App)
            report_rpc_error(err, app.target if app else "?")
            ctx.exit(1)


def _positive(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise click.BadParameter("must be more than 0 seconds")
    return value


@click.group(
    cls=ModxGroup,
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Environment:
  MODX_ADDRESS     daemon address, like --address
  MODX_TOKEN       bearer token sent with every call
  MODX_TOKEN_FILE  file holding the token (used when MODX_TOKEN is unset)
  MODX_TLS_CA      CA bundle: use TLS for host:port addresses
  MODX_TLS_CERT    client certificate for TLS (with MODX_TLS_KEY)
  MODX_STATE_DIR   the daemon's state dir; its socket is the default address
  MODX_LISTEN      the daemon's listen address, used when MODX_ADDRESS is unset

Run 'modxctl COMMAND --help' to learn a command.""",
)
@click.option(
    "--address",
    envvar="MODX_ADDRESS",
    metavar="ADDR",
    help="Where modxd listens: unix:///path/modxd.sock, unix:/path or host:port. "
    "Default: the daemon's socket, unix://<state dir>/modxd.sock.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the raw response as JSON (one object per line for streams) and nothing else.")
@click.option(
    "--timeout",
    type=float,
    callback=_positive,
    metavar="SECONDS",
    help="Deadline for request/response calls (streams have none).  [default: 30]",
)
@click.version_option(__version__, "-V", "--version", prog_name="modxctl")
@click.pass_context
def cli(ctx: click.Context, address: str | None, as_json: bool, timeout: float | None) -> None:
    """Drive modxd, the modx fine-tuning daemon, from the shell.

    A task id ties everything together: create a training task, start it and
    watch it learn, compare its checkpoints, chat with them, and export the
    best one as a GGUF file for llama.cpp.

    \b
    Examples:
      modxctl status
      modxctl train create --type sft --train-file chats.jsonl \\
          --model-dir ~/models/Qwen2.5-0.5B --output-dir ~/runs/qa \\
          --set num_train_epochs=3 --set lora_r=32
      modxctl train start TASK_ID --watch
      modxctl eval run TASK_ID --checkpoint 200 --checkpoint 400 --base
      modxctl chat TASK_ID --checkpoint 400 -m "What is LoRA?"
      modxctl package create TASK_ID --checkpoint 400 --quant q4_k_m

    Every command accepts --json (before or after the command name) and then
    prints protobuf JSON only.
    """
    app = App(address=address or default_address(), json=as_json, timeout=timeout)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _json_after_command(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        get_app(ctx).json = True


def _add_json_option(command: click.Command) -> None:
    """Let --json follow the command name too: `modxctl train list --json`."""
    command.params.append(
        click.Option(
            ["--json"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_json_after_command,
            help="Print JSON only (same as 'modxctl --json ...').",
        )
    )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_json_option(sub)


cli.add_command(status)
cli.add_command(env)
cli.add_command(advice)
cli.add_command(quota)
cli.add_command(params)
cli.add_command(templates)
cli.add_command(train)
cli.add_command(eval_group)
cli.add_command(chat)
cli.add_command(package)
cli.add_command(models)
for _command in cli.commands.values():
    _add_json_option(_command)


def main() -> None:  # pragma: no cover - console_scripts use `cli` directly
    cli(prog_name="modxctl")


if __name__ == "__main__":  # pragma: no cover
    main()
