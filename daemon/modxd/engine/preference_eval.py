"""Preference accuracy and mean reward margin of a checkpoint on held-out pairs, for the evaluation.

The evaluation of a dpo/orpo task ranks checkpoints by preference accuracy and mean reward
margin beside the composite score: :func:`held_out_pairs` repeats the evaluation's choice of
pairs, :func:`checkpoint_reference` finds what a checkpoint was trained against (the model
with the adapter disabled, the frozen SFT adapter a continued run saved under ``ref/``, or
the base model for full weights), and :func:`preference_scores` gives the two numbers
(engine/preference_metrics.py defines them as the trainer logs them). A pair is tokenized
as TRL's DPOTrainer tokenizes it for training (tests compare the two) and cut by the same
limits (max_prompt_length from the start of the prompt, then max_seq_length from the end),
so a checkpoint is scored on what it was trained to prefer. ORPO checkpoints are scored with
the same tokenization: TRL's experimental ORPOTrainer tokenizes the chat template's text and
adds an eos of its own, so its logged eval margin differs from these by well under 2% (tests);
every checkpoint of a task is scored one way, which is what the ranking needs.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, ContextManager, Sequence

from ..preference_params import DPO, ORPO, SPECS
from .preference_formats import CONVERSATIONAL, PreferencePair
from .preference_metrics import PairLogps, PreferenceScores, pair_margins, summarize
from .preference_trainers import fit_prompt

__all__ = ["tokenize_pair", "score_pairs", "adapter_disabled", "checkpoint_reference", "reward_weight",
           "preference_scores", "held_out_pairs"]

Reference = Callable[[], ContextManager[Any]]
_DEFAULTS = {spec.key: spec.default for spec in SPECS}


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def tokenize_pair(tokenizer: Any, pair: PreferencePair) -> tuple[list[int], list[int], list[int]]:
    """``(prompt, chosen, rejected)`` token ids as TRL 1.16's DPOTrainer makes them: the chat template
    (generation prompt on the prompt) for conversational pairs; for standard pairs the tokenizer's own
    special tokens and an eos after each answer; the answers start where the tokenized prompt and
    prompt + answer part."""
    def ids(value: Any, **kwargs: Any) -> list[int]:
        if isinstance(value, list):
            return list(tokenizer.apply_chat_template(value, tokenize=True, return_dict=True, **kwargs)["input_ids"])
        return list(tokenizer(text=value)["input_ids"])

    if pair.format == CONVERSATIONAL:
        prompt = ids(pair.prompt, add_generation_prompt=True)
        with_chosen, with_rejected = ids([*pair.prompt, *pair.chosen]), ids([*pair.prompt, *pair.rejected])
    else:
        eos = tokenizer.eos_token or ""
        chosen = pair.chosen if pair.chosen.endswith(eos) else pair.chosen + eos  # type: ignore[union-attr]
        rejected = pair.rejected if pair.rejected.endswith(eos) else pair.rejected + eos  # type: ignore[union-attr]
        prompt = ids(pair.prompt)
        with_chosen, with_rejected = ids(pair.prompt + chosen), ids(pair.prompt + rejected)  # type: ignore[operator]
    cut = min(_common_prefix(prompt, with_chosen), _common_prefix(prompt, with_rejected))
    return prompt[:cut], with_chosen[cut:], with_rejected[cut:]


def adapter_disabled(model: Any) -> Reference:
    """The reference of a new-adapter run: the same PEFT model with its adapters disabled."""
    return model.disable_adapter


def checkpoint_reference(model: Any, checkpoint_dir: str, base_model: Any = None) -> Reference:
    """The reference a dpo checkpoint was trained against, as a context in which it is computed.

    * a LoRA checkpoint of a run that continued an SFT adapter (start_from_checkpoint) holds that
      adapter, frozen, under ``ref/``: it is loaded beside the trained one (adapter-sized) and made
      active inside the context (TRL's ``use_adapter``, as its trainer does);
    * another LoRA checkpoint: the reference is ``model_dir``, i.e. ``model`` with its adapter disabled;
    * full weights: ``base_model`` (``model_dir`` loaded apart), which the context yields.
    """
    from trl.trainer.utils import use_adapter

    if hasattr(model, "peft_config"):
        ref_dir = os.path.join(checkpoint_dir, "ref")
        if not os.path.isfile(os.path.join(ref_dir, "adapter_config.json")):
            return adapter_disabled(model)
        if "ref" not in model.peft_config:
            model.load_adapter(ref_dir, adapter_name="ref", is_trainable=False)
        return lambda: use_adapter(model, "ref")
    if base_model is None:
        raise ValueError("a full-weights dpo checkpoint is scored against model_dir: pass it as base_model")
    return lambda: contextlib.nullcontext(base_model)


def reward_weight(task_type: str, params: dict[str, Any]) -> float:
    """The factor of the task's rewards: dpo's beta, orpo's lambda (the task's value or the default)."""
    key = "beta" if task_type == DPO else "orpo_lambda"
    value = params.get(key)
    return float(_DEFAULTS[key] if value is None else value)


def _sequences(tokenizer: Any, pairs: Sequence[PreferencePair], max_length: int,
               max_prompt_length: int) -> list[tuple[list[int], int]]:
    """Two ``(ids, answer start)`` per pair (chosen, rejected), cut as in training."""
    bos = getattr(tokenizer, "bos_token_id", None)
    out = []
    for pair in pairs:
        prompt, chosen, rejected = tokenize_pair(tokenizer, pair)
        prompt = fit_prompt(prompt, max_prompt_length, bos)
        if len(prompt) >= max_length:
            raise ValueError(f"a pair's prompt fills max_seq_length {max_length}: set max_prompt_length")
        for answer in (chosen, rejected):
            out.append(([*prompt, *answer][:max_length], len(prompt)))
    return out


def _answer_logps(model: Any, batch: list[tuple[list[int], int]], pad_id: int) -> list[tuple[float, int]]:
    import torch

    device = next(model.parameters()).device
    longest = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, (ids, _) in enumerate(batch):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        mask[row, :len(ids)] = 1
    logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), use_cache=False).logits.float()
    logps = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None].to(device))[..., 0]
    out = []
    for row, (ids, start) in enumerate(batch):
        answer = logps[row, max(start, 1) - 1:len(ids) - 1]  # position k predicts token k + 1
        out.append((float(answer.sum()), int(answer.numel())))
    return out


def score_pairs(model: Any, tokenizer: Any, pairs: Sequence[PreferencePair], max_length: int,
                max_prompt_length: int = 0, reference: Reference | None = None,
                batch_size: int = 4) -> list[PairLogps]:
    """Summed log-probabilities of each pair's answers under ``model`` and, when given, under the
    reference (``reference()`` is a context in which the reference is computed: by ``model``, e.g.
    :func:`adapter_disabled`, or by the model the context yields; dpo needs it, orpo does not)."""
    import torch

    sequences = _sequences(tokenizer, pairs, max_length, max_prompt_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            policy, ref = [], []
            for start in range(0, len(sequences), batch_size):
                batch = sequences[start:start + batch_size]
                policy += _answer_logps(model, batch, pad_id)
                if reference is not None:
                    with reference() as other:  # None: ``model`` itself, changed by the context
                        ref += _answer_logps(model if other is None else other, batch, pad_id)
    finally:
        model.train(was_training)
    ref = ref or [(0.0, n) for _, n in policy]
    return [PairLogps(chosen=policy[2 * i][0], rejected=policy[2 * i + 1][0], chosen_tokens=policy[2 * i][1],
                      rejected_tokens=policy[2 * i + 1][1], ref_chosen=ref[2 * i][0], ref_rejected=ref[2 * i + 1][0])
            for i in range(len(pairs))]



def preference_scores(model: Any, tokenizer: Any, pairs: Sequence[PreferencePair], task_type: str,
                      params: dict[str, Any], reference: Reference | None = None,
                      batch_size: int = 4) -> PreferenceScores:
    """Preference accuracy and mean reward margin of ``model`` on ``pairs``, by the task's own limits
    (max_seq_length, max_prompt_length) and reward weight, as the trainer's evaluation logs them."""
    if task_type not in (DPO, ORPO):
        raise ValueError(f"preference scores are for dpo and orpo tasks, not {task_type}")
    if task_type == DPO and reference is None:
        raise ValueError("a dpo checkpoint is scored against its reference: see checkpoint_reference")
    logps = score_pairs(model, tokenizer, pairs, int(params.get("max_seq_length") or 512),
                        int(params.get("max_prompt_length") or 0), reference if task_type == DPO else None,
                        batch_size)
    return summarize(pair_margins(logps, task_type, reward_weight(task_type, params)))


