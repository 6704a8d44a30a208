"""``run_preference``: one DPO or ORPO run with TRL, inside the training worker like ``run_training``.

Same contract as engine/train.py's ``run_training`` (events through ``emit``, commands through
``poll_command``, the quota gate, pinned paths, staged and paid checkpoints, non-finite checks,
stop/save/resume, TensorBoard, DDP/FSDP through the launcher): the pieces are train.py's, and
the trainers are TRL's ``DPOTrainer`` and (experimental) ``ORPOTrainer`` behind
:class:`~modxd.engine.train.ModxTrainer` (engine/preference_trainers.py).

The policy and its reference, without a second model in memory:

* a new LoRA adapter on ``model_dir``: the reference is ``model_dir`` itself, i.e. the same
  model with the adapter disabled (TRL does this when a PEFT model comes without ref_model);
* ``start_from_checkpoint`` (a LoRA checkpoint of an SFT task): its adapter goes on training and
  TRL keeps a frozen copy of it as the reference adapter (adapter-sized, not model-sized). It is
  continued rather than merged into the base under a new adapter because then a checkpoint stays
  what chat, package and eval already load: one adapter over ``model_dir``; a merged start would
  be a model that exists nowhere on disk (or a full copy per task), and every later step would
  need the SFT adapter stacked under the preference one;
* full fine-tuning (use_lora off): the reference is a second, frozen copy of ``model_dir``.
  ORPO has no reference at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator

from . import train as sft  # first: sets the offline environment before transformers loads
from transformers import EarlyStoppingCallback, TrainingArguments, set_seed  # noqa: E402
from transformers.trainer_callback import PrinterCallback, ProgressCallback  # noqa: E402

from ..params import TrainParams  # noqa: E402
from ..paths import Pinned, pin_input  # noqa: E402
from ..preference_params import DPO, ORPO, PREFERENCE_TYPES  # noqa: E402
from ..protocol import Emit, Poll  # noqa: E402
from ..train_config import TrainConfig  # noqa: E402
from .callbacks import EventLogHandler, route_logs  # noqa: E402
from .data import held_out_indexes  # noqa: E402
from .distributed import checkpoint_store, world_size  # noqa: E402
from .features import check_gpu_features  # noqa: E402
from .checkpoints import adapter_start_problem  # noqa: E402
from .finite import StepHealth, model_weights_problem  # noqa: E402
from .models import (EngineError, Precision, check_max_seq_length, enable_gradient_checkpointing,  # noqa: E402
                     inspect_model_dir, load_model, load_tokenizer, merge_lora, merge_lora_full_precision,
                     resolve_precision)
from ..plan import estimate_steps_per_epoch  # noqa: E402
from .preference_formats import CONVERSATIONAL, PreferencePair, iter_preference_pairs  # noqa: E402
from .quota import QuotaGate  # noqa: E402
from .telemetry import DeviceTelemetry, peak_memory_bytes  # noqa: E402

__all__ = ["run_preference", "read_pairs", "PairData", "trl_args"]

log = logging.getLogger("modxd.engine")


def run_preference(config: TrainConfig | Mapping[str, Any], emit: Emit, poll_command: Poll,
                   quota: QuotaGate | None = None) -> dict:
    """Train as ``config`` says; the result has run_training's keys (outcome, reason, final step/loss, ...).

    ``config`` is the run's :class:`TrainConfig` (or the JSON object a worker received, read back
    through the schema like run_training's): its parameters were typed and checked once, there."""
    run = config if isinstance(config, TrainConfig) else TrainConfig.from_wire(config)
    if run.task_type not in PREFERENCE_TYPES:
        raise EngineError(f"task_type must be dpo or orpo for a preference run (got {run.task_type!r})")
    if quota is None:
        quota = QuotaGate(emit, poll_command, enabled=run.reserve_quota)
        poll_command = quota.poll
    with route_logs(emit, run.params.log_level), _route_trl_logs(emit), contextlib.ExitStack() as pins:
        dirs = sft._pin_paths(run.params, pins)
        start = (pins.enter_context(pin_input("parameter start_from_checkpoint", run.params.start_from_checkpoint))
                 if run.params.start_from_checkpoint else None)
        return _run(run, dirs, start, emit, poll_command, quota)


