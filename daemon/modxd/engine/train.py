"""``run_training``: one SFT or pretraining run with ``transformers.Trainer``.

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
import os
import socket
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from transformers import EarlyStoppingCallback, Trainer, TrainingArguments, set_seed  # noqa: E402
from transformers.trainer_callback import PrinterCallback, ProgressCallback  # noqa: E402
from transformers.trainer_utils import SchedulerType  # noqa: E402
from transformers.training_args import OptimizerNames  # noqa: E402

from .. import files  # noqa: E402
from ..paths import Pinned, pin_input, pin_output_dir  # noqa: E402
from ..protocol import Emit, Poll, Stop, Warn  # noqa: E402
from .callbacks import EventCallback, route_logs  # noqa: E402
from .checkpoints import CheckpointStore  # noqa: E402
from .distributed import checkpoint_store, is_main, training_args_extra, world_size  # noqa: E402
from .finite import StepHealth, TrainingDiverged, checkpoint_weights_problem, model_weights_problem  # noqa: E402
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
from .telemetry import DeviceTelemetry, peak_memory_bytes  # noqa: E402
from ..params import SCHEMA  # noqa: E402
from .plan import estimate_steps_per_epoch  # noqa: E402

__all__ = ["run_training", "normalize_config", "DEFAULTS", "EngineError"]

log = logging.getLogger("modxd.engine")

# The parameter schema (modxd.params, pure Python) is the one source of defaults; the
# engine adds what only a worker needs. use_lora=None means "by task type".
DEFAULTS: dict[str, Any] = {
    **{spec.key: spec.default_for("sft") for spec in SCHEMA},
    "task_type": "sft", "use_lora": None, "device": "cpu",
    "padding_free": True,  # engine-only: packed batches (engine/packing.py) where the model allows
    "fp16_explicit": False,  # engine-only: keep fp16 on a bf16 GPU (engine/precision.py)
    "reserve_quota": False,  # engine-only: the daemon charges checkpoints, so each save is reserved first
}
_CHOICES = {"task_type": ("sft", "pretrain"), "save_strategy": ("steps", "epoch", "no"),
            "eval_strategy": ("steps", "epoch", "no"), "log_level": ("debug", "info", "warning", "error")}


def normalize_config(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults, coerce types and check choices; raise :class:`EngineError`."""
    cfg = dict(DEFAULTS)
    cfg.update({k: v for k, v in config.items() if v is not None})
    for key, default in DEFAULTS.items():
        value = cfg[key]
        try:
            if isinstance(default, bool):
                cfg[key] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                cfg[key] = int(value)
            elif isinstance(default, float):
                cfg[key] = float(value)
            elif isinstance(default, str):
                cfg[key] = str(value or "")
        except (TypeError, ValueError):
            raise EngineError(f"parameter {key} must be a {type(default).__name__} (got {value!r})") from None
    if cfg["use_lora"] is None:  # SFT trains LoRA adapters, pretraining the full model, unless told
        cfg["use_lora"] = cfg["task_type"] == "sft"
    elif not isinstance(cfg["use_lora"], bool):
        cfg["use_lora"] = str(cfg["use_lora"]).lower() in ("1", "true", "yes", "on")
    if isinstance(cfg["lora_target_modules"], str):
        cfg["lora_target_modules"] = [m.strip() for m in cfg["lora_target_modules"].split(",") if m.strip()]
    for key, choices in _CHOICES.items():
        if cfg[key] not in choices:
            raise EngineError(f"parameter {key} must be one of {', '.join(choices)} (got {cfg[key]!r})")
    if cfg["optim"] not in {o.value for o in OptimizerNames}:
        raise EngineError(f"optim {cfg['optim']!r} is not a known optimizer (e.g. adamw_torch, adamw_torch_fused, "
                          "sgd, adafactor)")
    if cfg["lr_scheduler_type"] not in {s.value for s in SchedulerType}:
        raise EngineError(f"lr_scheduler_type {cfg['lr_scheduler_type']!r} is not a known scheduler "
                          f"(one of {', '.join(s.value for s in SchedulerType)})")
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps", "max_seq_length",
                "num_train_epochs", "logging_steps"):
        if cfg[key] < 1:
            raise EngineError(f"parameter {key} must be at least 1 (got {cfg[key]})")
    if cfg["save_strategy"] == "steps" and cfg["save_steps"] < 1:
        raise EngineError(f"save_steps must be at least 1 with save_strategy steps (got {cfg['save_steps']})")
    if cfg["eval_strategy"] == "steps" and cfg["eval_steps"] < 1:
        raise EngineError(f"eval_steps must be at least 1 with eval_strategy steps (got {cfg['eval_steps']})")
    if not 0 <= cfg["eval_split_ratio"] < 1:
        raise EngineError(f"eval_split_ratio must be in [0, 1) (got {cfg['eval_split_ratio']})")
    for key in ("train_file", "output_dir", "model_dir"):
        if not cfg[key]:
            raise EngineError(f"parameter {key} is required")
    if cfg["quantization_bit"] not in (0, 4, 8):
        raise EngineError(f"quantization_bit must be 0 (off), 4 (QLoRA, NF4) or 8 (got {cfg['quantization_bit']})")
    if cfg["quantization_bit"] and not cfg["use_lora"]:
        raise EngineError(f"quantization_bit {cfg['quantization_bit']} needs use_lora: quantized base weights are "
                          "frozen, so only LoRA adapters can be trained on them")
    return cfg


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
    if pin is None:
        return None
    if not os.path.isfile(pin.join("trainer_state.json")):
        raise EngineError(f"resume_from_checkpoint {pin.real} is not a training checkpoint (no trainer_state.json)")
    problem = checkpoint_weights_problem(pin.path)
    if problem:
        raise EngineError(f"resume_from_checkpoint {pin.real}: {problem}: the run had diverged when it was saved "
                          "(or the file is damaged); resume from an earlier checkpoint")
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


