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
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from . import train as sft  # first: sets the offline environment before transformers loads
from transformers import EarlyStoppingCallback, TrainingArguments, set_seed  # noqa: E402
from transformers.trainer_callback import PrinterCallback, ProgressCallback  # noqa: E402

from ..errors import InvalidArgument  # noqa: E402
from ..params import coerce  # noqa: E402
from ..paths import Pinned, pin_input  # noqa: E402
from ..preference_params import DPO, ORPO, PREFERENCE_TYPES, SPECS, TYPE_DEFAULTS, check_preference  # noqa: E402
from .callbacks import EventLogHandler, route_logs  # noqa: E402
from .data import held_out_indexes  # noqa: E402
from .distributed import checkpoint_store, world_size  # noqa: E402
from .features import check_gpu_features  # noqa: E402
from .finite import StepHealth, checkpoint_weights_problem, model_weights_problem  # noqa: E402
from .models import (EngineError, Precision, check_max_seq_length, enable_gradient_checkpointing,  # noqa: E402
                     inspect_model_dir, load_model, load_tokenizer, merge_lora, merge_lora_full_precision,
                     resolve_precision)
from .plan import estimate_steps_per_epoch  # noqa: E402
from .preference_formats import CONVERSATIONAL, PreferencePair, iter_preference_pairs  # noqa: E402
from .quota import QuotaGate  # noqa: E402
from .telemetry import DeviceTelemetry, peak_memory_bytes  # noqa: E402

__all__ = ["run_preference", "normalize_preference_config", "read_pairs", "PairData"]

log = logging.getLogger("modxd.engine")
_SPECS = {spec.key: spec for spec in SPECS}


def normalize_preference_config(config: dict[str, Any]) -> dict[str, Any]:
    """SFT's engine config rules for the shared keys, the preference specs for the rest; EngineError."""
    task = str(config.get("task_type") or "")
    if task not in PREFERENCE_TYPES:
        raise EngineError(f"task_type must be dpo or orpo for a preference run (got {task!r})")
    given = {key: value for key, value in config.items() if value is not None}
    defaults = {key: by_type[task] for key, by_type in TYPE_DEFAULTS.items()}
    cfg = sft.normalize_config({**defaults, **{k: v for k, v in given.items() if k not in _SPECS}, "task_type": "sft"})
    cfg["task_type"] = task
    try:
        for spec in SPECS:
            if task in spec.applies_to:
                cfg[spec.key] = coerce(spec, given.get(spec.key, spec.default_for(task)))
        check_preference(cfg, task)
    except InvalidArgument as exc:
        raise EngineError(str(exc)) from None
    return cfg


def run_preference(config: dict, emit: Callable[[dict], None], poll_command: Callable[..., dict | None],
                   quota: QuotaGate | None = None) -> dict:
    """Train as ``config`` says; the result has run_training's keys (outcome, reason, final step/loss, ...)."""
    cfg = normalize_preference_config(config)
    if quota is None:
        quota = QuotaGate(emit, poll_command, enabled=cfg["reserve_quota"])
        poll_command = quota.poll
    with route_logs(emit, cfg["log_level"]), _route_trl_logs(emit), contextlib.ExitStack() as pins:
        return _run(_pin(cfg, pins), emit, poll_command, quota)


@contextlib.contextmanager
def _route_trl_logs(emit: Callable[[dict], None]) -> Iterator[None]:
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


def _pin(cfg: dict[str, Any], pins: contextlib.ExitStack) -> dict[str, Any]:
    out = sft._pin_paths(cfg, pins)
    if cfg["start_from_checkpoint"]:
        out["start_from_checkpoint"] = pins.enter_context(
            pin_input("parameter start_from_checkpoint", cfg["start_from_checkpoint"]))
    return out


# ----------------------------------------------------------------------------- data

@dataclass
class PairData:
    """The pairs a run trains and evaluates on, prompts explicit (engine/preference_formats.py)."""

    train: list[PreferencePair]
    eval: list[PreferencePair] | None

    @property
    def conversational(self) -> bool:
        return any(p.format == CONVERSATIONAL for p in [*self.train, *(self.eval or [])])


