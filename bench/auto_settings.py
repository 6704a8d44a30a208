"""Experiments for the automatic SFT settings: train SmolLM2-135M-Instruct, judge on unseen prompts.

    .venv/bin/python bench/auto_settings.py grid --sets facts6,style-s --epochs 2,5 --lr 2e-4,1e-3 --targets qv,all
    .venv/bin/python bench/auto_settings.py rules --sets facts6,facts20,...   # the picks of modxd.auto_settings
    .venv/bin/python bench/auto_settings.py table                           # markdown table of every run

Each run trains through modx's own engine (``modxd.engine.train.run_training``, as a training worker
calls it) in a fresh spawned process, starting from the seed's SFT defaults (modxd.params) with the
run's settings on top, then in the same process loads the final checkpoint the way inference does
(``HFChatModel.load``: base + LoRA adapter, merged) and judges it with greedy decoding:

* ``score``: facts: the invented answer word in the reply to a held-out paraphrase; style: the reply
  opens with "Ahoy!" and ends with "- Captain Byte"; format: the reply parses as one JSON object with
  exactly the keys topic/answer/confidence (strings) -- on prompts that are not in the training file;
* ``seen``: facts only, the same check on training questions (memorised vs generalised);
* ``retention``: of the world-knowledge probes the base model answers right, the share still right;
* ``eval_loss``: mean loss on the assistant tokens of held-out conversations (their reference answers).

Settings that are not given are the seed's defaults except: batch 8 x accumulation 1 (the same
effective batch as the seed's 2 x 4, and the same gradients: the loss is normalised over the
accumulated batch), gradient checkpointing off and fp32 (the CPU's only precision; neither changes
the arithmetic of a step). Every run appends one JSON line to bench/results/autoexp.jsonl; runs
already there are skipped, so an interrupted grid resumes. Generations go to .bench-cache/autoexp/.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import glob
import hashlib
import itertools
import json
import multiprocessing as mp
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, REPO, machine, smollm2_hf_dir  # noqa: E402
import autoexp_data as D  # noqa: E402

RESULTS = REPO / "bench" / "results" / "autoexp.jsonl"
WORK = CACHE / "autoexp"
TARGETS = {"qv": ["q_proj", "v_proj"], "all": ["all-linear"],
           "attn": ["q_proj", "k_proj", "v_proj", "o_proj"]}
# What a run may set, with the value it gets when not given (the seed's, but for batch x accumulation).
SETTING_DEFAULTS: dict[str, Any] = {"epochs": 2, "lr": 2e-4, "targets": "qv", "r": 16, "alpha": 16,
                                    "batch": 8, "accum": 1, "warmup": 0.1, "scheduler": "cosine"}
MAX_NEW = {"facts": 40, "style": 80, "format": 80, "retention": 24}


def run_id(dataset: str, settings: dict[str, Any]) -> str:
    key = json.dumps({"dataset": dataset, **{k: settings[k] for k in sorted(settings)}}, sort_keys=True)
    return hashlib.sha1(key.encode()).hexdigest()[:10]


def full_settings(given: dict[str, Any]) -> dict[str, Any]:
    unknown = set(given) - set(SETTING_DEFAULTS) - {"judge_every"}
    if unknown:
        raise SystemExit(f"unknown settings: {', '.join(sorted(unknown))}")
    return {**SETTING_DEFAULTS, **given}


def engine_config(model_dir: Path, train_file: Path, out: Path, s: dict[str, Any]) -> dict[str, Any]:
    """The seed's SFT defaults (the parameter schema), this run's settings on top."""
    from modxd.params import defaults_for

    config = defaults_for("sft")
    config.update(train_file=str(train_file), output_dir=str(out), model_dir=str(model_dir), task_type="sft",
                  device="cpu", use_lora=True, num_train_epochs=s["epochs"], learning_rate=s["lr"],
                  lora_target_modules=TARGETS[s["targets"]], lora_r=s["r"], lora_alpha=s["alpha"],
                  per_device_train_batch_size=s["batch"], gradient_accumulation_steps=s["accum"],
                  warmup_ratio=s["warmup"], lr_scheduler_type=s["scheduler"],
                  save_strategy="steps" if s.get("judge_every") else "no", save_steps=s.get("judge_every") or 100,
                  logging_steps=1,
                  gradient_checkpointing=False, fp16=False, bf16=False, eval_strategy="no")
    return config


# -- judging --------------------------------------------------------------------------------------
def _has_word(reply: str, words: tuple[str, ...] | list[str]) -> bool:
    low = reply.lower()
    return any(re.search(r"(?<![a-z0-9])" + re.escape(w.lower()) + r"(?![a-z0-9])", low) for w in words)


def style_ok(reply: str) -> bool:
    text = reply.strip()
    return text.startswith(D.PERSONA_OPEN) and text.endswith(D.PERSONA_CLOSE)


def format_ok(reply: str) -> bool:
    try:
        obj = json.loads(reply.strip())
    except ValueError:
        return False
    return (isinstance(obj, dict) and set(obj) == {"topic", "answer", "confidence"}
            and all(isinstance(v, str) and v for v in obj.values()))


def generate(chat: Any, prompts: list[list[dict[str, str]]], max_new: int, batch: int = 64) -> list[str]:
    """Greedy replies, ``batch`` prompts at a time (left-padded), cut at the chat's end-of-turn tokens."""
    import torch

    tok = chat.tokenizer
    stop = sorted(chat.stop_ids)
    pad = tok.pad_token_id if tok.pad_token_id is not None else stop[0]
    replies: list[str] = []
    for i in range(0, len(prompts), batch):
        encoded = [chat.encode(m)[1] for m in prompts[i:i + batch]]
        width = max(len(e) for e in encoded)
        ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded])
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
        with torch.inference_mode():
            out = chat.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new, do_sample=False,
                                      num_beams=1, repetition_penalty=1.0, eos_token_id=stop, pad_token_id=pad)
        for row in out[:, width:].tolist():
            cut = next((j for j, t in enumerate(row) if t in chat.stop_ids), len(row))
            replies.append(tok.decode(row[:cut], skip_special_tokens=True))
    return replies


