"""Every training parameter of SPEC.md section 2, with its schema, and the rules
that turn client input (often strings) into a task's typed parameters.

The schema is data: the GetParamSchema RPC serves it so a front end renders the
form (and modxctl learns which keys are paths), and `resolve()` applies it, so the
two can never disagree. `resolve()` returns a `TrainParams`: frozen, every value
typed and range-checked, the cross-parameter rules (param_rules.py) met. It is what
a task stores, what validation.py checks on disk and what the training worker runs
(train_config.py), so the engine never coerces a parameter again.

A task type is an entry of TASK_TYPES, and its parameters are SCHEMA entries whose
`applies_to` names it; nothing else in this module changes for a new type.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from collections.abc import Iterator, Mapping
from typing import Any

from . import fields
from .errors import InvalidArgument, quote
from .param_rules import check_consistency
from .param_spec import BOTH, PRETRAIN, SFT, ParamSpec, Value, _p
from .paths import check_path_text
from .preference_params import DPO, ORPO, PREFERENCE_TYPES, extend  # noqa: F401 - P.PREFERENCE_TYPES


@dataclass(frozen=True)
class TaskType:
    """A kind of training task: its name on the wire and what it asks of the data."""

    name: str
    description: str  # the built-in template's description
    chat_template: bool  # its data are conversations, formatted with the tokenizer's chat template


TASK_TYPES: dict[str, TaskType] = {
    SFT: TaskType(SFT, "supervised fine-tuning (LoRA)", chat_template=True),
    PRETRAIN: TaskType(PRETRAIN, "continued pretraining (full)", chat_template=False),
    # Preference pairs may be plain strings (standard) or messages (conversational): the data check
    # asks for a chat template only when the file holds conversations (engine/preference_formats.py).
    DPO: TaskType(DPO, "preference tuning: DPO (LoRA)", chat_template=False),
    ORPO: TaskType(ORPO, "preference tuning: ORPO, no reference model (LoRA)", chat_template=False),
}
ALL_TYPES = tuple(TASK_TYPES)
FOLD_GROUPS = ("", "optional", "advanced", "optimization", "save", "eval")


BASE_SCHEMA: tuple[ParamSpec, ...] = (
    # data
    _p("train_file", "data", "训练数据文件路径", "Training data file",
       "JSONL on the daemon host: conversations for SFT (messages, Alpaca or ShareGPT), "
       "{\"text\": ...} lines or a .txt file for pretraining.", "path", "", required=True),
    _p("eval_file", "data", "(可选)评估数据文件路径", "Evaluation data file (optional)",
       "Same format as the training file; used by eval_strategy and evaluations.", "path", "", "optional"),
    _p("output_dir", "data", "训练输出目录", "Output directory",
       "Checkpoints, TensorBoard logs, evaluations and packages go here.", "path", "", required=True),
    _p("model_dir", "data", "训练模型目录", "Model directory",
       "A Hugging Face model dir with config.json and *.safetensors (a .gguf file is for "
       "inference only; import it first with PackageService.ImportGguf, `modxctl models import-gguf`).", "path", "", required=True),
    _p("tokenizer_dir", "data", "(可选)分词器路径", "Tokenizer directory (optional)",
       "Defaults to the model's own tokenizer.", "path", "", "optional"),
    _p("resume_from_checkpoint", "data", "(可选)恢复训练检查点路径", "Resume from checkpoint (optional)",
       "A checkpoint dir to continue from: optimizer, scheduler, RNG and data position are restored.",
       "path", "", "optional"),
    _p("max_samples", "data", "最大样本数", "Max samples",
       "Use at most this many training examples (0 = all).", "int", 0, "optional", min=0, max=100_000_000),
    _p("eval_split_ratio", "data", "评估集采样比例", "Eval split ratio",
       "Fraction of the training set held out for evaluation when there is no eval file (0 = none).",
       "float", 0.0, "eval", min=0.0, max=0.9),
    # training
    _p("per_device_train_batch_size", "training", "批次大小", "Batch size per device",
       "Examples per forward pass on each device.", "int", 2, min=1, max=128),
    _p("gradient_accumulation_steps", "training", "梯度累积步数", "Gradient accumulation steps",
       "Forward passes per optimizer step; effective batch = batch size x this x devices.",
       "int", 4, min=1, max=256),
    _p("max_seq_length", "training", "最大序列长度", "Max sequence length",
       "Longer examples are truncated; pretraining text is cut into blocks of this many tokens.",
       "int", 512, min=16, max=131072, unit="tokens"),
    _p("learning_rate", "training", "学习率", "Learning rate", "Peak learning rate."
       " SFT: when neither the request nor a named template sets it, modx picks it from the data (docs/training.md).",
       "float", 2e-4, min=1e-6, max=1e-1),
    _p("optim", "training", "优化器", "Optimizer", "Optimizer used by the Trainer.", "choice",
       "adamw_torch", "advanced",
       choices=("adamw_torch", "adamw_torch_fused", "adafactor", "sgd", "adagrad", "rmsprop")),
    _p("lr_scheduler_type", "training", "学习率调度器", "LR scheduler", "Shape of the learning-rate curve.",
       "choice", "cosine", "advanced",
       choices=("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                "constant_with_warmup", "inverse_sqrt")),
    _p("num_train_epochs", "training", "训练轮数", "Epochs", "Passes over the training data."
       " SFT: when neither the request nor a named template sets it, modx picks it from the data (docs/training.md).",
       "int", 2, min=1, max=100),
    _p("weight_decay", "training", "权重衰减", "Weight decay", "Decoupled weight decay.",
       "float", 0.01, "advanced", min=0.0, max=1.0),
    _p("warmup_ratio", "training", "预热比例", "Warmup ratio",
       "Fraction of the total steps spent warming the learning rate up.", "float", 0.1, "advanced",
       min=0.0, max=1.0),
    _p("max_grad_norm", "training", "最大梯度范数", "Max gradient norm",
       "Gradients are clipped to this norm (0 = no clipping).", "float", 1.0, "advanced", min=0.0, max=1000.0),
    _p("save_strategy", "training", "保存策略", "Save strategy",
       "When to save checkpoints; a final checkpoint is always saved at the end unless the last "
       "step was just saved. Each checkpoint costs one quota unit.", "choice", "steps", "save",
       choices=("steps", "epoch", "no")),
    _p("save_steps", "training", "保存步数", "Save steps", "Save every this many optimizer steps.",
       "int", 100, "save", min=1, max=10_000_000),
    _p("eval_strategy", "training", "评估策略", "Eval strategy",
       "When to compute the eval loss (needs an eval file or an eval split).", "choice", "no", "eval",
       choices=("steps", "epoch", "no")),
    _p("eval_steps", "training", "评估步数", "Eval steps", "Evaluate every this many steps.",
       "int", 100, "eval", min=1, max=10_000_000),
    _p("save_total_limit", "training", "最大保存检查点", "Max checkpoints kept",
       "Older checkpoint files beyond this are deleted (their records stay); 0 = keep all.",
       "int", 100, "save", min=0, max=100_000),
    _p("early_stopping_patience", "training", "早停步数", "Early stopping patience",
       "Stop after this many evaluations without improvement of the eval loss (0 = off).",
       "int", 0, "eval", min=0, max=10_000),
    _p("save_interval_minutes", "training", "保存间隔分钟", "Save interval (minutes)",
       "Also save a checkpoint every this many minutes of training (0 = off).", "float", 0.0, "save",
       min=0.0, max=10_080.0, unit="min"),
    # lora
    _p("use_lora", "lora", "使用LoRA微调", "Use LoRA",
       "Train a low-rank adapter instead of all weights.", "bool", True, applies_to=BOTH,
       type_defaults={PRETRAIN: False}),
    _p("lora_r", "lora", "LoRA秩", "LoRA rank", "Rank of the adapter matrices.", "int", 16,
       applies_to=(SFT,), min=1, max=512),
    _p("lora_alpha", "lora", "LoRA缩放系数", "LoRA alpha", "Scaling: the update is multiplied by alpha / r.",
       "int", 16, applies_to=(SFT,), min=1, max=4096),
    _p("lora_dropout", "lora", "LoRA丢弃率", "LoRA dropout", "Dropout on the adapter input.", "float", 0.0,
       "advanced", applies_to=(SFT,), min=0.0, max=1.0),
    _p("lora_target_modules", "lora", "LoRA目标模块", "LoRA target modules",
       "Module names to adapt, or all-linear."
       " SFT: when neither the request nor a named template sets it, modx picks it from the data (docs/training.md).", "string_list", ["q_proj", "v_proj"], "advanced",
       applies_to=(SFT,)),
    _p("merge_lora_after_training", "lora", "训练后合并LoRA权重", "Merge LoRA after training",
       "Also write a merged full model to <output_dir>/merged.", "bool", False, "advanced", applies_to=(SFT,)),
    _p("chat_template", "data", "对话模板", "Chat template",
       "Jinja chat template used when the tokenizer has none (empty = the tokenizer's).",
       "string", "", "advanced", applies_to=(SFT,), max_chars=100_000, allow="\n\t\r"),
    # optimization
    _p("fp16", "optimization", "使用FP16混合精度", "FP16 mixed precision",
       "Falls back to FP32 with a warning on a CPU or a GPU without FP16.", "bool", True, "optimization"),
    _p("bf16", "optimization", "使用BF16混合精度", "BF16 mixed precision",
       "NVIDIA Ampere or newer; wins over fp16 when both are on.", "bool", False, "optimization"),
    _p("tf32", "optimization", "使用TF32", "TF32 matmul", "NVIDIA Ampere or newer.", "bool", False,
       "optimization"),
    _p("quantization_bit", "optimization", "量化位数 (QLoRA)", "Quantization bits (QLoRA)",
       "Load the frozen base weights quantized for LoRA training: 4 = QLoRA (NF4, double quantization), "
       "8 = LLM.int8(), 0 = off. Needs use_lora, a CUDA GPU and the bitsandbytes package; about a quarter "
       "of the base weights' 16-bit memory at 4 bits, somewhat slower per step.", "int", 0, "optimization",
       min=0, max=8, unit="bits"),
    _p("use_liger_kernel", "optimization", "使用Liger融合算子", "Liger fused kernels",
       "Fused Triton kernels (liger-kernel) for RMSNorm, RoPE, SwiGLU and the loss of supported model "
       "families (Llama, Qwen2, Mistral, Gemma, ...); less memory, often faster. CUDA only: ignored with a "
       "warning on the CPU.", "bool", False, "optimization"),
    _p("gradient_checkpointing", "optimization", "梯度检查点", "Gradient checkpointing",
       "Recompute activations in the backward pass: less memory, about 30% slower.", "bool", True,
       "optimization"),
    # logging
    _p("log_level", "logging", "日志级别", "Log level", "Verbosity of the task log.", "choice", "info",
       "advanced", choices=("debug", "info", "warning", "error")),
    _p("logging_steps", "logging", "日志记录步数", "Logging steps",
       "Record a metrics point every this many steps.", "int", 10, "advanced", min=1, max=100_000),
    # distributed (docs/distributed.md)
    _p("devices", "distributed", "训练设备", "Devices",
       "Devices the task trains on: a count (2 = any two free GPUs; on a host without GPUs, that many "
       "processes on the CPU), GPU ids (cuda:1, or 0,1 / cuda:0,cuda:1), or auto (every training device of the "
       "host). With more than one, one process per device trains data-parallel; the task waits in the "
       "queue until all of them are free.", "string", "1", "advanced"),
    _p("distributed_strategy", "distributed", "分布式策略", "Distribution strategy",
       "With several devices: ddp keeps a full copy of the model on each device; fsdp shards weights, "
       "gradients and optimizer state over them (for models that do not fit one device).", "choice", "ddp",
       "advanced", choices=("ddp", "fsdp")),
    _p("nnodes", "distributed", "节点数", "Hosts",
       "Hosts the task spans (each runs the same number of processes); above 1 the other hosts join with "
       "torchrun (docs/distributed.md) and the model, data and output dirs must be shared storage.",
       "int", 1, "advanced", min=1, max=256),
    _p("rdzv_endpoint", "distributed", "汇合地址", "Rendezvous endpoint",
       "host:port on this daemon's host that the other hosts reach (the launcher's rendezvous); "
       "needed when nnodes is above 1.", "string", "", "advanced"),
    # general
    _p("seed", "general", "随机种子", "Seed", "Seed for data order, splits and initialisation.", "int", 42,
       "advanced", min=0, max=999_999),
)

# The preference types (dpo, orpo) share most of SFT's parameters and add their own.
SCHEMA: tuple[ParamSpec, ...] = extend(BASE_SCHEMA)
BY_KEY: dict[str, ParamSpec] = {s.key: s for s in SCHEMA}
MAX_LIST_ITEMS = 256
PATH_KEYS = tuple(s.key for s in SCHEMA if s.type == "path")


def specs_for(task_type: str) -> list[ParamSpec]:
    return [s for s in SCHEMA if task_type in s.applies_to]


def defaults_for(task_type: str) -> dict[str, Value]:
    return {s.key: s.default_for(task_type) for s in specs_for(task_type)}


def check_task_type(task_type: str) -> str:
    if task_type not in TASK_TYPES:
        raise InvalidArgument(f"type must be {' or '.join(TASK_TYPES)}, got {quote(task_type)}")
    return task_type


def needs_chat_template(task_type: str) -> bool:
    """Whether the type's data are conversations, which only a chat template formats."""
    return TASK_TYPES[task_type].chat_template