@contextlib.contextmanager
def _route_trl_logs(emit: Emit) -> Iterator[None]:
    """TRL's warnings (e.g. a chat template that renders a prompt differently alone) as log events;
    no progress bars from ``datasets`` on the worker's stderr."""
    from datasets.utils import logging as datasets_logging

    logger = logging.getLogger("trl")
    handler = EventLogHandler(emit, logging.WARNING)
    logger.addHandler(handler)
    bars = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        logger.removeHandler(handler)
        if bars:
            datasets_logging.enable_progress_bar()


# ----------------------------------------------------------------------------- data

@dataclass
class PairData:
    """The pairs a run trains and evaluates on, prompts explicit (engine/preference_formats.py)."""

    train: list[PreferencePair]
    eval: list[PreferencePair] | None

    @property
    def conversational(self) -> bool:
        return any(p.format == CONVERSATIONAL for p in [*self.train, *(self.eval or [])])


def read_pairs(params: TrainParams) -> PairData:
    """Read, cap (max_samples) and split (eval_split_ratio, seeded like SFT's) the pairs."""
    train: list[PreferencePair] = []
    for _, pair in iter_preference_pairs(params.train_file, "train_file"):
        if params.max_samples and len(train) >= params.max_samples:
            break
        train.append(pair)
    if not train:
        raise EngineError(f"train_file {params.train_file} has no preference pairs")
    held: list[PreferencePair] = []
    if params.eval_file:
        held = [pair for _, pair in iter_preference_pairs(params.eval_file, "eval_file")]
    elif params.eval_split_ratio > 0:
        out = held_out_indexes(len(train), params.eval_split_ratio, params.seed)
        train, held = [p for i, p in enumerate(train) if i not in out], [p for i, p in enumerate(train) if i in out]
    return PairData(train, held or None)


def _dataset(pairs: list[PreferencePair] | None) -> Any:
    from datasets import Dataset

    return None if not pairs else Dataset.from_list([pair.row() for pair in pairs])


# ----------------------------------------------------------------------------- models

def _tokenizer(params: TrainParams, source: str, conversational: bool) -> Any:
    tokenizer = load_tokenizer(source, log.info)
    if params.chat_template:
        tokenizer.chat_template = params.chat_template  # saved with every checkpoint, so inference matches
    if conversational and not tokenizer.chat_template:
        raise EngineError(f"the tokenizer in {source} has no chat template, so conversational pairs cannot be "
                          "formatted; set the chat_template parameter (a Jinja template)")
    return tokenizer


def _continued_adapter(params: TrainParams, start: Pinned, model_dir: str, precision: Precision, tokenizer: Any,
                       emit: Emit) -> Any:
    """``model_dir`` loaded as for a new adapter, with the adapter of ``start_from_checkpoint`` trainable."""
    import json

    from peft import PeftModel

    problem = adapter_start_problem(start.path)
    if problem:
        raise EngineError(f"start_from_checkpoint {start.real} {problem}")
    with open(start.join("adapter_config.json"), encoding="utf-8") as f:
        adapter = json.load(f)
    base = _base_for_adapter(params, model_dir, precision, tokenizer)
    try:
        model = PeftModel.from_pretrained(base, start.path, is_trainable=True)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise EngineError(f"start_from_checkpoint {start.real} does not fit model_dir {params.model_dir}: {exc}") \
            from None
    ours = (params.lora_r, params.lora_alpha, sorted(params.lora_target_modules))
    theirs = (adapter.get("r"), adapter.get("lora_alpha"), sorted(adapter.get("target_modules") or []))
    if ours != theirs:
        sft._warn(emit, "lora_from_checkpoint", f"the adapter of start_from_checkpoint goes on training as it is "
                  f"(r {theirs[0]}, alpha {theirs[1]}, modules {', '.join(map(str, theirs[2]))}); this task's "
                  "lora_r, lora_alpha and lora_target_modules are not used")
    if params.gradient_checkpointing:
        problem = enable_gradient_checkpointing(model, True)
        if problem:
            sft._warn(emit, "gradient_checkpointing_unsupported", problem)
    log.info("continuing the LoRA adapter of %s; its frozen copy is the reference", start.real)
    return model


