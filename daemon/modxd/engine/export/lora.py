"""A peft LoRA checkpoint: read its adapter, merge it per tensor, or list it for an adapter GGUF.

The adapter is small (it is loaded whole); the base weights are not: the writer asks
:meth:`LoraAdapter.merge_into` for each base tensor as it streams them, so the merge is
done in float32 one tensor at a time, on full-precision base weights (never on a
quantized base).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arch import ExportError

__all__ = ["LoraAdapter", "is_lora_checkpoint", "load_adapter"]

_ADAPTER_FILES = ("adapter_model.safetensors",)
_LORA_RE = re.compile(r"^(?P<module>.+)\.lora_(?P<which>A|B|embedding_A|embedding_B)(?:\.[^.]+)?\.weight$")
_LORA_RE2 = re.compile(r"^(?P<module>.+)\.lora_(?P<which>embedding_A|embedding_B)(?:\.[^.]+)?$")


def is_lora_checkpoint(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "adapter_config.json"))


@dataclass
class LoraPair:
    a: np.ndarray          # (r, in) float32
    b: np.ndarray          # (out, r) float32
    scale: float
    embedding: bool = False


class LoraAdapter:
    """The LoRA matrices of a checkpoint, keyed by the base model's weight name."""

    def __init__(self, directory: str, config: dict[str, Any], pairs: dict[str, LoraPair],
                 replacements: dict[str, np.ndarray]) -> None:
        self.directory = directory
        self.config = config
        self.pairs = pairs
        self.replacements = replacements  # modules_to_save: whole tensors that replace base ones
        self.used: set[str] = set()

    @property
    def alpha(self) -> float:
        return float(self.config.get("lora_alpha") or 0)

    @property
    def rank(self) -> int:
        return int(self.config.get("r") or 0)

    @property
    def uniform(self) -> bool:
        """One alpha and rank for every module, as llama.cpp's adapter format expects."""
        return not (self.config.get("rank_pattern") or self.config.get("alpha_pattern")
                    or self.config.get("use_rslora"))

    def merge_into(self, name: str, weights: np.ndarray) -> np.ndarray:
        """``weights`` (float32) with this adapter's delta (and replacement) applied."""
        if name in self.replacements:
            self.used.add(name)
            weights = self.replacements[name].astype(np.float32)
        pair = self.pairs.get(name)
        if pair is None:
            return weights
        self.used.add(name)
        delta = (pair.b @ pair.a) * pair.scale
        if pair.embedding:
            delta = delta.T
        if delta.shape != weights.shape:
            raise ExportError(f"the LoRA delta of {name} has shape {delta.shape} but the base weight has "
                              f"{weights.shape}: the adapter was not trained on this base model")
        return (weights.astype(np.float32) + delta.astype(np.float32)).astype(np.float32)

    def check_all_used(self) -> None:
        unused = sorted((set(self.pairs) | set(self.replacements)) - self.used)
        if unused:
            raise ExportError(f"the LoRA adapter in {self.directory} adapts {', '.join(unused[:5])}, which the base "
                              "model does not have: it was not trained on this base model")


def _module_settings(config: dict[str, Any], module: str, rank: int) -> float:
    alpha = float(config.get("lora_alpha") or rank)
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if re.fullmatch(rf"(.*\.)?{pattern}", module):
            alpha = float(value)
    if config.get("use_rslora"):
        return alpha / math.sqrt(rank)
    return alpha / rank


def _base_name(key: str) -> str:
    for prefix in ("base_model.model.", "base_model."):
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    return key.replace(".modules_to_save.default", "").replace(".modules_to_save", "")


def load_adapter(directory: str) -> LoraAdapter:
    """Read ``adapter_config.json`` and the adapter weights (peft's layout)."""
    from safetensors import safe_open

    with open(os.path.join(directory, "adapter_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise ExportError(f"{directory} holds a {peft_type} adapter; only LoRA adapters are exported")
    if config.get("use_dora"):
        raise ExportError(f"{directory} holds a DoRA adapter, which neither the merge nor llama.cpp's adapter "
                          "format supports")
    if config.get("fan_in_fan_out"):
        raise ExportError(f"{directory}: fan_in_fan_out LoRA adapters (GPT-2 Conv1D) are not supported")
    path = next((os.path.join(directory, n) for n in _ADAPTER_FILES if os.path.isfile(os.path.join(directory, n))),
                None)
    if path is None:
        raise ExportError(f"{directory} has adapter_config.json but no adapter_model.safetensors")
    halves: dict[str, dict[str, np.ndarray]] = {}
    replacements: dict[str, np.ndarray] = {}
    with safe_open(path, framework="pt") as f:
        for key in f.keys():
            tensor = f.get_tensor(key).float().numpy()
            name = _base_name(key)
            match = _LORA_RE.match(name) or _LORA_RE2.match(name)
            if match:
                halves.setdefault(match.group("module"), {})[match.group("which")] = tensor
            elif name.endswith((".weight", ".bias")):
                replacements[name] = tensor
            else:
                raise ExportError(f"{path}: tensor {key} is not a LoRA matrix this exporter understands")
    pairs: dict[str, LoraPair] = {}
    for module, parts in halves.items():
        if "A" in parts and "B" in parts:
            a, b, embedding = parts["A"], parts["B"], False
        elif "embedding_A" in parts and "embedding_B" in parts:
            a, b, embedding = parts["embedding_A"], parts["embedding_B"], True
        else:
            raise ExportError(f"{path}: module {module} has only one of its two LoRA matrices")
        rank = a.shape[0]
        pairs[f"{module}.weight"] = LoraPair(a, b, _module_settings(config, module, rank), embedding)
    if not pairs and not replacements:
        raise ExportError(f"{path} holds no LoRA weights")
    return LoraAdapter(directory, config, pairs, replacements)