def held_out_pairs(plan: dict[str, Any], params: dict[str, Any]) -> list[PreferencePair]:
    """The pairs of an evaluation plan (evaluations.DataPlan as a dict), chosen as the daemon chose them:
    the eval file, else exactly the split training held out, else the training pairs; then a seeded
    sample (engine/eval_data.py select_pairs, the one rule both ends apply)."""
    from .eval_data import plan_pairs

    return plan_pairs(plan, params)


def standard_example(tokenizer: Any, pair: PreferencePair, max_length: int) -> tuple[list[int], list[int], int] | None:
    """A standard (plain-text) pair's prompt + chosen answer as one sequence for the evaluation's
    perplexity family: ``(input ids, labels: the answer's tokens only, the answer's UTF-8 bytes)``,
    tokenized as training tokenized it; None when the prompt leaves no room for an answer token."""
    prompt, chosen, _ = tokenize_pair(tokenizer, pair)
    if len(prompt) + 1 > max_length or not chosen:
        return None
    ids = [*prompt, *chosen][:max_length]
    return ids, [-100] * len(prompt) + ids[len(prompt):], max(1, len(str(pair.chosen).encode("utf-8")))


def candidate_reference(task_type: str, model: Any, checkpoint_dir: str, is_base: bool,
                        load_base: Callable[[], Any]) -> Reference | None:
    """The reference an evaluation scores a candidate's rewards against: none for orpo; for dpo the
    checkpoint's own (:func:`checkpoint_reference`; ``load_base`` gives model_dir for full weights),
    and for the base model itself (its margins are 0: the start point of every dpo run on it)."""
    if task_type != DPO:
        return None
    if is_base:
        return lambda: contextlib.nullcontext(model)
    if hasattr(model, "peft_config"):
        return checkpoint_reference(model, checkpoint_dir)
    return checkpoint_reference(model, checkpoint_dir, base_model=load_base())


