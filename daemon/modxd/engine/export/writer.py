"""Hugging Face safetensors -> GGUF, one tensor at a time.

The tensor table (names, shapes, types) is planned from the safetensors headers alone;
then each tensor is read, merged with a LoRA delta if asked, permuted, converted and
written before the next one is read, so memory holds one tensor (and its converted copy),
never the model.
"""
from __future__ import annotations

import glob
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .arch import ExportError, ModelSpec, permute_rows
from .lora import LoraAdapter
from .tokenizer import Vocab

__all__ = ["SourceModel", "TensorPlan", "plan_tensors", "write_model", "write_adapter", "DIRECT_TYPES",
           "LLAMA_TYPES", "ALL_TYPES", "Progress"]

# Types written by this module, and types made from an F16/F32 file by llama.cpp's quantizer
# (value: llama_ftype).
DIRECT_TYPES = {"F32": 0, "F16": 1, "BF16": 32, "Q8_0": 7}
LLAMA_TYPES = {"Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_0": 2, "Q4_K_S": 14, "Q4_K_M": 15,
               "Q5_0": 8, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18}
ALL_TYPES = list(DIRECT_TYPES) + list(LLAMA_TYPES)

Progress = Callable[[int, int, int], None]  # tensors done, tensors total, bytes written

_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.")
_MODULE_ORDER = ["input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                 "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def _order(name: str) -> tuple:
    if name.startswith("model.embed_tokens"):
        return (0, 0, 0, name)
    match = _LAYER_RE.match(name)
    if match:
        rest = name[match.end():]
        module = next((i for i, m in enumerate(_MODULE_ORDER) if rest.startswith(m)), len(_MODULE_ORDER))
        return (1, int(match.group(1)), module, name)
    return (2, 0, 0 if name.startswith("model.norm") else 1, name)


class SourceModel:
    """The safetensors files of a model dir: the table from their headers, tensors on demand."""

    def __init__(self, model_dir: str) -> None:
        self.dir = model_dir
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.isfile(index):
            with open(index, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
            files = sorted({os.path.join(model_dir, v) for v in weight_map.values()})
        else:
            files = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
            files = [p for p in files if not os.path.basename(p).startswith("adapter_")]
        if not files:
            raise ExportError(f"{model_dir} has no *.safetensors weights (only safetensors models are exported)")
        from safetensors import safe_open

        self.where: dict[str, str] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, str] = {}
        for path in files:
            with safe_open(path, framework="pt") as handle:
                for key in handle.keys():
                    if key in self.where:
                        raise ExportError(f"tensor {key} appears twice in {model_dir}")
                    part = handle.get_slice(key)
                    self.where[key] = path
                    self.shapes[key] = tuple(part.get_shape())
                    self.dtypes[key] = str(part.get_dtype())
        self.names = sorted(self.where, key=_order)

    def float32(self, name: str) -> np.ndarray:
        """One tensor as float32. The file is mapped for this read only: pages of tensors already
        written do not stay resident, so memory holds one tensor, never the model."""
        from safetensors import safe_open

        with safe_open(self.where[name], framework="pt") as handle:
            tensor = handle.get_tensor(name)
        return tensor.float().numpy()

    @property
    def n_params(self) -> int:
        return int(sum(int(np.prod(s)) for s in self.shapes.values()))


@dataclass
class TensorPlan:
    gguf_name: str
    shape: tuple[int, ...]          # torch order (rows first)
    hf_name: str | None = None      # None: generated (rope_freqs)
    permute_heads: int | None = None
    generated: np.ndarray | None = None

    @property
    def is_matrix(self) -> bool:
        return len(self.shape) >= 2


def plan_tensors(spec: ModelSpec, source: SourceModel) -> list[TensorPlan]:
    """The tensors of the GGUF file, in order; refuses anything the architecture lacks."""
    plans: list[TensorPlan] = []
    names = set(source.names)
    for name in source.names:
        if name == "lm_head.weight" and spec.tie_embeddings:
            continue  # llama.cpp uses token_embd for the output when `output` is absent
        gguf_name = spec.gguf_name(name)
        if gguf_name is None:
            continue
        plans.append(TensorPlan(gguf_name, source.shapes[name], name, spec.permutation(name)))
    if "model.embed_tokens.weight" not in names:
        raise ExportError(f"{source.dir} has no model.embed_tokens.weight: not a {spec.model_type} checkpoint")
    if not spec.tie_embeddings and "lm_head.weight" not in names:
        raise ExportError(f"{source.dir} has no lm_head.weight and its config does not tie it to the embeddings")
    expected = {f"blk.{i}.{t}.weight" for i in range(spec.n_layers)
                for t in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                          "ffn_up", "ffn_down")} | {"token_embd.weight", "output_norm.weight"}
    missing = sorted(expected - {p.gguf_name for p in plans})
    if missing:
        raise ExportError(f"{source.dir} lacks tensors a {spec.model_type} model needs ({', '.join(missing[:4])}"
                          f"{'...' if len(missing) > 4 else ''}): the checkpoint is incomplete")
    factors = spec.rope_freqs()
    if factors is not None:
        plans.insert(1, TensorPlan("rope_freqs.weight", tuple(factors.shape), generated=factors))
    return plans


