"""Loading, checking and adapting the model to train.

The checks at the top (:class:`EngineError`, :func:`inspect_model_dir`,
:func:`context_length`, :func:`max_seq_length_problem`) are pure Python so the daemon
runs them at task-create time; torch/transformers/peft are imported inside the
functions that need them (the training worker).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..paths import shown
from ..protocol import Emit
from .precision import Precision, resolve_precision  # noqa: F401 - re-exported
from .safetensors_header import safetensors_header_problem  # noqa: F401 - re-exported

__all__ = [
    "EngineError",
    "ModelInfo",
    "Precision",
    "inspect_model_dir",
    "ModelDirProblem",
    "safetensors_header_problem",
    "lora_targets_problem",
    "check_max_seq_length",
    "context_length",
    "max_seq_length_problem",
    "resolve_precision",
    "load_tokenizer",
    "load_model",
    "apply_lora",
    "enable_gradient_checkpointing",
    "merge_lora",
    "merge_lora_full_precision",
    "quantization_config",
]

_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


class EngineError(ValueError):
    """A configuration the engine refuses, with a sentence saying why and what to do."""


@dataclass
class ModelInfo:
    """What ``config.json`` says about a model dir."""

    path: str
    model_type: str
    architectures: list[str]
    max_position_embeddings: int | None  # the context in tokens, whichever key config.json names it by
    config: dict[str, Any] = field(default_factory=dict)


class ModelDirProblem(EngineError):
    """A model dir that cannot be trained. ``wrong_kind``: the path names something else (a GGUF file,
    a file, a model that is not a causal LM), as opposed to a missing, incomplete or damaged dir."""

    def __init__(self, message: str, wrong_kind: bool = False):
        super().__init__(message)
        self.wrong_kind = wrong_kind


def inspect_model_dir(model_dir: str, field_name: str = "model_dir") -> ModelInfo:
    """The one rule of a trainable model dir (pure Python: the daemon at create, the worker on the dir it
    opened): a Hugging Face dir whose config.json names a causal LM and whose safetensors weights are
    whole (their headers describe the file). Raises :class:`ModelDirProblem`, naming the parameter."""
    where = f"parameter {field_name}: {shown(model_dir)}"
    if not model_dir:
        raise ModelDirProblem(f"parameter {field_name} is required: the Hugging Face model dir to train")
    if os.path.isfile(model_dir):
        if model_dir.lower().endswith(".gguf") or _is_gguf(model_dir):
            raise ModelDirProblem(
                f"{where} is a GGUF file, which is for inference only; training needs a Hugging Face model dir "
                f"(import it with PackageService.ImportGguf: modxctl models import-gguf {shown(model_dir)} DIR)",
                wrong_kind=True)
        raise ModelDirProblem(f"{where} is a file; a Hugging Face model dir is needed", wrong_kind=True)
    if not os.path.isdir(model_dir):
        raise ModelDirProblem(f"{where} does not exist")
    config_path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(config_path):
        raise ModelDirProblem(f"{where} has no config.json (not a Hugging Face model dir)")
    weights = sorted(glob.glob(os.path.join(glob.escape(model_dir), "*.safetensors")))
    if not weights:
        bin_only = glob.glob(os.path.join(glob.escape(model_dir), "*.bin"))
        extra = " (it has *.bin weights: re-save them as safetensors)" if bin_only else ""
        raise ModelDirProblem(f"{where} has no *.safetensors weights{extra}")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as exc:
        raise ModelDirProblem(f"{where}: config.json is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ModelDirProblem(f"{where}: config.json is not a JSON object")
    for path in weights:
        problem = safetensors_header_problem(path)
        if problem:
            raise ModelDirProblem(f"parameter {field_name}: {path} is not a valid safetensors file ({problem}); "
                                  "the weights are damaged or were not copied completely")
    listed = config.get("architectures") or []
    if not isinstance(listed, list) or not all(isinstance(a, str) for a in listed):
        raise ModelDirProblem(f"{where}: config.json gives architectures as {json.dumps(listed)[:80]}; it must be "
                              "a list of model class names (e.g. [\"LlamaForCausalLM\"])")
    architectures = listed
    if not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        raise ModelDirProblem(f"{where} holds a {', '.join(architectures) or config.get('model_type', '?')} model, "
                              "which is not a causal language model", wrong_kind=True)
    context = context_length(config)
    return ModelInfo(model_dir, str(config.get("model_type", "")), architectures,
                     context[0] if context else None, config)


def lora_targets_problem(targets: list[str], linear_modules: Iterable[str], where: str = "") -> str:
    """The one rule of LoRA targets ('' when they are fine): each names a linear module as peft matches
    them (the module's dotted name is the target or ends with '.' + it), or all-linear. The daemon
    reads the module names from the safetensors headers (validation.py), the worker from the model."""
    modules = set(linear_modules)
    if not targets or any(t.lower() == "all-linear" for t in targets) or not modules:
        return ""
    if any(m == t or m.endswith("." + t) for m in modules for t in targets):
        return ""
    leaves = sorted({m.rsplit(".", 1)[-1] for m in modules if "embed" not in m and "lm_head" not in m})
    return (f"parameter lora_target_modules {', '.join(targets)} matches no module of the model{where}; its "
            f"linear modules are {', '.join(leaves[:40]) or 'none'} (or use all-linear)")


def context_length(config: Mapping[str, Any]) -> tuple[int, str] | None:
    """The model's context in tokens and the config.json key that gives it (the text model's, for a
    multimodal config), or None when config.json names none."""
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    for source in (config, text_config):
        for key in _POSITION_KEYS:
            value = source.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value, key
    return None


def max_seq_length_problem(max_seq_length: int, config: Mapping[str, Any]) -> str:
    """The one context rule of training: max_seq_length fits the model's context ('' when it does).
    Checked at create (validation.py) and by the worker on the model dir it opened."""
    context = context_length(config)
    if context is None or max_seq_length <= context[0]:
        return ""
    limit, key = context
    return (f"parameter max_seq_length is {max_seq_length} but the model's context ({key}) is {limit} tokens; "
            f"set max_seq_length to {limit} or less")


def _is_gguf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def check_max_seq_length(max_seq_length: int, info: ModelInfo) -> None:
    """Refuse a ``max_seq_length`` the model's context cannot hold (:func:`max_seq_length_problem`)."""
    problem = max_seq_length_problem(max_seq_length, info.config)
    if problem:
        raise EngineError(f"model_dir {info.path}: {problem}")