def read_pairs(cfg: dict[str, Any]) -> PairData:
    """Read, cap (max_samples) and split (eval_split_ratio, seeded like SFT's) the pairs."""
    train: list[PreferencePair] = []
    for _, pair in iter_preference_pairs(cfg["train_file"], "train_file"):
        if cfg["max_samples"] and len(train) >= cfg["max_samples"]:
            break
        train.append(pair)
    if not train:
        raise EngineError(f"train_file {cfg['train_file']} has no preference pairs")
    held: list[PreferencePair] = []
    if cfg["eval_file"]:
        held = [pair for _, pair in iter_preference_pairs(cfg["eval_file"], "eval_file")]
    elif cfg["eval_split_ratio"] > 0:
        out = held_out_indexes(len(train), cfg["eval_split_ratio"], cfg["seed"])
        train, held = [p for i, p in enumerate(train) if i not in out], [p for i, p in enumerate(train) if i in out]
    return PairData(train, held or None)


def _dataset(pairs: list[PreferencePair] | None) -> Any:
    from datasets import Dataset

    return None if not pairs else Dataset.from_list([pair.row() for pair in pairs])


# ----------------------------------------------------------------------------- models

def _tokenizer(cfg: dict[str, Any], conversational: bool) -> Any:
    source = cfg["tokenizer_dir"] or cfg["model_dir"]
    tokenizer = load_tokenizer(source, log.info)
    if cfg["chat_template"]:
        tokenizer.chat_template = cfg["chat_template"]  # saved with every checkpoint, so inference matches
    if conversational and not tokenizer.chat_template:
        raise EngineError(f"the tokenizer in {source} has no chat template, so conversational pairs cannot be "
                          "formatted; set the chat_template parameter (a Jinja template)")
    return tokenizer


def _continued_adapter(cfg: dict[str, Any], precision: Precision, tokenizer: Any,
                       emit: Callable[[dict], None]) -> Any:
    """``model_dir`` loaded as for a new adapter, with the adapter of ``start_from_checkpoint`` trainable."""
    import json

    from peft import PeftModel

    start: Pinned = cfg["start_from_checkpoint"]
    if not os.path.isfile(start.join("adapter_config.json")):
        full = os.path.isfile(start.join("config.json"))
        raise EngineError(f"start_from_checkpoint {start.real} is not a LoRA checkpoint (no adapter_config.json)"
                          + ("; it is a full model: set model_dir to it instead" if full else ""))
    problem = checkpoint_weights_problem(start.path)
    if problem:
        raise EngineError(f"start_from_checkpoint {start.real}: {problem}; start from another checkpoint")
    with open(start.join("adapter_config.json"), encoding="utf-8") as f:
        adapter = json.load(f)
    base = _base_for_adapter(cfg, precision, tokenizer)
    try:
        model = PeftModel.from_pretrained(base, start.path, is_trainable=True)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise EngineError(f"start_from_checkpoint {start.real} does not fit model_dir {cfg['model_dir']}: {exc}") \
            from None
    ours = (cfg["lora_r"], cfg["lora_alpha"], sorted(cfg["lora_target_modules"]))
    theirs = (adapter.get("r"), adapter.get("lora_alpha"), sorted(adapter.get("target_modules") or []))
    if ours != theirs:
        sft._warn(emit, "lora_from_checkpoint", f"the adapter of start_from_checkpoint goes on training as it is "
                  f"(r {theirs[0]}, alpha {theirs[1]}, modules {', '.join(map(str, theirs[2]))}); this task's "
                  "lora_r, lora_alpha and lora_target_modules are not used")
    if cfg["gradient_checkpointing"]:
        problem = enable_gradient_checkpointing(model, True)
        if problem:
            sft._warn(emit, "gradient_checkpointing_unsupported", problem)
    log.info("continuing the LoRA adapter of %s; its frozen copy is the reference", start.real)
    return model