def _tensor_type(qtype: str, plan: TensorPlan) -> Any:
    import gguf

    T = gguf.GGMLQuantizationType
    if not plan.is_matrix or plan.generated is not None or qtype == "F32":
        return T.F32
    if qtype == "F16":
        return T.F16
    if qtype == "BF16":
        return T.BF16
    if qtype == "Q8_0":
        return T.Q8_0 if plan.shape[-1] % 32 == 0 else T.F16
    raise ExportError(f"{qtype} is not written directly")


def _nbytes(shape: tuple[int, ...], ttype: Any) -> int:
    import gguf

    block, size = gguf.GGML_QUANT_SIZES[ttype]
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    return rows * (shape[-1] // block) * size


def _encode(data: np.ndarray, ttype: Any) -> np.ndarray:
    import gguf

    T = gguf.GGMLQuantizationType
    if ttype == T.F32:
        return np.ascontiguousarray(data, dtype=np.float32)
    if ttype == T.F16:
        return np.ascontiguousarray(data.astype(np.float16))
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), ttype)


class _Reporter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.progress, self.last = total, progress, 0.0

    def __call__(self, done: int, written: int) -> None:
        now = time.monotonic()
        if self.progress is not None and (done == self.total or now - self.last >= 0.25):
            self.last = now
            self.progress(done, self.total, written)


def _begin(path: str, arch: str) -> Any:
    import gguf

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return gguf.GGUFWriter(path, arch)


def _finish(writer: Any) -> int:
    fout = writer.fout[0]
    fout.flush()
    os.fsync(fout.fileno())
    size = fout.tell()
    writer.close()
    return size


def write_model(path: str, spec: ModelSpec, vocab: Vocab, plans: list[TensorPlan], source: SourceModel,
                qtype: str, name: str, lora: LoraAdapter | None = None, progress: Progress | None = None) -> int:
    """Write one GGUF model file (``qtype`` one of DIRECT_TYPES); return its size in bytes."""
    import gguf

    writer = _begin(path, spec.arch.gguf_arch)
    try:
        writer.add_type("model")
        writer.add_name(name)
        spec.add_metadata(writer, len(vocab.tokens))
        writer.add_file_type(DIRECT_TYPES[qtype])
        if qtype == "Q8_0":
            writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        vocab.add_to(writer)
        types = [_tensor_type(qtype, p) for p in plans]
        for plan, ttype in zip(plans, types):
            writer.add_tensor_info(plan.gguf_name, plan.shape, np.dtype(np.float32), _nbytes(plan.shape, ttype),
                                   raw_dtype=ttype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        report = _Reporter(len(plans), progress)
        fout = writer.fout[0]
        for done, (plan, ttype) in enumerate(zip(plans, types), start=1):
            if plan.generated is not None:
                data = plan.generated
            else:
                data = source.float32(plan.hf_name)
                if lora is not None:
                    data = lora.merge_into(plan.hf_name, data)
                if plan.permute_heads:
                    data = permute_rows(data, plan.permute_heads)
            encoded = _encode(data, ttype)
            del data
            writer.write_tensor_data(encoded)
            del encoded
            report(done, fout.tell())
        if lora is not None:
            lora.check_all_used()
        return _finish(writer)
    finally:
        writer.close()


def write_adapter(path: str, spec: ModelSpec, adapter: LoraAdapter, qtype: str, name: str,
                  progress: Progress | None = None) -> int:
    """Write a llama.cpp LoRA adapter GGUF (``qtype`` F32 or F16); return its size in bytes."""
    import gguf

    if adapter.replacements:
        raise ExportError(f"the adapter in {adapter.directory} also saves whole modules "
                          f"({', '.join(sorted(adapter.replacements)[:3])}); llama.cpp adapters cannot carry them: "
                          "export with merge instead")
    if any(p.embedding for p in adapter.pairs.values()):
        raise ExportError(f"the adapter in {adapter.directory} adapts the embeddings; export with merge instead")
    ttype = gguf.GGMLQuantizationType.F32 if qtype == "F32" else gguf.GGMLQuantizationType.F16
    fold = not adapter.uniform
    entries = []
    for hf_name in sorted(adapter.pairs, key=_order):
        pair = adapter.pairs[hf_name]
        base = spec.gguf_name(hf_name)
        if base is None:
            raise ExportError(f"the adapter adapts {hf_name}, which has no llama.cpp counterpart")
        b = pair.b * pair.scale if fold else pair.b
        heads = spec.permutation(hf_name)
        if heads:
            b = permute_rows(b, heads)  # W = B A: permuting W's rows is permuting B's rows
        entries.append((f"{base}.lora_a", pair.a))
        entries.append((f"{base}.lora_b", b))
    writer = _begin(path, spec.arch.gguf_arch)
    try:
        writer.add_type("adapter")
        writer.add_name(name)
        writer.add_string("adapter.type", "lora")
        # llama.cpp scales by alpha / rank; 0 means "no scaling" (the scale is folded into B).
        writer.add_float32("adapter.lora.alpha", 0.0 if fold else adapter.alpha)
        writer.add_file_type(DIRECT_TYPES["F32" if qtype == "F32" else "F16"])
        for tname, data in entries:
            writer.add_tensor_info(tname, data.shape, np.dtype(np.float32), _nbytes(data.shape, ttype), raw_dtype=ttype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        report = _Reporter(len(entries), progress)
        for done, (_tname, data) in enumerate(entries, start=1):
            writer.write_tensor_data(_encode(data, ttype))
            report(done, writer.fout[0].tell())
        return _finish(writer)
    finally:
        writer.close()
