"""status, env, advice and quota: what the daemon, its host and the quota look like."""
from __future__ import annotations

import os

import click

from modx.v1 import system_pb2

from .connection import get_app
from .output import echo, emit_json, fmt_bool, fmt_bytes, fmt_duration, fmt_time, kv, table


@click.command()
def status() -> None:
    """Show whether modxd is up and what runs where.

    Also: the version, the listen address, queued tasks and the quota left.

    Exits 1 with a sentence when the daemon cannot be reached, so scripts can
    use it as a health check:

    \b
      modxctl status >/dev/null && echo up
    """
    app = get_app()
    resp = app.call(app.system.GetStatus, system_pb2.GetStatusRequest())
    if app.json:
        emit_json(resp)
        return
    echo(
        kv(
            [
                ("modxd", f"{resp.version} (API {resp.api_version}), pid {resp.pid}"),
                ("listening", resp.listen),
                ("state dir", resp.state_dir),
                ("up since", f"{fmt_time(resp.start_time)} ({fmt_duration(resp.uptime_seconds)})"),
                ("tasks", f"{resp.tasks_running} running, {resp.tasks_pending} pending, {resp.tasks_total} in total"),
                ("quota", f"{resp.quota_balance} units left"),
            ]
        )
    )
    if resp.devices:
        echo()
        echo(table(["DEVICE", "TASK"], [(d.device, d.task_id or "free") for d in resp.devices]))


def fmt_params(billion: float) -> str:
    """7.0 -> '7.00B', 0.494 -> '494M', 4.7e-05 -> '46.8K' (tiny test models too)."""
    if billion >= 1:
        return f"{billion:.2f}B"
    if billion >= 1e-3:
        return f"{billion * 1e3:.0f}M"
    return f"{billion * 1e6:.1f}K"


def _device_rows(devices: list[system_pb2.Device]) -> list[list[str]]:
    return [
        [
            str(d.index),
            d.kind,
            d.name,
            fmt_bytes(d.total_memory_bytes) if d.total_memory_bytes else "-",
            fmt_bytes(d.free_memory_bytes) if d.free_memory_bytes else "-",
            d.compute_capability or "-",
            fmt_bool(d.bf16_supported),
            fmt_bool(d.fp16_supported),
            fmt_bool(d.tf32_supported),
        ]
        for d in devices
    ]


_DEVICE_HEADERS = ["#", "KIND", "NAME", "MEMORY", "FREE", "CC", "BF16", "FP16", "TF32"]


@click.command()
def env() -> None:
    """Describe the daemon's host: Python, torch, CUDA, devices.

    Run it first when training falls back to CPU or a precision is refused:
    it shows what the daemon sees, not what this shell sees.
    """
    app = get_app()
    resp = app.call(app.system.GetEnvironment, system_pb2.GetEnvironmentRequest())
    if app.json:
        emit_json(resp)
        return
    cuda = f"{resp.cuda_version} (available)" if resp.cuda_available else (resp.cuda_version or "-") + " (not available)"
    echo(
        kv(
            [
                ("python", resp.python_version),
                ("platform", resp.platform),
                ("torch", resp.torch_version or "-"),
                ("cuda", cuda),
                ("cpus", resp.cpu_count),
                ("memory", fmt_bytes(resp.host_memory_bytes)),
            ]
        )
    )
    if resp.devices:
        echo()
        echo(table(_DEVICE_HEADERS, _device_rows(list(resp.devices)), align="rllrrllll"))
    if resp.packages:
        echo()
        echo(table(["PACKAGE", "VERSION"], sorted(resp.packages.items())))