def run_training(config: dict, emit: Emit, poll_command: Poll,
                 quota: QuotaGate | None = None) -> dict:
    """Train as ``config`` says; return outcome, reason, final step/loss and the merged dir.

    ``quota`` is given by a caller whose ``poll_command`` already reads through it (a distributed
    rank: the gate sits under the rank's command broadcast); otherwise it is made here.
    """
    cfg = normalize_config(config)
    if quota is None:
        quota = QuotaGate(emit, poll_command, enabled=cfg["reserve_quota"])
        poll_command = quota.poll
    with route_logs(emit, cfg["log_level"]):
        return _run(cfg, emit, poll_command, quota)


def _load_tokenizer(cfg: dict[str, Any]) -> Any:
    source = cfg["tokenizer_dir"] or cfg["model_dir"]  # pinned dirs (see _run)
    tokenizer = load_tokenizer(source, log.info)
    if cfg["chat_template"]:
        tokenizer.chat_template = cfg["chat_template"]  # saved with every checkpoint, so inference matches
    if cfg["task_type"] == "sft" and not tokenizer.chat_template:
        raise EngineError(f"the tokenizer in {source} has no chat template, so conversations cannot be "
                          "formatted; set the chat_template parameter (a Jinja template)")
    return tokenizer


def _build_model(cfg: dict[str, Any], precision: Precision, tokenizer: Any, emit: Emit) -> Any:
    """Load the model; LoRA keeps a half-precision frozen base when AMP is on."""
    use_lora = cfg["use_lora"]
    bits = cfg["quantization_bit"]
    dtype = precision.load_dtype_name if use_lora and (precision.fp16 or precision.bf16) else "float32"
    if bits and dtype == "float32":
        dtype = "float16"  # the compute dtype of the quantized layers; fp32 would only cost memory
    model = load_model(cfg["model_dir"], dtype, bits)
    problem = model_weights_problem(model)
    if problem:
        raise EngineError(f"model_dir {cfg['model_dir']}: the weights hold {problem}: the model files are damaged "
                          "or were saved by a run that diverged; train another model")
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
        log.info("resized the token embeddings to the tokenizer's %d tokens", len(tokenizer))
    if bits:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg["gradient_checkpointing"],
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
        log.info("QLoRA: base weights quantized to %d bits by bitsandbytes (%s)", bits,
                 "NF4, double quantization" if bits == 4 else "LLM.int8()")
    if use_lora:
        model = apply_lora(model, cfg["lora_r"], cfg["lora_alpha"], cfg["lora_dropout"], cfg["lora_target_modules"])
    elif cfg["merge_lora_after_training"]:
        _warn(emit, "merge_lora_ignored", "merge_lora_after_training is ignored: use_lora is off, "
                                          "so checkpoints already hold full models")
    if cfg["gradient_checkpointing"]:
        problem = enable_gradient_checkpointing(model, use_lora)
        if problem:
            _warn(emit, "gradient_checkpointing_unsupported", problem)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info("model %s: %d parameters, %d trainable (%s)", cfg["model_dir"], total, trainable,
             "LoRA" if use_lora else "full fine-tuning")
    return model


def _batching(cfg: dict[str, Any], model: Any, tokenizer: Any) -> tuple[Any, Any]:
    """Packed batches and a labelled-positions loss where possible, else padded batches.

    Pretraining blocks all have max_seq_length tokens, so they gain nothing from packing.
    """
    if not cfg["padding_free"] or cfg["task_type"] != "sft":
        return PadCollator(tokenizer.pad_token_id), None
    problem = padding_free_problem(model)
    if problem:
        log.info("padded batches (no padding-free packing: %s)", problem)
        return PadCollator(tokenizer.pad_token_id), None
    use_padding_free(model)
    log.info("padding-free batches: examples packed end to end, attention kept within each example")
    return PackedCollator(), labelled_loss


