"""GGUF -> a trainable Hugging Face model dir (dequantized), with transformers' GGUF loader.

The dir is built under a hidden staging name beside the target and renamed into place
when complete, so a failed import leaves nothing; a marker file records which GGUF file
(path, size, mtime, sha256 of the first MiB) it holds, so the same import is not redone.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import time
from typing import Any

from ...paths import Pinned, pin_input, pin_output_dir
from ...protocol import Emit, Log, PackageProgress
from ..checkpoints import remove_entry
from .arch import ExportError

log = logging.getLogger("modxd.engine.export")

MARKER = ".modx-import.json"  # keep in step with modxd.packages.IMPORT_MARKER


def _gguf_meta(path: str) -> dict[str, Any]:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    out: dict[str, Any] = {}
    for key in ("general.architecture", "general.file_type", "tokenizer.chat_template", "general.name",
                "tokenizer.ggml.pre"):
        field = reader.fields.get(key)
        if field is not None:
            try:
                out[key] = field.contents()
            except Exception:  # noqa: BLE001
                pass
    return out


# What the gguf reader raises on a file it cannot parse (a truncated file, a foreign version, garbage
# where a count or a type should be); nothing else is caught.
_UNREADABLE = (ValueError, IndexError, KeyError, OverflowError, UnicodeDecodeError, OSError)


def gguf_problem(path: str) -> str:
    """Why `path` is not a GGUF file the importer can read ('' when it is): the one rule the daemon
    applies before an import job (modxd/packages.py) and the worker applies to the file it opened."""
    try:
        _gguf_meta(path)
    except _UNREADABLE as exc:
        return (f"is not a readable GGUF file ({type(exc).__name__}: {exc}); it is truncated, damaged or of a "
                "GGUF version the reader does not know")
    return ""


def _match_pre_tokenizer(tokenizer: Any, pre: str, info: Callable[[str], None]) -> None:
    """Give the Hugging Face tokenizer the pre-tokenizer llama.cpp uses for this GGUF file.

    transformers' GGUF tokenizer conversion keeps only a generic byte-level split; a model
    trained with, e.g., one token per digit (smollm) must tokenize that way when trained on.
    """
    from .tokenizer import PRE_TOKENIZERS, classify_pre_tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or pre not in PRE_TOKENIZERS:
        return
    if classify_pre_tokenizer(backend.pre_tokenizer) != pre:
        backend.pre_tokenizer = PRE_TOKENIZERS[pre]()
        info(f"set the tokenizer's pre-tokenizer to llama.cpp's {pre!r} (from tokenizer.ggml.pre)")


def import_gguf(config: dict[str, Any], emit: Emit) -> dict[str, Any]:
    """Read the GGUF file through a checked open (modxd/paths.py) and write the model dir beside the
    target through its open parent dir, never through a symlink."""
    with pin_input("gguf_path", config["gguf_path"], directory=False) as source:
        out = config["output_dir"].rstrip("/")
        with pin_output_dir("output_dir", os.path.dirname(out))[0] as parent:
            return _import(config, source, parent, os.path.basename(out), emit)


def _import(config: dict[str, Any], source: Pinned, parent: Pinned, name: str, emit: Emit
            ) -> dict[str, Any]:
    src = source.real
    out = parent.real_join(name)
    started = time.time()

    def progress(phase: str) -> None:
        emit(PackageProgress(phase))

    def info(message: str) -> None:
        log.info(message)
        emit(Log("info", message))

    progress("read")
    try:
        meta = _gguf_meta(source.path)
    except _UNREADABLE as exc:
        raise ExportError(f"gguf_path: {src} is not a readable GGUF file ({type(exc).__name__}: {exc})") from None
    arch = str(meta.get("general.architecture") or "")
    dtype_name = str(config.get("dtype") or "auto")
    if dtype_name == "auto":
        dtype_name = "bfloat16" if meta.get("general.file_type") == 32 else "float32"
    if dtype_name not in ("float32", "bfloat16"):
        raise ExportError(f"dtype must be float32 or bfloat16, not {dtype_name!r}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, gguf_name = os.path.split(source.path)  # the open file: /proc/self/fd + N
    info(f"loading {os.path.basename(src)} ({arch or 'unknown architecture'}) with transformers' GGUF loader")
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_name, local_files_only=True)
        progress("dequantize")
        model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_name,
                                                     dtype=getattr(torch, dtype_name), local_files_only=True)
    except (ValueError, KeyError, NotImplementedError, RuntimeError) as exc:
        raise ExportError(f"{src} cannot be imported: {exc}") from None
    # The model is plain weights now: drop the GGUF quantizer so it saves (and trains) as such.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.use_cache = True
    if not getattr(tokenizer, "chat_template", None) and isinstance(meta.get("tokenizer.chat_template"), str):
        tokenizer.chat_template = meta["tokenizer.chat_template"]
    _match_pre_tokenizer(tokenizer, str(meta.get("tokenizer.ggml.pre") or ""), info)
    parameters = int(sum(p.numel() for p in model.parameters()))
    staging_name = f".{name}.import-{os.getpid()}"
    remove_entry(parent, staging_name)
    try:
        with parent.subdir(staging_name, fresh=True)[0] as staging:
            progress("save")
            model.save_pretrained(staging.path, safe_serialization=True)
            tokenizer.save_pretrained(staging.path)
            marker = {"source": src, **config.get("fingerprint", {}), "architecture": model.config.model_type,
                      "gguf_architecture": arch, "parameters": parameters, "dtype": dtype_name,
                      "time": time.time()}
            with open(os.path.join(staging.path, MARKER), "w", encoding="utf-8") as f:
                json.dump(marker, f, indent=2)
        try:
            existing = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if not config.get("overwrite") and (not stat.S_ISDIR(existing.st_mode) or os.listdir(parent.join(name))):
                raise ExportError(f"{out} exists and is not empty")
            remove_entry(parent, name)
        os.rename(staging_name, name, src_dir_fd=parent.fd, dst_dir_fd=parent.fd)
    except BaseException:
        remove_entry(parent, staging_name)
        raise
    seconds = round(time.time() - started, 2)
    info(f"imported {model.config.model_type} ({parameters:,} parameters, {dtype_name}) into {out} in {seconds:.1f}s")
    return {"output_dir": out, "architecture": model.config.model_type, "parameters": parameters,
            "dtype": dtype_name, "seconds": seconds}
