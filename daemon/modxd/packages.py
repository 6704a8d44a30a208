"""Package and GGUF-import rules on the daemon side (no torch, no llama.cpp), and the service
the App hands PackageService's calls to.

What is checked before a worker starts: the task and checkpoint exist and are on disk,
the model is an architecture the exporter knows, the output dir is under the allowed
roots and writable, and for an import whether the target dir already holds it. Export runs
as a `package` job (modxd.engine.export:run_package), import as an `import_gguf` job
(modxd.engine.export:run_import) that the call waits for.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from . import files
from .downloads import Chunk, job_files, serve
from .engine.checkpoints import checkpoint_kind
from .errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, quote
from .jobs.runner import JobRunner
from .outputs import OutputLocations
from .paths import check_input_under_roots, check_path_text, create_output_dir, nearest_existing, resolve_under_roots
from .store.checkpoints import BASE_REF, MERGED_REFS, CheckpointRepo
from .store.events import EventRecord
from .store.files import FileRepo
from .store.jobs import JobRecord, JobRepo
from .store.tasks import TaskRecord, TaskRepo

KIND = "package"  # the job kinds (jobs/worker.py ENTRY_POINTS) and their id prefixes
PREFIX = "pkg"
IMPORT_KIND = "import_gguf"
IMPORT_PREFIX = "imp"
IMPORT_MARKER = ".modx-import.json"
QUANT_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_K_S", "Q4_K_M",
               "Q5_0", "Q5_K_S", "Q5_K_M", "Q6_K"]


@dataclass
class PackageSource:
    checkpoint_id: str
    checkpoint_dir: str
    base_model_dir: str
    tokenizer_dirs: list[str]
    lora: bool
    model_type: str


def _writable_dir(field: str, path: Path, roots: list[Path]) -> Path:
    real = resolve_under_roots(field, str(path), roots)
    if real.exists() and not real.is_dir():
        raise InvalidArgument(f"{field}: {path} exists and is not a directory")
    parent = nearest_existing(real)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionDenied(f"{field}: {parent} is not writable by the daemon")
    return real


async def output_dirs(outputs: OutputLocations, files_repo: FileRepo, roots: list[Path], task: TaskRecord,
                      requested: str) -> tuple[str, str]:
    """(explicit output dir or "", default root under which <package id>/ is made).

    An explicit dir follows the rule of every task output dir (modxd/outputs.py); the
    default one, <task output dir>/packages, is made now, never through a symlink, and joins the
    task's manifest."""
    if requested:
        real = await asyncio.to_thread(_writable_dir, "output_dir", Path(requested), roots)
        await outputs.check("output_dir", real, own_task=task.id)
        return str(real), ""
    task_out = str(task.params.get("output_dir") or "")
    if not task_out:
        raise InvalidArgument(f"task {task.id} has no output_dir; give output_dir (--output-dir)")
    default = os.path.join(task_out, "packages")
    made = await asyncio.to_thread(create_output_dir, "output_dir", default, roots)
    await files_repo.apply(task.id, "daemon", [files.entry(path, "dir") for path in made])
    return "", default


async def resolve_source(checkpoints: CheckpointRepo, roots: list[Path], task: TaskRecord, ref: str) -> PackageSource:
    """The checkpoint (id, step, path, `merged`, or `base`: the task's base model) of a task, checked on disk."""
    ref = ref.strip()
    if not ref:
        raise InvalidArgument("checkpoint is required (an id, a step, 'merged' or 'base')")
    model_dir = str(task.params.get("model_dir") or "")
    tokenizer_dirs = [d for d in (str(task.params.get("tokenizer_dir") or ""), model_dir) if d]
    if ref.lower() in MERGED_REFS:
        path = os.path.join(str(task.params.get("output_dir") or ""), "merged")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise FailedPrecondition(f"task {task.id} has no merged model ({path}); train with "
                                     "merge_lora_after_training or package a checkpoint")
        ckpt_id, ckpt_dir = "merged", path
    elif ref.lower() == BASE_REF:  # the base model as it is: a baseline GGUF to compare with
        if not os.path.isfile(os.path.join(model_dir, "config.json")):
            raise FailedPrecondition(f"the base model of task {task.id} ({model_dir or 'no model_dir'}) is missing "
                                     "on disk")
        ckpt_id, ckpt_dir = BASE_REF, model_dir
    else:
        ckpt = await checkpoints.find(task.id, ref)
        ckpt_id, ckpt_dir = ckpt.id, ckpt.path
    if not os.path.isdir(ckpt_dir):
        raise FailedPrecondition(f"checkpoint {ckpt_id} of task {task.id}: {ckpt_dir} is missing on disk")
    await asyncio.to_thread(check_input_under_roots, f"checkpoint {ckpt_id} of task {task.id}", ckpt_dir,
                            roots)  # and the worker checks again when it opens it
    lora, problem = await asyncio.to_thread(checkpoint_kind, ckpt_dir)  # what the worker will load
    if problem:
        raise FailedPrecondition(f"checkpoint {ckpt_id} of task {task.id}: {ckpt_dir} {problem}")
    if lora:  # merged into its base model
        _, problem = await asyncio.to_thread(checkpoint_kind, model_dir)
        if problem:
            raise FailedPrecondition(f"checkpoint {ckpt_id} of task {task.id} is a LoRA adapter, and its base "
                                     f"model {model_dir} {problem}")
    model_type = await asyncio.to_thread(check_architecture, ckpt_dir, model_dir if lora else ckpt_dir)
    return PackageSource(ckpt_id, ckpt_dir, model_dir, tokenizer_dirs, lora, model_type)


