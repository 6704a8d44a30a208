"""package: export a checkpoint as GGUF files for llama.cpp, verified against the original."""
from __future__ import annotations

import os
import sys
from typing import Any

import click

from modx.v1 import package_pb2

from .connection import App, get_app
from .download import report_saved, save, target_path
from .evaluate import JOB_DONE_OK, job_events, job_label
from .output import (
    LiveBlock,
    bar,
    echo,
    emit_json,
    fmt_bool,
    fmt_bytes,
    fmt_clock,
    fmt_time,
    kv,
    note,
    quant_label,
    table,
)
from .paging import all_pages

QUANT_NAMES = [quant_label(package_pb2.QuantType, v) for v in package_pb2.QuantType.values() if v != 0]


def parse_quant(name: str) -> int:
    """'q4_k_m', 'Q4-K-M' or 'QUANT_TYPE_Q4_K_M' -> QUANT_TYPE_Q4_K_M."""
    key = name.strip().upper().replace("-", "_")
    if key.startswith("QUANT_TYPE_"):
        key = key[len("QUANT_TYPE_"):]
    if key not in QUANT_NAMES:
        raise ValueError(f"{name!r} is not a quantization type; choose from {', '.join(QUANT_NAMES)}")
    return package_pb2.QuantType.Value("QUANT_TYPE_" + key)


class QuantParam(click.ParamType):
    """A quantization type name, case-insensitive, as the QuantType enum value."""

    name = "TYPE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_quant(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def print_package(p: package_pb2.Package) -> None:
    state = job_label(p.state) + (f" ({p.state_reason})" if p.state_reason else "")
    echo(
        kv(
            [
                ("package", p.id),
                ("task", p.task_id),
                ("checkpoint", p.checkpoint_id),
                ("state", state),
                ("quantization", ", ".join(quant_label(package_pb2.QuantType, q) for q in p.quant_types) or "-"),
                ("merged LoRA", fmt_bool(p.merge)),
                ("output dir", p.output_dir or "-"),
                ("created", fmt_time(p.create_time)),
                ("ended", fmt_time(p.end_time)),
            ]
        )
    )
    if p.files:
        echo()
        rows = [[f.path, f.kind, quant_label(package_pb2.QuantType, f.quant_type), fmt_bytes(f.size_bytes), f.sha256 or "-"] for f in p.files]
        echo(table(["FILE", "KIND", "QUANT", "SIZE", "SHA256"], rows, align="lllrl"))
    if p.verifications:
        echo()
        rows = [
            [
                quant_label(package_pb2.QuantType, v.quant_type),
                "match" if v.tokenizer_match else "MISMATCH",
                f"{v.top1_agreement * 100:.1f}%",
                f"{v.max_logit_diff:.4g}",
                f"{v.mean_logit_diff:.4g}",
                str(v.prompts),
            ]
            for v in p.verifications
        ]
        echo("verification against the original checkpoint:")
        echo(table(["QUANT", "TOKENIZER", "TOP-1 AGREE", "MAX LOGIT DIFF", "MEAN LOGIT DIFF", "PROMPTS"], rows, align="llrrrr"))


def package_progress_text(p: package_pb2.PackageProgress) -> str:
    """'quantize Q4_K_M  tensors 120/290 ████░░ 41%  1.2 GiB written'."""
    quant = quant_label(package_pb2.QuantType, p.quant_type)
    text = p.phase or "working"
    if quant != "-":
        text += f" {quant}"
    if p.tensors_total:
        frac = p.tensors_done / p.tensors_total
        text += f"  tensors {p.tensors_done}/{p.tensors_total} {bar(frac)} {frac * 100:3.0f}%"
    if p.bytes_written:
        text += f"  {fmt_bytes(p.bytes_written)} written"
    return text


def watch_package(app: App, package_id: str) -> int:
    """Follow a package job to its end, then print files and verification."""
    block = LiveBlock(enabled=False) if app.json else LiveBlock()
    last_phase = None

    def open_call(seq: int):
        return app.packages.WatchPackage(package_pb2.WatchPackageRequest(package_id=package_id, after_seq=seq))

    try:
        for resp in job_events(app, open_call):
            if app.json:
                emit_json(resp, stream=True)
                continue
            ev = resp.event
            kind = ev.WhichOneof("payload")
            if kind == "progress":
                text = package_progress_text(ev.progress)
                phase = (ev.progress.phase, ev.progress.quant_type)
                if block.enabled:
                    block.update([text])
                elif phase != last_phase:
                    block.line(f"{fmt_clock(ev.time)} {text}")
                last_phase = phase
            elif kind == "state":
                block.line(f"{fmt_clock(ev.time)} package {job_label(ev.state)}")
            elif kind == "file":
                f = ev.file
                block.line(f"{fmt_clock(ev.time)} wrote {f.path} ({f.kind}, {fmt_bytes(f.size_bytes)})")
            elif kind == "log" and ev.log.level.lower() in ("warning", "error", "critical"):
                block.line(f"{fmt_clock(ev.time)} {ev.log.level.upper()} {ev.log.message}")
    except KeyboardInterrupt:
        block.close()
        note(f"\ndetached: package {package_id} keeps being built (see it with: modxctl package show {package_id})")
        raise click.exceptions.Exit(130) from None
    block.close(keep=False)
    resp = app.call(app.packages.GetPackage, package_pb2.GetPackageRequest(package_id=package_id))
    if app.json:
        emit_json(resp, stream=True)
    else:
        echo()
        print_package(resp.package)
    return 0 if resp.package.state in JOB_DONE_OK else 1


