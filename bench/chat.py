"""Benchmark: chat through the daemon (gRPC stream <- inference worker) against the same backend
called in this process, for SmolLM2-135M-Instruct in both backends.

    .venv/bin/python bench/chat.py [--work DIR] [--runs N] [--max-new-tokens N] [--no-write]

Setup (kept in --work, so a second run skips it): SmolLM2's Q4_1 GGUF is imported as a
Hugging Face dir (`models import-gguf`), a task on it trains 2 LoRA steps, and its last
checkpoint is packaged as a merged Q8_0 GGUF. Then, per backend:

* transformers: the task's base model (`chat --base`) vs ``HFChatModel`` on the same dir;
* llama.cpp: the package (`chat --package`) vs ``LlamaChatModel`` on the same file;

each with a warm model (one warm-up reply each), greedy, the same prompt and seed, runs
alternating between the daemon and in-process so background load hits both alike; the
ratio and the first-token overhead are medians over (daemon run, next in-process run) pairs. Both
sides are timed the same way, where the tokens arrive: time to first token from the call
(the RPC for the daemon, ``generate`` in-process) to the first text; tokens/s as (tokens - 1)
/ (last arrival - first arrival). Medians are printed and written to the "Chat" section of
docs/benchmarks.md (unless --no-write).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, smollm2_gguf, write_section  # noqa: E402

COMMAND = ".venv/bin/python bench/chat.py"
SYSTEM = "You are a helpful assistant."
PROMPT = "Write a long story about a cat who learns to sail."
TINY_PROMPT = "a"  # the tiny random Llama answers this (greedy) for hundreds of tokens without stopping


def setup(daemon: Any, work: Path) -> dict[str, str]:
    """The task and package to chat with (made once, remembered in work/bench.json)."""
    from modx.v1 import package_pb2 as P
    from modx.v1 import training_pb2 as T

    from tests.daemon.helpers import create_request, sft_params, state_name, wait_for_state
    from tests.fixtures.datasets import write_sft_jsonl

    marker = work / "bench.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if "tiny_task_id" not in info:  # set up by an earlier version of this script
            info.update(_tiny(daemon, work))
            marker.write_text(json.dumps(info, indent=2))
        return info
    source = work / "SmolLM2-135M-Instruct.Q4_1.gguf"
    shutil.copyfile(smollm2_gguf(), source)
    print("importing SmolLM2 as a Hugging Face dir ...", flush=True)
    hf = daemon.packages.ImportGguf(P.ImportGgufRequest(gguf_path=str(source), output_dir=str(work / "hf")),
                                    timeout=900).output_dir
    data = write_sft_jsonl(work / "sft.jsonl", n=8)
    params = sft_params(Path(hf), data, work / "out", num_train_epochs=1, max_samples=4, per_device_train_batch_size=2,
                        gradient_accumulation_steps=1, save_steps=2, max_seq_length=64, learning_rate=1e-5,
                        fp16="false", gradient_checkpointing="false")
    task_id = daemon.training.CreateTask(create_request(**params)).task.id
    print(f"training 2 LoRA steps (task {task_id}) ...", flush=True)
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    task = wait_for_state(daemon, task_id, {"completed", "failed", "stopped"}, timeout=900)
    if state_name(task.state) != "completed":
        sys.exit(f"training failed: {task.state_reason}")
    ckpt = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints[-1]
    print("packaging it as a merged Q8_0 GGUF ...", flush=True)
    pkg = daemon.packages.CreatePackage(P.CreatePackageRequest(
        task_id=task_id, checkpoint=ckpt.id, quant_types=[P.QUANT_TYPE_Q8_0], merge=True,
        skip_verification=True)).package
    for _ in daemon.packages.WatchPackage(P.WatchPackageRequest(package_id=pkg.id), timeout=900):
        pass
    pkg = daemon.packages.GetPackage(P.GetPackageRequest(package_id=pkg.id)).package
    if pkg.state != 3:
        sys.exit(f"packaging failed: {pkg.state_reason}")
    model_file = next(f.path for f in pkg.files if f.kind == "model")
    info = {"task_id": task_id, "hf_dir": hf, "package_id": pkg.id, "gguf": model_file, **_tiny(daemon, work)}
    marker.write_text(json.dumps(info, indent=2))
    return info


def _tiny(daemon: Any, work: Path) -> dict[str, str]:
    """A task on a tiny random Llama (its base model is what the benchmark chats with)."""
    from tests.daemon.helpers import create_request, sft_params
    from tests.fixtures.datasets import write_sft_jsonl
    from tests.fixtures.tiny_models import make_tiny_llama

    tiny = make_tiny_llama(work / "tiny-llama")
    data = work / "sft.jsonl" if (work / "sft.jsonl").exists() else write_sft_jsonl(work / "sft.jsonl", n=8)
    task_id = daemon.training.CreateTask(create_request(**sft_params(tiny, data, work / "tiny-out"))).task.id
    return {"tiny_task_id": task_id, "tiny_dir": str(tiny)}


class Timing:
    """Arrival times of streamed pieces: the same bookkeeping for both sides."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.arrivals: list[tuple[float, int]] = []

    def piece(self, n_tokens: int) -> None:
        self.arrivals.append((time.perf_counter(), n_tokens))

    def result(self) -> dict[str, float]:
        tokens = sum(n for _, n in self.arrivals)
        first, last = self.arrivals[0][0], self.arrivals[-1][0]
        later = tokens - self.arrivals[0][1]
        return {"ttft_ms": (first - self.start) * 1000.0, "tokens": tokens,
                "tps": later / (last - first) if last > first else 0.0}