# ------------------------------------------------------------------ loading

def load_tokenizer(tokenizer_dir: str, log: Callable[[str], None] = lambda _m: None) -> Any:
    """Load a local tokenizer and make sure it can pad (pad = eos when it has none)."""
    from transformers import AutoTokenizer

    if not os.path.isdir(tokenizer_dir):
        raise EngineError(f"tokenizer_dir {tokenizer_dir} is not a directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise EngineError(f"no tokenizer could be loaded from {tokenizer_dir}: {exc}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise EngineError(f"the tokenizer in {tokenizer_dir} has no fast (tokenizers) implementation; "
                          "modx needs tokenizer.json to map labels onto tokens")
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise EngineError(f"the tokenizer in {tokenizer_dir} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
        log(f"the tokenizer has no pad token; using its eos token {tokenizer.eos_token!r} for padding")
    tokenizer.padding_side = "right"
    tokenizer.name_or_path = shown(tokenizer_dir)  # a pinned dir's real path, not /proc/self/fd/N
    return tokenizer


def quantization_config(bits: int, compute_dtype_name: str) -> Any:
    """bitsandbytes settings of QLoRA: 4-bit NF4 with double quantization, or LLM.int8()."""
    import torch
    from transformers import BitsAndBytesConfig

    if bits == 4:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=getattr(torch, compute_dtype_name),
                                  bnb_4bit_quant_storage=getattr(torch, compute_dtype_name))
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    raise EngineError(f"quantization_bit must be 0, 4 or 8 (got {bits})")


def load_model(model_dir: str, dtype_name: str = "float32", quantization_bit: int = 0) -> Any:
    """Load ``model_dir`` with ``AutoModelForCausalLM`` or explain why it is not a causal LM.

    With ``quantization_bit`` (4 or 8) the linear layers are quantized by bitsandbytes while
    loading, straight onto the current CUDA device (QLoRA's frozen base)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        raise EngineError(f"model_dir {model_dir}: the model configuration cannot be loaded ({exc}); "
                          "custom architectures that need trust_remote_code are not supported") from None
    archs_list = list(getattr(config, "architectures", None) or [])
    causal_classes = {name for v in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()
                      for name in ([v] if isinstance(v, str) else v)}
    causal_arch = not archs_list or any(a in causal_classes or a.endswith(("ForCausalLM", "LMHeadModel"))
                                        for a in archs_list)
    if (config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or getattr(config, "is_encoder_decoder", False)
            or not causal_arch):
        archs = ", ".join(archs_list) or "unknown"
        raise EngineError(f"model_dir {model_dir} holds a '{config.model_type}' model ({archs}), which cannot be "
                          "loaded as a causal language model (AutoModelForCausalLM); modx trains decoder-only "
                          "text generation models such as Llama, Qwen2 or Mistral")
    extra: dict[str, Any] = {}
    if quantization_bit:
        extra["quantization_config"] = quantization_config(quantization_bit, dtype_name)
        extra["device_map"] = {"": torch.cuda.current_device()}
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, config=config, dtype=getattr(torch, dtype_name),
                                                     local_files_only=True, trust_remote_code=False, **extra)
    except MemoryError:
        raise
    except Exception as exc:  # damaged or truncated weights: say which dir, keep the library's reason
        raise EngineError(f"model_dir {model_dir}: the weights cannot be loaded ({type(exc).__name__}: {exc})") \
            from exc
    model.config._name_or_path = shown(model_dir)  # saved with checkpoints: the real path, not /proc/self/fd/N
    model.name_or_path = model.config._name_or_path
    return model


def apply_lora(model: Any, r: int, alpha: int, dropout: float, target_modules: list[str]) -> Any:
    """Wrap ``model`` with LoRA adapters (adapter weights stay fp32)."""
    from peft import LoraConfig, get_peft_model

    targets: Any = list(target_modules or [])
    if not targets:
        raise EngineError("lora_target_modules is empty: name the modules to adapt (e.g. q_proj, v_proj) "
                          "or use all-linear")
    if any(t.lower() == "all-linear" for t in targets):
        targets = "all-linear"
    config = LoraConfig(r=int(r), lora_alpha=alpha, lora_dropout=float(dropout), target_modules=targets,
                        bias="none", task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, config, autocast_adapter_dtype=True)
    except ValueError as exc:
        linear = {name for name, mod in model.named_modules() if type(mod).__name__ in ("Linear", "Conv1D")}
        raise EngineError(lora_targets_problem(list(target_modules), linear) or
                          f"parameter lora_target_modules {', '.join(target_modules)}: {exc}") from None


def enable_gradient_checkpointing(model: Any, use_lora: bool) -> str | None:
    """Turn on gradient checkpointing; return a warning message when the model cannot."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        return (f"{type(base).__name__} does not support gradient checkpointing; training without it "
                "(uses more memory)")
    kwargs = {"use_reentrant": False}
    if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5 name
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if use_lora:
        # Frozen embeddings give inputs without grad; checkpointed blocks then need this hook.
        base.enable_input_require_grads()
    return None


