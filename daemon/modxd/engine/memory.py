"""How much device memory a training run will need, before it starts (pure Python, no torch).

The daemon calls :func:`estimate_training_memory` at create time with the model's
``config.json``, its parameter count (safetensors headers) and the task's parameters, and
:func:`memory_advice` for what would fit the chosen device (whether it fits is decided once, in
``modxd/memory_plan.py``). The sum has five parts:

* **weights**: every parameter at the dtype it is loaded in -- 16-bit for a LoRA base under
  mixed precision, fp32 for full fine-tuning (``engine/train.py``), about 4.5 bits per weight
  of the quantized linear layers with QLoRA 4-bit (NF4 with double quantization; embeddings and
  the LM head stay 16-bit), 8.5 bits with 8-bit;
* **trainable state**: per trainable parameter (the LoRA adapters, or all weights) an fp32
  gradient and AdamW's two fp32 moments (adapter weights themselves are fp32 too);
* **activations** kept for the backward pass at ``per_device_train_batch_size`` x
  ``max_seq_length`` tokens (the worst case: every example at full length): per token and
  layer the inputs of the norms, projections, attention and MLP (16-bit; fp32 for the norms);
  with gradient checkpointing only each layer's input is kept, plus one layer recomputed;
  on a CUDA GPU attention is FlashAttention / memory-efficient SDPA (no seq x seq matrix);
* **logits**: fp32 logits and their gradient over the vocabulary for every token;
* **preference pairs** (dpo, orpo): the chosen and the rejected answer go through together, so a
  batch holds twice the tokens; full-weights DPO adds a frozen reference copy of the weights;
* **overhead**: the CUDA context and allocator slack (a fixed 0.75 GiB plus 10%).

It is an estimate for planning, known to be rough in the activations (the part the model's
code decides); ``bench/gpu_check.sh`` prints it next to the measured peak. Issue 19 extends it
with host memory (RSS) and time for CPU runs; the function stays torch-free for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelShape", "MemoryEstimate", "model_shape", "model_shape_problem", "estimate_training_memory", "memory_advice",
           "largest_fitting_batch", "oom_advice"]

GiB = 1024**3
_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_CUDA_CONTEXT = int(0.75 * GiB)
_SLACK = 0.10


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a decoder-only transformer that memory depends on."""

    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    parameters: int  # total, from the weights (or the config when there are none)

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer of one block."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {"q_proj": (self.hidden, q), "k_proj": (self.hidden, kv), "v_proj": (self.hidden, kv),
                "o_proj": (q, self.hidden), "gate_proj": (self.hidden, self.intermediate),
                "up_proj": (self.hidden, self.intermediate), "down_proj": (self.intermediate, self.hidden)}

    @property
    def block_linear_parameters(self) -> int:
        return self.layers * sum(i * o for i, o in self.linear_shapes().values())

    @property
    def embedding_parameters(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)


# config.json keys of each dimension, first found wins (GPT-2, then MPT/DBRX style names after).
_DIMENSIONS = {"hidden": ("hidden_size", "n_embd", "d_model"), "layers": ("num_hidden_layers", "n_layer", "n_layers"),
               "heads": ("num_attention_heads", "n_head", "n_heads"), "intermediate": ("intermediate_size", "n_inner"),
               "kv_heads": ("num_key_value_heads",), "head_dim": ("head_dim",), "vocab": ("vocab_size",)}
# How many times the weights' own parameter count the config may describe (packed 4-bit weights count
# as a half or an eighth of their parameters in the safetensors headers).
_PACKING_SLACK = 8


def model_shape_problem(config: dict[str, Any], parameters: int) -> str:
    """Why config.json cannot size this model ('' when it can): every dimension it gives is a whole
    number above 0, hidden size and layers are given, and together they describe no more than the
    weights hold (`parameters`, from the safetensors headers). The one rule :func:`model_shape` relies
    on: a config of 'abc', 0 or 10^30 layers is refused with a sentence, never an estimate that
    overflows every number it reaches."""
    c = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    for keys in _DIMENSIONS.values():
        for key in keys:
            value = c.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
                return f"gives {key} as {shown}; it must be a whole number above 0"
    if not any(c.get(k) for k in _DIMENSIONS["hidden"]) or not any(c.get(k) for k in _DIMENSIONS["layers"]):
        return ("names no hidden_size (n_embd, d_model) or no num_hidden_layers (n_layer, n_layers), which modx "
                "sizes a run by")
    shape = model_shape({**c, "vocab_size": c.get("vocab_size") or 1})  # no vocab_size: no embedding counted
    if parameters > 0 and shape.parameters > _PACKING_SLACK * parameters:
        return (f"describes a model of about {shape.parameters:.3g} parameters (hidden_size {shape.hidden}, "
                f"{shape.layers} layers, vocab_size {shape.vocab}) but the weights hold {parameters:,}: "
                "config.json does not belong to these weights")
    return ""