def _base_for_adapter(params: TrainParams, model_dir: str, precision: Precision, tokenizer: Any) -> Any:
    """``model_dir`` frozen under an adapter, by train._build_model's rules (half precision under AMP,
    quantized for QLoRA), for an adapter that comes from a checkpoint instead of a new one."""
    bits = params.quantization_bit
    dtype = precision.load_dtype_name if precision.fp16 or precision.bf16 else "float32"
    if bits and dtype == "float32":
        dtype = "float16"
    model = load_model(model_dir, dtype, bits)
    problem = model_weights_problem(model)
    if problem:
        raise EngineError(f"model_dir {params.model_dir}: the weights hold {problem}: the model files are damaged "
                          "or were saved by a run that diverged; train another model")
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    if bits:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=params.gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def _reference(params: TrainParams, model_dir: str, policy: Any, tokenizer: Any) -> Any:
    """Full fine-tuning DPO only: a frozen second copy of model_dir (in the policy's dtype)."""
    if params.task_type != DPO or params.use_lora:
        return None
    reference = load_model(model_dir, str(policy.dtype).removeprefix("torch."))
    if len(tokenizer) > reference.get_input_embeddings().weight.shape[0]:
        reference.resize_token_embeddings(len(tokenizer))
    log.info("full fine-tuning: the reference is a second, frozen copy of %s", params.model_dir)
    return reference.eval().requires_grad_(False)


# ----------------------------------------------------------------------------- the run