class PairScoring:
    """The preference part of engine/evaluate.py's ``EvalJob`` (which sets ``cfg``, ``params``,
    ``task_type``, ``conversations``, ``tokenizer``, ``model_dir``, ``device``, ``batch_size`` and has
    ``_sft_examples``, ``_limit``, ``_pin``, ``_fit_embeddings``): the pairs of the plan, their
    examples for the composite, and each candidate's preference scores."""

    pairs: list[PreferencePair]

    def _pair_examples(self, tokenizer: Any) -> list[Example]:
        """dpo, orpo: the plan's pairs (kept for the preference scores); prompt + chosen answer scored
        as an SFT conversation (conversational pairs) or as text whose answer tokens count (standard)."""
        from .eval_data import plan_pairs
        from .evaluate import Example

        self.pairs = plan_pairs(self.cfg["data"], self.params)
        if self.conversations:
            return self._sft_examples(tokenizer, [[*p.prompt, *p.chosen] for p in self.pairs])  # type: ignore[misc]
        limit, out = self._limit(), []
        for pair in self.pairs:
            example = standard_example(tokenizer, pair, limit)
            if example is not None:
                out.append(Example(len(out), example[0], example[1], example[2], text=str(pair.prompt)))
        return out

    def _preference_scores(self, model: Any, cand: dict[str, Any], dtype: str) -> dict[str, Any]:
        """Preference accuracy, mean margin and pair count of one candidate, against its reference."""
        from .models import load_model

        is_base = cand["checkpoint_id"] == "base"
        path = self.model_dir if is_base else self._pin(f"checkpoint {cand['checkpoint_id']}", cand["path"])

        def load_base() -> Any:
            base = load_model(self.model_dir, dtype)
            self._fit_embeddings(base)
            return base.to(self.device).eval()

        reference = candidate_reference(self.task_type, model, path, is_base, load_base)
        scores = preference_scores(model, self.tokenizer, self.pairs, self.task_type, self.params, reference,
                                   self.batch_size)
        return {"preference_accuracy": scores.accuracy, "preference_margin": scores.mean_margin,
                "preference_pairs": scores.pairs}