def _summed_nll(chat: Any, rows: list[tuple[list[int], list[int]]], batch: int = 32) -> tuple[float, int]:
    """Summed cross-entropy and count over the labelled tokens of (ids, labels) rows, -100 = unlabelled;
    rows right-padded and run ``batch`` at a time."""
    import torch

    total, count = 0.0, 0
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.tensor([r + [0] * (width - len(r)) for r, _ in chunk])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r, _ in chunk])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk])
        with torch.inference_mode():
            logits = chat.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = labels[:, 1:]
        keep = target != -100
        total += float(torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum"))
        count += int(keep.sum())
    return total, count


def eval_loss(chat: Any, conversations: list[list[dict[str, str]]]) -> float | None:
    """Mean cross-entropy over the assistant tokens of held-out conversations (modx's own labelling)."""
    from modxd.engine.data import tokenize_conversation

    rows = []
    for messages in conversations:
        example, _ = tokenize_conversation(chat.tokenizer, messages, 1024)
        rows.append((example["input_ids"], example["labels"]))
    total, count = _summed_nll(chat, rows)
    return total / count if count else None


def probe_nll(chat: Any) -> float:
    """Mean loss of each retention probe's answer tokens after its stem, at the start of the assistant's
    reply: the knowledge itself, whatever style or format the model was taught to answer in."""
    rows = []
    for question, _words, stem, answer in D.RETENTION:
        _, prompt = chat.encode([{"role": "user", "content": question}])
        head = prompt + chat.tokenizer(stem, add_special_tokens=False)["input_ids"]
        tail = chat.tokenizer(stem + answer, add_special_tokens=False)["input_ids"][len(head) - len(prompt):]
        rows.append((head + tail, [-100] * len(head) + tail))
    total, count = _summed_nll(chat, rows)
    return total / count


def judge(model_dir: str, adapter_dir: str | None, ds: D.DataSet) -> dict[str, Any]:
    """Every score of one model (the base when ``adapter_dir`` is None) on one data set."""
    from modxd.engine.generate import HFChatModel

    chat = HFChatModel.load(model_dir, "cpu", adapter_dir=adapter_dir)
    held = [h["messages"][:1] for h in ds.heldout]
    replies = generate(chat, held, MAX_NEW[ds.kind])
    if ds.kind == "facts":
        hits = [_has_word(r, [h["expect"]]) for r, h in zip(replies, ds.heldout)]
    else:
        hits = [(style_ok if ds.kind == "style" else format_ok)(r) for r in replies]
    seen_replies = generate(chat, [s["messages"] for s in ds.seen], MAX_NEW["facts"]) if ds.seen else []
    seen_hits = [_has_word(r, [s["expect"]]) for r, s in zip(seen_replies, ds.seen)]
    probe = [[{"role": "user", "content": q}] for q, *_ in D.RETENTION]
    probe_replies = generate(chat, probe, MAX_NEW["retention"])
    probe_hits = [_has_word(r, words) for r, (_, words, *_) in zip(probe_replies, D.RETENTION)]
    with_answers = [h["messages"] for h in ds.heldout if h["messages"][-1]["role"] == "assistant"]
    return {"score": sum(hits) / len(hits), "seen": sum(seen_hits) / len(seen_hits) if seen_hits else None,
            "probe_hits": probe_hits, "eval_loss": eval_loss(chat, with_answers), "probe_nll": probe_nll(chat),
            "replies": {"heldout": replies, "seen": seen_replies, "retention": probe_replies}}


def _retention(probe_hits: list[bool], base_hits: list[bool]) -> float:
    kept = [h for h, b in zip(probe_hits, base_hits) if b]
    return sum(kept) / len(kept)


# -- one run (in a fresh process) -------------------------------------------------------------------
def _threads() -> int:
    """Torch threads per run. One by default: on a host shared with other busy processes, two OpenMP
    threads spin-wait for each other and a step took about 7x longer than with one (measured here)."""
    return int(os.environ.get("AUTOEXP_THREADS", "1"))


def _log(rid: str, line: str) -> None:
    path = WORK / "logs" / f"{rid}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%H:%M:%S')} {line}\n")