def merge_lora(model: Any, tokenizer: Any, out: Any, emit: Emit, name: str = "merged",
               dtype: Any = None) -> str:
    """Merge the adapters into the base weights and save a full model dir atomically as ``name`` in
    the pinned output dir ``out`` (modxd/paths.py), reporting what it wrote to the manifest."""
    from .. import files
    from .checkpoints import DiskFull, fsync_tree, is_disk_full, remove_entry

    staging_name = f".tmp-{name}"
    staging_real = out.real_join(staging_name)
    remove_entry(out, staging_name)
    emit(files.message([files.entry(staging_real, "scratch")]))
    staging = out.subdir(staging_name, fresh=True)[0]
    merged = model.merge_and_unload()
    if dtype is not None:
        merged = merged.to(dtype)
    merged.config.use_cache = True
    try:
        with staging:
            merged.save_pretrained(staging.path)
            tokenizer.save_pretrained(staging.path)
            fsync_tree(staging.path)
        out.check_in_place()
        remove_entry(out, name)
        os.rename(staging_name, name, src_dir_fd=out.fd, dst_dir_fd=out.fd)
        os.fsync(out.fd)
        with out.subdir(name, create=False)[0] as final:
            emit(files.message([files.entry(final.real, "dir"), *files.tree(final)], removed=[staging_real]))
    except Exception as exc:  # no partial merged model is left behind
        full = is_disk_full(exc, out.real)
        remove_entry(out, staging_name)
        emit(files.message(removed=[staging_real]))
        if full:
            raise DiskFull(f"could not write the merged model to {out.real_join(name)}: no space left on device; "
                           "the partial copy was removed and the checkpoints are intact") from exc
        raise
    return out.real_join(name)


def merge_lora_full_precision(model: Any, tokenizer: Any, model_dir: str, out: Any, emit: Emit,
                              name: str = "merged") -> str:
    """Merge a QLoRA run's adapters into the base loaded again unquantized (from ``model_dir``).

    Merging into the 4-bit weights would add the update to a quantized approximation and save
    bitsandbytes tensors that neither GGUF export nor a plain load can read; the full-precision
    base is what the adapters were trained to correct. The merge runs on the CPU in fp32 and is
    saved in the base model's own dtype. The adapter is staged in a scratch dir of the pinned
    output dir ``out``, reported to the manifest and removed afterwards.
    """
    import torch
    from peft import PeftModel

    from .. import files
    from .checkpoints import remove_entry

    scratch_name = f".tmp-adapter-{name}"
    scratch_real = out.real_join(scratch_name)
    remove_entry(out, scratch_name)
    emit(files.message([files.entry(scratch_real, "scratch")]))
    try:
        with out.subdir(scratch_name, fresh=True)[0] as scratch:
            model.save_pretrained(scratch.path)
            base = load_model(model_dir, "float32")
            if len(tokenizer) > base.get_input_embeddings().weight.shape[0]:
                base.resize_token_embeddings(len(tokenizer))
            merged = PeftModel.from_pretrained(base, scratch.path, is_trainable=False)
        saved_dtype = getattr(base.config, "dtype", None) or getattr(base.config, "torch_dtype", None)
        if isinstance(saved_dtype, str):
            saved_dtype = getattr(torch, saved_dtype, None)
        return merge_lora(merged, tokenizer, out, emit, name,
                          dtype=saved_dtype if saved_dtype in (torch.float16, torch.bfloat16) else None)
    finally:
        remove_entry(out, scratch_name)
        emit(files.message(removed=[scratch_real]))
