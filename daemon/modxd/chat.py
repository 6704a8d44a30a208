"""Chat on the daemon side: what a chat loads, on which device, checked before the worker sees it.

The models live in one inference worker that the :class:`~modxd.jobs.inference.InferenceManager`
runs; this module decides everything about a chat that needs no model:

* the request: sampling settings and messages, with the worker's own rules (engine/sampling.py);
* the target: a checkpoint (the task's latest when none is named), the merged model, the base
  model or a package's GGUF file, checked on disk and under the allowed roots (the worker checks
  the paths again when it opens them);
* the device: the CPU when asked, else a free accelerator, else the accelerator a training job
  holds (the worker then checks the model fits beside it: free memory minus ``chat_headroom_bytes``,
  or RESOURCE_EXHAUSTED with a sentence).

:class:`Chats` is what the App hands InferenceService's calls to.
"""
from __future__ import annotations

import asyncio
import os
from contextlib import aclosing
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from .engine.checkpoints import checkpoint_kind
from .engine.model_cache import SPEC_PATHS
from .engine.sampling import SamplingError, check_messages, check_sampling
from .errors import FailedPrecondition, InvalidArgument, NotFound
from .jobs.inference import InferenceManager
from .paths import check_input_under_roots
from .store.checkpoints import BASE_REF, MERGED_REFS, CheckpointRepo
from .store.jobs import JobRepo
from .store.tasks import TaskRepo

# Which model file of a package a chat uses: the most precise one it has.
QUANT_PREFERENCE = ("F32", "BF16", "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0",
                    "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


# ----- requests ----------------------------------------------------------------------------------

def sampling_from_fields(fields: dict[str, Any], max_new_tokens: int) -> dict[str, Any]:
    """Checked sampling settings (defaults for the unset ones), or InvalidArgument."""
    try:
        return check_sampling(fields, max_new_tokens)
    except SamplingError as exc:
        raise InvalidArgument(str(exc)) from None


def checked_messages(messages: list[dict[str, str]], system_prompt: str) -> list[dict[str, str]]:
    try:
        return check_messages(messages, system_prompt)
    except SamplingError as exc:
        raise InvalidArgument(str(exc)) from None


def choose_device(preference: str, devices: list[str], busy: dict[str, str]) -> tuple[str, str]:
    """(device, the task training there or ""). `preference`: "", "cpu" or "accelerator"."""
    accelerators = [d for d in devices if d != "cpu"]
    if preference == "cpu":
        return "cpu", busy.get("cpu", "")
    if preference == "accelerator" and not accelerators:
        raise FailedPrecondition("this daemon has no accelerator (its devices: "
                                 f"{', '.join(devices) or 'cpu'}); chat on the CPU or leave the device to the daemon")
    if not accelerators:
        return "cpu", busy.get("cpu", "")
    free = [d for d in accelerators if d not in busy]
    device = free[0] if free else accelerators[0]
    return device, busy.get(device, "")


# ----- targets -----------------------------------------------------------------------------------

def _has_tokenizer(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, name)) for name in TOKENIZER_FILES)


