"""The safetensors header rule: what a weights file must say about itself before anything reads it.

Pure Python (json only), so the daemon checks a model dir at task-create time with the rule the
worker relies on. Every reader of the headers (parameter counts in hardware.py, memory estimates,
LoRA targets in validation.py) runs after this check, so it gets names, counts and offsets it can
compute with: a hostile header is a sentence naming the file and tensor, never a TypeError.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Iterator

from ..errors import quote

__all__ = ["safetensors_header_problem", "read_header", "tensor_entries", "count_parameters"]


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The tensor entries of a safetensors file's header (``__metadata__`` left out), as written. The
    one reader of the format's prefix; call it on files :func:`safetensors_header_problem` passed."""
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
    return {name: entry for name, entry in header.items() if name != "__metadata__"}


def tensor_entries(model_dir: str | os.PathLike) -> Iterator[tuple[str, dict[str, Any]]]:
    """(tensor name, header entry) of every safetensors file in a model dir, files in name order."""
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        yield from read_header(path).items()


def count_parameters(model_dir: str | os.PathLike) -> int:
    """Parameters in a model dir's safetensors files, read from their headers only."""
    total = 0
    for _, entry in tensor_entries(model_dir):
        n = 1
        for dim in entry["shape"]:
            n *= dim
        total += n
    return total


def safetensors_header_problem(path: str) -> str:
    """Why `path` is not a safetensors file (its header only is read), or '' when it is one."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or a device: open() could wait forever
            return "it is not a regular file"
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"only {size} bytes long"
            n = int.from_bytes(head, "little")
            if n < 2 or n > min(size - 8, 100 << 20):
                return f"its header length {n} does not fit the {size}-byte file"
            header = json.loads(f.read(n))
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    except (UnicodeDecodeError, ValueError):
        return "its header is not JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    ends = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        problem = _tensor_entry_problem(entry)
        if problem:
            return f"its header entry for tensor {quote(name)} {problem}"
        ends.append(entry["data_offsets"][1])
    if ends and max(ends) > size - 8 - n:
        return f"it is truncated: the tensors need {max(ends) + 8 + n} bytes, the file has {size}"
    return ""


# Bytes per element of the safetensors dtypes with a whole number of bytes (sub-byte ones: no size check).
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "U16": 2, "I16": 2,
                "F16": 2, "BF16": 2, "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor_entry_problem(entry: Any) -> str:
    """Why one tensor's header entry is not what the safetensors format writes ('' when it is): a dtype
    name, a shape of counts and [begin, end] offsets holding exactly its bytes. Every reader of the
    headers (parameter counts, memory estimates, LoRA targets) then gets numbers it can multiply."""
    if not isinstance(entry, dict):
        return "is not an object"
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str):
        return "has no dtype name"
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        return f"has a shape that is not a list of counts ({quote(shape)})"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        return f"has data_offsets that are not [begin, end] ({quote(offsets)})"
    elements = 1
    for dim in shape:
        elements *= dim
    width = _DTYPE_BYTES.get(dtype)
    if width is not None and elements * width != offsets[1] - offsets[0]:
        return (f"has shape {quote(shape)} of {dtype} ({elements * width} bytes) but data_offsets "
                f"{quote(offsets)} hold {offsets[1] - offsets[0]} bytes")
    return ""
