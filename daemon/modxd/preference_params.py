"""The parameters of the preference task types (dpo, orpo), in the schema style of params.py.

params.py builds its schema with ``SCHEMA = preference_params.extend(BASE_SCHEMA)``, which
appends :data:`SPECS` and lets the shared parameters (:data:`SHARED_KEYS`) apply to dpo and
orpo with the :data:`TYPE_DEFAULTS` of those types; param_rules.check_consistency calls
:func:`check_preference`. Pure Python: the daemon serves and checks these without torch.
"""
from __future__ import annotations

from dataclasses import replace

from typing import Any, Mapping

from .errors import InvalidArgument, quote
from .param_spec import ParamSpec, Value, _p

DPO, ORPO = "dpo", "orpo"
PREFERENCE_TYPES = (DPO, ORPO)

# TRL 1.16 DPOConfig.loss_type values (its "sft" alone is SFT: use the sft task type for that).
LOSS_TYPES = ("sigmoid", "ipo", "hinge", "robust", "exo_pair", "nca_pair", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm")

SPECS: tuple[ParamSpec, ...] = (
    _p("start_from_checkpoint", "data", "(可选)起始检查点", "Start from checkpoint (optional)",
       "A LoRA checkpoint of an SFT (or earlier preference) task on the same model_dir to start from: its adapter "
       "goes on training, and the model it describes is the reference (kept as a frozen copy of the adapter, "
       "not of the model). Empty: a new adapter on model_dir, whose reference is model_dir itself.",
       "path", "", "optional", applies_to=PREFERENCE_TYPES),
    _p("beta", "preference", "偏好强度 β", "Beta",
       "How far the model may move from the reference: higher keeps it closer (the KL weight of DPO; for ipo, "
       "the regularization τ). Rewards in the metrics are beta x log-probability ratios.",
       "float", 0.1, applies_to=(DPO,), min=0.001, max=10.0),
    _p("loss_type", "preference", "损失类型", "Loss type",
       "The preference loss: sigmoid (DPO), ipo, hinge (SLiC), robust and exo_pair (noisy labels, need "
       "label_smoothing), nca_pair, bco_pair, sppo_hard, aot / aot_unpaired, apo_zero / apo_down, discopop, "
       "sigmoid_norm (length-normalized).", "choice", "sigmoid", "advanced", applies_to=(DPO,), choices=LOSS_TYPES),
    _p("label_smoothing", "preference", "标签平滑", "Label smoothing",
       "The assumed share of pairs whose preference is wrong: used by the robust loss (below 0.5) and "
       "exo_pair (above 0; the EXO paper uses 0.001).", "float", 0.0, "advanced", applies_to=(DPO,),
       min=0.0, max=0.49),
    _p("orpo_lambda", "preference", "ORPO λ", "ORPO lambda",
       "Weight of the odds-ratio term against the SFT loss on the chosen answers (λ of the ORPO paper; TRL's "
       "beta). Rewards in the metrics are lambda x the mean log-probability of an answer.",
       "float", 0.1, applies_to=(ORPO,), min=0.001, max=10.0),
    _p("max_prompt_length", "preference", "最大提示长度", "Max prompt length",
       "Prompts longer than this are cut from the start (the first token kept when it is the bos token), so "
       "that the answers fit in max_seq_length (0 = no limit of its own: pairs longer than max_seq_length "
       "lose the end of their answers).", "int", 0, "advanced", applies_to=PREFERENCE_TYPES, min=0,
       max=131072, unit="tokens"),
)

# Parameters of params.SCHEMA that apply to dpo and orpo as they do to sft. lora_dropout is not one:
# TRL switches dropout off in preference training (the policy and reference log-probabilities must be
# deterministic), so it would have no effect.
SHARED_KEYS: tuple[str, ...] = (
    "train_file", "eval_file", "output_dir", "model_dir", "tokenizer_dir", "resume_from_checkpoint", "max_samples",
    "eval_split_ratio", "per_device_train_batch_size", "gradient_accumulation_steps", "max_seq_length",
    "learning_rate", "optim", "lr_scheduler_type", "num_train_epochs", "weight_decay", "warmup_ratio",
    "max_grad_norm", "save_strategy", "save_steps", "eval_strategy", "eval_steps", "save_total_limit",
    "early_stopping_patience", "save_interval_minutes", "use_lora", "lora_r", "lora_alpha", "lora_target_modules",
    "merge_lora_after_training", "chat_template", "fp16", "bf16", "tf32", "quantization_bit", "use_liger_kernel",
    "gradient_checkpointing", "log_level", "logging_steps", "devices", "distributed_strategy", "nnodes",
    "rdzv_endpoint", "seed",
)

# Preference tuning moves a trained policy a little: smaller steps than SFT's 2e-4 (TRL's examples use
# 5e-7 .. 5e-6 for full weights, about ten times that for LoRA adapters), one pass over the pairs.
TYPE_DEFAULTS: dict[str, dict[str, Value]] = {
    "learning_rate": {DPO: 5e-5, ORPO: 5e-5},
    "num_train_epochs": {DPO: 1, ORPO: 1},
    "use_lora": {DPO: True, ORPO: True},
}

# The training data's label and help for these types (the schema's train_file text names SFT formats).
TRAIN_FILE_HELP = ("JSONL of preference pairs in TRL's formats: standard {\"prompt\", \"chosen\", \"rejected\"} as "
                   "strings, or conversational: \"prompt\" as messages, \"chosen\"/\"rejected\" as one assistant "
                   "message each (a prompt shared by both answers may stay inside them).")


def extend(schema: tuple[ParamSpec, ...]) -> tuple[ParamSpec, ...]:
    """``schema`` with the shared parameters applying to dpo and orpo, plus :data:`SPECS`."""
    known = {spec.key for spec in schema}
    missing = [key for key in (*SHARED_KEYS, *TYPE_DEFAULTS) if key not in known]
    if missing:
        raise KeyError(f"preference parameters refer to unknown schema keys: {', '.join(missing)}")
    out = []
    for spec in schema:
        if spec.key in SHARED_KEYS:
            type_defaults = {**spec.type_defaults, **TYPE_DEFAULTS.get(spec.key, {})}
            type_help = {**spec.type_help, **({t: TRAIN_FILE_HELP for t in PREFERENCE_TYPES}
                                              if spec.key in ("train_file", "eval_file") else {})}
            spec = replace(spec, applies_to=(*spec.applies_to, *PREFERENCE_TYPES), type_defaults=type_defaults,
                           type_help=type_help)
        out.append(spec)
    return (*out, *SPECS)


def check_preference(params: Mapping[str, Any], task_type: str) -> None:
    """Rules between the preference parameters (params.check_consistency calls this for dpo and orpo)."""
    if task_type not in PREFERENCE_TYPES:
        return
    prompt = int(params.get("max_prompt_length", 0) or 0)
    total = int(params.get("max_seq_length", 512) or 512)
    if prompt and prompt >= total:
        raise InvalidArgument(f"parameter max_prompt_length ({prompt}) must be below max_seq_length ({total}): "
                              "the answers need room after the prompt")
    if task_type == DPO:
        loss = str(params.get("loss_type", "sigmoid"))
        smoothing = float(params.get("label_smoothing", 0.0) or 0.0)
        if loss == "exo_pair" and smoothing <= 0:
            raise InvalidArgument("parameter loss_type exo_pair needs label_smoothing above 0 (the EXO paper "
                                  "uses 0.001)")
        if smoothing and loss not in ("robust", "exo_pair"):
            raise InvalidArgument(f"parameter label_smoothing is used by the robust and exo_pair losses only, not "
                                  f"by {quote(loss)}; leave it at 0")
    if params.get("start_from_checkpoint") and not params.get("use_lora", True):
        raise InvalidArgument("parameter start_from_checkpoint continues a LoRA adapter, so it needs use_lora; "
                              "to start from a full model, set model_dir to it")