def _eval_plan(cfg: dict[str, Any], has_eval: bool, emit: Emit) -> tuple[str, int]:
    """The eval strategy and early-stopping patience that can actually apply."""
    eval_strategy = cfg["eval_strategy"]
    if eval_strategy != "no" and not has_eval:
        _warn(emit, "eval_disabled", f"eval_strategy is {eval_strategy} but there is no evaluation data "
                                     "(set eval_file or eval_split_ratio); evaluation is off")
        eval_strategy = "no"
    patience = cfg["early_stopping_patience"]
    if patience > 0 and eval_strategy == "no":
        _warn(emit, "early_stopping_disabled", "early_stopping_patience needs evaluation (eval_strategy steps or "
                                               "epoch and evaluation data); early stopping is off")
        patience = 0
    return eval_strategy, patience


def _training_args(cfg: dict[str, Any], precision: Precision, device: str, eval_strategy: str, patience: int,
                   total_steps: int, packed: bool = False) -> TrainingArguments:
    on_cpu = device == "cpu"
    # Library chatter stays at warning unless debugging; our own log lines carry the progress.
    library_level = {"debug": "debug", "info": "warning"}.get(cfg["log_level"], cfg["log_level"])
    return TrainingArguments(
        output_dir=cfg["output_dir"],
        per_device_train_batch_size=cfg["per_device_train_batch_size"],
        per_device_eval_batch_size=cfg["per_device_train_batch_size"],
        gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
        learning_rate=cfg["learning_rate"], optim=cfg["optim"], lr_scheduler_type=cfg["lr_scheduler_type"],
        num_train_epochs=cfg["num_train_epochs"], weight_decay=cfg["weight_decay"],
        warmup_steps=cfg["warmup_ratio"] if cfg["warmup_ratio"] < 1 else total_steps,
        max_grad_norm=cfg["max_grad_norm"],
        # Trainer decides *when* (steps/epoch); saving, the final save and retention are ours.
        save_strategy=cfg["save_strategy"], save_steps=max(cfg["save_steps"], 1), save_total_limit=None,
        eval_strategy=eval_strategy, eval_steps=max(cfg["eval_steps"], 1) if eval_strategy == "steps" else None,
        metric_for_best_model="eval_loss" if patience else None, greater_is_better=False if patience else None,
        logging_strategy="steps", logging_steps=cfg["logging_steps"], logging_first_step=True,
        logging_nan_inf_filter=False,  # never show a NaN loss as a number; finite.StepHealth fails the run first
        log_level=library_level, disable_tqdm=True, report_to="none",  # TensorBoard: _ReportedTensorBoard
        seed=cfg["seed"], data_seed=cfg["seed"],
        fp16=precision.fp16, bf16=precision.bf16, tf32=True if precision.tf32 else None,
        use_cpu=on_cpu, dataloader_pin_memory=not on_cpu, dataloader_num_workers=0,
        remove_unused_columns=False, label_names=["labels"], include_num_input_tokens_seen="non_padding",
        use_liger_kernel=cfg["use_liger_kernel"],
        # The packed path computes its own loss from labelled positions (engine/packing.py), so Liger's
        # fused linear cross-entropy (which needs labels inside the model's forward) stays off there.
        liger_kernel_config={"fused_linear_cross_entropy": not packed,
                             "cross_entropy": False} if cfg["use_liger_kernel"] else None,
        **training_args_extra(cfg, device),  # DDP / FSDP under the launcher; nothing in one process
    )


def _run(cfg: dict[str, Any], emit: Emit, poll_command: Poll,
         quota: QuotaGate) -> dict:
    with contextlib.ExitStack() as pins:
        return _run_pinned(_pin_paths(cfg, pins), emit, poll_command, quota)


def _pin_paths(cfg: dict[str, Any], pins: contextlib.ExitStack) -> dict[str, Any]:
    """Open every dir the run reads or writes, checked against the roots (modxd/paths.py); the config
    the run uses names the open dirs (``Pinned.path``), so later swaps of a path change nothing.
    Data files are checked when they are opened (engine/formats.py)."""
    out = dict(cfg)
    for key in ("model_dir", "tokenizer_dir", "resume_from_checkpoint"):
        if cfg[key]:
            out[key] = pins.enter_context(pin_input(f"parameter {key}", cfg[key]))
    out["output_pin"] = pins.enter_context(pin_output_dir("parameter output_dir", cfg["output_dir"])[0])
    for key in ("model_dir", "tokenizer_dir"):
        if isinstance(out[key], Pinned):
            out[key] = out[key].path
    return out


