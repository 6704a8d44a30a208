"""Evaluation rules on the daemon side (no torch): what may be evaluated, on which data.

Checked before a worker starts: the task exists, the checkpoints named (ids, steps,
paths or the single value `all`) exist, are not deleted and are on disk, there are at
least two of them, the base model is there when it is needed, the generation settings
are in range and the evaluation data set is not empty. The data selection itself is
pure Python and deterministic (engine/eval_data.py), so the worker repeats it and gets the
same examples. :class:`Evaluations` is what the App hands EvalService's calls to.
"""
from __future__ import annotations

import asyncio
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from . import files
from . import params as P
from .downloads import Chunk, job_files, serve
from .engine.checkpoints import checkpoint_kind
from .engine.eval_data import DEFAULT_SAMPLES, MAX_SAMPLES, DataPlan, checked_path, select_pairs, select_sft
from .engine.formats import DataError, iter_pretrain_texts
from .engine.preference_formats import CONVERSATIONAL
from .engine.sampling import (REPETITION_PENALTY_MAX, REPETITION_PENALTY_MIN, TEMPERATURE_MAX, TEMPERATURE_MIN,
                              TOP_K_MAX)
from .errors import FailedPrecondition, InvalidArgument, NotFound, quote
from .eval_examples import ExampleRecord, read_page
from .jobs.bus import EventBus
from .jobs.runner import JobRunner
from .paths import check_input_under_roots, check_path_text, create_output_dir
from .store.checkpoints import BASE_REF, CheckpointRepo
from .store.events import EventRecord, EventRepo
from .store.files import FileRepo
from .store.jobs import JobRecord, JobRepo
from .store.tasks import TaskRecord, TaskRepo

KIND = "eval"  # the job kind (worker/runtime.py ENTRY_POINTS)
PREFIX = "ev"  # evaluation ids: ev-xxxxxxxx
MAX_CANDIDATES = 64
DEFAULT_MAX_NEW_TOKENS = 128
MAX_NEW_TOKENS = 4096
BASE_ID = BASE_REF
ALL = "all"
EVAL_DIR = "eval"
EXAMPLES_FILE = "examples.jsonl"  # engine/report.py FILE_NAMES (not imported: it brings numpy)

SOURCES = {
    "eval_file": "the task's eval_file",
    "held_out_split": "the held-out split of the training data (eval_split_ratio)",
    "train_sample": "a seeded sample of the training data (not held out: the model trained on it)",
}


@dataclass
class Candidate:
    """One model to score: a checkpoint or the base model."""

    checkpoint_id: str
    label: str
    step: int
    path: str
    lora: bool


@dataclass
class Generation:
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----- generation settings --------------------------------------------------------------------------------------

def generation(temperature: float, top_p: float, top_k: int, repetition_penalty: float, max_new_tokens: int,
               seed: int, limit: int = MAX_NEW_TOKENS) -> Generation:
    """Settings with defaults filled in (0 = default) and ranges checked; greedy unless temperature > 0.

    `limit` is the daemon's max_chat_tokens (its interceptor refuses more with RESOURCE_EXHAUSTED first).
    """
    for name, value in (("temperature", temperature), ("top_p", top_p), ("repetition_penalty", repetition_penalty)):
        if not math.isfinite(value):
            raise InvalidArgument(f"{name} must be a finite number, got {value}")
    if seed < 0:
        raise InvalidArgument(f"generation seed must be 0 (the evaluation's seed) or more, got {seed}")
    # the ranges are chat's (engine/sampling.py): one answer to "how hot may a model sample"
    if not (temperature == 0 or TEMPERATURE_MIN <= temperature <= TEMPERATURE_MAX):
        raise InvalidArgument(f"temperature must be 0 (greedy) or between {TEMPERATURE_MIN:g} and {TEMPERATURE_MAX:g}, "
                              f"got {temperature}")
    if not 0 <= top_p <= 1:
        raise InvalidArgument(f"top_p must be between 0 and 1, got {top_p}")
    if not 0 <= top_k <= TOP_K_MAX:
        raise InvalidArgument(f"top_k must be 0 (off) to {TOP_K_MAX}, got {top_k}")
    if not (repetition_penalty == 0 or REPETITION_PENALTY_MIN <= repetition_penalty <= REPETITION_PENALTY_MAX):
        raise InvalidArgument(f"repetition_penalty must be 0 (default 1.0) or between {REPETITION_PENALTY_MIN:g} "
                              f"and {REPETITION_PENALTY_MAX:g}, got {repetition_penalty}")
    if max_new_tokens < 0 or max_new_tokens > limit:
        raise InvalidArgument(f"max_new_tokens must be between 1 and {limit} (0 = {DEFAULT_MAX_NEW_TOKENS}), "
                              f"got {max_new_tokens}")
    return Generation(temperature=float(temperature), top_p=float(top_p) or 1.0, top_k=int(top_k),
                      repetition_penalty=float(repetition_penalty) or 1.0,
                      max_new_tokens=int(max_new_tokens) or min(DEFAULT_MAX_NEW_TOKENS, limit), seed=int(seed))


