"""K-quants and the legacy block types, made in-process by llama.cpp's own quantizer
(``llama_model_quantize`` from llama-cpp-python) from an F16/F32 GGUF file."""
from __future__ import annotations

import ctypes
import os
import threading
from typing import Callable

from ...hardware import usable_cpu_count
from .arch import ExportError
from .writer import LLAMA_TYPES

__all__ = ["quantize_file", "quiet_llama"]

def quiet_llama() -> None:
    """Keep llama.cpp's C logging to errors (it would flood the worker's stderr)."""
    from llama_cpp import _logger

    _logger.set_verbose(False)


def quantize_file(source: str, target: str, qtype: str, threads: int = 0,
                  progress: Callable[[int], None] | None = None) -> int:
    """Quantize ``source`` (an F16/F32 GGUF) into ``target``; return the target's size.

    ``progress`` gets the bytes written so far, polled while llama.cpp works.
    """
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - a dependency of modx
        raise ExportError(f"llama-cpp-python is not installed, so {qtype} cannot be made: {exc}") from None
    if qtype not in LLAMA_TYPES:
        raise ExportError(f"{qtype} is not a llama.cpp quantization type")
    quiet_llama()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = LLAMA_TYPES[qtype]
    params.nthread = threads or usable_cpu_count()
    result: dict[str, int] = {}

    def work() -> None:
        result["rc"] = llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params))

    thread = threading.Thread(target=work, name=f"quantize-{qtype}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.5)
        if progress is not None and os.path.exists(target):
            progress(os.path.getsize(target))
    if result.get("rc", 1) != 0:
        raise ExportError(f"llama.cpp could not quantize {os.path.basename(source)} to {qtype} "
                          f"(llama_model_quantize returned {result.get('rc')}); is the disk full?")
    size = os.path.getsize(target)
    with open(target, "rb") as f:
        os.fsync(f.fileno())
    if progress is not None:
        progress(size)
    return size