def via_daemon(daemon: Any, task_id: str, prompt: str = PROMPT, system: str = SYSTEM, **target: Any
               ) -> Callable[[int], dict[str, float]]:
    from modx.v1 import inference_pb2 as I

    def run(max_new_tokens: int) -> dict[str, float]:
        request = I.ChatRequest(task_id=task_id, system_prompt=system,
                                messages=[I.ChatMessage(role="user", content=prompt)],
                                sampling=I.SamplingParams(temperature=0, max_new_tokens=max_new_tokens, seed=1),
                                **target)
        timing = Timing()
        for response in daemon.inference.Chat(request, timeout=600):
            if response.WhichOneof("payload") == "delta":
                timing.piece(len(response.delta.token_ids))
        return timing.result()

    return run


def in_process(model: Any, prompt: str = PROMPT, system: str = SYSTEM) -> Callable[[int], dict[str, float]]:
    from modxd.engine.sampling import check_messages, check_sampling

    messages = check_messages([{"role": "user", "content": prompt}], system)

    def run(max_new_tokens: int) -> dict[str, float]:
        sampling = check_sampling({"temperature": 0, "max_new_tokens": max_new_tokens, "seed": 1})
        timing = Timing()
        model.generate(messages, sampling, lambda _text, ids: timing.piece(len(ids)))
        return timing.result()

    return run