def check_samples(samples: int) -> int:
    if samples < 0 or samples > MAX_SAMPLES:
        raise InvalidArgument(f"samples must be between 1 and {MAX_SAMPLES} (0 = default), got {samples}")
    return samples


# ----- checkpoints ----------------------------------------------------------------------------------------------

def _kind_of(path: str) -> bool:
    """True for a LoRA adapter checkpoint, False for a full model; refuses anything else."""
    lora, problem = checkpoint_kind(path)  # the one rule of a checkpoint a worker loads
    if problem:
        raise FailedPrecondition(f"{path} {problem}")
    return lora


AT_LEAST_TWO = ("an evaluation compares at least 2 models: at least 2 checkpoints (ids or steps, or 'all'), "
                "or 1 checkpoint and the base model (include_base, modxctl eval run --base)")


async def resolve_candidates(checkpoints: CheckpointRepo, task: TaskRecord, refs: list[str],
                            include_base: bool) -> list[Candidate]:
    """The base model (when asked) and the named checkpoints, in step order, checked on disk.

    At least two models are compared: two checkpoints, or one and the base model (did training help)."""
    refs = [r.strip() for r in refs if r.strip()]
    needed = 1 if include_base else 2
    if any(r.lower() == ALL for r in refs):
        if len(refs) > 1:
            raise InvalidArgument("'all' names every checkpoint of the task: give it alone")
        records = await checkpoints.list(task.id)
        if len(records) < needed:
            raise FailedPrecondition(f"task {task.id} has {len(records)} checkpoint(s) that were not deleted; "
                                     f"{AT_LEAST_TWO}")
    else:
        if len(refs) < needed:
            raise InvalidArgument(f"{AT_LEAST_TWO}; got {len(refs)} checkpoint(s)")
        if len(refs) > MAX_CANDIDATES:
            raise InvalidArgument(f"at most {MAX_CANDIDATES} checkpoints per evaluation, got {len(refs)}")
        records = []
        for ref in refs:
            if ref.lower() == BASE_ID:
                raise InvalidArgument("the base model is not a checkpoint: ask for it with include_base "
                                      "(modxctl eval run --base)")
            ckpt = await checkpoints.find(task.id, ref)  # NotFound, or InvalidArgument when deleted
            if all(ckpt.id != r.id for r in records):
                records.append(ckpt)
        if len(records) < needed:
            raise InvalidArgument(f"an evaluation compares at least 2 different checkpoints (or 1 and the base "
                                  f"model, include_base); {', '.join(refs)} name only {records[0].id} "
                                  f"(step {records[0].step})")
    if len(records) > MAX_CANDIDATES:
        raise InvalidArgument(f"task {task.id} has {len(records)} checkpoints; evaluate at most {MAX_CANDIDATES} "
                              "at once (name them)")
    records.sort(key=lambda r: (r.step, r.create_time))
    candidates = []
    for ckpt in records:
        if not os.path.isdir(ckpt.path):
            raise FailedPrecondition(f"checkpoint {ckpt.id} (step {ckpt.step}) of task {task.id}: {ckpt.path} "
                                     "is missing on disk")
        try:
            lora = await asyncio.to_thread(_kind_of, ckpt.path)
        except FailedPrecondition as exc:
            raise FailedPrecondition(f"checkpoint {ckpt.id} (step {ckpt.step}) of task {task.id}: {exc}") from None
        candidates.append(Candidate(ckpt.id, f"step {ckpt.step}", int(ckpt.step), ckpt.path, lora))
    model_dir = str(task.params.get("model_dir") or "")
    if include_base or any(c.lora for c in candidates):
        if not os.path.isfile(os.path.join(model_dir, "config.json")):
            need = "the base model" if include_base else "the LoRA checkpoints' base model"
            raise FailedPrecondition(f"task {task.id}: {need} {model_dir or '(no model_dir)'} is missing on disk")
        _, problem = await asyncio.to_thread(checkpoint_kind, model_dir)  # what the worker will load
        if problem:
            need = "the base model" if include_base else "the LoRA checkpoints' base model"
            raise FailedPrecondition(f"task {task.id}: {need} {model_dir} {problem}")
    if include_base:
        candidates.insert(0, Candidate(BASE_ID, "base model", 0, model_dir, False))
    return candidates