def _base_for_adapter(cfg: dict[str, Any], precision: Precision, tokenizer: Any) -> Any:
    """``model_dir`` frozen under an adapter, by train._build_model's rules (half precision under AMP,
    quantized for QLoRA), for an adapter that comes from a checkpoint instead of a new one."""
    bits = cfg["quantization_bit"]
    dtype = precision.load_dtype_name if precision.fp16 or precision.bf16 else "float32"
    if bits and dtype == "float32":
        dtype = "float16"
    model = load_model(cfg["model_dir"], dtype, bits)
    problem = model_weights_problem(model)
    if problem:
        raise EngineError(f"model_dir {cfg['model_dir']}: the weights hold {problem}: the model files are damaged "
                          "or were saved by a run that diverged; train another model")
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    if bits:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg["gradient_checkpointing"],
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def _policy(cfg: dict[str, Any], precision: Precision, tokenizer: Any, emit: Callable[[dict], None]) -> Any:
    if cfg["start_from_checkpoint"]:
        return _continued_adapter(cfg, precision, tokenizer, emit)
    return sft._build_model(cfg, precision, tokenizer, emit)


def _reference(cfg: dict[str, Any], policy: Any, tokenizer: Any) -> Any:
    """Full fine-tuning DPO only: a frozen second copy of model_dir (in the policy's dtype)."""
    if cfg["task_type"] != DPO or cfg["use_lora"]:
        return None
    reference = load_model(cfg["model_dir"], str(policy.dtype).removeprefix("torch."))
    if len(tokenizer) > reference.get_input_embeddings().weight.shape[0]:
        reference.resize_token_embeddings(len(tokenizer))
    log.info("full fine-tuning: the reference is a second, frozen copy of %s", cfg["model_dir"])
    return reference.eval().requires_grad_(False)


# ----------------------------------------------------------------------------- the run