@click.command()
@click.option("--model-dir", type=click.Path(), metavar="DIR", help="A Hugging Face model dir to size (read on the daemon's host).")
@click.option("--params-billion", type=click.FloatRange(min=0, min_open=True), metavar="N", help="Or the model size in billions of parameters.")
def advice(model_dir: str | None, params_billion: float | None) -> None:
    """Check which model sizes this host can train.

    Compares the VRAM guidance (LoRA and full fine-tuning per size class)
    with the free memory of every device the daemon sees.

    \b
    Examples:
      modxctl advice --params-billion 7
      modxctl advice --model-dir ~/models/Qwen2.5-1.5B
    """
    if model_dir and params_billion:
        raise click.UsageError("give either --model-dir or --params-billion, not both")
    app = get_app()
    req = system_pb2.GetHardwareAdviceRequest(
        model_dir=os.path.abspath(os.path.expanduser(model_dir)) if model_dir else "",
        params_billion=params_billion or 0.0,
    )
    resp = app.call(app.system.GetHardwareAdvice, req)
    if app.json:
        emit_json(resp)
        return
    if resp.params_billion:
        echo(f"model size: {fmt_params(resp.params_billion)} parameters (class {resp.guidance.size_class or '-'})")
    if resp.table:
        echo()
        rows = [
            ["→" if g.size_class == resp.guidance.size_class and resp.params_billion else "", g.size_class, fmt_bytes(g.lora_bytes), fmt_bytes(g.full_bytes)]
            for g in resp.table
        ]
        echo(table(["", "SIZE", "LORA VRAM", "FULL VRAM"], rows, align="llrr"))
    if resp.devices:
        echo()
        rows = [
            [
                f"{d.device.kind}:{d.device.index}" if d.device.kind != "cpu" else "cpu",
                d.device.name,
                fmt_bytes(d.device.free_memory_bytes) if d.device.free_memory_bytes else "-",
                fmt_bool(d.lora_fits),
                fmt_bool(d.full_fits),
                d.advice,
            ]
            for d in resp.devices
        ]
        echo(table(["DEVICE", "NAME", "FREE", "LORA FITS", "FULL FITS", "ADVICE"], rows, align="llrlll"))
    if resp.recommendation:
        echo()
        echo(resp.recommendation)


def _print_ledger(entries: list[system_pb2.QuotaEntry]) -> None:
    rows = [
        [fmt_time(e.time), f"{e.delta:+d}", str(e.balance_after), e.kind, e.task_id or "-", e.checkpoint_id or "-", e.note]
        for e in entries
    ]
    echo(table(["TIME", "DELTA", "BALANCE", "KIND", "TASK", "CHECKPOINT", "NOTE"], rows, align="lrrllll"))


@click.group(invoke_without_command=True)
@click.option("--ledger", "ledger_limit", type=click.IntRange(min=0), default=0, metavar="N", help="Show the N latest ledger entries.  [default: 50]")
@click.pass_context
def quota(ctx: click.Context, ledger_limit: int) -> None:
    """Show the quota balance and its ledger.

    Each saved checkpoint costs one unit, reserved before it is written
    (shown as reserved) and debited when it is saved. The balance never
    goes below zero: a run that cannot pay for its next checkpoint stops
    as 'stopped' with reason quota_exhausted without writing it.

    \b
    Examples:
      modxctl quota
      modxctl quota grant 50 --note "Q3 allowance"
    """
    if ctx.invoked_subcommand is not None:
        return
    app = get_app()
    resp = app.call(app.system.GetQuota, system_pb2.GetQuotaRequest(ledger_limit=ledger_limit))
    if app.json:
        emit_json(resp)
        return
    echo(kv([("balance", f"{resp.balance} units"),
             ("reserved", f"{resp.reserved} (held for checkpoints being saved; {resp.balance - resp.reserved} free)"),
             ("consumed", resp.consumed), ("granted", resp.granted)]))
    if resp.ledger:
        echo()
        _print_ledger(list(resp.ledger))


@quota.command("grant")
@click.argument("amount", type=click.IntRange(min=1))
@click.option("--note", default="", metavar="TEXT", help="Why the units are granted (kept in the ledger).")
def quota_grant(amount: int, note: str) -> None:
    """Add AMOUNT units to the quota (an admin action).

    The grant, with --note, is recorded in the ledger.
    """
    app = get_app()
    resp = app.call(app.system.GrantQuota, system_pb2.GrantQuotaRequest(amount=amount, note=note))
    if app.json:
        emit_json(resp)
        return
    echo(f"granted {amount} units; the balance is now {resp.balance}")
