"""``run_evaluation``: score checkpoints of a task on one data set and rank them.

Runs inside an ``eval`` worker process (no grpc, no asyncio). For every candidate
(the base model and/or checkpoints) it computes the perplexity family on the
reference answers (the training masking: assistant tokens only) and, for SFT,
generates an answer per prompt (batched) and scores it against the reference
(semantic similarity, coverage) and on its own (coherence). Metrics are defined in
``engine/metrics.py`` and docs/evaluation.md. Reports go to
``<output_dir>/eval/<evaluation id>/``; the returned dict holds the per-checkpoint
scores, the ranking and the verdict (per-example results are in the JSONL file).

Messages sent through ``emit``: ``log``, ``warning``, ``progress`` (checkpoint i of
n, example j of m, running scores) and ``score`` (a checkpoint's scores when done).
"""
from __future__ import annotations

import gc
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import files as manifest
from ..params import PREFERENCE_TYPES, needs_chat_template
from ..paths import Pinned, pin_input, pin_output_dir
from ..protocol import Emit, EvalProgress, Log, Poll, Score, Stop, Warn
from . import metrics as M
from .models import EngineError
from .preference_eval import PairScoring
from .templating import missing_template_problem

__all__ = ["run_evaluation", "Example", "nll_per_example", "generate_answers", "batches", "EvalStopped"]

IGNORE_INDEX = -100
DEFAULT_BATCH = 8
TOKEN_BUDGET = 16384  # at most this many (padded) tokens per forward batch
BOOTSTRAP_REPLICATES = 1000


class EvalStopped(Exception):
    """The daemon asked the worker to stop (shutdown): the evaluation fails without a result."""


@dataclass
class Example:
    index: int
    input_ids: list[int]
    labels: list[int]
    n_bytes: int
    prompt: list[dict[str, str]] = field(default_factory=list)  # SFT: messages before the answer
    prompt_ids: list[int] = field(default_factory=list)
    reference: str = ""
    text: str = ""  # pretraining: the block's text

    @property
    def tokens(self) -> int:
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_evaluation(config: dict[str, Any], emit: Emit, poll_command: Poll) -> dict[str, Any]:
    """Evaluate as ``config`` says (see api/evaluate.py for its keys); returns the result."""
    _offline()
    return EvalJob(config, emit, poll_command).run()


# ----------------------------------------------------------------------------- model work (torch)

def nll_per_example(model: Any, examples: list[Example], pad_id: int, device: str,
                    batch_size: int = DEFAULT_BATCH) -> list[tuple[float, int]]:
    """(summed NLL in nats, scored tokens) per example: token t is predicted from tokens < t,
    only where its label is not -100 (the training masking)."""
    import torch

    from .data import PadCollator

    collate = PadCollator(pad_id)
    out: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    for idx in batches([len(e.input_ids) for e in examples], batch_size):
        chunk = [examples[i] for i in idx]
        batch = collate([{"input_ids": e.input_ids, "labels": e.labels} for e in chunk])
        with torch.inference_mode():
            logits = model(input_ids=batch["input_ids"].to(device),
                           attention_mask=batch["attention_mask"].to(device)).logits
        labels = batch["labels"].to(logits.device)
        for row, i in enumerate(idx):
            target = labels[row, 1:]
            keep = target != IGNORE_INDEX
            if not bool(keep.any()):
                continue
            row_logits = logits[row, :-1][keep].float()
            nll = torch.nn.functional.cross_entropy(row_logits, target[keep], reduction="sum")
            out[i] = (float(nll), int(keep.sum()))
        del logits
    return out


