"""The daemon's domain facade: everything the RPC layer may ask for.

Servicers translate protobuf to these calls and back; all rules live here, in the
collaborators built in App.__init__ (evaluations.py, packages.py, chat.py, outputs.py), in
the supervisor and in the store, never in a handler. Each collaborator gets the repos,
runners and settings it uses, never the App.
"""
from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import structlog

from . import fields, files, hardware, memory_plan, placement
from . import params as P
from .config import Config
from .errors import FailedPrecondition, InvalidArgument
from .jobs.backlog import Backlog
from .jobs.bus import EventBus
from .jobs.follow import replay_and_follow
from .chat import Chats, ChatTargets
from .downloads import Chunk
from .eval_examples import ExampleRecord
from .evaluations import Evaluations
from .jobs.inference import ChatSettings, InferenceManager
from .jobs.runner import JobRunner
from .worker.spawn import worker_cpu_count, worker_cpus
from .jobs.supervisor import Supervisor
from .states import TaskState
from .store.checkpoints import CheckpointRecord, CheckpointRepo, QuotaRepo
from .outputs import OutputLocations
from .packages import ImportedModel, Packages
from .paths import check_input_under_roots, resolve_under_roots
from .store.db import Database
from .store.events import EventRecord, EventRepo
from .store.files import FileRepo
from .store.jobs import JobRecord, JobRepo
from .store.tasks import TaskRecord, TaskRepo
from .store.templates import TemplateRecord, TemplateRepo, check_name, default_template_name
from .validation import Validated, check_model_dir, estimate, validate_task
from .device_request import parse_devices
from .param_sources import AutoResolver, value_sources
from .preflight import Preflight, preflight
from .engine.safetensors_header import count_parameters

log = structlog.get_logger("modxd.app")

Warnings = list[tuple[str, str]]


@dataclass
class Estimated:
    """EstimateQuota's answer: the quota and run estimate, warnings, the data reports and the settings."""

    estimate: dict[str, Any]
    warnings: Warnings
    train_data: dict[str, Any] | None = None
    eval_data: dict[str, Any] | None = None
    settings: list[dict[str, Any]] = field(default_factory=list)


MAX_PARAMS_BILLION = 100_000.0  # 100 trillion parameters: far beyond any model, still a finite number