@click.group()
def package() -> None:
    """Export checkpoints as GGUF files ready for llama.cpp.

    A LoRA checkpoint is merged into its base model (unless --no-merge, which
    writes the base model and a LoRA adapter GGUF that llama.cpp applies at
    load time), converted, quantized, and each output is checked against the
    original checkpoint (tokenizer and next-token agreement). A model card
    (README.md) and an Ollama Modelfile per GGUF are written beside them.
    """


@package.command("create")
@click.argument("task_id")
@click.option("--checkpoint", required=True, metavar="C", help="Checkpoint id, step or path to export, or 'merged' (the task's merged model).")
@click.option("--quant", "quants", type=QuantParam(), multiple=True, required=True, help=f"Quantization (repeatable, any case): {', '.join(QUANT_NAMES)}.")
@click.option("--merge/--no-merge", default=None, help="Merge the LoRA adapter into the base weights, or export the adapter alone.  [default: merge]")
@click.option("--output-dir", type=click.Path(file_okay=False), metavar="DIR", help="Where the files go.  [default: <task output dir>/packages/<id>]")
@click.option("--skip-verification", is_flag=True, help="Do not compare the GGUF outputs with the checkpoint (faster).")
@click.option("--detach", is_flag=True, help="Print the new package and return without following it.")
def package_create(
    task_id: str,
    checkpoint: str,
    quants: tuple[int, ...],
    merge: bool | None,
    output_dir: str | None,
    skip_verification: bool,
    detach: bool,
) -> None:
    """Export a checkpoint of TASK_ID as GGUF files.

    Follows the build, then lists the files with sizes and sha256 and the
    verification results.

    Exits 0 when the package is built, 1 when it fails.

    \b
    Examples:
      modxctl package create TASK_ID --checkpoint 400 --quant q4_k_m
      modxctl package create TASK_ID --checkpoint 400 --quant F16 --quant Q8_0 --no-merge
    """
    app = get_app()
    req = package_pb2.CreatePackageRequest(
        task_id=task_id,
        checkpoint=checkpoint,
        quant_types=list(dict.fromkeys(quants)),
        output_dir=os.path.abspath(os.path.expanduser(output_dir)) if output_dir else "",
        skip_verification=skip_verification,
    )
    if merge is not None:
        req.merge = merge
    resp = app.call(app.packages.CreatePackage, req)
    p = resp.package
    if app.json:
        emit_json(resp, stream=not detach)
    else:
        kinds = ", ".join(quant_label(package_pb2.QuantType, q) for q in p.quant_types)
        echo(f"package {p.id}: checkpoint {p.checkpoint_id or checkpoint} → {kinds}")
    if detach:
        if not app.json:
            echo(f"see it with: modxctl package show {p.id}")
        return
    sys.exit(watch_package(app, p.id))


@package.command("show")
@click.argument("package_id", metavar="ID")
def package_show(package_id: str) -> None:
    """Show a package's files, checksums and verification."""
    app = get_app()
    resp = app.call(app.packages.GetPackage, package_pb2.GetPackageRequest(package_id=package_id))
    if app.json:
        emit_json(resp)
        return
    print_package(resp.package)


@package.command("list")
@click.option("--task", "task_id", metavar="ID", default="", help="Only packages of this task.")
def package_list(task_id: str) -> None:
    """List packages, newest first."""
    app = get_app()
    merged = all_pages(app, app.packages.ListPackages, package_pb2.ListPackagesRequest(task_id=task_id), "packages")
    if app.json:
        emit_json(merged)
        return
    if not merged.packages:
        echo("no packages")
        return
    rows = [
        [
            p.id,
            p.task_id,
            p.checkpoint_id,
            job_label(p.state),
            ", ".join(quant_label(package_pb2.QuantType, q) for q in p.quant_types),
            fmt_bytes(sum(f.size_bytes for f in p.files)) if p.files else "-",
            fmt_time(p.create_time),
        ]
        for p in merged.packages
    ]
    echo(table(["ID", "TASK", "CHECKPOINT", "STATE", "QUANT", "SIZE", "CREATED"], rows, align="lllllrl"))


@package.command("download")
@click.argument("package_id", metavar="ID")
@click.argument("file")
@click.option("-o", "--output", metavar="PATH", default=None, help="Where to save it (a directory keeps the name).  [default: ./FILE's name]")
@click.option("--force", is_flag=True, help="Replace PATH when it exists.")
def package_download(package_id: str, file: str, output: str | None, force: bool) -> None:
    """Save one of a package's files (its path or name, as `package show` lists them), checked
    against its SHA-256."""
    app = get_app()

    def open_stream(offset: int):
        request = package_pb2.ReadPackageFileRequest(package_id=package_id, path=file, offset=offset)
        return app.packages.ReadPackageFile(request, timeout=app.timeout)

    report_saved(app.json, save(open_stream, target_path(output, file), force))
