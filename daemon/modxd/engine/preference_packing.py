"""Padding-free DPO forwards: a pair batch's sequences laid end to end, without their padding.

TRL 1.16 has switched DPOTrainer's own ``padding_free`` off ("temporarily unavailable since the
DPO refactor"), so its batches are padded: a pair's chosen and rejected sequences rarely have the
same length, and the shorter one pays for the longer one in both the policy and the reference
forward. Here the batch TRL builds stays as it is; the model's forward (TRL's fused LM head,
which TRL installs on the model) is wrapped so that it packs the rows into one -- position ids
restarting per sequence, the boundaries as ``cu_seq_lens`` for the ``modx_varlen`` attention
of engine/packing.py, which keeps every token inside its own sequence -- and scatters the
per-token outputs back to the padded layout TRL's loss reads. The loss, the rewards and the
gradients are the padded batch's (tests check), minus the padding's compute.

The fused head projects onto the vocabulary only the positions that predict an answer token on
CUDA and XPU, but every position elsewhere (TRL does so for Neuron, which compiles once per
shape): on a CPU that is the prompt's positions too, three vocabulary-sized products each (the
forward, and the backward's recomputation and gradient). A CPU compiles nothing, so the packed
forward has TRL score its labelled positions only there as well.
"""

from __future__ import annotations

import contextlib
import types
from typing import Any, Iterator

from .packing import padding_free_problem, use_padding_free

__all__ = ["use_packed_pairs", "padding_free_problem"]

_PER_TOKEN = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


def _inner(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def use_packed_pairs(model: Any) -> None:
    """Make ``model``'s fused forward (already installed by TRL's DPOTrainer) padding-free."""
    use_padding_free(model)
    inner = _inner(model)
    fused = inner.forward  # TRL's bound fused forward; calls without fused_lm_head pass through it unchanged

    def forward(self: Any, *args: Any, input_ids: Any = None, attention_mask: Any = None, labels: Any = None,
                fused_lm_head: bool = False, **kwargs: Any) -> Any:
        if not fused_lm_head or args or input_ids is None or attention_mask is None or labels is None \
                or not _right_padded(attention_mask):
            return fused(*args, input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                         fused_lm_head=fused_lm_head, **kwargs)
        return _packed(fused, input_ids, attention_mask, labels, kwargs)

    inner.forward = types.MethodType(forward, inner)


def _right_padded(attention_mask: Any) -> bool:
    import torch

    lengths = attention_mask.sum(dim=1, keepdim=True)
    columns = torch.arange(attention_mask.shape[1], device=attention_mask.device)[None]
    return bool(torch.equal(attention_mask.bool(), columns < lengths)) and bool((lengths > 0).all())


def _packed(fused: Any, input_ids: Any, attention_mask: Any, labels: Any, kwargs: dict[str, Any]) -> Any:
    import torch

    mask = attention_mask.bool()
    lengths = mask.sum(dim=1)
    ends = torch.cumsum(lengths, dim=0)
    starts = ends - lengths
    total = int(ends[-1])
    packed_labels = labels[mask].clone()
    packed_labels[starts] = -100  # a sequence's first token is never predicted (by the sequence before it)
    positions = torch.arange(total, device=input_ids.device) - torch.repeat_interleave(starts, lengths)
    bounds = torch.cat([ends.new_zeros(1), ends]).to(torch.int32)
    longest = int(lengths.max())
    with _labelled_positions_only():
        out = fused(input_ids=input_ids[mask][None], labels=packed_labels[None], position_ids=positions[None],
                    fused_lm_head=True, cu_seq_lens_q=bounds, cu_seq_lens_k=bounds, max_length_q=longest,
                    max_length_k=longest, **kwargs)
    # Packed position k predicts token k + 1; those predicting the next sequence's first token are dropped,
    # and the rest fill the padded rows in order (row i, positions 0 .. length_i - 2).
    keep = torch.ones(total - 1, dtype=torch.bool, device=input_ids.device)
    keep[ends[:-1] - 1] = False
    valid = mask[:, 1:]
    for name in _PER_TOKEN:
        value = getattr(out, name, None)
        if value is not None:
            setattr(out, name, value.new_zeros(valid.shape).masked_scatter(valid, value[0][keep]))
    return out


@contextlib.contextmanager
def _labelled_positions_only() -> Iterator[None]:
    """TRL's fused head decides "labelled positions only" with ``trl.trainer.utils._use_triton`` (its
    kernel picks its tile code with its own copy); for the duration of one packed forward, the CPU
    counts as a device where that holds (see the module docstring)."""
    import trl.trainer.utils as trl_utils

    decide = trl_utils._use_triton
    trl_utils._use_triton = lambda device: device.type == "cpu" or decide(device)
    try:
        yield
    finally:
        trl_utils._use_triton = decide