# ----- data -----------------------------------------------------------------------------------------------------

def plan_data(task_type: str, params: dict[str, Any], samples: int, seed: int,
              roots: list[Path] | None = None) -> DataPlan:
    """Choose the evaluation data: the eval file, else the held-out split, else a training sample.

    `samples` (0 = default) caps an eval file or held-out split and sizes the training sample.
    Raises FailedPrecondition when the data set is empty, InvalidArgument for a bad data line.
    """
    eval_file = str(params.get("eval_file") or "")
    train_file = str(params.get("train_file") or "")
    ratio = float(params.get("eval_split_ratio") or 0)
    task_seed = int(params.get("seed") or 0)
    max_samples = int(params.get("max_samples") or 0)
    try:
        if task_type in P.PREFERENCE_TYPES:
            pairs, plan = select_pairs(eval_file, train_file, ratio, task_seed, max_samples, samples, seed, roots)
            if not pairs:
                raise FailedPrecondition(f"the evaluation data set is empty: {SOURCES[plan.source]} "
                                         f"({plan.path}) has no preference pairs")
            return plan
        if task_type == "sft":
            conversations, plan = select_sft(eval_file, train_file, ratio, task_seed, max_samples, samples, seed,
                                             roots)
            if not conversations:
                raise FailedPrecondition(f"the evaluation data set is empty: {SOURCES[plan.source]} "
                                         f"({plan.path}) has no examples")
            return plan
        if eval_file:
            source, field_name, path = "eval_file", "eval_file", eval_file
        else:
            source, field_name, path = "held_out_split" if ratio > 0 else "train_sample", "train_file", train_file
        docs = sum(1 for _ in iter_pretrain_texts(checked_path(field_name, path, roots), field=field_name))
    except DataError as exc:
        raise InvalidArgument(str(exc)) from None
    if not docs:
        raise FailedPrecondition(f"the evaluation data set is empty: {path} has no text")
    n = samples or DEFAULT_SAMPLES
    notes = [] if source != "train_sample" else [
        "no eval_file and no eval_split_ratio: scored on training text the model has seen"]
    return DataPlan(source, path, docs, n, seed, notes)


def eval_root(task: TaskRecord) -> str:
    out = str(task.params.get("output_dir") or "")
    if not out:
        raise FailedPrecondition(f"task {task.id} has no output_dir to write the evaluation report into")
    return os.path.join(out, EVAL_DIR)


def check_embedder() -> str:
    """The sentence-embedding model SFT evaluations need, located (not loaded) before a job starts."""
    from .engine.embedder import embedder_dir
    from .engine.models import EngineError

    try:
        return str(embedder_dir())
    except EngineError as exc:
        raise FailedPrecondition(str(exc)) from None


# ----- the service ----------------------------------------------------------------------------------------------

# Task parameters the worker needs (the rest of the snapshot stays in the database).
WORKER_PARAMS = ("model_dir", "tokenizer_dir", "chat_template", "train_file", "eval_file", "max_seq_length", "seed",
                 "max_samples", "eval_split_ratio", "fp16", "bf16", "output_dir",
                 "beta", "orpo_lambda", "max_prompt_length")  # dpo, orpo: the rewards as training computed them