def compare(name: str, daemon_run: Callable, local_run: Callable, runs: int, max_new_tokens: int) -> dict[str, Any]:
    daemon_run(max_new_tokens)  # warm-up: the daemon loads and caches the model
    local_run(max_new_tokens)
    remote, local = [], []
    for i in range(runs):
        remote.append(daemon_run(max_new_tokens))
        local.append(local_run(max_new_tokens))
        print(f"  {name} run {i + 1}: daemon {remote[-1]['tps']:.1f} tok/s, first token {remote[-1]['ttft_ms']:.1f} ms"
              f" | in-process {local[-1]['tps']:.1f} tok/s, first token {local[-1]['ttft_ms']:.1f} ms", flush=True)
    med = statistics.median
    out = {
        "backend": name, "tokens": int(med(r["tokens"] for r in remote)),
        "spread": (min(r["tps"] for r in remote + local), max(r["tps"] for r in remote + local)),
        "daemon_tps": med(r["tps"] for r in remote), "local_tps": med(r["tps"] for r in local),
        "daemon_ttft": med(r["ttft_ms"] for r in remote), "local_ttft": med(r["ttft_ms"] for r in local),
    }
    # Each daemon run is paired with the in-process run right after it (the same background load):
    # the ratio and the overhead are medians over those pairs.
    out["ratio"] = med(r["tps"] / l["tps"] for r, l in zip(remote, local))
    out["overhead_ms"] = med(r["ttft_ms"] - l["ttft_ms"] for r, l in zip(remote, local))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/modx-bench-chat"),
                        help="working dir (kept: a second run reuses its import, task and package)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)

    from tests.support.daemon import Daemon

    work = args.work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(work / "state", [work], quota=100, extra_env={"MODX_LOG_LEVEL": "warning"}).start()
    try:
        info = setup(daemon, work)

        from modxd.engine.generate import HFChatModel
        from modxd.worker.chat import default_threads
        from modxd.engine.llamacpp import LlamaChatModel

        threads = default_threads()  # what the worker uses
        import torch

        torch.set_num_threads(threads)
        rows = []
        print(f"transformers backend ({threads} thread(s)) ...", flush=True)
        hf = HFChatModel.load(info["hf_dir"], "cpu")
        rows.append(compare("transformers (fp32)", via_daemon(daemon, info["task_id"], base=True), in_process(hf),
                            args.runs, args.max_new_tokens))
        hf.close()
        print("transformers backend, tiny 2-layer Llama (the fixed costs of the daemon's path show) ...", flush=True)
        tiny = HFChatModel.load(info["tiny_dir"], "cpu")
        rows.append(compare("transformers, tiny 2-layer Llama",
                            via_daemon(daemon, info["tiny_task_id"], TINY_PROMPT, "", base=True),
                            in_process(tiny, TINY_PROMPT, ""), args.runs, args.max_new_tokens))
        tiny.close()
        print(f"llama.cpp backend ({threads} thread(s)) ...", flush=True)
        gguf = LlamaChatModel.load(info["gguf"], "cpu", threads=threads)
        rows.append(compare("llama.cpp (Q8_0 GGUF)", via_daemon(daemon, info["task_id"], package_id=info["package_id"]),
                            in_process(gguf), args.runs, args.max_new_tokens))
        gguf.close()
    finally:
        daemon.stop()

    lines = ["| backend | tokens | tok/s daemon | tok/s in-process | ratio | first token daemon (ms) | "
             "first token in-process (ms) | overhead (ms) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['tokens']} | {r['daemon_tps']:.1f} | {r['local_tps']:.1f} | "
                     f"{r['ratio']:.3f} | {r['daemon_ttft']:.1f} | {r['local_ttft']:.1f} | {r['overhead_ms']:+.1f} |")
    table = "\n".join(lines)
    print(table)
    ok = all(r["ratio"] >= 0.95 and r["overhead_ms"] < 30 for r in rows)
    verdict = ("both backends meet the target (>= 0.95x the in-process tokens/s, first-token overhead under 30 ms)"
               if ok else "the target (>= 0.95x tokens/s, first-token overhead under 30 ms) is NOT met")
    print(verdict)
    if args.no_write:
        return
    spread = "; ".join(f"{r['backend']} {r['spread'][0]:.1f}-{r['spread'][1]:.1f} tok/s" for r in rows)
    write_section("Chat", (
        f"SmolLM2-135M-Instruct, and a tiny 2-layer random Llama whose millisecond steps expose the "
        f"fixed costs of the daemon's path; greedy, {args.max_new_tokens} new tokens at most, the same prompt and "
        f"seed, warm models, {args.runs} runs alternating between the daemon and in-process, on {machine()} "
        f"({threads} compute thread(s), the worker's default here). Command: `{COMMAND}`. Daemon: modxctl's "
        "path (a gRPC stream over the Unix socket from modxd, which relays the inference worker's pipe messages); in-process: the same backend class "
        "(`HFChatModel`, `LlamaChatModel`) called in the benchmark's process with the same thread count. Both sides "
        "time arrivals the same way: first token from the call to the first streamed text; tokens/s = (tokens - 1) "
        "/ (last - first arrival). Absolute numbers are medians; the ratio and the overhead are medians over pairs (a "
        "daemon run and the in-process run right after it), so background load on the host hits both members of a "
        f"pair alike. Run-to-run spread on this shared host: {spread}.\n\n"
        f"{table}\n\nResult: {verdict}.\n"))


if __name__ == "__main__":
    main()