def trl_args(base: TrainingArguments, cfg: dict[str, Any]) -> TrainingArguments:
    """train.py's TrainingArguments as TRL's DPOConfig / ORPOConfig, plus the preference settings.

    Gradient checkpointing stays off in the arguments: as in SFT, the engine turns it on in the
    model itself (non-reentrant, input grads for LoRA); TRL re-enables it with these kwargs after
    each reference forward."""
    from trl import DPOConfig
    from trl.experimental.orpo import ORPOConfig

    from .preference_trainers import UNLIMITED

    kwargs = {f.name: getattr(base, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    kwargs["activation_checkpointing_kwargs"] = {"use_reentrant": False}  # mirrored to the old name TRL reads
    if cfg["task_type"] == ORPO:
        return ORPOConfig(**kwargs, beta=cfg["orpo_lambda"], max_length=UNLIMITED, disable_dropout=True)
    return DPOConfig(**kwargs, beta=cfg["beta"], loss_type=[cfg["loss_type"]], label_smoothing=cfg["label_smoothing"],
                     max_length=cfg["max_seq_length"], truncation_mode="keep_start", disable_dropout=True,
                     precompute_ref_log_probs=False)


def _run(cfg: dict[str, Any], emit: Callable[[dict], None], poll_command: Callable[[], dict | None],
         quota: QuotaGate) -> dict:
    from .preference_trainers import ModxDPOTrainer, ModxORPOTrainer, PreferenceEvents

    out: Pinned = cfg["output_pin"]
    info = inspect_model_dir(cfg["model_dir"])
    check_max_seq_length(cfg["max_seq_length"], info)
    resume = sft._check_resume(cfg["resume_from_checkpoint"] or None)
    device = sft._check_device(cfg["device"])
    check_gpu_features(cfg, device, info.model_type, lambda code, message: sft._warn(emit, code, message))
    precision = resolve_precision(device, cfg["fp16"], cfg["bf16"], cfg["tf32"], cfg["fp16_explicit"])
    for warning in precision.warnings:
        sft._warn(emit, warning["code"], warning["message"])
    set_seed(cfg["seed"])  # before LoRA init

    pairs = read_pairs(cfg)
    tokenizer = _tokenizer(cfg, pairs.conversational)
    model = _policy(cfg, precision, tokenizer, emit)
    eval_strategy, patience = sft._eval_plan(cfg, pairs.eval is not None, emit)
    per_epoch = estimate_steps_per_epoch(len(pairs.train), cfg["per_device_train_batch_size"],
                                         cfg["gradient_accumulation_steps"], world_size())
    args = trl_args(sft._training_args({**cfg, "output_dir": out.path}, precision, device, eval_strategy, patience,
                                       per_epoch * cfg["num_train_epochs"], packed=True), cfg)
    store = checkpoint_store(out, cfg["save_total_limit"], emit)
    events = PreferenceEvents(emit, poll_command, cfg["save_interval_minutes"], cfg["save_strategy"], per_epoch,
                              disable_saves=lambda: setattr(store, "saves_disabled", True),
                              telemetry=DeviceTelemetry(device))
    callbacks: list[Any] = [EarlyStoppingCallback(early_stopping_patience=patience)] if patience else []
    callbacks += sft._ReportedTensorBoard.make(out, emit)
    common = dict(model=model, args=args, train_dataset=_dataset(pairs.train), eval_dataset=_dataset(pairs.eval),
                  processing_class=tokenizer, callbacks=callbacks + [events], store=store, events=events, quota=quota,
                  health=StepHealth(cfg["learning_rate"]), max_prompt_length=cfg["max_prompt_length"])
    if cfg["task_type"] == DPO:
        trainer = ModxDPOTrainer(ref_model=_reference(cfg, model, tokenizer),
                                 reference_adapter=bool(cfg["start_from_checkpoint"]), **common)
    else:
        trainer = ModxORPOTrainer(max_length=cfg["max_seq_length"], **common)
    if cfg["task_type"] == DPO:
        _padding_free(cfg, trainer.model)
    for report in trainer.fit_reports:
        for warning in report.warnings(cfg["max_seq_length"], cfg["max_prompt_length"]):
            sft._warn(emit, warning["code"], warning["message"])
    if not len(trainer.train_dataset):
        raise EngineError(f"train_file {cfg['train_file']}: no pair keeps an answer token within max_seq_length "
                          f"{cfg['max_seq_length']}; raise max_seq_length or set max_prompt_length")
    if trainer.eval_dataset is not None and not len(trainer.eval_dataset):
        raise EngineError(f"no evaluation pair keeps an answer token within max_seq_length {cfg['max_seq_length']}; "
                          "raise max_seq_length or set max_prompt_length")
    events.steps_per_epoch = estimate_steps_per_epoch(len(trainer.train_dataset), cfg["per_device_train_batch_size"],
                                                      cfg["gradient_accumulation_steps"], world_size())
    trainer.remove_callback(PrinterCallback)  # stdout may be the worker's channel: events only
    trainer.remove_callback(ProgressCallback)
    log.info("%s on %d pairs for %d epochs: %d steps of %d x %d (batch x accumulation)", cfg["task_type"].upper(),
             len(trainer.train_dataset), cfg["num_train_epochs"], events.steps_per_epoch * cfg["num_train_epochs"],
             cfg["per_device_train_batch_size"], cfg["gradient_accumulation_steps"])
    sft._train(trainer, resume, cfg, device)
    return _result(cfg, trainer, events, tokenizer, out, emit, device)


def _padding_free(cfg: dict[str, Any], model: Any) -> None:
    """Packed pair batches (engine/preference_packing.py) where the model allows; ORPO keeps TRL's padding."""
    from .preference_packing import padding_free_problem, use_packed_pairs

    problem = padding_free_problem(model) if cfg["padding_free"] else "padding_free is off"
    if problem:
        log.info("padded pair batches (no padding-free packing: %s)", problem)
        return
    use_packed_pairs(model)
    log.info("padding-free pair batches: each batch's sequences packed end to end, attention kept within each")


def _result(cfg: dict[str, Any], trainer: Any, events: Any, tokenizer: Any, out: Pinned,
            emit: Callable[[dict], None], device: str) -> dict:
    state = trainer.state
    if events.stop_command is not None:
        outcome, reason = "stopped", str(events.stop_command.get("reason") or "user")
    else:
        outcome, reason = "completed", "early_stopping" if events.early_stopped else "completed"
    merged_dir = None
    peak = peak_memory_bytes(device)
    if outcome == "completed" and cfg["use_lora"] and cfg["merge_lora_after_training"]:
        if cfg["quantization_bit"]:
            merged_dir = merge_lora_full_precision(trainer.model, tokenizer, cfg["model_dir"], out, emit)
        else:
            merged_dir = merge_lora(trainer.model, tokenizer, out, emit)
        log.info("merged LoRA weights into a full model: %s", merged_dir)
    log.info("%s %s at step %d/%d (%s)", cfg["task_type"].upper(), outcome, state.global_step, state.max_steps, reason)
    return {"outcome": outcome, "reason": reason, "final_step": int(state.global_step),
            "final_loss": events.last_loss, "merged_dir": merged_dir, "peak_device_memory_bytes": peak}