def trl_args(base: TrainingArguments, params: TrainParams) -> TrainingArguments:
    """train.py's TrainingArguments as TRL's DPOConfig / ORPOConfig, plus the preference settings.

    Gradient checkpointing stays off in the arguments: as in SFT, the engine turns it on in the
    model itself (non-reentrant, input grads for LoRA); TRL re-enables it with these kwargs after
    each reference forward."""
    from trl import DPOConfig
    from trl.experimental.orpo import ORPOConfig

    from .preference_trainers import UNLIMITED

    kwargs = {f.name: getattr(base, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    kwargs["activation_checkpointing_kwargs"] = {"use_reentrant": False}  # mirrored to the old name TRL reads
    if params.task_type == ORPO:
        return ORPOConfig(**kwargs, beta=params.orpo_lambda, max_length=UNLIMITED, disable_dropout=True)
    return DPOConfig(**kwargs, beta=params.beta, loss_type=[params.loss_type], label_smoothing=params.label_smoothing,
                     max_length=params.max_seq_length, truncation_mode="keep_start", disable_dropout=True,
                     precompute_ref_log_probs=False)


def _run(run: TrainConfig, dirs: Any, start: Pinned | None, emit: Emit, poll_command: Poll,
         quota: QuotaGate) -> dict:
    from .preference_trainers import ModxDPOTrainer, ModxORPOTrainer, PreferenceEvents

    params, out = run.params, dirs.out
    info = inspect_model_dir(dirs.model)
    check_max_seq_length(params.max_seq_length, info)
    resume = sft._check_resume(dirs.resume)
    device = sft._check_device(run.device)
    use_liger = check_gpu_features(params, device, info.model_type, lambda code, message: sft._warn(emit, code, message))
    precision = resolve_precision(device, params.fp16, params.bf16, params.tf32, run.fp16_explicit)
    for warning in precision.warnings:
        sft._warn(emit, warning["code"], warning["message"])
    set_seed(params.seed)  # before LoRA init

    pairs = read_pairs(params)
    sft._check_eval_data(params, len(pairs.eval or []))
    tokenizer = _tokenizer(params, dirs.tokenizer, pairs.conversational)
    if start is not None:
        model = _continued_adapter(params, start, dirs.model, precision, tokenizer, emit)
    else:
        model = sft._build_model(params, dirs.model, precision, tokenizer, emit)
    per_epoch = estimate_steps_per_epoch(len(pairs.train), params.per_device_train_batch_size,
                                         params.gradient_accumulation_steps, world_size())
    args = trl_args(sft._training_args(params, out.path, precision, device, per_epoch * params.num_train_epochs,
                                       use_liger, packed=True), params)
    store = checkpoint_store(out, params.save_total_limit, emit)
    events = PreferenceEvents(emit, poll_command, params.save_interval_minutes, params.save_strategy, per_epoch,
                              disable_saves=lambda: setattr(store, "saves_disabled", True),
                              telemetry=DeviceTelemetry(device))
    patience = params.early_stopping_patience
    callbacks: list[Any] = [EarlyStoppingCallback(early_stopping_patience=patience)] if patience else []
    callbacks += sft._ReportedTensorBoard.make(out, emit)
    common = dict(model=model, args=args, train_dataset=_dataset(pairs.train), eval_dataset=_dataset(pairs.eval),
                  processing_class=tokenizer, callbacks=callbacks + [events], store=store, events=events, quota=quota,
                  health=StepHealth(params.learning_rate), max_prompt_length=params.max_prompt_length)
    if params.task_type == DPO:
        trainer = ModxDPOTrainer(ref_model=_reference(params, dirs.model, model, tokenizer),
                                 reference_adapter=start is not None, **common)
        _padding_free(run, trainer.model)
    else:
        trainer = ModxORPOTrainer(max_length=params.max_seq_length, **common)
    for report in trainer.fit_reports:
        for warning in report.warnings(params.max_seq_length, params.max_prompt_length):
            sft._warn(emit, warning["code"], warning["message"])
    if not len(trainer.train_dataset):
        raise EngineError(f"train_file {params.train_file}: no pair keeps an answer token within max_seq_length "
                          f"{params.max_seq_length}; raise max_seq_length or set max_prompt_length")
    if trainer.eval_dataset is not None and not len(trainer.eval_dataset):
        raise EngineError(f"no evaluation pair keeps an answer token within max_seq_length {params.max_seq_length}; "
                          "raise max_seq_length or set max_prompt_length")
    events.steps_per_epoch = estimate_steps_per_epoch(len(trainer.train_dataset), params.per_device_train_batch_size,
                                                      params.gradient_accumulation_steps, world_size())
    trainer.remove_callback(PrinterCallback)  # stdout may be the worker's channel: events only
    trainer.remove_callback(ProgressCallback)
    log.info("%s on %d pairs for %d epochs: %d steps of %d x %d (batch x accumulation)", params.task_type.upper(),
             len(trainer.train_dataset), params.num_train_epochs, events.steps_per_epoch * params.num_train_epochs,
             params.per_device_train_batch_size, params.gradient_accumulation_steps)
    sft._train(trainer, resume, params, device)
    return _result(params, dirs.model, trainer, events, tokenizer, out, emit, device)


def _padding_free(run: TrainConfig, model: Any) -> None:
    """Packed pair batches (engine/preference_packing.py) where the model allows; ORPO keeps TRL's padding."""
    from .preference_packing import padding_free_problem, use_packed_pairs

    problem = padding_free_problem(model) if run.padding_free else "padding_free is off"
    if problem:
        log.info("padded pair batches (no padding-free packing: %s)", problem)
        return
    use_packed_pairs(model)
    log.info("padding-free pair batches: each batch's sequences packed end to end, attention kept within each")


def _result(params: TrainParams, model_dir: str, trainer: Any, events: Any, tokenizer: Any, out: Pinned,
            emit: Emit, device: str) -> dict:
    state = trainer.state
    if events.stop_command is not None:
        outcome, reason = "stopped", events.stop_command.reason or "user"
    else:
        outcome, reason = "completed", "early_stopping" if events.early_stopped else "completed"
    merged_dir = None
    peak = peak_memory_bytes(device)
    if outcome == "completed" and params.use_lora and params.merge_lora_after_training:
        if params.quantization_bit:
            merged_dir = merge_lora_full_precision(trainer.model, tokenizer, model_dir, out, emit)
        else:
            merged_dir = merge_lora(trainer.model, tokenizer, out, emit)
        log.info("merged LoRA weights into a full model: %s", merged_dir)
    log.info("%s %s at step %d/%d (%s)", params.task_type.upper(), outcome, state.global_step, state.max_steps, reason)
    return {"outcome": outcome, "reason": reason, "final_step": int(state.global_step),
            "final_loss": events.last_loss, "merged_dir": merged_dir, "peak_device_memory_bytes": peak}