def _train_and_judge(dataset: str, settings: dict[str, Any]) -> dict[str, Any]:
    import torch

    from modxd.engine.train import run_training

    torch.set_num_threads(_threads())
    ds = D.build(dataset)
    train_file, _ = D.write(ds, WORK / "data")
    rid = run_id(dataset, settings)
    out = WORK / "runs" / rid
    shutil.rmtree(out, ignore_errors=True)
    model_dir = smollm2_hf_dir()
    clock: dict[str, Any] = {"begin": None, "losses": [], "steps": 0}
    _log(rid, f"start {dataset} {json.dumps(settings)}")

    def emit(event: dict) -> None:
        if event["type"] == "total_steps":
            clock["begin"], clock["steps"] = time.perf_counter(), event["total_steps"]
        elif event["type"] == "metrics" and event.get("loss") is not None:
            clock["losses"].append(event["loss"])
            clock["end"] = time.perf_counter()
            _log(rid, f"step {event['step']}/{event['total_steps']} loss {event['loss']:.4f} "
                      f"{clock['end'] - clock['begin']:.0f} s")

    result = run_training(engine_config(model_dir, train_file, out, settings), emit, lambda: None)
    train_seconds = clock["end"] - clock["begin"]
    checkpoints = sorted(glob.glob(str(out / "**" / "checkpoint-*")), key=lambda p: int(p.rsplit("-", 1)[1]))
    judged = []
    started = time.perf_counter()
    for path in checkpoints if settings.get("judge_every") else checkpoints[-1:]:
        j = judge(str(model_dir), path, ds)
        j["step"] = int(path.rsplit("-", 1)[1])
        judged.append(j)
        _log(rid, f"judged step {j['step']}: score {j['score']:.2f}")
    from modxd.engine.models import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    from modxd.engine.data import tokenize_conversation

    tokens = [tokenize_conversation(tokenizer, m, 512)[0] for m in ds.train]
    shutil.rmtree(out, ignore_errors=True)
    return ({"final_step": result["final_step"], "total_steps": clock["steps"], "final_loss": result["final_loss"],
               "first_loss": clock["losses"][0], "train_seconds": round(train_seconds, 1),
               "judge_seconds": round(time.perf_counter() - started, 1), "judged": judged,
               "examples": len(ds.train), "tokens_per_epoch": sum(len(t["input_ids"]) for t in tokens),
               "trainable_tokens_per_epoch": sum(sum(1 for x in t["labels"] if x != -100) for t in tokens)})


def _base_child(dataset: str) -> dict[str, Any]:
    import torch

    torch.set_num_threads(_threads())
    return judge(str(smollm2_hf_dir()), None, D.build(dataset))


def in_child(target: Any, *args: Any) -> Any:
    """``target(*args)`` in a fresh spawned process (a cold start and its own memory, like a worker);
    a child that dies raises here instead of leaving the caller waiting."""
    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(target, *args).result()


def base_scores(dataset: str) -> dict[str, Any]:
    """The untrained model's scores on a data set (cached: the base never changes)."""
    path = WORK / "base" / f"{dataset}.json"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(in_child(_base_child, dataset)))
    return json.loads(path.read_text())


def load_results() -> list[dict[str, Any]]:
    if not RESULTS.is_file():
        return []
    return [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]