def coerce(spec: ParamSpec, raw: Any) -> Value:
    """Convert a client value (typed or string) to the spec's type and check its range."""
    key = spec.key
    value: Value
    if spec.type == "bool":
        if isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and raw.strip().lower() in ("true", "1", "yes", "on"):
            value = True
        elif isinstance(raw, str) and raw.strip().lower() in ("false", "0", "no", "off"):
            value = False
        else:
            raise InvalidArgument(f"parameter {key} must be true or false, got {quote(raw)}")
    elif spec.type == "int":
        try:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            value = int(raw) if not isinstance(raw, str) else int(raw.strip())
        except (TypeError, ValueError):
            raise InvalidArgument(f"parameter {key} must be an integer, got {quote(raw)}") from None
    elif spec.type == "float":
        try:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
        except (TypeError, ValueError):
            raise InvalidArgument(f"parameter {key} must be a number, got {quote(raw)}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidArgument(f"parameter {key} must be a finite number, got {quote(raw)}")
    elif spec.type == "string_list":
        if isinstance(raw, str):
            fields.check_text(raw, f"parameter {key}", spec.max_chars * MAX_LIST_ITEMS)
            value = [p.strip() for p in raw.split(",") if p.strip()]
        elif isinstance(raw, (list, tuple)) and all(isinstance(v, str) for v in raw):
            value = [v.strip() for v in raw if v.strip()]
        else:
            raise InvalidArgument(f"parameter {key} must be a list of names, got {quote(raw)}")
        if not value:
            raise InvalidArgument(f"parameter {key} must name at least one module")
        fields.check_count(value, f"parameter {key}", MAX_LIST_ITEMS)
        for item in value:
            fields.check_text(item, f"parameter {key}", spec.max_chars)
    else:  # string, path, choice
        if spec.type == "string" and isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)  # e.g. devices=2 sent as a number
        if not isinstance(raw, str):
            raise InvalidArgument(f"parameter {key} must be a string, got {quote(raw)}")
        value = raw.strip() if spec.type != "string" else raw
        if spec.type == "choice":
            if value not in spec.choices:
                raise InvalidArgument(
                    f"parameter {key} must be one of {', '.join(spec.choices)}, got {quote(raw)}")
        elif spec.type == "path":
            check_path_text(f"parameter {key}", raw)
        else:
            fields.check_text(raw, f"parameter {key}", spec.max_chars, spec.allow)
    if spec.min is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not spec.min <= value <= spec.max:
            raise InvalidArgument(
                f"parameter {key} must be between {spec.min:g} and {spec.max:g}, got {quote(value)}")
    return value