@dataclass
class App:
    config: Config
    db: Database
    devices: list[str]
    start_time: float = field(default_factory=time.time)
    # The automatic settings' rules (param_sources.AutoResolver), applied at create to parameters whose
    # value is a default; None: every default stays as the schema has it.
    auto_settings: AutoResolver | None = None

    def __post_init__(self) -> None:
        self.tasks = TaskRepo(self.db)
        self.events = EventRepo(self.db)
        self.checkpoints = CheckpointRepo(self.db)
        self.quota = QuotaRepo(self.db)
        self.templates = TemplateRepo(self.db)
        self.files = FileRepo(self.db)
        self.bus: EventBus[EventRecord] = EventBus()
        self.backlog = Backlog()  # writes the disk refused while workers ran: one database, one backlog
        self.supervisor = Supervisor(self.tasks, self.events, self.checkpoints, self.quota, self.bus,
                                     self.devices, self.config.max_pending_tasks, file_repo=self.files,
                                     backlog=self.backlog)
        self.supervisor.roots = self.config.roots
        self.jobs = JobRepo(self.db)
        self.runner = JobRunner(self.jobs, self.bus, self.free_device, files_repo=self.files, backlog=self.backlog)
        self._claiming = asyncio.Lock()  # an output dir is checked free and claimed in one step
        self._calibrating = asyncio.Lock()  # one calibration at a time: two would time each other's steps
        roots = self.config.roots
        self.outputs = OutputLocations(self.tasks, roots, self.config.state_dir)
        self.evaluations = Evaluations(self.tasks, self.checkpoints, self.events, self.files, self.bus, self.jobs,
                                       self.runner, roots, self.config.max_chat_tokens)
        self.packages = Packages(self.tasks, self.checkpoints, self.files, self.jobs, self.runner, self.outputs, roots)
        # Chat: one inference worker, started by the first chat.
        self.inference = InferenceManager(ChatSettings.from_config(self.config), self.devices,
                                          self.supervisor.busy_devices)
        self.chats = Chats(ChatTargets(self.tasks, self.checkpoints, self.jobs, roots), self.inference, self.devices,
                           self.supervisor.busy_devices, self.config.max_chat_tokens)

    def free_device(self) -> str:
        """A device no training job holds (accelerators first), else the CPU."""
        busy = self.supervisor.busy_devices()
        return next((d for d in self.devices if d != "cpu" and d not in busy), "cpu")

    @classmethod
    async def open(cls, config: Config, auto_settings: AutoResolver | None = None) -> "App":
        db = await Database.open(config.db_path)
        try:  # a failed start closes the database again (its thread would keep the process alive)
            app = cls(config, db, hardware.training_devices(config.devices), auto_settings=auto_settings)
            await app.quota.ensure_initial(config.quota_initial)
            await app.files.drop_orphans()
        except BaseException:
            await db.close()
            raise
        return app

    async def close(self) -> None:
        await self.backlog.close()
        await self.db.close()

    # ----- tasks --------------------------------------------------------------------------------

    async def _prepare(self, task_type: str, template: str, overrides: dict[str, Any], calibrate: bool = False
                       ) -> tuple[str, Validated, dict[str, Any], Warnings, Preflight]:
        P.check_task_type(task_type)
        name = template or default_template_name(task_type)
        tpl = await self.templates.get(name)
        if tpl.type != task_type:
            raise InvalidArgument(f"template {name} is for {tpl.type} tasks, not {task_type}")
        resolved = P.resolve(task_type, tpl.params, overrides)
        sources = value_sources(task_type, tpl.params, overrides, name == default_template_name(task_type))
        world = placement.check_task(resolved, self.devices, worker_cpu_count())  # devices against this host's
        checked = await asyncio.to_thread(validate_task, task_type, resolved, self.config.roots)
        gpus = await self._gpus()
        flight = await self._preflight(task_type, checked, sources, self.auto_settings, gpus, calibrate, world)
        checked = flight.checked
        if checked.params != resolved:  # automatic values: the devices they ask for are checked too
            world = placement.check_task(checked.params, self.devices, worker_cpu_count())
        balance = await self.quota.balance()
        est = await asyncio.to_thread(estimate, task_type, checked.params, checked.train,
                                      checked.eval is not None, balance, world)
        if flight.run_dict() is not None:
            est["run"] = flight.run_dict()
        memory_warnings = await self._memory(checked, est, world, flight, gpus)
        warnings = (list(checked.warnings) + flight.warnings + _quota_warnings(est) + memory_warnings
                    + placement.feature_warnings(checked.params, self.devices))
        return name, checked, est, warnings, flight

    async def _gpus(self) -> list[hardware.Gpu]:
        """This host's GPUs as nvidia-smi describes them, read once per request (none on a CPU host)."""
        return await asyncio.to_thread(hardware.detect_gpus) if any(d != "cpu" for d in self.devices) else []

    async def _preflight(self, task_type: str, checked: Validated, sources: dict[str, str],
                         resolver: AutoResolver | None, gpus: list[hardware.Gpu], calibrate: bool = False,
                         world: int = 1) -> Preflight:
        """The data reports, automatic settings and run estimate (preflight.py), in a thread; a
        calibration (a child process) waits for any other one to finish first."""
        device = self._planned_device(checked.params)
        run = (lambda: preflight(task_type, checked, sources, resolver, self.config.roots, self.config.state_dir,
                                 device, gpus, calibrate, world, worker_cpus()))
        if not calibrate:
            return await asyncio.to_thread(run)
        async with self._calibrating:
            return await asyncio.to_thread(run)

    def _planned_device(self, params: dict[str, Any]) -> str:
        """The first device placement would give the task on an idle host (what it is estimated on)."""
        chosen = placement.place(parse_devices(params.get("devices", "1")), self.devices, set())
        return chosen.processes[0] if chosen else "cpu"

    async def _memory(self, checked: Validated, est: dict[str, Any], world: int, flight: Preflight,
                      gpus: list[hardware.Gpu]) -> Warnings:
        """Add the GPU memory breakdown to `est`; judged here (memory_plan.py) only when the run
        estimate did not judge it already (no estimate for this task type or tokenizer)."""
        if flight.estimate is not None and not any(d != "cpu" for d in self.devices):
            return []
        where = memory_plan.capacity(checked.params, gpus, self._planned_device(checked.params), world)
        parameters = await asyncio.to_thread(count_parameters, checked.params["model_dir"])
        run_verdict = flight.estimate.memory if flight.estimate else None
        memory, warnings = memory_plan.plan_memory(checked.params, checked.model_config, parameters, where,
                                                   run_verdict)
        if memory is not None:
            est["memory"] = memory
        return warnings

    async def create_task(self, task_type: str, template: str, overrides: dict[str, Any], name: str = "",
                          validate_only: bool = False) -> tuple[TaskRecord, Warnings]:
        fields.check_text(name, "name", fields.MAX_NAME_CHARS)
        template_name, checked, est, warnings, flight = await self._prepare(task_type, template, overrides)
        train_data, eval_data = flight.reports()
        # validate_only stores nothing, so it names no task: the id stays empty (the proto says so).
        task = TaskRecord(id="" if validate_only else f"t-{uuid.uuid4().hex[:8]}", type=task_type, name=name,
                          template=template_name, params=checked.params, quota_estimate=est,
                          total_steps=est["total_steps"], train_data=train_data, eval_data=eval_data,
                          settings=[s.to_dict() for s in flight.settings])
        async with self._claiming:
            await self.outputs.check("parameter output_dir", Path(checked.params["output_dir"]))
            if not validate_only:
                await self.tasks.insert(task)
        if not validate_only:
            await self.tasks.update(task.id, total_steps=est["total_steps"])
            for code, message in warnings:
                self.bus.publish(task.id, await self.events.append(task.id, "warning",
                                                                   {"code": code, "message": message}))
            task = await self.get_task(task.id)
        return task, warnings

    async def estimate_for(self, task_id: str = "", task_type: str = "", template: str = "",
                           overrides: dict[str, Any] | None = None, calibrate: bool = False) -> Estimated:
        if task_id:
            task = await self.tasks.get(task_id)
            est, warnings, flight = await self._refresh_estimate(task, calibrate)
            train_data, eval_data = flight.reports()
            return Estimated(est, flight.warnings + warnings, train_data, eval_data, task.settings)
        _, _, est, warnings, flight = await self._prepare(task_type, template, overrides or {}, calibrate)
        train_data, eval_data = flight.reports()
        return Estimated(est, warnings, train_data, eval_data, [s.to_dict() for s in flight.settings])

    async def _refresh_estimate(self, task: TaskRecord, calibrate: bool = False
                                ) -> tuple[dict[str, Any], Warnings, Preflight]:
        """A stored task's estimate again (its data may have changed since create): its settings stay as
        they were resolved then (no automatic rule runs again); warnings are those of the estimate."""
        world = placement.check_task(task.params, self.devices, worker_cpu_count())
        checked = await asyncio.to_thread(validate_task, task.type, task.params, self.config.roots)
        sources = {s["key"]: s["source"] for s in task.settings}
        gpus = await self._gpus()
        flight = await self._preflight(task.type, checked, sources, None, gpus, calibrate, world)
        est = await asyncio.to_thread(estimate, task.type, checked.params, checked.train,
                                      checked.eval is not None, await self.quota.balance(), world)
        if flight.run_dict() is not None:
            est["run"] = flight.run_dict()
        memory_warnings = await self._memory(checked, est, world, flight, gpus)
        return est, _quota_warnings(est) + memory_warnings, flight

    async def get_task(self, task_id: str) -> TaskRecord:
        task = await self.tasks.get(task_id)
        task.device = self.supervisor.device_of(task_id) or task.device
        return task

    async def list_tasks(self, states: list[TaskState], task_type: str, offset: int, limit: int
                         ) -> tuple[list[TaskRecord], int]:
        return await self.tasks.list(states, task_type, offset, limit)

    async def start_task(self, task_id: str) -> tuple[TaskRecord, Warnings]:
        task = await self.tasks.get(task_id)
        warnings: Warnings = []
        if task.state == TaskState.CREATED:
            # Data may have changed since create: check again and refresh the estimate.
            est, warnings, flight = await self._refresh_estimate(task)
            train_data, eval_data = flight.reports()
            await self.tasks.update(task_id, quota_estimate=est, total_steps=est["total_steps"],
                                    train_data=train_data, eval_data=eval_data)
        await self.supervisor.start(task_id)
        for code, message in warnings:
            self.bus.publish(task_id, await self.events.append(task_id, "warning",
                                                               {"code": code, "message": message}))
        return await self.get_task(task_id), warnings

    async def stop_task(self, task_id: str) -> TaskRecord:
        await self.supervisor.stop(task_id, "user")
        return await self.get_task(task_id)

    async def resume_task(self, task_id: str, checkpoint_ref: str) -> tuple[TaskRecord, CheckpointRecord | None,
                                                                             Warnings]:
        task = await self.tasks.get(task_id)
        if task.state not in (TaskState.STOPPED, TaskState.FAILED):
            await self.supervisor.resume(task_id, None)  # raises the precise FAILED_PRECONDITION
        ckpt = (await self.checkpoints.find(task_id, checkpoint_ref) if checkpoint_ref
                else await self.checkpoints.latest(task_id))
        warnings: Warnings = []
        if ckpt is not None and not Path(ckpt.path).is_dir():
            raise FailedPrecondition(f"checkpoint {ckpt.id} of task {task_id}: {ckpt.path} is missing on disk")
        if ckpt is not None:  # the worker checks again when it opens it
            await asyncio.to_thread(check_input_under_roots, f"checkpoint {ckpt.id} of task {task_id}", ckpt.path,
                                    self.config.roots)
            await _check_resumable(task_id, ckpt)
        if ckpt is None:
            warnings.append(("no_checkpoint", f"task {task_id} has no checkpoint: it restarts from step 0"))
        await self.supervisor.resume(task_id, ckpt)
        for code, message in warnings:
            self.bus.publish(task_id, await self.events.append(task_id, "warning",
                                                               {"code": code, "message": message}))
        return await self.get_task(task_id), ckpt, warnings

    async def delete_task(self, task_id: str, delete_files: bool) -> files.Deleted:
        """Delete a task's records; with `delete_files`, also exactly the files its manifest names
        (store/files.py), never a directory blindly and never through a symlink (modxd/files.py)."""
        if delete_files:
            busy = await self.jobs.active_for_task(task_id)
            if busy:
                raise FailedPrecondition(f"task {task_id} has {busy} still running: wait for it to finish "
                                         "before deleting the task with its files")
        await self.supervisor.delete(task_id)  # checks and deletes under the lifecycle lock
        await self.runner.cancel_for_task(task_id)  # its evaluations and packages are of no use any more
        report = files.Deleted()
        if delete_files:
            report = await asyncio.to_thread(files.delete_entries, await self.files.list(task_id),
                                             self.config.roots)
            for kept in report.kept:
                log.warning("task_file_kept", task_id=task_id, reason=kept)
        await self.files.drop(task_id)
        return report

    async def watch(self, task_id: str, after_seq: int = 0, kinds: list[str] | None = None,
                    history_only: bool = False, follow_forever: bool = False) -> AsyncIterator[EventRecord]:
        """History after `after_seq` from the store, then live events, without gaps or duplicates."""
        await self.tasks.get(task_id)

        async def finished(last: int) -> bool:
            state, last_seq = await self.tasks.state_and_seq(task_id)
            return state.terminal and not follow_forever and last_seq <= last

        def is_final(event: EventRecord) -> bool:
            return (event.kind == "state_change" and TaskState(event.payload["to"]).terminal
                    and not follow_forever)

        with self.bus.subscribe(task_id) as sub:
            async for event in replay_and_follow(
                    sub, lambda last, n: self.events.after(task_id, last, limit=n), finished, is_final,
                    after_seq, history_only):
                if not kinds or event.kind in kinds:
                    yield event

    # ----- templates ----------------------------------------------------------------------------

    async def save_template(self, name: str, task_type: str, from_task_id: str, overrides: dict[str, Any],
                            description: str, overwrite: bool) -> TemplateRecord:
        check_name(name)
        if from_task_id:
            task = await self.tasks.get(from_task_id)
            if task_type and task_type != task.type:
                raise InvalidArgument(f"task {from_task_id} is a {task.type} task, not {task_type}")
            task_type, base = task.type, task.params
        else:
            if not task_type:
                raise InvalidArgument(f"a template needs a type ({', '.join(P.TASK_TYPES)}) or a task to copy")
            base = P.defaults_for(P.check_task_type(task_type))
        values = P.resolve(task_type, base, overrides, complete=False)
        for key in P.PATH_KEYS:  # a path a template holds is one a task could use: inside the allowed roots
            if values.get(key):
                resolve_under_roots(f"parameter {key}", str(values[key]), self.config.roots)
        return await self.templates.save(TemplateRecord(name, task_type, description, False, values.to_dict()),
                                         overwrite)

    # ----- evaluations (evaluations.py) ---------------------------------------------------------

    async def create_evaluation(self, task_id: str, checkpoints: list[str], include_base: bool, samples: int,
                                seed: int, generation: dict[str, Any]) -> JobRecord:
        return await self.evaluations.create(task_id, checkpoints, include_base, samples, seed, generation)

    async def get_evaluation(self, evaluation_id: str) -> tuple[JobRecord, list[dict[str, Any]] | None]:
        return await self.evaluations.get(evaluation_id)

    async def list_evaluations(self, task_id: str, offset: int, limit: int) -> tuple[list[JobRecord], int]:
        return await self.evaluations.list(task_id, offset, limit)

    def watch_evaluation(self, evaluation_id: str, after_seq: int) -> AsyncIterator[EventRecord]:
        return self.evaluations.watch(evaluation_id, after_seq)

    async def evaluation_examples(self, evaluation_id: str, checkpoint_id: str, offset: int, limit: int
                                  ) -> tuple[list[ExampleRecord], bool]:
        return await self.evaluations.examples(evaluation_id, checkpoint_id, offset, limit)

    def read_evaluation_file(self, evaluation_id: str, name: str, offset: int) -> AsyncIterator[Chunk]:
        return self.evaluations.read_file(evaluation_id, name, offset)

    # ----- packages and imports (packages.py) ---------------------------------------------------

    async def create_package(self, task_id: str, checkpoint: str, quant_types: list[str], merge: bool,
                             output_dir: str, skip_verification: bool) -> JobRecord:
        return await self.packages.create(task_id, checkpoint, quant_types, merge, output_dir, skip_verification)

    async def get_package(self, package_id: str) -> JobRecord:
        return await self.packages.get(package_id)

    async def list_packages(self, task_id: str, offset: int, limit: int) -> tuple[list[JobRecord], int]:
        return await self.packages.list(task_id, offset, limit)

    def watch_package(self, package_id: str, after_seq: int) -> AsyncIterator[EventRecord]:
        return self.packages.watch(package_id, after_seq)

    def read_package_file(self, package_id: str, path: str, offset: int) -> AsyncIterator[Chunk]:
        return self.packages.read_file(package_id, path, offset)

    async def import_gguf(self, gguf_path: str, output_dir: str, overwrite: bool) -> ImportedModel:
        return await self.packages.import_gguf(gguf_path, output_dir, overwrite)

    # ----- chat (chat.py, jobs/inference.py) ----------------------------------------------------

    def chat(self, task_id: str, messages: list[dict[str, str]], system_prompt: str, sampling: dict[str, Any],
             checkpoint: str, package_id: str, base: bool, device: str,
             on_request: Callable[[str], None]) -> AsyncIterator[dict[str, Any]]:
        """The reply as ``delta`` dicts, then one ``done`` dict; cancel_chat(request id) stops it."""
        return self.chats.chat(task_id, messages, system_prompt, sampling, checkpoint, package_id, base, device,
                               on_request)

    def cancel_chat(self, request_id: str) -> None:
        self.chats.cancel(request_id)

    def loaded_models(self) -> tuple[list[dict[str, Any]], int]:
        return self.chats.loaded_models()

    async def unload_model(self, key: str) -> int:
        return await self.chats.unload(key)

    # ----- system -------------------------------------------------------------------------------

    async def grant_quota(self, amount: int, note: str):
        if amount <= 0 or amount > 1_000_000:
            raise InvalidArgument(f"amount must be between 1 and 1000000, got {amount}")
        fields.check_text(note, "note", fields.MAX_TEXT_CHARS, fields.NEWLINES)
        return await self.quota.grant(amount, note or "granted by an admin")

    async def advice(self, model_dir: str, params_billion: float) -> dict[str, Any]:
        """Hardware advice for a model dir or a size; the model dir's files are read in a thread, like every
        file a request names, so a slow or stuck file never holds up the other calls."""
        return await asyncio.to_thread(self._advice, model_dir, params_billion)

    def _advice(self, model_dir: str, params_billion: float) -> dict[str, Any]:
        fields.check_number(params_billion, "params_billion", 0.0, MAX_PARAMS_BILLION)
        if model_dir:
            # the input-dir rule of every RPC: it, and each symlink directly in it, under the roots
            real = check_input_under_roots("model_dir", model_dir, self.config.roots)
            check_model_dir(str(real), "model_dir")
            params_billion = count_parameters(str(real)) / 1e9
        if params_billion <= 0:
            raise InvalidArgument("give a model_dir or a params_billion above 0")
        name, lora, full = hardware.size_class(params_billion)
        gpus = hardware.detect_gpus()
        devices = []
        for gpu in gpus:
            lora_fits, full_fits = gpu.total_memory_bytes >= lora, gpu.total_memory_bytes >= full
            text = ("full fine-tuning and LoRA fit" if full_fits else "LoRA fits, full fine-tuning does not"
                    if lora_fits else "neither fits: use a smaller model or more devices")
            devices.append({"gpu": gpu, "lora_fits": lora_fits, "full_fits": full_fits, "advice": text})
        if not gpus:
            rec = (f"no GPU found: a {hardware.param_count_text(params_billion)} model trains on the CPU, slowly; "
                   f"a GPU with {lora / hardware.GiB:.0f} GiB runs LoRA")
        elif any(d["full_fits"] for d in devices):
            rec = "full fine-tuning fits on this host; LoRA is faster and lighter"
        elif any(d["lora_fits"] for d in devices):
            rec = "use LoRA on this host (full fine-tuning does not fit)"
        else:
            rec = f"this host's GPUs are too small: LoRA needs about {lora / hardware.GiB:.0f} GiB"
        return {"params_billion": params_billion, "class": name, "lora": lora, "full": full,
                "devices": devices, "recommendation": rec}

    def uptime(self) -> float:
        return time.time() - self.start_time

    @property
    def pid(self) -> int:
        return os.getpid()


async def _check_resumable(task_id: str, ckpt: CheckpointRecord) -> None:
    """The checkpoint rule (engine/checkpoints.py resume_problem), reading weights up to the size the
    daemon reads; the worker checks every checkpoint again, all of it, before training."""
    from .engine.checkpoints import resume_problem  # numpy only, no torch
    from .engine.finite import DAEMON_CHECK_MAX_BYTES

    problem = await asyncio.to_thread(resume_problem, ckpt.path, DAEMON_CHECK_MAX_BYTES)
    if problem:
        raise FailedPrecondition(
            f"checkpoint {ckpt.id} (step {ckpt.step}) of task {task_id} {problem} (modxctl train checkpoints "
            f"{task_id}, then modxctl train resume {task_id} --checkpoint ID)")


def _quota_warnings(est: dict[str, Any]) -> Warnings:
    if est["fits"]:
        return []
    return [("quota_insufficient",
             f"this task will save about {est['checkpoints']} checkpoint(s) but the quota balance is "
             f"{est['balance']}: it will stop when the balance reaches 0 (ask an admin for more)")]