def batches(lengths: list[int], batch_size: int, budget: int = TOKEN_BUDGET) -> list[list[int]]:
    """Indexes grouped shortest first: at most `batch_size` per group and, past one example, at most
    `budget` padded tokens (longest x count), so long examples run in smaller batches."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) >= batch_size or lengths[i] * (len(current) + 1) > budget):
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    return groups


def _generation_config(settings: dict[str, Any], tokenizer: Any, eos_ids: list[int]) -> Any:
    from transformers import GenerationConfig

    sample = float(settings.get("temperature") or 0) > 0
    kwargs: dict[str, Any] = dict(max_new_tokens=int(settings["max_new_tokens"]), do_sample=sample,
                                  num_beams=1, pad_token_id=tokenizer.pad_token_id, eos_token_id=eos_ids,
                                  repetition_penalty=float(settings.get("repetition_penalty") or 1.0),
                                  no_repeat_ngram_size=0, min_new_tokens=0)
    if sample:
        kwargs.update(temperature=float(settings["temperature"]), top_p=float(settings.get("top_p") or 1.0),
                      top_k=int(settings.get("top_k") or 0))
    return GenerationConfig(**kwargs)


def generate_answers(model: Any, tokenizer: Any, prompts: list[list[int]], settings: dict[str, Any], device: str,
                     eos_ids: list[int]) -> list[str]:
    """Generate one answer per prompt (token ids) in one left-padded batch; text up to the first eos."""
    import torch

    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[row, width - len(p):] = 1
    config = _generation_config(settings, tokenizer, eos_ids)
    # The model's own generation_config.json must not change the settings (e.g. do_sample=True there).
    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    target.generation_config = config
    with torch.inference_mode():
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config)
    answers = []
    stop = set(eos_ids)
    for row in out[:, width:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stop), len(row))
        answers.append(tokenizer.decode(row[:cut], skip_special_tokens=True).strip())
    return answers


# ----------------------------------------------------------------------------- the job

class EvalJob(PairScoring):
    def __init__(self, config: dict[str, Any], emit: Emit, poll_command: Poll) -> None:
        self.cfg = config
        self.emit = emit
        self.poll = poll_command
        self.params: dict[str, Any] = config["params"]
        self.task_type: str = config["task_type"]
        self.candidates: list[dict[str, Any]] = config["candidates"]
        self.settings: dict[str, Any] = config["generation"]
        self.batch_size = int(config.get("batch_size") or DEFAULT_BATCH)
        self.eval_id: str = config.get("job_id") or config.get("evaluation_id") or "eval"
        self.out_dir = Path(config["eval_root"]) / self.eval_id  # the real path (what people see)
        self.pins: list[Pinned] = []  # the input dirs, open (modxd/paths.py)
        # dpo, orpo: pairs scored for preference accuracy and margin; the composite scores prompt + chosen
        # answer as an SFT conversation (conversational pairs) or as text whose answer is scored (standard)
        self.preference = self.task_type in PREFERENCE_TYPES
        self.conversations = self.task_type == "sft" or config["data"].get("format") == "conversational"
        self.weights = M.WEIGHTS_SFT if self.conversations else M.WEIGHTS_PRETRAIN
        self.warnings: list[str] = []

    # -- messages
    def log(self, message: str, level: str = "info") -> None:
        self.emit(Log(level, message))

    def warn(self, code: str, message: str) -> None:
        self.warnings.append(message)
        self.emit(Warn(code, message))

    def check_stop(self) -> None:
        command = self.poll(0.0) if self.poll else None
        while command is not None:
            if isinstance(command, Stop):
                raise EvalStopped(f"evaluation stopped ({command.reason or 'requested'})")
            command = self.poll(0.0)

    # -- setup
    def _device(self) -> str:
        import torch

        device = str(self.cfg.get("device") or "cpu")
        if device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise EngineError(f"device {device} was requested but CUDA is not available on this host")
            torch.cuda.set_device(int(device.split(":", 1)[1]) if ":" in device else 0)
        return device

    def _pin(self, field: str, path: str) -> str:
        """Open an input dir checked against the roots; libraries get the open dir, never the path again."""
        pin = pin_input(field, path)
        self.pins.append(pin)
        return pin.path

    def _tokenizer(self) -> Any:
        from .models import load_tokenizer

        key = "tokenizer_dir" if self.params.get("tokenizer_dir") else "model_dir"
        source = self._pin(f"parameter {key}", str(self.params[key]))
        tokenizer = load_tokenizer(source, lambda m: self.log(m))
        if self.params.get("chat_template"):
            tokenizer.chat_template = self.params["chat_template"]
        problem = missing_template_problem(needs_chat_template(self.task_type) or self.conversations,
                                           tokenizer.chat_template, source)
        if problem:
            raise EngineError(problem)
        return tokenizer

    def _limit(self) -> int:
        from .models import inspect_model_dir

        limit = int(self.params.get("max_seq_length") or 512)
        try:
            positions = inspect_model_dir(self.model_dir).max_position_embeddings
        except EngineError:
            positions = None
        return min(limit, positions) if positions else limit

    def _sft_examples(self, tokenizer: Any, conversations: list[list[dict[str, Any]]] | None = None) -> list[Example]:
        from .data import tokenize_conversation
        from .eval_data import sft_examples

        limit = self._limit()
        generate_room = int(self.settings["max_new_tokens"])
        examples, too_long = [], 0
        if conversations is None:
            conversations = sft_examples(self.cfg["data"], self.params)
        for conv in conversations:
            while conv and conv[-1]["role"] != "assistant":
                conv = conv[:-1]
            last = max(i for i, m in enumerate(conv) if m["role"] == "assistant")
            try:
                tokenized, truncated = tokenize_conversation(tokenizer, conv, limit)
                prompt_text = tokenizer.apply_chat_template(conv[:last], tokenize=False, add_generation_prompt=True)
            except EngineError:
                raise
            except Exception as exc:  # a template that refuses the conversation
                raise EngineError(f"the chat template cannot format evaluation example {len(examples) + 1}: "
                                  f"{exc}") from None
            prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
            if truncated or len(prompt_ids) + 1 > limit:
                too_long += 1
                continue
            answer_bytes = sum(len(m["content"].encode("utf-8")) for m in conv if m["role"] == "assistant")
            examples.append(Example(len(examples), tokenized["input_ids"], tokenized["labels"], answer_bytes,
                                    prompt=conv[:last], prompt_ids=prompt_ids, reference=conv[last]["content"]))
        if too_long:
            self.warn("examples_too_long", f"{too_long} evaluation example(s) are longer than {limit} tokens "
                                           "(max_seq_length) and were left out")
        if len(examples) and generate_room + max(len(e.prompt_ids) for e in examples) > limit:
            self.log(f"prompt + max_new_tokens may exceed max_seq_length {limit}; generation is not cut for it")
        return examples

    def _pretrain_examples(self, tokenizer: Any) -> list[Example]:
        from .data import _blocks, split_held_out
        from .eval_data import sample_indexes
        from .formats import iter_pretrain_texts

        plan = self.cfg["data"]
        limit = self._limit()
        if plan["source"] == "eval_file":
            blocks = _blocks(tokenizer, iter_pretrain_texts(plan["path"], field="eval_file"), limit, keep_short=True)
        else:
            max_samples = int(self.params.get("max_samples") or 0)
            blocks = _blocks(tokenizer, iter_pretrain_texts(plan["path"], field="train_file"), limit,
                             keep_short=True, limit=max_samples)
            ratio = float(self.params.get("eval_split_ratio") or 0)
            if plan["source"] == "held_out_split":
                _, held = split_held_out(blocks, ratio, int(self.params.get("seed") or 0))
                if held:
                    blocks = held
                else:
                    self.warn("no_held_out_text", "the held-out split holds no block of text; scoring a sample "
                                                  "of the training text instead")
        blocks = [blocks[i] for i in sample_indexes(len(blocks), int(plan["samples"]), int(plan["seed"]))]
        out = []
        for block in blocks:
            ids = list(block["input_ids"])
            text = tokenizer.decode(ids[1:], skip_special_tokens=True)
            out.append(Example(len(out), ids, list(ids), max(1, len(text.encode("utf-8"))),
                               text=tokenizer.decode(ids, skip_special_tokens=True)))
        return [e for e in out if e.tokens > 0]

    def _load(self, cand: dict[str, Any], base: Any, dtype: str) -> tuple[Any, Any]:
        """(model to score, base model to keep): LoRA adapters go onto the shared base model."""
        from .models import load_model

        if cand["lora"]:
            from peft import PeftModel

            if base is None:
                base = load_model(self.model_dir, dtype)
                self._fit_embeddings(base)
            adapter = self._pin(f"checkpoint {cand['checkpoint_id']}", cand["path"])
            model = PeftModel.from_pretrained(base, adapter, is_trainable=False)
            return model, base
        field = "parameter model_dir" if cand["checkpoint_id"] == "base" else f"checkpoint {cand['checkpoint_id']}"
        model = load_model(self._pin(field, cand["path"]), dtype)
        self._fit_embeddings(model)
        if cand["checkpoint_id"] == "base":
            return model, model
        return model, base

    def _fit_embeddings(self, model: Any) -> None:
        if len(self.tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(self.tokenizer))  # as training did

    # -- the run
    def run(self) -> dict[str, Any]:
        try:
            self.model_dir = self._pin("parameter model_dir", str(self.params["model_dir"]))
            return self._run()
        finally:
            for pin in self.pins:
                pin.close()

    def _run(self) -> dict[str, Any]:
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        started = time.time()
        self.device = self._device()
        from .models import resolve_precision

        half = bool(self.params.get("fp16")) or bool(self.params.get("bf16"))
        dtype = resolve_precision(self.device, bool(self.params.get("fp16")), bool(self.params.get("bf16")),
                                  False).load_dtype_name
        if half and self.device.startswith("cuda") and torch.cuda.get_device_capability()[0] >= 8:
            dtype = "bfloat16"  # same memory as fp16, without its overflow
        self.tokenizer = tokenizer = self._tokenizer()
        if self.preference:
            examples = self._pair_examples(tokenizer)
        else:
            examples = self._sft_examples(tokenizer) if self.task_type == "sft" else self._pretrain_examples(tokenizer)
        if not examples:
            raise EngineError("the evaluation data set is empty after tokenization (every example is longer than "
                              "max_seq_length, or there is no text)")
        data = self.cfg["data"]
        self.log(f"evaluating {len(self.candidates)} model(s) on {len(examples)} example(s) from {data['source']} "
                 f"({data['path']}) on {self.device} ({dtype})")
        for note in data.get("notes") or []:
            self.warn("evaluation_data", note)
        embedder = None
        if self.conversations:
            from .embedder import Embedder

            embedder = Embedder(self.device, warn=lambda m: self.warn("embedder_weights", m))
            ref_vecs = embedder.encode([e.reference for e in examples])
        eos_ids = sorted({i for i in [tokenizer.eos_token_id] if i is not None})
        per_candidate: list[list[M.ExampleScores]] = []
        generations: list[list[str]] = []
        summaries: list[dict[str, Any]] = []
        base = None
        n = len(self.candidates)
        for ci, cand in enumerate(self.candidates):
            self.check_stop()
            self.log(f"checkpoint {ci + 1}/{n}: {cand['label']} ({cand['checkpoint_id']})")
            model, base = self._load(cand, base, dtype)
            model.to(self.device).eval()
            gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
            ids = set(eos_ids) | set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
            nll = nll_per_example(model, examples, tokenizer.pad_token_id, self.device, self.batch_size)
            scores = [M.ExampleScores(v, t, e.n_bytes) for (v, t), e in zip(nll, examples)]
            total_nll, total_tokens = sum(v for v, _ in nll), sum(t for _, t in nll)
            running = {"perplexity": M.perplexity(total_nll, total_tokens)}
            self._progress(ci, n, 0 if embedder else len(examples), len(examples), cand, running)
            answers: list[str] = []
            if embedder is not None:
                torch.manual_seed(int(self.settings.get("seed") or 0))
                room = int(self.settings["max_new_tokens"])
                groups = batches([len(e.prompt_ids) + room for e in examples], self.batch_size)
                order = [i for group in groups for i in group]
                answers = [""] * len(examples)
                done = 0
                for idx in groups:
                    self.check_stop()
                    texts = generate_answers(model, tokenizer, [examples[i].prompt_ids for i in idx], self.settings,
                                             self.device, sorted(ids))
                    vecs = embedder.encode([t if t.strip() else " " for t in texts])
                    for i, text, vec in zip(idx, texts, vecs):
                        answers[i] = text
                        s = scores[i]
                        s.semantic_similarity = M.similarity_score(text, vec, ref_vecs[i])
                        s.coherence = M.coherence(text)
                        s.coverage = M.coverage(text, examples[i].reference)
                    done += len(idx)
                    finished = [scores[i] for i in order[:done]]
                    running = {"perplexity": running["perplexity"],
                               "similarity": sum(s.semantic_similarity for s in finished) / done,
                               "coherence": sum(s.coherence for s in finished) / done,
                               "coverage": sum(s.coverage for s in finished) / done}
                    self._progress(ci, n, done, len(examples), cand, running)
            summary = M.CandidateScores.of(scores, self.weights).as_dict()
            summary.update(checkpoint_id=cand["checkpoint_id"], label=cand["label"], step=int(cand["step"]),
                           path=cand["path"])
            if self.preference:
                summary.update(self._preference_scores(model, cand, dtype))
                self.log(f"{cand['label']}: preference accuracy {summary['preference_accuracy']:.3f}, mean margin "
                         f"{summary['preference_margin']:.4f} on {summary['preference_pairs']} pairs")
            self.emit(Score(**_score_payload(summary)))
            self.log(f"{cand['label']}: composite {summary['composite']:.4f}, perplexity {summary['perplexity']:.4g}")
            per_candidate.append(scores)
            generations.append(answers)
            summaries.append(summary)
            if cand["lora"]:
                base = model.unload()  # the adapter off again: the base model serves the next one
            elif model is not base:
                del model
            gc.collect()
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
        if embedder is not None:
            embedder.close()
        result = self._finish(examples, per_candidate, generations, summaries)
        result["seconds"] = round(time.time() - started, 3)
        return result

    def _open_out_dir(self) -> Pinned:
        """``<eval_root>/<evaluation id>``: made fresh under the open eval root, never through a symlink,
        and reported (as the job's own scratch dir) before anything is written in it."""
        root, made = pin_output_dir("output_dir", str(self.out_dir.parent))
        with root:
            self.emit(manifest.message([*(manifest.entry(p, "dir") for p in made),
                                        manifest.entry(str(self.out_dir), "scratch")]))
            return root.subdir(self.out_dir.name, fresh=True)[0]

    def _progress(self, ci: int, n: int, done: int, total: int, cand: dict[str, Any],
                  running: dict[str, float]) -> None:
        self.emit(EvalProgress(ci, n, done, total, cand["checkpoint_id"],
                               {k: float(v) for k, v in running.items() if v is not None}))

    def _finish(self, examples: list[Example], per_candidate: list[list[M.ExampleScores]],
                generations: list[list[str]], summaries: list[dict[str, Any]]) -> dict[str, Any]:
        from . import report

        order = M.rank(summaries)
        for position, i in enumerate(order):
            summaries[i]["rank"] = position + 1
            summaries[i]["is_best"] = position == 0
        best_i = order[0]
        resamples = M.resample_indexes(len(examples), int(self.cfg.get("bootstrap") or BOOTSTRAP_REPLICATES),
                                       int(self.cfg.get("seed") or 0))
        enough = len(examples) >= M.MIN_EXAMPLES_FOR_VERDICT
        boot: dict[int, M.BootstrapResult] = {}
        for i in order[1:]:
            if enough:
                boot[i] = M.paired_bootstrap(per_candidate[best_i], per_candidate[i], self.weights, resamples)
            summaries[i]["diff_vs_best"] = summaries[best_i]["composite"] - summaries[i]["composite"]
            summaries[i]["p_vs_best"] = boot[i].p_value if i in boot else None
        summaries[best_i]["diff_vs_best"] = 0.0
        summaries[best_i]["p_vs_best"] = None
        runner = order[1]
        sentence, tie = M.verdict(summaries[best_i]["label"], summaries[runner]["label"], boot.get(runner),
                                  len(examples))
        best = summaries[best_i]
        data = self.cfg["data"]
        result: dict[str, Any] = {
            "evaluation_id": self.eval_id, "task_id": self.cfg.get("task_id", ""), "task_type": self.task_type,
            "conversations": self.conversations,
            "device": self.device, "data_source": data["source"], "data_path": data["path"],
            "samples": len(examples), "seed": int(self.cfg.get("seed") or 0), "generation": self.settings,
            "weights": self.weights, "bootstrap_replicates": len(resamples),
            "scores": [summaries[i] for i in order], "best_checkpoint_id": best["checkpoint_id"],
            "best_label": best["label"], "runner_up_id": summaries[runner]["checkpoint_id"],
            "verdict": sentence, "tie": tie, "p_value": boot[runner].p_value if runner in boot else None,
            "warnings": self.warnings,
        }
        with self._open_out_dir() as out:
            files = report.write_all(Path(out.path), result, examples, per_candidate, generations, summaries,
                                     self.weights, shown_dir=self.out_dir)
            self.emit(manifest.message(manifest.tree(out)))
        result.update(files)
        self.log(f"best: {best['label']} ({best['checkpoint_id']}) - {sentence}")
        return result


def _score_payload(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("checkpoint_id", "label", "step", "perplexity", "bits_per_byte", "semantic_similarity", "coherence",
            "coverage", "composite", "preference_accuracy", "preference_margin", "preference_pairs")
    return {k: summary.get(k) for k in keys if summary.get(k) is not None and not (
        isinstance(summary.get(k), float) and math.isnan(summary[k]))}