def _run_pinned(cfg: dict[str, Any], emit: Emit, poll_command: Poll,
                quota: QuotaGate) -> dict:
    out: Pinned = cfg["output_pin"]
    info = inspect_model_dir(cfg["model_dir"])
    check_max_seq_length(cfg["max_seq_length"], info)
    resume = _check_resume(cfg["resume_from_checkpoint"] or None)
    device = _check_device(cfg["device"])
    check_gpu_features(cfg, device, info.model_type, lambda code, message: _warn(emit, code, message))
    precision = resolve_precision(device, cfg["fp16"], cfg["bf16"], cfg["tf32"], cfg["fp16_explicit"])
    for warning in precision.warnings:
        _warn(emit, warning["code"], warning["message"])
    for note in precision.notes:
        log.info("precision: %s", note)
    set_seed(cfg["seed"])  # before LoRA init

    tokenizer = _load_tokenizer(cfg)
    data = prepare_data(cfg, tokenizer, log.info)
    for warning in data.warnings:
        _warn(emit, warning["code"], warning["message"])
    model = _build_model(cfg, precision, tokenizer, emit)
    eval_strategy, patience = _eval_plan(cfg, data.eval is not None, emit)

    steps_per_epoch = estimate_steps_per_epoch(len(data.train), cfg["per_device_train_batch_size"],
                                               cfg["gradient_accumulation_steps"], world_size())
    total_steps = steps_per_epoch * cfg["num_train_epochs"]
    collator, loss_func = _batching(cfg, model, tokenizer)
    args = _training_args({**cfg, "output_dir": out.path}, precision, device, eval_strategy, patience, total_steps,
                          packed=loss_func is not None)
    store = checkpoint_store(out, cfg["save_total_limit"], emit)  # rank-aware under the launcher
    events = EventCallback(emit, poll_command, cfg["save_interval_minutes"], cfg["save_strategy"], steps_per_epoch,
                           disable_saves=lambda: setattr(store, "saves_disabled", True),
                           telemetry=DeviceTelemetry(device))
    callbacks: list[Any] = [EarlyStoppingCallback(early_stopping_patience=patience)] if patience else []
    callbacks += _ReportedTensorBoard.make(out, emit)
    trainer = ModxTrainer(model=model, args=args, train_dataset=data.train, eval_dataset=data.eval,
                          data_collator=collator, compute_loss_func=loss_func, processing_class=tokenizer,
                          callbacks=callbacks + [events], store=store, events=events, quota=quota,
                          health=StepHealth(cfg["learning_rate"]))
    trainer.remove_callback(PrinterCallback)  # stdout may be the worker's channel: events only
    trainer.remove_callback(ProgressCallback)
    log.info("training %d examples for %d epochs: %d steps of %d x %d (batch x accumulation)", len(data.train),
             cfg["num_train_epochs"], total_steps, cfg["per_device_train_batch_size"],
             cfg["gradient_accumulation_steps"])
    _train(trainer, resume, cfg, device)

    state = trainer.state
    if events.stop_command is not None:
        outcome, reason = "stopped", events.stop_command.reason or "user"
    else:
        outcome, reason = "completed", "early_stopping" if events.early_stopped else "completed"
    merged_dir = None
    peak = peak_memory_bytes(device)
    if peak is not None:
        log.info("peak GPU memory allocated while training: %.2f GiB", peak / 1024**3)
    if outcome == "completed" and cfg["use_lora"] and cfg["merge_lora_after_training"]:
        if cfg["quantization_bit"]:  # never into the quantized weights: into the base, loaded again unquantized
            merged_dir = merge_lora_full_precision(trainer.model, tokenizer, cfg["model_dir"], out, emit)
        else:
            merged_dir = merge_lora(trainer.model, tokenizer, out, emit)
        log.info("merged LoRA weights into a full model: %s", merged_dir)
    log.info("training %s at step %d/%d (%s)", outcome, state.global_step, state.max_steps, reason)
    return {"outcome": outcome, "reason": reason, "final_step": int(state.global_step),
            "final_loss": events.last_loss, "merged_dir": merged_dir, "peak_device_memory_bytes": peak}


def _train(trainer: Any, resume: str | None, cfg: dict[str, Any], device: str) -> None:
    """``trainer.train``; a CUDA out-of-memory failure says what to change (worker.describe_failure
    names it "out of memory: ...")."""
    import torch

    try:
        trainer.train(resume_from_checkpoint=resume)
    except torch.OutOfMemoryError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else "CUDA out of memory"
        raise EngineError(f"{device} ran out of memory at batch {cfg['per_device_train_batch_size']} x up to "
                          f"{cfg['max_seq_length']} tokens ({first_line}); {oom_advice(cfg)}") from exc