class ChatTargets:
    """What the worker loads for a chat: a model spec, its paths checked on disk and under the roots."""

    def __init__(self, tasks: TaskRepo, checkpoints: CheckpointRepo, jobs: JobRepo, roots: list[Path]) -> None:
        self.tasks = tasks
        self.checkpoints = checkpoints
        self.jobs = jobs
        self.roots = roots

    async def resolve(self, task_id: str, checkpoint: str = "", package_id: str = "",
                      base: bool = False) -> dict[str, Any]:
        """The model spec of a chat target, its paths checked against the allowed roots (the inference
        worker checks them again when it opens them)."""
        spec = await self._resolve(task_id, checkpoint, package_id, base)
        for key in SPEC_PATHS:
            if spec.get(key):
                await asyncio.to_thread(check_input_under_roots, f"{spec['target']} ({key})", str(spec[key]),
                                        self.roots)
        return spec

    async def _resolve(self, task_id: str, checkpoint: str, package_id: str, base: bool) -> dict[str, Any]:
        """No target: the task's latest checkpoint. The base model: `base`, or the checkpoint reference
        "base" (an evaluation's best may be the base model)."""
        task = await self.tasks.get(task_id)
        params = task.params
        model_dir = str(params.get("model_dir") or "")
        tokenizer_dir = str(params.get("tokenizer_dir") or "") or model_dir
        chat_template = str(params.get("chat_template") or "")
        spec: dict[str, Any] = {"task_id": task.id, "backend": "hf", "chat_template": chat_template}
        if package_id:
            return await self._package_spec(task.id, package_id.strip(), spec)
        if base or checkpoint.strip().lower() == BASE_REF:
            if not os.path.isfile(os.path.join(model_dir, "config.json")):
                raise FailedPrecondition(f"the base model of task {task.id} ({model_dir}) is missing on disk")
            _, problem = await asyncio.to_thread(checkpoint_kind, model_dir)  # what the worker will load
            if problem:
                raise FailedPrecondition(f"the base model of task {task.id}: {model_dir} {problem}")
            return {**spec, "key": f"{task.id}/base", "target": "base", "model_dir": model_dir,
                    "tokenizer_dir": tokenizer_dir}
        ref = checkpoint.strip()
        if ref.lower() in MERGED_REFS:
            path = os.path.join(str(params.get("output_dir") or ""), "merged")
            if not os.path.isfile(os.path.join(path, "config.json")):
                raise FailedPrecondition(f"task {task.id} has no merged model ({path}); chat with a checkpoint")
            label, ckpt_dir = "merged", path
        else:
            if ref:
                ckpt = await self.checkpoints.find(task.id, ref)
            else:
                ckpt = await self.checkpoints.latest(task.id)
                if ckpt is None:
                    raise FailedPrecondition(f"task {task.id} has no checkpoint yet: chat with its base model "
                                             "(base, modxctl chat --base) or wait for the first checkpoint")
            label, ckpt_dir = ckpt.id, ckpt.path
        if not os.path.isdir(ckpt_dir):
            raise FailedPrecondition(f"checkpoint {label} of task {task.id}: {ckpt_dir} is missing on disk")
        lora, problem = await asyncio.to_thread(checkpoint_kind, ckpt_dir)  # what the worker will load
        if problem:
            raise FailedPrecondition(f"checkpoint {label} of task {task.id}: {ckpt_dir} {problem}")
        tokenizer = ckpt_dir if _has_tokenizer(ckpt_dir) else tokenizer_dir
        if lora:
            if not os.path.isfile(os.path.join(model_dir, "config.json")):
                raise FailedPrecondition(f"checkpoint {label} of task {task.id} is a LoRA adapter, and its base "
                                         f"model {model_dir} is missing on disk")
            _, problem = await asyncio.to_thread(checkpoint_kind, model_dir)
            if problem:
                raise FailedPrecondition(f"checkpoint {label} of task {task.id} is a LoRA adapter, and its base "
                                         f"model {model_dir} {problem}")
            return {**spec, "key": f"{task.id}/{label}", "target": f"checkpoint {label}", "model_dir": model_dir,
                    "adapter_dir": ckpt_dir, "tokenizer_dir": tokenizer}
        if not os.path.isfile(os.path.join(ckpt_dir, "config.json")):
            raise FailedPrecondition(f"checkpoint {label} of task {task.id} ({ckpt_dir}) holds neither a LoRA "
                                     "adapter nor a model (no adapter_config.json or config.json)")
        return {**spec, "key": f"{task.id}/{label}", "target": f"checkpoint {label}", "model_dir": ckpt_dir,
                "tokenizer_dir": tokenizer}

    async def _package_spec(self, task_id: str, package_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        job = await self.jobs.get(package_id, "package")
        if job.task_id != task_id:
            raise NotFound(f"package {package_id} belongs to task {job.task_id}, not {task_id}")
        if job.state != "completed":
            why = f" ({job.state_reason})" if job.state_reason else ""
            raise FailedPrecondition(f"package {package_id} is {job.state}{why}: only a completed package can chat")
        files = job.result.get("files") or []
        models = [f for f in files if f.get("kind") == "model"]
        if not models:
            raise FailedPrecondition(f"package {package_id} lists no model file")

        def rank(f: dict[str, Any]) -> int:
            q = str(f.get("quant_type") or "")
            return QUANT_PREFERENCE.index(q) if q in QUANT_PREFERENCE else len(QUANT_PREFERENCE)

        model = min(models, key=rank)
        adapters = [f for f in files if f.get("kind") == "adapter"]
        merged = bool(job.result.get("merged", job.request.get("merge", True)))
        adapter = adapters[0] if adapters and not merged else None
        for f in [model] + ([adapter] if adapter else []):
            if not os.path.isfile(str(f.get("path") or "")):
                raise FailedPrecondition(f"package {package_id}: its file {f.get('path')} is missing on disk")
        quant = str(model.get("quant_type") or "")
        return {**spec, "backend": "gguf", "key": f"{task_id}/{package_id}/{quant}",
                "target": f"package {package_id} {quant}" + (" + adapter" if adapter else ""),
                "model_path": str(model["path"]), "lora_path": str(adapter["path"]) if adapter else ""}


# ----- the service -------------------------------------------------------------------------------

class Chats:
    """The chats of one daemon: each checked, resolved and placed here, then answered by the worker."""

    def __init__(self, targets: ChatTargets, manager: InferenceManager, devices: list[str],
                 busy_devices: Callable[[], dict[str, str]], max_new_tokens: int) -> None:
        self.targets = targets
        self.manager = manager
        self.devices = list(devices)
        self.busy_devices = busy_devices
        self.max_new_tokens = max_new_tokens

    async def chat(self, task_id: str, messages: list[dict[str, str]], system_prompt: str = "",
                   sampling: dict[str, Any] | None = None, checkpoint: str = "", package_id: str = "",
                   base: bool = False, device: str = "",
                   on_request: Callable[[str], None] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Stream a reply: ``delta`` dicts, then one ``done`` dict (ModxError on a refusal).

        `on_request` gets the request id before the first token: cancelling it stops generation."""
        checked_sampling = sampling_from_fields(sampling or {}, self.max_new_tokens)
        checked = checked_messages(messages, system_prompt)
        spec = await self.targets.resolve(task_id, checkpoint, package_id, base)
        where, training = choose_device(device, self.devices, self.busy_devices())
        stream = self.manager.chat(spec, where, training, checked, checked_sampling, on_request)
        async with aclosing(stream):  # a client that goes away closes the worker's stream too
            async for item in stream:
                yield item

    def cancel(self, request_id: str) -> None:
        self.manager.cancel(request_id)

    def loaded_models(self) -> tuple[list[dict[str, Any]], int]:
        """The models the worker holds, and the cache's limit in bytes."""
        return self.manager.loaded_models()

    async def unload(self, key: str) -> int:
        return await self.manager.unload(key)