class TrainParams(Mapping[str, Value]):
    """A task's parameters as the schema resolved them: typed, range-checked, consistent; immutable.

    As a mapping it holds exactly the parameters of its task type (what is stored and shown);
    as attributes (`params.max_seq_length`) it reads them typed, and a parameter of another
    type reads as its schema default (the LoRA rank of a pretraining run with use_lora).
    Made by `resolve` (checked) or `TrainParams.stored` (read back from the store);
    `replace` returns a checked copy.
    """

    __slots__ = ("task_type", "complete", "_values")
    task_type: str
    complete: bool
    _values: dict[str, Value]

    def __init__(self, task_type: str, values: Mapping[str, Value], complete: bool = True) -> None:
        object.__setattr__(self, "task_type", task_type)
        object.__setattr__(self, "complete", complete)
        object.__setattr__(self, "_values", {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    @classmethod
    def stored(cls, task_type: str, values: Mapping[str, Value]) -> "TrainParams":
        """A task's parameters read back from the store: resolved when the task was created."""
        return cls(task_type, values)

    def __getitem__(self, key: str) -> Value:
        value = self._values[key]
        return list(value) if isinstance(value, tuple) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._values:
            return self[name]
        spec = BY_KEY.get(name)
        if spec is None:
            raise AttributeError(f"there is no training parameter {name!r}")
        return spec.default_for(self.task_type)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"TrainParams are immutable: use replace({name}=...)")

    def __repr__(self) -> str:
        return f"TrainParams({self.task_type!r}, {self.to_dict()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (TrainParams, (self.task_type, self.to_dict(), self.complete))

    def replace(self, **changes: Any) -> "TrainParams":
        """A copy with `changes`, checked as `resolve` checks them."""
        return resolve(self.task_type, self, changes, self.complete)

    def to_dict(self) -> dict[str, Value]:
        """The serialised form (JSON-ready): what a task stores and shows."""
        return {key: self[key] for key in self._values}


def resolve(task_type: str, base: Mapping[str, Value], overrides: Mapping[str, Any],
            complete: bool = True) -> TrainParams:
    """defaults <- base (a template) <- overrides, every key checked and typed.

    `complete=False` is for templates, which may leave the required paths empty.
    """
    check_task_type(task_type)
    allowed = {s.key: s for s in specs_for(task_type)}
    out = defaults_for(task_type)
    for source in (base, overrides):
        for key, raw in source.items():
            spec = allowed.get(key)
            if spec is None:
                if key in BY_KEY:
                    raise InvalidArgument(
                        f"parameter {key} does not apply to {task_type} tasks "
                        f"(it applies to {', '.join(BY_KEY[key].applies_to)})")
                close = difflib.get_close_matches(key, list(allowed), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise InvalidArgument(f"unknown parameter {quote(key)}{hint}")
            out[key] = coerce(spec, raw)
    check_consistency(out, complete, task_type)
    return TrainParams(task_type, out, complete)


if set(BY_KEY) & set(dir(TrainParams)):  # params.max_seq_length must read the parameter
    raise RuntimeError(f"parameters named like a TrainParams attribute: {set(BY_KEY) & set(dir(TrainParams))}")