PARTIAL_SCORES_MAX = 100_000  # score events read back for a running evaluation (one per candidate)


class Evaluations:
    """What EvalService asks for: evaluations checked, run as `eval` jobs and read back; a completed
    one's recommendation recorded on its task."""

    def __init__(self, tasks: TaskRepo, checkpoints: CheckpointRepo, events: EventRepo, files: FileRepo,
                 bus: EventBus[EventRecord], jobs: JobRepo, runner: JobRunner, roots: list[Path],
                 max_new_tokens: int) -> None:
        self.tasks = tasks
        self.checkpoints = checkpoints
        self.events = events  # the task's log, where the recommendation is announced
        self.files = files
        self.bus = bus
        self.jobs = jobs
        self.runner = runner
        self.roots = roots
        self.max_new_tokens = max_new_tokens  # the daemon's max_chat_tokens

    async def create(self, task_id: str, refs: list[str], include_base: bool, samples: int, seed: int,
                     gen: dict[str, Any]) -> JobRecord:
        """Check everything, then submit the `eval` job; returns it (pending)."""
        samples = check_samples(samples)  # the request's own values first: they are wrong for any task
        if seed < 0:
            raise InvalidArgument(f"seed must be 0 (the task's seed) or more, got {seed}")

        def settings_for(default_seed: int) -> Generation:
            return generation(gen.get("temperature", 0), gen.get("top_p", 0), gen.get("top_k", 0),
                              gen.get("repetition_penalty", 0), gen.get("max_new_tokens", 0),
                              gen.get("seed") or default_seed, self.max_new_tokens)

        settings_for(seed)
        task = await self.tasks.get(task_id)
        if task.type == "sft":
            check_embedder()
        seed = int(seed or task.params.get("seed") or 0)
        settings = settings_for(seed)
        candidates = await resolve_candidates(self.checkpoints, task, refs, include_base)
        roots = self.roots
        for c in candidates:  # the worker checks each again when it opens it
            field = "parameter model_dir" if c.checkpoint_id == BASE_ID else f"checkpoint {c.checkpoint_id}"
            await asyncio.to_thread(check_input_under_roots, field, c.path, roots)
        plan = await asyncio.to_thread(plan_data, task.type, task.params, samples, seed, roots)
        if task.type in P.PREFERENCE_TYPES and plan.format == CONVERSATIONAL:  # answers generated and compared
            check_embedder()
        root = eval_root(task)
        made = await asyncio.to_thread(create_output_dir, "output_dir", root, roots)
        await self.files.apply(task.id, "daemon", [files.entry(path, "dir") for path in made])
        request = {"task_id": task.id, "checkpoints": refs, "include_base": include_base, "samples": plan.samples,
                   "checkpoint_ids": [c.checkpoint_id for c in candidates if c.checkpoint_id != BASE_ID],
                   "seed": seed, "generation": settings.as_dict(), "data": plan.as_dict(), "eval_root": root,
                   "candidates": [{"checkpoint_id": c.checkpoint_id, "label": c.label, "step": c.step}
                                  for c in candidates]}
        worker = {"task_id": task.id, "task_type": task.type,
                  "params": {k: task.params.get(k) for k in WORKER_PARAMS},
                  "candidates": [asdict(c) for c in candidates], "generation": settings.as_dict(),
                  "data": plan.as_dict(), "eval_root": root, "seed": seed}
        return await self.runner.submit(KIND, PREFIX, task.id, request, worker, self.record_recommendation)

    async def record_recommendation(self, job: JobRecord, result: dict[str, Any]) -> None:
        """The task remembers the recommendation of its latest completed evaluation (and says so in its log)."""
        best = result.get("best_checkpoint_id") or ""
        if not best:
            return
        try:
            await self.tasks.get(job.task_id)
        except NotFound:
            return  # deleted while it was evaluated: the evaluation keeps its own record
        await self.tasks.update(job.task_id, best_checkpoint_id=best, best_evaluation_id=job.id)
        message = (f"evaluation {job.id} recommends {result.get('best_label') or best} ({best}): "
                   f"{result.get('verdict', '')}")
        self.bus.publish(job.task_id, await self.events.append(job.task_id, "log",
                                                               {"level": "info", "message": message}))

    async def get(self, evaluation_id: str) -> tuple[JobRecord, list[dict[str, Any]] | None]:
        """The evaluation, and while it runs the scores of the candidates done so far (None once completed)."""
        job = await self.jobs.get(evaluation_id, KIND)
        if job.state == "completed":
            return job, None
        events = await self.jobs.after(job.id, 0, PARTIAL_SCORES_MAX)
        return job, [e.payload for e in events if e.kind == "score"]

    async def list(self, task_id: str, offset: int, limit: int) -> tuple[list[JobRecord], int]:
        """A page of the evaluations (of one task, when `task_id` names one), and how many there are."""
        if task_id:
            await self.tasks.get(task_id)
        return await self.jobs.list(KIND, task_id, offset, limit)

    def watch(self, evaluation_id: str, after_seq: int = 0) -> AsyncIterator[EventRecord]:
        return self.runner.watch(evaluation_id, KIND, after_seq)

    # ----- the files it wrote ---------------------------------------------------------------------------------

    async def _written(self, job: JobRecord) -> tuple[str, list[dict[str, Any]]]:
        """The evaluation's own dir and the task's manifest entries of the files in it."""
        root = job.request.get("eval_root") or os.path.dirname(os.path.dirname(job.result.get("examples_path", "")))
        out_dir = os.path.normpath(os.path.join(root, job.id))
        entries = await job_files(self.tasks, self.files, job, "evaluation")
        return out_dir, [e for e in entries if e["kind"] == "file" and os.path.dirname(e["path"]) == out_dir]

    def _not_written_yet(self, job: JobRecord) -> FailedPrecondition | None:
        if job.state == "completed":
            return None
        if job.state in ("pending", "running"):
            return FailedPrecondition(f"evaluation {job.id} is {job.state}: its files are written when it completes")
        why = f" ({job.state_reason})" if job.state_reason else ""
        return FailedPrecondition(f"evaluation {job.id} was {job.state}{why} before it wrote its files")

    async def examples(self, evaluation_id: str, checkpoint_id: str, offset: int, limit: int
                       ) -> tuple[list[ExampleRecord], bool]:
        """A page of the records of examples.jsonl (of one candidate, when `checkpoint_id` names one), and
        whether more follow."""
        job = await self.jobs.get(evaluation_id, KIND)
        if (problem := self._not_written_yet(job)) is not None:
            raise problem
        scored = [c.get("checkpoint_id", "") for c in job.request.get("candidates", [])]
        if checkpoint_id and checkpoint_id not in scored:
            raise NotFound(f"checkpoint_id: evaluation {job.id} did not score {quote(checkpoint_id)} "
                           f"(it scored {', '.join(scored)})")
        out_dir, entries = await self._written(job)
        path = os.path.join(out_dir, EXAMPLES_FILE)
        fd = await asyncio.to_thread(files.open_recorded, f"evaluation {job.id}", path, entries, self.roots)
        return await asyncio.to_thread(read_page, fd, f"evaluation {job.id}: {path}", checkpoint_id, offset, limit)

    async def read_file(self, evaluation_id: str, name: str, offset: int) -> AsyncIterator[Chunk]:
        """The file `name` of the evaluation's own dir, in chunks; only what the job recorded writing."""
        check_path_text("name", name)
        if not name or name != os.path.basename(name) or name in (".", ".."):
            raise InvalidArgument(f"name: {quote(name)} is not a file name; give the name of a file the evaluation "
                                  "wrote (report.md, scores.csv, examples.jsonl)")
        job = await self.jobs.get(evaluation_id, KIND)
        out_dir, entries = await self._written(job)
        path = os.path.join(out_dir, name)
        if all(e["path"] != path for e in entries):
            problem = self._not_written_yet(job)
            wrote = ", ".join(sorted(os.path.basename(e["path"]) for e in entries)) or "nothing still recorded"
            raise problem or NotFound(f"name: evaluation {job.id} wrote no file {quote(name)} (it wrote {wrote})")
        async for chunk in serve(f"evaluation {job.id}", path, entries, self.roots, offset):
            yield chunk
