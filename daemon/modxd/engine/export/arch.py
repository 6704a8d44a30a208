"""Per-architecture knowledge: which Hugging Face models convert, their GGUF metadata,
tensor names and the Q/K row permutation.

Pure Python (numpy only inside the functions that shape tensors, no torch): the daemon
may call :func:`model_spec` to refuse a checkpoint before any worker starts, without
loading numpy. Anything this module does not know is
refused with a sentence; a guessed conversion would give a file that loads and
talks nonsense.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where tensors are shaped: the daemon imports this module without it
    import numpy as np

__all__ = ["ExportError", "ArchSpec", "ModelSpec", "ARCHS", "SUPPORTED", "read_config", "model_spec",
           "permute_rows", "llama3_rope_factors"]


class ExportError(ValueError):
    """A checkpoint, tokenizer or request the exporter refuses, with the reason."""


@dataclass(frozen=True)
class ArchSpec:
    """How one Hugging Face ``model_type`` maps onto a llama.cpp architecture."""

    gguf_arch: str              # llama.cpp's architecture name
    permute_qk: bool            # HF rotate-half rope -> llama.cpp interleaved rope needs a row permutation
    families: str               # for people: which model families this covers
    rope_freqs: bool = True     # llama3-style rope scaling is written as a rope_freqs tensor
    allowed_bias: tuple[str, ...] = ()  # module suffixes that may carry a bias


_QKV = ("q_proj", "k_proj", "v_proj")
ARCHS: dict[str, ArchSpec] = {
    "llama": ArchSpec("llama", True, "Llama 2, Llama 3.x, SmolLM / SmolLM2, TinyLlama",
                      allowed_bias=_QKV + ("o_proj", "gate_proj", "up_proj", "down_proj")),
    "mistral": ArchSpec("llama", True, "Mistral 7B v0.1-v0.3, Mistral Nemo"),
    "qwen2": ArchSpec("qwen2", False, "Qwen1.5, Qwen2, Qwen2.5 (incl. Coder/Math)", rope_freqs=False,
                      allowed_bias=_QKV),
}
SUPPORTED = ", ".join(f"{k} ({v.families})" for k, v in ARCHS.items())

_BLOCK_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")
# Tensors a checkpoint may carry that are recomputed at load time (never written).
_IGNORED_RE = re.compile(r"(rotary_emb\.inv_freq|\.masked_bias|\.attn\.bias)$")


def read_config(model_dir: str) -> dict[str, Any]:
    path = os.path.join(model_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        raise ExportError(f"{model_dir} has no config.json: it is not a Hugging Face model directory") from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path} cannot be read: {exc}") from None
    if not isinstance(config, dict):
        raise ExportError(f"{path} is not a JSON object")
    return config


@dataclass
class ModelSpec:
    """Everything the writer needs to know about one model, from its config.json."""

    model_type: str
    arch: ArchSpec
    n_layers: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ctx: int
    rms_eps: float
    rope_theta: float
    tie_embeddings: bool
    rope: dict[str, Any] = field(default_factory=dict)   # scaling: {"type", "factor", ...}
    config: dict[str, Any] = field(default_factory=dict)
    _names: Any = field(default=None, repr=False)
    _allowed: Any = field(default=None, repr=False)

    def gguf_name(self, hf_name: str) -> str | None:
        """The GGUF name of a Hugging Face tensor (gguf's tensor-name map); None for tensors
        that are recomputed at load time. A tensor the architecture does not have is refused."""
        import gguf

        if _IGNORED_RE.search(hf_name):
            return None
        if self._names is None:
            arch_enum = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == self.arch.gguf_arch)
            self._names = gguf.get_tensor_name_map(arch_enum, self.n_layers)
            self._allowed = set(gguf.MODEL_TENSORS[arch_enum])
        found = self._names.get_type_and_name(hf_name, try_suffixes=(".weight", ".bias"))
        if found is None or found[0] not in self._allowed:
            raise ExportError(self._unknown(hf_name))
        match = _BLOCK_RE.match(hf_name)
        if match and (int(match.group(1)) >= self.n_layers or (
                match.group(3) == "bias" and match.group(2).rsplit(".", 1)[-1] not in self.arch.allowed_bias)):
            raise ExportError(self._unknown(hf_name))
        if not match and hf_name.endswith(".bias"):
            raise ExportError(self._unknown(hf_name))
        return found[1]

    def _unknown(self, hf_name: str) -> str:
        return (f"tensor {hf_name} of this {self.model_type} model has no llama.cpp counterpart: the model "
                "has a part the GGUF exporter does not know, so it refuses rather than write a broken file")

    def permutation(self, hf_name: str) -> int | None:
        """Heads to permute the rows of this tensor by (q: n_head, k: n_head_kv), or None."""
        if not self.arch.permute_qk:
            return None
        if hf_name.endswith("self_attn.q_proj.weight") or hf_name.endswith("self_attn.q_proj.bias"):
            return self.n_head
        if hf_name.endswith("self_attn.k_proj.weight") or hf_name.endswith("self_attn.k_proj.bias"):
            return self.n_head_kv
        return None

    def add_metadata(self, writer: Any, n_vocab: int) -> None:
        """The architecture keys of a GGUF file (hyper-parameters, rope)."""
        import gguf

        writer.add_context_length(self.n_ctx)
        writer.add_embedding_length(self.n_embd)
        writer.add_block_count(self.n_layers)
        writer.add_feed_forward_length(self.n_ff)
        writer.add_head_count(self.n_head)
        writer.add_head_count_kv(self.n_head_kv)
        writer.add_rope_freq_base(float(self.rope_theta))
        writer.add_layer_norm_rms_eps(float(self.rms_eps))
        writer.add_rope_dimension_count(self.head_dim)
        if self.head_dim != self.n_embd // self.n_head:
            writer.add_key_length(self.head_dim)
            writer.add_value_length(self.head_dim)
        writer.add_vocab_size(n_vocab)
        kind = self.rope.get("type")
        if kind == "linear":
            writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            writer.add_rope_scaling_factor(float(self.rope["factor"]))
        elif kind == "yarn":
            writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
            writer.add_rope_scaling_factor(float(self.rope["factor"]))
            if self.rope.get("original_max_position_embeddings"):
                writer.add_rope_scaling_orig_ctx_len(int(self.rope["original_max_position_embeddings"]))

    def rope_freqs(self) -> np.ndarray | None:
        """The llama3 rope frequency factors tensor, when the model uses llama3 scaling."""
        if self.rope.get("type") != "llama3":
            return None
        return llama3_rope_factors(self.rope_theta, self.head_dim, self.rope)


def _rope(config: dict[str, Any], model_type: str, arch: ArchSpec) -> tuple[float, dict[str, Any]]:
    """(rope base, scaling) from either the transformers 4 (rope_theta + rope_scaling) or the
    transformers 5 (rope_parameters) spelling."""
    params = config.get("rope_parameters")
    if isinstance(params, dict) and isinstance(params.get("full_attention"), dict):
        params = params["full_attention"]
    scaling = config.get("rope_scaling")
    merged: dict[str, Any] = {}
    for source in (scaling, params):
        if isinstance(source, dict):
            merged.update(source)
    theta = float(config.get("rope_theta") or merged.get("rope_theta") or 10000.0)
    kind = str(merged.get("rope_type") or merged.get("type") or "default").lower()
    if kind == "default":
        return theta, {}
    if kind == "linear" and merged.get("factor"):
        return theta, {"type": "linear", "factor": float(merged["factor"])}
    if kind == "yarn" and merged.get("factor"):
        return theta, {"type": "yarn", "factor": float(merged["factor"]),
                       "original_max_position_embeddings": merged.get("original_max_position_embeddings")}
    if kind == "llama3" and arch.rope_freqs:
        return theta, {"type": "llama3", "factor": float(merged.get("factor", 8.0)),
                       "low_freq_factor": float(merged.get("low_freq_factor", 1.0)),
                       "high_freq_factor": float(merged.get("high_freq_factor", 4.0)),
                       "original_max_position_embeddings": int(merged.get("original_max_position_embeddings", 8192))}
    raise ExportError(f"this {model_type} model uses rope scaling {kind!r} ({merged}), which the GGUF exporter "
                      "does not support (supported: none, linear, yarn, llama3)")


def model_spec(model_dir: str, config: dict[str, Any] | None = None) -> ModelSpec:
    """Read and check a model's config.json; refuse what the exporter does not know."""
    config = config if config is not None else read_config(model_dir)
    model_type = str(config.get("model_type") or "")
    arch = ARCHS.get(model_type)
    if arch is None:
        archs = ", ".join(config.get("architectures") or []) or "unknown class"
        raise ExportError(f"{model_dir} holds a {model_type or 'unnamed'!r} model ({archs}), which the GGUF exporter "
                          f"does not support; supported model types: {SUPPORTED}")
    act = config.get("hidden_act") or config.get("hidden_activation") or "silu"
    if act not in ("silu", "swish"):
        raise ExportError(f"this {model_type} model uses the {act!r} activation; llama.cpp's {arch.gguf_arch} "
                          "architecture computes SiLU, so the export is refused")
    try:
        n_embd = int(config["hidden_size"])
        n_head = int(config["num_attention_heads"])
        spec = ModelSpec(
            model_type=model_type, arch=arch,
            n_layers=int(config["num_hidden_layers"]), n_embd=n_embd, n_ff=int(config["intermediate_size"]),
            n_head=n_head, n_head_kv=int(config.get("num_key_value_heads") or n_head),
            head_dim=int(config.get("head_dim") or n_embd // n_head),
            n_ctx=int(config.get("max_position_embeddings") or 4096),
            rms_eps=float(config.get("rms_norm_eps") or 1e-6), rope_theta=0.0,
            tie_embeddings=bool(config.get("tie_word_embeddings", False)), config=config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{model_dir}/config.json lacks a usable {exc} for a {model_type} model") from None
    spec.rope_theta, spec.rope = _rope(config, model_type, arch)
    partial = float(config.get("partial_rotary_factor") or 1.0)
    if partial != 1.0:
        raise ExportError(f"this {model_type} model rotates only part of each head (partial_rotary_factor "
                          f"{partial}); the GGUF exporter does not support it")
    if model_type == "qwen2" and config.get("use_sliding_window"):
        raise ExportError("this qwen2 model uses sliding-window attention, which llama.cpp's qwen2 architecture "
                          "does not implement; the export is refused")
    return spec


def permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder each head's rows from rotate-half pairs (i, i + d/2) to adjacent pairs (2i, 2i + 1).

    Hugging Face's Llama applies rope to the two halves of a head; llama.cpp's llama
    architecture to neighbouring elements. Permuting the rows of W_q and W_k (and of the
    LoRA B matrices) makes the two compute the same attention scores.
    """
    import numpy as np

    rows = weights.shape[0]
    if rows % (2 * n_head):
        raise ExportError(f"cannot permute {rows} rows over {n_head} heads")
    shaped = weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
    return np.ascontiguousarray(shaped.swapaxes(1, 2).reshape(weights.shape))


def llama3_rope_factors(theta: float, head_dim: int, rope: dict[str, Any]) -> np.ndarray:
    """Per-frequency divisors of llama3 rope scaling (llama.cpp's rope_freqs tensor)."""
    import numpy as np

    factor = rope["factor"]
    low, high = rope["low_freq_factor"], rope["high_freq_factor"]
    old_ctx = rope["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / (theta ** (i / head_dim))
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)
