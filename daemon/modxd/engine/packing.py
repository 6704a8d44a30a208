"""Padding-free batches: the fast path for variable-length SFT data.

A plain ``Trainer`` pads every batch to its longest example, so with chat data whose
lengths spread from tens to a thousand tokens, a third or more of the compute goes
to padding. Here a batch is one row: the examples laid end to end, ``position_ids``
restarting at 0 for each, and their boundaries as ``cu_seq_lens`` (the varlen
convention FlashAttention uses). The ``modx_varlen`` attention (registered with
transformers' ``AttentionInterface``) keeps attention causal within each example --
one varlen FlashAttention kernel call per row on a CUDA GPU that has one, causal SDPA
once per example elsewhere (engine/attention.py decides) -- so no token attends across
an example boundary and no mask is built: the maths is the padded batch's, minus the
padding (tests check losses and gradients match).

Two more savings ride along: the loss is computed from the logits of labelled
positions only (``logits_to_keep``), which skips most of the vocabulary projection
for prompt tokens, and the label at each example's first position is -100 so no
example predicts the next one's first token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .attention import LOOP, backend_for, call_problem, log_fallback_once, varlen_kernel
from .data import IGNORE_INDEX

__all__ = ["ATTENTION", "PackedCollator", "padding_free_problem", "use_padding_free", "labelled_loss"]

ATTENTION = "modx_varlen"
_registered = False


def _varlen_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                      scaling: float | None = None, dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    """Causal attention within each packed example; plain SDPA for ordinary (unpacked) batches.

    A varlen FlashAttention kernel where the device has one (engine/attention.py decides),
    else causal SDPA once per example.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    bounds = kwargs.get("cu_seq_lens_q")
    if bounds is None or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling,
                                      dropout=dropout, **kwargs)
    dropout_p = dropout if module.training else 0.0
    backend = backend_for(query.device)
    if backend != LOOP:
        problem = call_problem(str(query.dtype).removeprefix("torch."), query.shape[-1], dropout_p)
        if problem is None:
            return _kernel_attention(backend, query, key, value, bounds, kwargs.get("max_length_q"), scaling), None
        log_fallback_once(problem)
    return _loop_attention(query, key, value, bounds, scaling, dropout_p), None


def _kernel_attention(backend: str, query: Any, key: Any, value: Any, bounds: Any, longest: int | None,
                      scaling: float | None) -> Any:
    """One varlen kernel call over the row: (1, heads, tokens, dim) in, (1, tokens, heads, dim) out."""
    import torch

    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # (tokens, heads, dim)
    bounds = bounds.to(device=query.device, dtype=torch.int32)
    if longest is None:
        longest = int((bounds[1:] - bounds[:-1]).max())
    out = varlen_kernel(backend)(q.contiguous(), k.contiguous(), v.contiguous(), bounds, int(longest), scaling)
    return out.unsqueeze(0)


def _loop_attention(query: Any, key: Any, value: Any, bounds: Any, scaling: float | None,
                    dropout_p: float) -> Any:
    """Causal SDPA once per packed example (the CPU path, and the fallback everywhere)."""
    import torch
    import torch.nn.functional as F

    edges = bounds.tolist()
    outputs = [
        F.scaled_dot_product_attention(query[:, :, start:end], key[:, :, start:end], value[:, :, start:end],
                                       is_causal=True, scale=scaling, dropout_p=dropout_p,
                                       enable_gqa=query.shape[1] != key.shape[1])
        for start, end in zip(edges[:-1], edges[1:]) if end > start
    ]
    return torch.cat(outputs, dim=2).transpose(1, 2).contiguous()


def _varlen_mask(*args: Any, **kwargs: Any) -> Any:
    """Masks for ``modx_varlen``: none without a padding mask (causal SDPA, or packed
    examples, which the attention separates itself), else SDPA's own."""
    from transformers.masking_utils import sdpa_mask

    if kwargs.get("attention_mask") is None:
        return None
    return sdpa_mask(*args, **kwargs)


def _register() -> None:
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface, AttentionMaskInterface

    AttentionInterface.register(ATTENTION, _varlen_attention)
    AttentionMaskInterface.register(ATTENTION, _varlen_mask)
    _registered = True


def padding_free_problem(model: Any) -> str | None:
    """Why ``model`` cannot take packed batches, or None when it can."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    if not getattr(type(base), "_supports_attention_backend", False):
        return f"{type(base).__name__} does not route attention through transformers' attention interface"
    if getattr(config, "use_sliding_window", False) or "sliding_attention" in (getattr(config, "layer_types", None)
                                                                               or []):
        return "the model uses sliding-window attention"
    if getattr(config, "attn_logit_softcapping", None):
        return "the model soft-caps attention logits"
    return None


def use_padding_free(model: Any) -> None:
    """Switch ``model`` (or the PEFT model around it) to the per-example attention."""
    _register()
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(ATTENTION)


@dataclass
class PackedCollator:
    """Lay a batch's examples end to end in one row (see the module docstring)."""

    labelled_logits_only: bool = True

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        edges = [0]
        for f in features:
            n = len(f["input_ids"])
            ids.extend(f["input_ids"])
            labels.append(IGNORE_INDEX)
            labels.extend(f["labels"][1:n])
            positions.extend(range(n))
            edges.append(edges[-1] + n)
        label_row = torch.tensor([labels], dtype=torch.long)
        bounds = torch.tensor(edges, dtype=torch.int32)
        longest = max(b - a for a, b in zip(edges[:-1], edges[1:]))
        batch: dict[str, Any] = {
            "input_ids": torch.tensor([ids], dtype=torch.long), "labels": label_row,
            "position_ids": torch.tensor([positions], dtype=torch.long),
            "cu_seq_lens_q": bounds, "cu_seq_lens_k": bounds, "max_length_q": longest, "max_length_k": longest,
        }
        if self.labelled_logits_only:
            batch["logits_to_keep"] = _predicting_positions(label_row)
        return batch


def _predicting_positions(labels: Any) -> Any:
    """Positions whose logits predict a labelled token (the next position has a label)."""
    return (labels[0, 1:] != IGNORE_INDEX).nonzero().squeeze(1)


def labelled_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Causal LM cross-entropy when the logits are those of the predicting positions only.

    Mirrors transformers' ``ForCausalLMLoss``: summed and divided by ``num_items_in_batch``
    (the labelled tokens of the whole accumulated batch) when the Trainer passes it, else a
    mean, so gradient accumulation and logging are unchanged.
    """
    import torch.nn.functional as F

    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    targets = labels[0, 1:][labels[0, 1:] != IGNORE_INDEX].to(logits.device)
    if logits.shape[1] != targets.shape[0]:  # full logits (e.g. evaluation without logits_to_keep)
        logits = logits[:, :-1][:, labels[0, 1:] != IGNORE_INDEX]
    if num_items_in_batch is None:
        return F.cross_entropy(logits[0].float(), targets, reduction="mean")
    total = F.cross_entropy(logits[0].float(), targets, reduction="sum")
    if hasattr(num_items_in_batch, "to"):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