def check_architecture(ckpt_dir: str, model_dir: str) -> str:
    """Refuse, before any work, a model the GGUF exporter does not know."""
    from .engine.export.arch import ExportError, model_spec

    try:
        return model_spec(model_dir).model_type
    except ExportError as exc:
        raise FailedPrecondition(f"cannot package {ckpt_dir}: {exc}") from None


def quant_names(values: list[str]) -> list[str]:
    out = []
    for v in values:
        if v not in QUANT_TYPES:
            raise InvalidArgument(f"{quote(v)} is not a quantization type; choose from {', '.join(QUANT_TYPES)}")
        if v not in out:
            out.append(v)
    if not out:
        raise InvalidArgument(f"name at least one quantization type ({', '.join(QUANT_TYPES)})")
    return out


# ----- GGUF import ------------------------------------------------------------------------------

def gguf_fingerprint(path: str) -> dict[str, Any]:
    """Size, mtime and the sha256 of the first MiB: enough to know a file has not changed."""
    stat = os.stat(path)
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    if head[:4] != b"GGUF":
        raise InvalidArgument(f"gguf_path: {path} is not a GGUF file")
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head_sha256": hashlib.sha256(head).hexdigest()}


def read_marker(output_dir: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(output_dir, IMPORT_MARKER), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def check_import(gguf_path: str, output_dir: str, overwrite: bool, roots: list[Path]
                 ) -> tuple[str, str, dict[str, Any], dict[str, Any] | None]:
    """(real gguf path, real output dir, fingerprint, the cached import's marker or None)."""
    if not gguf_path:
        raise InvalidArgument("gguf_path is required")
    if not output_dir:
        raise InvalidArgument("output_dir is required")
    check_path_text("gguf_path", gguf_path)
    check_path_text("output_dir", output_dir)
    src = resolve_under_roots("gguf_path", gguf_path, roots)
    if not src.is_file():
        raise InvalidArgument(f"gguf_path: {gguf_path} does not exist or is not a file")
    out = _writable_dir("output_dir", Path(output_dir), roots)
    if out == src.parent or out in src.parents:
        raise InvalidArgument("output_dir must not contain the GGUF file it imports")
    fingerprint = gguf_fingerprint(str(src))
    from .engine.export.importer import gguf_problem  # numpy and gguf only, no torch

    problem = gguf_problem(str(src))
    if problem:
        raise InvalidArgument(f"gguf_path: {gguf_path} {problem}")
    marker = read_marker(str(out))
    if marker and marker.get("source") == str(src) and all(marker.get(k) == v for k, v in fingerprint.items()) \
            and os.path.isfile(out / "config.json"):
        return str(src), str(out), fingerprint, marker
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FailedPrecondition(f"output_dir {out} exists and is not empty; choose an empty dir or pass overwrite")
        if marker is None:  # overwrite replaces an earlier import, never a dir of other files
            raise FailedPrecondition(f"output_dir {out} is not empty and holds no earlier import ({IMPORT_MARKER} "
                                     "is missing): overwrite only replaces an import; choose an empty dir")
    return str(src), str(out), fingerprint, None


# ----- the service ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportedModel:
    """A GGUF file as a Hugging Face model dir (`cached`: an earlier import of the same file)."""

    output_dir: str
    architecture: str
    parameters: int
    cached: bool


class Packages:
    """What PackageService asks for: packages checked, exported as `package` jobs and read back;
    GGUF files imported."""

    def __init__(self, tasks: TaskRepo, checkpoints: CheckpointRepo, files_repo: FileRepo, jobs: JobRepo,
                 runner: JobRunner, outputs: OutputLocations, roots: list[Path]) -> None:
        self.tasks = tasks
        self.checkpoints = checkpoints
        self.files = files_repo
        self.jobs = jobs
        self.runner = runner
        self.outputs = outputs
        self.roots = roots

    async def create(self, task_id: str, checkpoint: str, quant_types: list[str], merge: bool, output_dir: str,
                     skip_verification: bool) -> JobRecord:
        """Check the task, checkpoint, types and output dir, then submit the `package` job (pending)."""
        types = quant_names(quant_types)
        if output_dir:
            check_path_text("output_dir", output_dir)
        task = await self.tasks.get(task_id)
        source = await resolve_source(self.checkpoints, self.roots, task, checkpoint)
        out, default_root = await output_dirs(self.outputs, self.files, self.roots, task, output_dir)
        request = {"task_id": task.id, "checkpoint": checkpoint, "checkpoint_id": source.checkpoint_id,
                   "quant_types": types, "merge": merge, "output_dir": out, "default_output_root": default_root,
                   "skip_verification": skip_verification, "lora": source.lora, "model_type": source.model_type}
        name = task.name or task.id
        named = source.checkpoint_id in ("merged", BASE_REF)
        suffix = source.checkpoint_id if named else os.path.basename(source.checkpoint_dir)
        worker = {"task_id": task.id, "checkpoint_id": source.checkpoint_id, "checkpoint_dir": source.checkpoint_dir,
                  "base_model_dir": source.base_model_dir, "tokenizer_dirs": source.tokenizer_dirs,
                  "quant_types": types, "merge": merge, "output_dir": out, "default_output_root": default_root,
                  "skip_verification": skip_verification, "name": f"{name}-{suffix}", "device": "cpu"}
        return await self.runner.submit(KIND, PREFIX, task.id, request, worker)

    async def get(self, package_id: str) -> JobRecord:
        return await self.jobs.get(package_id, KIND)

    async def list(self, task_id: str, offset: int, limit: int) -> tuple[list[JobRecord], int]:
        """A page of the packages (of one task, when `task_id` names one), and how many there are."""
        if task_id:
            await self.tasks.get(task_id)
        return await self.jobs.list(KIND, task_id, offset, limit)

    def watch(self, package_id: str, after_seq: int = 0) -> AsyncIterator[EventRecord]:
        return self.runner.watch(package_id, KIND, after_seq)

    async def read_file(self, package_id: str, path: str, offset: int) -> AsyncIterator[Chunk]:
        """One of the package's files (by its path or its name), in chunks; only a file of the job's
        result that the task's manifest records it writing."""
        check_path_text("path", path)
        job = await self.jobs.get(package_id, KIND)
        listed = [str(f.get("path", "")) for f in job.result.get("files", [])]
        wanted = next((p for p in listed if path in (p, os.path.basename(p))), None) if path else None
        if wanted is None:
            if job.state in ("pending", "running"):
                raise FailedPrecondition(f"package {job.id} is {job.state}: its files are listed when it completes")
            names = ", ".join(os.path.basename(p) for p in listed) or "none"
            raise NotFound(f"path: package {job.id} has no file {quote(path)} (its files: {names})")
        entries = await job_files(self.tasks, self.files, job, "package")
        async for chunk in serve(f"package {job.id}", wanted, entries, self.roots, offset):
            yield chunk

    async def import_gguf(self, gguf_path: str, output_dir: str, overwrite: bool) -> ImportedModel:
        """Convert a GGUF file into a model dir (an `import_gguf` job, waited for); a file imported
        before into the same dir, unchanged, is not converted again. The target follows the rule of
        every output dir (modxd/outputs.py): never a root, the state dir or a task's dir."""
        src, out, fingerprint, cached = await asyncio.to_thread(check_import, gguf_path, output_dir, overwrite,
                                                                self.roots)
        await self.outputs.check("output_dir", Path(out))
        if cached is not None:
            return ImportedModel(out, cached.get("architecture", ""), int(cached.get("parameters") or 0), True)
        config = {"gguf_path": src, "output_dir": out, "overwrite": overwrite, "fingerprint": fingerprint,
                  "device": "cpu"}
        job = await self.runner.submit(IMPORT_KIND, IMPORT_PREFIX, "", {"gguf_path": src, "output_dir": out}, config)
        async for _event in self.runner.watch(job.id, IMPORT_KIND):
            pass  # the stream ends with the job
        job = await self.jobs.get(job.id, IMPORT_KIND)
        if job.state != "completed":
            raise FailedPrecondition(f"importing {src} failed: {job.state_reason}")
        return ImportedModel(out, job.result.get("architecture", ""), int(job.result.get("parameters") or 0), False)
