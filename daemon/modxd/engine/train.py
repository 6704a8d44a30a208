"""``run_training``: one SFT or pretraining run with ``transformers.Trainer``.

The run is a :class:`~modxd.train_config.TrainConfig`: the task's parameters, typed and
checked once by the schema (modxd/params.py), plus the run's own fields (device, quota
reservations, packing). The engine checks only what the worker alone can know: that the
device exists, which precision it supports, what the files it opens hold.

Runs inside the training worker process (no grpc, no asyncio). Everything the
daemon needs to know is sent through ``emit`` as plain JSON-serialisable dicts
(log, warning, total_steps, metrics, checkpoint, checkpoint_deleted); commands
come back through ``poll_command``, checked at every optimizer step end.
Exceptions propagate: the worker shim reports the task as failed.

Nothing non-finite passes (engine/finite.py): NaN in the model or in a checkpoint to
resume is refused before training, and a NaN or infinite loss or gradient norm fails the
run at that step. Every save is paid before it is written (engine/quota.py).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from transformers import EarlyStoppingCallback, Trainer, TrainingArguments, set_seed  # noqa: E402
from transformers.trainer_callback import PrinterCallback, ProgressCallback  # noqa: E402

from .. import files  # noqa: E402
from ..paths import Pinned, pin_input, pin_output_dir  # noqa: E402
from ..protocol import Emit, Learning, Poll, RunMeasured, Stop, Warn  # noqa: E402
from .callbacks import EventCallback, route_logs  # noqa: E402
from .checkpoints import CheckpointStore, resume_problem  # noqa: E402
from .distributed import checkpoint_store, is_main, training_args_extra, world_size  # noqa: E402
from .finite import StepHealth, TrainingDiverged, model_weights_problem  # noqa: E402
from .quota import DAEMON_GONE, ERROR, Decision, QuotaGate, agree  # noqa: E402
from .data import PadCollator, prepare_data  # noqa: E402
from .packing import PackedCollator, labelled_loss, padding_free_problem, use_padding_free  # noqa: E402
from .models import (  # noqa: E402
    EngineError,
    Precision,
    apply_lora,
    check_max_seq_length,
    enable_gradient_checkpointing,
    inspect_model_dir,
    load_model,
    load_tokenizer,
    merge_lora,
    merge_lora_full_precision,
    resolve_precision,
)
from .features import check_gpu_features  # noqa: E402
from .memory import oom_advice  # noqa: E402
from .telemetry import DeviceTelemetry, host_peak_rss_bytes, peak_memory_bytes  # noqa: E402
from .learning import judge, mean_loss, pick_examples  # noqa: E402
from .templating import missing_template_problem  # noqa: E402
from ..params import SFT, TrainParams, needs_chat_template  # noqa: E402
from ..train_config import TrainConfig  # noqa: E402
from ..plan import estimate_steps_per_epoch, eval_data_problem  # noqa: E402

__all__ = ["run_training", "TrainConfig", "EngineError"]

log = logging.getLogger("modxd.engine")

class ModxTrainer(Trainer):
    """``Trainer`` whose checkpoints are paid for, staged, committed atomically and rotated by us,
    and whose every optimizer step is checked for a non-finite loss or gradient norm."""

    def __init__(self, *args: Any, store: CheckpointStore, events: EventCallback, quota: QuotaGate,
                 health: StepHealth, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.store = store
        self.events = events
        self.quota = quota
        self.health = health
        self._staging: str | None = None

    def _get_output_dir(self, trial: Any) -> str:
        return self._staging or super()._get_output_dir(trial)

    def training_step(self, model: Any, inputs: Any, num_items_in_batch: Any = None) -> Any:
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.health.add_loss(loss)  # every micro-batch: Trainer's NaN filter would hide it from the logs
        return loss

    def _maybe_log_save_evaluate(self, tr_loss: Any, grad_norm: Any, *args: Any, **kwargs: Any) -> None:
        try:  # before this step is logged or saved
            self.health.check(self.state.global_step, grad_norm, self.accelerator.optimizer_step_was_skipped)
        except TrainingDiverged as exc:
            log.error("%s", exc)
            raise
        super()._maybe_log_save_evaluate(tr_loss, grad_norm, *args, **kwargs)

    def _stop_unpaid(self, step: int, decision: Decision) -> None:
        """No unit for this checkpoint: end the run now without writing it (or fail, when the daemon erred)."""
        if decision.reason == ERROR:
            raise EngineError(f"{decision.message}; the checkpoint of step {step} was not saved")
        log.warning("the checkpoint of step %d was not saved: %s", step,
                    decision.message or "the quota balance is 0")
        self.store.saves_disabled = True
        self.control.should_training_stop = True
        if self.events.stop_command is None or decision.reason == DAEMON_GONE:
            self.events.stop_command = Stop(reason=decision.reason, save=False)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        step = self.state.global_step
        if self.store.should_skip(step):
            return
        paid = agree(self.quota.reserve(step) if is_main() else None)  # rank 0 asks; every rank abides
        if not paid.granted:
            self._stop_unpaid(step, paid)
            return
        staging = self.store.staging_dir(step)
        config = getattr(self.model, "config", None)
        use_cache = getattr(config, "use_cache", None)
        self._staging = staging
        try:
            try:
                if config is not None:
                    config.use_cache = True  # saved for inference; training keeps it off
                super()._save_checkpoint(model, trial)
            finally:
                self._staging = None
                if config is not None:
                    config.use_cache = use_cache
            self.store.commit(step, staging, os.path.join(staging, f"checkpoint-{step}"),
                              self.state.epoch, self.events.last_loss, hold_id=paid.hold_id)
        except Exception as exc:  # a failed save leaves nothing behind (and is never recorded or charged)
            self.quota.release(paid.hold_id)
            error = self.store.discard(step, staging, exc)
            if error is exc:
                raise
            raise error from exc


def _warn(emit: Emit, code: str, message: str) -> None:
    log.warning(message)
    emit(Warn(code, message))


def _check_device(device: str) -> str:
    import torch

    if device == "cpu":
        return device
    if not device.startswith("cuda"):
        raise EngineError(f"device must be cpu or cuda[:N] (got {device!r})")
    if not torch.cuda.is_available():
        raise EngineError(f"device {device} was requested but CUDA is not available on this host")
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise EngineError(f"device {device} does not exist: this host has {torch.cuda.device_count()} CUDA device(s)")
    torch.cuda.set_device(index)
    return device


def _check_resume(pin: Pinned | None) -> str | None:
    """The checkpoint rule (engine/checkpoints.py) on the dir this worker opened, every weight read."""
    if pin is None:
        return None
    problem = resume_problem(pin.path)
    if problem:
        raise EngineError(f"resume_from_checkpoint {pin.real} {problem}")
    return pin.path


class _ReportedTensorBoard:
    """TensorBoard logs in a fresh ``runs/<time>_<host>_<pid>`` of the output dir, reported to the manifest."""

    @staticmethod
    def make(out: Pinned, emit: Emit) -> list[Any]:
        if not is_main():
            return []
        try:
            import torch.utils.tensorboard  # noqa: F401
            from transformers.integrations import TensorBoardCallback
        except Exception:
            return []
        runs, made = out.subdir("runs")
        stamp = f"{time.strftime('%b%d_%H-%M-%S')}_{socket.gethostname()}_{os.getpid()}"
        run_dir = runs.new_subdir(stamp)
        runs.close()
        emit(files.message([*([files.entry(runs.real, "dir")] if made else []), files.entry(run_dir.real, "dir")]))

        class Reported(TensorBoardCallback):
            def _report(self) -> None:
                emit(files.message(files.tree(run_dir)))

            def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
                super().on_train_begin(*args, **kwargs)
                self._report()  # the event file exists from the writer's start

            def on_train_end(self, *args: Any, **kwargs: Any) -> None:
                super().on_train_end(*args, **kwargs)
                self._report()
                run_dir.close()

        callback = Reported()
        callback.logging_dir = run_dir.path
        return [callback]


def run_training(config: TrainConfig | Mapping[str, Any], emit: Emit,
                 poll_command: Poll, quota: QuotaGate | None = None) -> dict:
    """Train as ``config`` says; return outcome, reason, final step/loss and the merged dir.

    ``config`` is a :class:`TrainConfig`, or the JSON object a worker received
    (``TrainConfig.to_wire``), read back through the schema. ``quota`` is given by a caller whose
    ``poll_command`` already reads through it (a distributed rank: the gate sits under the rank's
    command broadcast); otherwise it is made here.
    """
    run = config if isinstance(config, TrainConfig) else TrainConfig.from_wire(config)
    if quota is None:
        quota = QuotaGate(emit, poll_command, enabled=run.reserve_quota)
        poll_command = quota.poll
    with route_logs(emit, run.params.log_level):
        return _run(run, emit, poll_command, quota)


@dataclass
class _Dirs:
    """The dirs a run reads and writes, open (modxd/paths.py); ``model`` and ``tokenizer`` name the
    open dirs (``Pinned.path``), so later swaps of a path change nothing."""

    model: str
    tokenizer: str
    resume: Pinned | None
    out: Pinned


def _load_tokenizer(params: TrainParams, source: str) -> Any:
    tokenizer = load_tokenizer(source, log.info)
    if params.chat_template:
        tokenizer.chat_template = params.chat_template  # saved with every checkpoint, so inference matches
    problem = missing_template_problem(needs_chat_template(params.task_type), tokenizer.chat_template, source)
    if problem:
        raise EngineError(problem)
    return tokenizer


def _build_model(params: TrainParams, model_dir: str, precision: Precision, tokenizer: Any,
                 emit: Emit) -> Any:
    """Load the model; LoRA keeps a half-precision frozen base when AMP is on."""
    use_lora = params.use_lora
    bits = params.quantization_bit
    dtype = precision.load_dtype_name if use_lora and (precision.fp16 or precision.bf16) else "float32"
    if bits and dtype == "float32":
        dtype = "float16"  # the compute dtype of the quantized layers; fp32 would only cost memory
    model = load_model(model_dir, dtype, bits)
    problem = model_weights_problem(model)
    if problem:
        raise EngineError(f"model_dir {model_dir}: the weights hold {problem}: the model files are damaged "
                          "or were saved by a run that diverged; train another model")
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
        log.info("resized the token embeddings to the tokenizer's %d tokens", len(tokenizer))
    if bits:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=params.gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
        log.info("QLoRA: base weights quantized to %d bits by bitsandbytes (%s)", bits,
                 "NF4, double quantization" if bits == 4 else "LLM.int8()")
    if use_lora:
        model = apply_lora(model, params.lora_r, params.lora_alpha, params.lora_dropout, params.lora_target_modules)
    elif params.merge_lora_after_training:
        _warn(emit, "merge_lora_ignored", "merge_lora_after_training is ignored: use_lora is off, "
                                          "so checkpoints already hold full models")
    if params.gradient_checkpointing:
        problem = enable_gradient_checkpointing(model, use_lora)
        if problem:
            _warn(emit, "gradient_checkpointing_unsupported", problem)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info("model %s: %d parameters, %d trainable (%s)", model_dir, total, trainable,
             "LoRA" if use_lora else "full fine-tuning")
    return model


def _batching(run: TrainConfig, model: Any, tokenizer: Any) -> tuple[Any, Any]:
    """Packed batches and a labelled-positions loss where possible, else padded batches.

    Pretraining blocks all have max_seq_length tokens, so they gain nothing from packing.
    """
    if not run.padding_free or run.task_type != SFT:
        return PadCollator(tokenizer.pad_token_id), None
    problem = padding_free_problem(model)
    if problem:
        log.info("padded batches (no padding-free packing: %s)", problem)
        return PadCollator(tokenizer.pad_token_id), None
    use_padding_free(model)
    log.info("padding-free batches: examples packed end to end, attention kept within each example")
    return PackedCollator(), labelled_loss


def _check_eval_data(params: TrainParams, eval_examples: int) -> None:
    """The one rule of evaluation data (modxd/plan.py), on the data this worker prepared: the
    daemon counted it at create, but the files may have changed since."""
    problem = eval_data_problem(params.eval_strategy, params.eval_file, params.eval_split_ratio, eval_examples)
    if problem:
        raise EngineError(problem)


def _training_args(params: TrainParams, output_dir: str, precision: Precision, device: str, total_steps: int,
                   use_liger: bool, packed: bool = False) -> TrainingArguments:
    on_cpu = device == "cpu"
    # Library chatter stays at warning unless debugging; our own log lines carry the progress.
    library_level = {"debug": "debug", "info": "warning"}.get(params.log_level, params.log_level)
    eval_strategy, patience = params.eval_strategy, params.early_stopping_patience
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=params.per_device_train_batch_size,
        per_device_eval_batch_size=params.per_device_train_batch_size,
        gradient_accumulation_steps=params.gradient_accumulation_steps,
        learning_rate=params.learning_rate, optim=params.optim, lr_scheduler_type=params.lr_scheduler_type,
        num_train_epochs=params.num_train_epochs, weight_decay=params.weight_decay,
        warmup_steps=params.warmup_ratio if params.warmup_ratio < 1 else total_steps,
        max_grad_norm=params.max_grad_norm,
        # Trainer decides *when* (steps/epoch); saving, the final save and retention are ours.
        save_strategy=params.save_strategy, save_steps=params.save_steps, save_total_limit=None,
        eval_strategy=eval_strategy, eval_steps=params.eval_steps if eval_strategy == "steps" else None,
        metric_for_best_model="eval_loss" if patience else None, greater_is_better=False if patience else None,
        logging_strategy="steps", logging_steps=params.logging_steps, logging_first_step=True,
        logging_nan_inf_filter=False,  # never show a NaN loss as a number; finite.StepHealth fails the run first
        log_level=library_level, disable_tqdm=True, report_to="none",  # TensorBoard: _ReportedTensorBoard
        seed=params.seed, data_seed=params.seed,
        fp16=precision.fp16, bf16=precision.bf16, tf32=True if precision.tf32 else None,
        use_cpu=on_cpu, dataloader_pin_memory=not on_cpu, dataloader_num_workers=0,
        remove_unused_columns=False, label_names=["labels"], include_num_input_tokens_seen="non_padding",
        use_liger_kernel=use_liger,
        # The packed path computes its own loss from labelled positions (engine/packing.py), so Liger's
        # fused linear cross-entropy (which needs labels inside the model's forward) stays off there.
        liger_kernel_config={"fused_linear_cross_entropy": not packed,
                             "cross_entropy": False} if use_liger else None,
        **training_args_extra(params, device),  # DDP / FSDP under the launcher; nothing in one process
    )


def _run(run: TrainConfig, emit: Emit, poll_command: Poll,
         quota: QuotaGate) -> dict:
    with contextlib.ExitStack() as pins:
        return _run_pinned(run, _pin_paths(run.params, pins), emit, poll_command, quota)


def _pin_paths(params: TrainParams, pins: contextlib.ExitStack) -> _Dirs:
    """Open every dir the run reads or writes, checked against the roots (modxd/paths.py).
    Data files are checked when they are opened (engine/formats.py)."""
    opened = {key: pins.enter_context(pin_input(f"parameter {key}", getattr(params, key)))
              for key in ("model_dir", "tokenizer_dir", "resume_from_checkpoint") if getattr(params, key)}
    out = pins.enter_context(pin_output_dir("parameter output_dir", params.output_dir)[0])
    model = opened["model_dir"].path
    tokenizer = opened["tokenizer_dir"].path if "tokenizer_dir" in opened else model
    return _Dirs(model, tokenizer, opened.get("resume_from_checkpoint"), out)


def _run_pinned(run: TrainConfig, dirs: _Dirs, emit: Emit,
                poll_command: Poll, quota: QuotaGate) -> dict:
    params, out = run.params, dirs.out
    info = inspect_model_dir(dirs.model)
    check_max_seq_length(params.max_seq_length, info)
    resume = _check_resume(dirs.resume)
    device = _check_device(run.device)
    use_liger = check_gpu_features(params, device, info.model_type, lambda code, message: _warn(emit, code, message))
    precision = resolve_precision(device, params.fp16, params.bf16, params.tf32, run.fp16_explicit)
    for warning in precision.warnings:
        _warn(emit, warning["code"], warning["message"])
    for note in precision.notes:
        log.info("precision: %s", note)
    set_seed(params.seed)  # before LoRA init

    tokenizer = _load_tokenizer(params, dirs.tokenizer)
    data = prepare_data(params, tokenizer, log.info)
    for warning in data.warnings:
        _warn(emit, warning["code"], warning["message"])
    _check_eval_data(params, len(data.eval) if data.eval is not None else 0)
    model = _build_model(params, dirs.model, precision, tokenizer, emit)

    steps_per_epoch = estimate_steps_per_epoch(len(data.train), params.per_device_train_batch_size,
                                               params.gradient_accumulation_steps, world_size())
    total_steps = steps_per_epoch * params.num_train_epochs
    collator, loss_func = _batching(run, model, tokenizer)
    args = _training_args(params, out.path, precision, device, total_steps, use_liger, packed=loss_func is not None)
    store = checkpoint_store(out, params.save_total_limit, emit)  # rank-aware under the launcher
    events = EventCallback(emit, poll_command, params.save_interval_minutes, params.save_strategy, steps_per_epoch,
                           disable_saves=lambda: setattr(store, "saves_disabled", True),
                           telemetry=DeviceTelemetry(device))
    patience = params.early_stopping_patience
    callbacks: list[Any] = [EarlyStoppingCallback(early_stopping_patience=patience)] if patience else []
    callbacks += _ReportedTensorBoard.make(out, emit)
    trainer = ModxTrainer(model=model, args=args, train_dataset=data.train, eval_dataset=data.eval,
                          data_collator=collator, compute_loss_func=loss_func, processing_class=tokenizer,
                          callbacks=callbacks + [events], store=store, events=events, quota=quota,
                          health=StepHealth(params.learning_rate))
    trainer.remove_callback(PrinterCallback)  # stdout may be the worker's channel: events only
    trainer.remove_callback(ProgressCallback)
    log.info("training %d examples for %d epochs: %d steps of %d x %d (batch x accumulation)", len(data.train),
             params.num_train_epochs, total_steps, params.per_device_train_batch_size,
             params.gradient_accumulation_steps)
    check = pick_examples(params, data.train, data.eval) if run.task_type == SFT and world_size() == 1 else None
    base_loss = _check_loss(trainer, check, "the base model")
    _train(trainer, resume, params, device)

    state = trainer.state
    if events.stop_command is not None:
        outcome, reason = "stopped", events.stop_command.reason or "user"
    else:
        outcome, reason = "completed", "early_stopping" if events.early_stopped else "completed"
    if outcome == "completed" and resume is None:  # a whole run: what its estimate was for
        _report_measured(emit, events, device)
    if outcome == "completed" and check is not None and base_loss is not None:
        final_loss = _check_loss(trainer, check, "the trained model")
        if final_loss is not None:
            verdict = judge(check[0], len(check[1]), base_loss, final_loss, params)
            log.info("%s", verdict.sentence)
            emit(Learning(**verdict.to_dict()))
    merged_dir = None
    peak = peak_memory_bytes(device)
    if peak is not None:
        log.info("peak GPU memory allocated while training: %.2f GiB", peak / 1024**3)
    if outcome == "completed" and params.use_lora and params.merge_lora_after_training:
        if params.quantization_bit:  # never into the quantized weights: into the base, loaded again unquantized
            merged_dir = merge_lora_full_precision(trainer.model, tokenizer, dirs.model, out, emit)
        else:
            merged_dir = merge_lora(trainer.model, tokenizer, out, emit)
        log.info("merged LoRA weights into a full model: %s", merged_dir)
    log.info("training %s at step %d/%d (%s)", outcome, state.global_step, state.max_steps, reason)
    return {"outcome": outcome, "reason": reason, "final_step": int(state.global_step),
            "final_loss": events.last_loss, "merged_dir": merged_dir, "peak_device_memory_bytes": peak}


def _check_loss(trainer: Any, check: tuple[str, Any] | None, which: str) -> float | None:
    """The mean loss of the learning check's examples (engine/learning.py); None when there are none or
    it cannot be measured (the check is a report: it never fails a run)."""
    if check is None:
        return None
    try:
        loss = mean_loss(trainer, check[1])
    except Exception as exc:  # noqa: BLE001 - whatever the evaluation loop raises, training goes on
        log.warning("the learning check could not measure %s (%s: %s)", which, type(exc).__name__, exc)
        return None
    return loss if math.isfinite(loss) else None


def _report_measured(emit: Emit, events: EventCallback, device: str) -> None:
    """Training seconds and peak memory, for the estimate next to the actual (protocol.RunMeasured)."""
    if events.train_begin is None or events.last_step_time is None:
        return
    seconds = events.last_step_time - events.train_begin
    if device.startswith("cuda"):
        peak, kind = peak_memory_bytes(device) or 0, "device"
    else:
        peak, kind = host_peak_rss_bytes(), "host_rss"
    if peak:
        emit(RunMeasured(training_seconds=seconds, peak_memory_bytes=int(peak), memory_kind=kind))


def _train(trainer: Any, resume: str | None, params: TrainParams, device: str) -> None:
    """``trainer.train``; a CUDA out-of-memory failure says what to change (worker.describe_failure
    names it "out of memory: ...")."""
    import torch

    try:
        trainer.train(resume_from_checkpoint=resume)
    except torch.OutOfMemoryError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else "CUDA out of memory"
        raise EngineError(f"{device} ran out of memory at batch {params.per_device_train_batch_size} x up to "
                          f"{params.max_seq_length} tokens ({first_line}); {oom_advice(params)}") from exc
