"""Benchmark: the data report (engine/data_report.py) on a 100,000-line SFT file.

    .venv/bin/python bench/data_report.py [--lines 100000] [--model smollm2] [--max-seq-length 512] [--no-write]

Target (issue 19): a 100,000-line file in seconds, not minutes. The file is written once under the
bench cache: chat conversations from bench/sft_data.py with one to twelve answer sentences (a
system prompt in a third, a second exchange in a quarter), in OpenAI messages format. Timed, each in
this process after a warm-up on 1,000 lines: ``inspect_sft_file`` (what create already does: parse
and validate), the report (parse again, render, tokenize, count, find), and two references for what
the report cannot avoid -- rendering every conversation once with the template, and tokenizers'
``encode_batch`` on the rendered texts. The host's load average is printed with the numbers: on a
shared machine they move with it.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, bench_model_dir, machine, write_section  # noqa: E402
from sft_data import _conversation  # noqa: E402

COMMAND = ".venv/bin/python bench/data_report.py"


def write_file(path: Path, lines: int, seed: int = 0) -> Path:
    if path.is_file() and sum(1 for _ in open(path, encoding="utf-8")) == lines:
        return path
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):
            f.write(json.dumps({"messages": _conversation(random.Random(rng.random()), rng.randint(1, 12))}) + "\n")
    return path


def _timed(label: str, func, *args, **kwargs):
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = func(*args, **kwargs)
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.1f} s (load average {load:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)
    return result, seconds, load


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--model", default="smollm2", choices=["smollm2", "tiny"])
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    from modxd.engine import formats
    from modxd.engine.data_report import report_file
    from modxd.engine.templating import ChatTokenizer, read_tokenizer_dir

    model = bench_model_dir(args.model)
    data = write_file(CACHE / f"report-{args.lines}.jsonl", args.lines)
    warm = write_file(CACHE / "report-1000.jsonl", 1000, seed=1)
    params = {"model_dir": str(model), "max_seq_length": args.max_seq_length}
    report_file("sft", {**params, "train_file": str(warm)})  # imports, tokenizer load, template compile

    summary, inspect_s, _ = _timed("inspect_sft_file", formats.inspect_sft_file, str(data))
    report, report_s, load = _timed("data report", report_file, "sft", {**params, "train_file": str(data)}, "train_file",
                                    summary)
    chat = ChatTokenizer(read_tokenizer_dir(str(model)))
    conversations = list(formats.iter_sft_conversations(str(data)))
    texts, render_s, _ = _timed("render once each (reference)",
                                lambda: [chat.apply_chat_template(c) for c in conversations])
    _, encode_s, _ = _timed("encode_batch alone (reference)", chat.files.backend.encode_batch, texts,
                            add_special_tokens=False)
    tokens = report.total_tokens
    body = f"""
Measured on {machine()}; load average {load:.1f} when the report started (the machine is shared).
Command: `{COMMAND} --lines {args.lines} --model {args.model} --max-seq-length {args.max_seq_length}`.
Target: a 100,000-line file in seconds, not minutes.

| step | seconds | lines/s |
|---|---|---|
| `inspect_sft_file` (parse and validate, what create already does) | {inspect_s:.1f} | {args.lines / inspect_s:,.0f} |
| data report ({tokens:,} tokens, {report.kept_trainable_tokens:,} trainable kept) | {report_s:.1f} | {args.lines / report_s:,.0f} |
| reference: one template render per conversation | {render_s:.1f} | {args.lines / render_s:,.0f} |
| reference: `encode_batch` of the rendered texts | {encode_s:.1f} | {args.lines / encode_s:,.0f} |

Report throughput: {tokens / report_s:,.0f} tokens/s. Tokenization alone: {tokens / encode_s:,.0f} tokens/s.
"""
    print(body)
    print("warnings:", json.dumps(report.warnings, indent=1)[:2000])
    if not args.no_write:
        write_section("Data report", body)


if __name__ == "__main__":
    main()