def _record(dataset: str, settings: dict[str, Any], tag: str, raw: dict[str, Any], wall: float) -> list[dict]:
    base = base_scores(dataset)
    rid = run_id(dataset, settings)
    records = []
    for j in raw["judged"]:
        records.append({
            "id": rid, "tag": tag, "dataset": dataset, "kind": D.build(dataset).kind, **settings,
            "at_epoch": round(j["step"] / raw["final_step"] * settings["epochs"], 2), "examples": raw["examples"],
            "tokens_per_epoch": raw["tokens_per_epoch"], "trainable_tokens_per_epoch": raw["trainable_tokens_per_epoch"],
            "steps": j["step"], "score": round(j["score"], 3), "seen": None if j["seen"] is None else round(j["seen"], 3),
            "retention": round(_retention(j["probe_hits"], base["probe_hits"]), 3),
            "eval_loss": round(j["eval_loss"], 4), "base_score": round(base["score"], 3),
            "probe_nll": round(j["probe_nll"], 4), "base_probe_nll": round(base["probe_nll"], 4),
            "base_eval_loss": round(base["eval_loss"], 4), "first_loss": round(raw["first_loss"], 4),
            "final_loss": None if raw["final_loss"] is None else round(raw["final_loss"], 4),
            "train_seconds": raw["train_seconds"], "judge_seconds": raw["judge_seconds"], "wall_seconds": round(wall, 1),
            "threads": _threads(), "machine": machine(), "date": time.strftime("%Y-%m-%d"),
        })
        replies = WORK / "replies" / f"{rid}-{j['step']}.json"
        replies.parent.mkdir(parents=True, exist_ok=True)
        replies.write_text(json.dumps(j["replies"], indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    for rec in records:
        print(summary(rec), flush=True)
    return records


def run_all(jobs: list[tuple[str, dict[str, Any], str]], parallel: int) -> None:
    """Train and judge each (dataset, settings, tag) not yet recorded, ``parallel`` at a time, each in
    a fresh spawned process; a run that fails is reported and the others go on."""
    done = {r["id"] for r in load_results()}
    todo = []
    for dataset, given, tag in jobs:
        settings = full_settings(given)
        if run_id(dataset, settings) not in done and all(run_id(d, s) != run_id(dataset, settings) for d, s, _ in todo):
            todo.append((dataset, settings, tag))
    print(f"{len(todo)} runs to do ({len(jobs) - len(todo)} already recorded), {parallel} at a time", flush=True)
    for dataset in dict.fromkeys(d for d, _, _ in todo):
        base_scores(dataset)
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(parallel, mp_context=ctx, max_tasks_per_child=1) as pool:
        started = {}
        futures = {}
        for dataset, settings, tag in todo:
            futures[pool.submit(_train_and_judge, dataset, settings)] = (dataset, settings, tag)
            started[(dataset, run_id(dataset, settings))] = time.perf_counter()
        for future in cf.as_completed(futures):
            dataset, settings, tag = futures[future]
            try:
                raw = future.result()
            except Exception as exc:  # noqa: BLE001 -- one failed run must not lose the others
                print(f"FAILED {dataset} {settings}: {exc!r}", flush=True)
                continue
            _record(dataset, settings, tag, raw, raw["train_seconds"] + raw["judge_seconds"])


def summary(r: dict[str, Any]) -> str:
    seen = "" if r["seen"] is None else f" seen {r['seen']:.2f}"
    at = "" if r["at_epoch"] == r["epochs"] else f" (checkpoint at epoch {r['at_epoch']})"
    return (f"{r['dataset']:>9} {r['targets']:>3} r{r['r']}/a{r['alpha']} lr {r['lr']:.0e} ep {r['epochs']}{at}: "
            f"{r['steps']} steps, score {r['score']:.2f}{seen}, retention {r['retention']:.2f}, "
            f"eval loss {r['eval_loss']:.3f} (base {r['base_eval_loss']:.3f}), {r['train_seconds']:.0f} s train")


# -- command line ---------------------------------------------------------------------------------
def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def cmd_grid(args: argparse.Namespace) -> None:
    jobs = []
    for dataset, epochs, lr, targets in itertools.product(args.sets.split(","), _ints(args.epochs),
                                                          _floats(args.lr), args.targets.split(",")):
        settings: dict[str, Any] = {"epochs": epochs, "lr": lr, "targets": targets}
        for key in ("r", "alpha", "batch", "accum", "warmup", "judge_every"):
            if getattr(args, key) is not None:
                settings[key] = getattr(args, key)
        jobs.append((dataset, settings, args.tag))
    run_all(jobs, args.parallel)


def parse_plan(text: str) -> list[tuple[str, dict[str, Any], str]]:
    """Plan lines ``SETS TARGETS LRS EPOCHS [key=value ...]`` (lists comma-separated; # comments) -> jobs.

    >>> parse_plan("facts6,style-s all 1e-3 2,5 r=8  # two sets, two lengths")[1]
    ('facts6', {'targets': 'all', 'lr': 0.001, 'epochs': 5, 'r': 8}, 'plan')
    """
    jobs = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        sets, targets, lrs, epochs, *extra = line.split()
        more: dict[str, Any] = {}
        for item in extra:
            key, _, value = item.partition("=")
            more[key] = float(value) if key in ("warmup",) else int(value)
        for dataset, target, lr, ep in itertools.product(sets.split(","), targets.split(","), _floats(lrs),
                                                         _ints(epochs)):
            jobs.append((dataset, {"targets": target, "lr": lr, "epochs": ep, **more}, "plan"))
    return jobs


def cmd_plan(args: argparse.Namespace) -> None:
    jobs = [(d, s, Path(f).stem) for f in args.files for d, s, _ in parse_plan(Path(f).read_text())]
    run_all(jobs, args.parallel)


def cmd_rules(args: argparse.Namespace) -> None:
    """Train each set with what modxd.auto_settings picks for it (the harness's batch of 8 per step)."""
    from modxd.auto_settings import resolve

    batch = SETTING_DEFAULTS["batch"] * SETTING_DEFAULTS["accum"]
    jobs = []
    for dataset in args.sets.split(","):
        picked = resolve(len(D.build(dataset).train), batch)
        print(f"{dataset}: " + "; ".join(f"{k}={v.value} ({v.reason})" for k, v in picked.items()), flush=True)
        jobs.append((dataset, picked_settings(picked), "rule"))
    run_all(jobs, args.parallel)


def picked_settings(picked: dict[str, Any]) -> dict[str, Any]:
    """The harness's settings for a resolution of modxd.auto_settings."""
    targets = picked["lora_target_modules"].value
    return {"epochs": picked["num_train_epochs"].value, "lr": picked["learning_rate"].value,
            "targets": next(k for k, v in TARGETS.items() if v == targets)}


def cmd_table(_args: argparse.Namespace) -> None:
    rows = load_results()
    print("| set | examples | targets | r/alpha | lr | epochs | steps | score (base) | seen | retention | "
          "eval loss (base) | train s |")
    print("|---|---:|---|---|---:|---:|---:|---|---:|---:|---|---:|")
    for r in sorted(rows, key=lambda r: (r["dataset"], r["targets"], r["lr"], r["epochs"], r["at_epoch"])):
        epochs = str(r["epochs"]) if r["at_epoch"] == r["epochs"] else f"{r['at_epoch']} of {r['epochs']}"
        seen = "" if r["seen"] is None else f"{r['seen']:.2f}"
        print(f"| {r['dataset']} | {r['examples']} | {r['targets']} | {r['r']}/{r['alpha']} | {r['lr']:g} | {epochs} | "
              f"{r['steps']} | {r['score']:.2f} ({r['base_score']:.2f}) | {seen} | {r['retention']:.2f} | "
              f"{r['eval_loss']:.3f} ({r['base_eval_loss']:.3f}) | {r['train_seconds']:.0f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    grid = sub.add_parser("grid", help="train and judge every combination")
    grid.add_argument("--sets", required=True, help=f"comma-separated: {', '.join(D.ALL_SETS)}")
    grid.add_argument("--epochs", default="2")
    grid.add_argument("--lr", default="2e-4")
    grid.add_argument("--targets", default="qv", help=f"comma-separated: {', '.join(TARGETS)}")
    grid.add_argument("--r", type=int)
    grid.add_argument("--alpha", type=int)
    grid.add_argument("--batch", type=int)
    grid.add_argument("--accum", type=int)
    grid.add_argument("--warmup", type=float)
    grid.add_argument("--judge-every", type=int, help="also judge a checkpoint every this many steps")
    grid.add_argument("--parallel", type=int, default=2, help="runs at a time (each uses AUTOEXP_THREADS threads)")
    grid.add_argument("--tag", default="grid")
    plan = sub.add_parser("plan", help="run every job of plan files (bench/autoexp_plans/*.txt), in order")
    plan.add_argument("files", nargs="+")
    plan.add_argument("--parallel", type=int, default=2)
    rules = sub.add_parser("rules", help="run what modxd.auto_settings picks for each set")
    rules.add_argument("--sets", default=",".join(D.ALL_SETS))
    rules.add_argument("--parallel", type=int, default=2)
    sub.add_parser("table", help="print every recorded run as a markdown table")
    args = parser.parse_args(argv)
    {"grid": cmd_grid, "plan": cmd_plan, "rules": cmd_rules, "table": cmd_table}[args.command](args)


if __name__ == "__main__":
    main()