def model_shape(config: dict[str, Any], parameters: int = 0) -> ModelShape:
    """A :class:`ModelShape` from a ``config.json`` dict (its ``text_config`` for multimodal ones);
    the daemon has checked it with :func:`model_shape_problem` first."""
    c = config.get("text_config") if isinstance(config.get("text_config"), dict) else config

    def dimension(name: str) -> int:
        return int(next((c[k] for k in _DIMENSIONS[name] if c.get(k)), 0))

    hidden, layers, heads = dimension("hidden"), dimension("layers"), dimension("heads") or 1
    if not hidden or not layers:
        raise ValueError("config.json has no hidden_size / num_hidden_layers")
    shape = ModelShape(
        hidden=hidden, layers=layers, intermediate=dimension("intermediate") or 4 * hidden, heads=heads,
        kv_heads=int(c.get("num_key_value_heads") or heads), head_dim=int(c.get("head_dim") or hidden // heads),
        vocab=int(c.get("vocab_size") or 32000), tied_embeddings=bool(c.get("tie_word_embeddings", False)),
        parameters=0)
    counted = parameters or (shape.block_linear_parameters + shape.embedding_parameters
                             + (2 * layers + 1) * hidden)  # + the RMSNorm weights
    return ModelShape(**{**shape.__dict__, "parameters": int(counted)})


@dataclass
class MemoryEstimate:
    """Bytes per part, the total, and how it was reached."""

    parts: dict[str, int]
    tokens_per_step: int
    gradient_checkpointing: bool
    trainable_parameters: int
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def fixed(self) -> int:
        """What does not shrink with the batch: weights, trainable state, the CUDA context."""
        return self.parts["weights"] + self.parts["trainable_state"] + self.parts["overhead_context"]

    def describe(self) -> str:
        shown = ", ".join(f"{name.replace('_', ' ')} {_gib(b)}" for name, b in self.parts.items() if b)
        return f"about {_gib(self.total)} ({shown})"


def _gib(n: int) -> str:
    return f"{n / GiB:.2f} GiB"


def _lora_parameters(shape: ModelShape, r: int, targets: list[str]) -> int:
    names = set(_LINEAR) if any(t.lower() == "all-linear" for t in targets) else set(targets)
    return shape.layers * sum(r * (i + o) for name, (i, o) in shape.linear_shapes().items() if name in names)


def _task_type(params: Any, task_type: str | None) -> str:
    """The task type given, else the one a TrainParams carries (a plain dict: SFT)."""
    return task_type or str(getattr(params, "task_type", "sft"))


def estimate_training_memory(shape: ModelShape, params: dict[str, Any], device_kind: str = "cuda",
                             batch_size: int | None = None, gradient_checkpointing: bool | None = None,
                             task_type: str | None = None) -> MemoryEstimate:
    """Device memory for training ``shape`` with the task ``params`` (see the module docstring).

    Preference pairs (dpo, orpo) run the chosen and the rejected answer of every pair through the
    model together: twice the tokens of a batch. Full-weights DPO also holds a frozen reference copy
    of the model (with LoRA the reference is the base with the adapter switched off: no copy)."""
    kind = _task_type(params, task_type)
    use_lora = bool(params.get("use_lora", True))
    bits = int(params.get("quantization_bit", 0) or 0) if use_lora else 0
    half = device_kind == "cuda" and bool(params.get("fp16") or params.get("bf16"))
    batch = int(batch_size if batch_size is not None else params.get("per_device_train_batch_size", 1))
    checkpointing = bool(params.get("gradient_checkpointing", True) if gradient_checkpointing is None
                         else gradient_checkpointing)
    pairs = kind in ("dpo", "orpo")
    tokens = batch * int(params.get("max_seq_length", 512)) * (2 if pairs else 1)
    notes: list[str] = ["chosen and rejected answers: two sequences per pair"] if pairs else []

    linear = min(shape.block_linear_parameters, shape.parameters)
    rest = max(shape.parameters - linear, 0)
    if bits:
        weights = int(linear * {4: 4.5, 8: 8.5}[bits] / 8) + rest * 2
        notes.append(f"{bits}-bit base weights (embeddings and LM head 16-bit)")
    elif use_lora:
        weights = shape.parameters * (2 if half else 4)
    else:
        weights = shape.parameters * 4  # full fine-tuning keeps fp32 master weights
    if use_lora:
        trainable = _lora_parameters(shape, int(params.get("lora_r", 16)),
                                     list(params.get("lora_target_modules") or ["q_proj", "v_proj"]))
        state = trainable * (4 + 4 + 8)  # fp32 adapter weights, gradients, AdamW moments
    else:
        trainable = shape.parameters
        state = trainable * (4 + 8)  # gradients and AdamW moments (the weights are counted above)
    if kind == "dpo" and not use_lora:  # the frozen reference model, in the dtype it is loaded in
        weights += shape.parameters * (2 if half else 4)
        notes.append("a frozen reference copy of the model")
    if str(params.get("optim", "adamw_torch")) in ("sgd", "adagrad", "rmsprop", "adafactor"):
        state = trainable * (4 + 4 + (0 if params.get("optim") == "sgd" else 4)) if use_lora else trainable * 8

    act_bytes = 2 if half else 4
    h, kv, i = shape.hidden, shape.kv_heads * shape.head_dim, shape.intermediate
    per_token_layer = act_bytes * (6 * h + 2 * kv + 4 * i) + 2 * 4 * h  # + two fp32 RMSNorm inputs
    if device_kind != "cuda":  # SDPA's math kernel keeps a seq x seq matrix per head
        per_token_layer += 4 * shape.heads * int(params.get("max_seq_length", 512))
    if checkpointing:
        activations = tokens * (shape.layers * act_bytes * h + per_token_layer)
    else:
        activations = tokens * shape.layers * per_token_layer
    logits = tokens * shape.vocab * 4 * 2
    subtotal = weights + state + activations + logits
    parts = {"weights": weights, "trainable_state": state, "activations": activations, "logits": logits,
             "overhead_context": _CUDA_CONTEXT if device_kind == "cuda" else 0,
             "overhead_slack": int(_SLACK * subtotal)}
    return MemoryEstimate(parts, tokens, checkpointing, trainable, notes)


def largest_fitting_batch(shape: ModelShape, params: dict[str, Any], capacity: int, device_kind: str = "cuda",
                          gradient_checkpointing: bool | None = None, task_type: str | None = None) -> int:
    """The largest per-device batch whose estimate fits ``capacity`` bytes (0 when none does)."""
    best = 0
    for batch in range(1, 129):
        if estimate_training_memory(shape, params, device_kind, batch, gradient_checkpointing,
                                    task_type).total > capacity:
            break
        best = batch
    return best


def memory_advice(shape: ModelShape, params: dict[str, Any], capacity: int, device_kind: str = "cuda",
                  task_type: str | None = None) -> list[str]:
    """What to change so the run fits ``capacity`` bytes, most effective first, with the numbers this
    model gives (modxd/memory_plan.py decides whether it fits; this says what would)."""
    kind = _task_type(params, task_type)
    advice: list[str] = []
    batch = int(params.get("per_device_train_batch_size", 1))
    if not bool(params.get("gradient_checkpointing", True)):
        with_gc = estimate_training_memory(shape, params, device_kind, gradient_checkpointing=True, task_type=kind)
        advice.append(f"turn gradient_checkpointing on (about {_gib(with_gc.total)} at this batch)")
    smaller = largest_fitting_batch(shape, params, capacity, device_kind, task_type=kind)
    if 0 < smaller < batch:
        advice.append(f"set per_device_train_batch_size to {smaller} and raise gradient_accumulation_steps "
                      "to keep the effective batch")
    elif batch > 1 and smaller == 0:
        advice.append("set per_device_train_batch_size to 1 and raise gradient_accumulation_steps to keep the "
                      "effective batch")
    advice.append(f"a shorter max_seq_length (now {params.get('max_seq_length', 512)})")
    if device_kind == "cuda" and params.get("use_lora", True) and not int(params.get("quantization_bit", 0) or 0):
        qlora = estimate_training_memory(shape, {**params, "quantization_bit": 4}, task_type=kind)
        advice.append(f"use QLoRA (quantization_bit 4, about {_gib(qlora.total)})")
    if not params.get("use_lora", True):
        lora = estimate_training_memory(shape, {**params, "use_lora": True}, device_kind, task_type=kind)
        advice.append(f"train LoRA adapters instead of the full model (use_lora, about {_gib(lora.total)})")
    if device_kind == "cuda":
        advice.append("or use a larger GPU or several (devices, distributed_strategy fsdp)")
    return advice


def oom_advice(params: dict[str, Any]) -> str:
    """What to change after a CUDA out-of-memory failure, most effective first, for these params."""
    steps: list[str] = []
    batch = int(params.get("per_device_train_batch_size", 1))
    if batch > 1:
        steps.append(f"a smaller per_device_train_batch_size (now {batch}; halve it and double "
                     "gradient_accumulation_steps to keep the effective batch)")
    if not params.get("gradient_checkpointing", True):
        steps.append("gradient_checkpointing on")
    if params.get("use_lora", True) and not int(params.get("quantization_bit", 0) or 0):
        steps.append("QLoRA (quantization_bit 4)")
    if not params.get("use_lora", True):
        steps.append("LoRA (use_lora) instead of full fine-tuning")
    steps.append(f"a shorter max_seq_length (now {params.get('max_seq_length', 512)})")
    return "try " + "; ".join(steps)
