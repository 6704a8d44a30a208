"""TRL's DPO and ORPO trainers as modx trainers, and the events of a preference run.

``ModxDPOTrainer`` / ``ModxORPOTrainer`` put :class:`~modxd.engine.train.ModxTrainer` (paid,
staged, atomic, rotated checkpoints; every step checked for non-finite numbers) in front of
TRL's trainer in the method order, so the loss, the reference handling and the metrics stay
TRL's. What they add: the prompt limit TRL 1.16 dropped (``max_prompt_length``, cut from the
start) with a count of what was cut or dropped, no model card written into the output dir
(TRL writes ``README.md`` there at every save: outside the checkpoint and the task's file
manifest), and ORPO's input tokens counted for the tokens/s of the metrics.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Iterator

from trl import DPOTrainer
from trl.experimental.orpo import ORPOTrainer

from ..protocol import Metrics
from .callbacks import EventCallback
from .preference_metrics import point_fields
from .train import ModxTrainer

__all__ = ["ModxDPOTrainer", "ModxORPOTrainer", "PreferenceEvents", "FitReport", "fit_prompt", "UNLIMITED"]

UNLIMITED = 1 << 30  # ORPO's own max_length while tokenizing: the cut is made here, prompt first
IGNORE = -100


def fit_prompt(prompt_ids: list[int], limit: int, bos_id: int | None) -> list[int]:
    """The last ``limit`` tokens of a prompt (0: all); a leading bos token stays in front."""
    if not limit or len(prompt_ids) <= limit:
        return prompt_ids
    if bos_id is not None and prompt_ids[0] == bos_id and limit > 1:
        return [bos_id, *prompt_ids[len(prompt_ids) - limit + 1:]]
    return prompt_ids[len(prompt_ids) - limit:]


@dataclass
class FitReport:
    """How one data set met the length limits."""

    name: str
    pairs: int = 0
    prompts_cut: int = 0
    answers_cut: int = 0
    dropped: int = 0

    def warnings(self, max_length: int, max_prompt_length: int) -> list[dict[str, str]]:
        what = "training" if self.name == "train" else "evaluation"
        out = []
        if self.prompts_cut:
            out.append({"code": "prompts_truncated", "message": f"{self.prompts_cut} of {self.pairs} {what} pairs have "
                        f"prompts longer than max_prompt_length {max_prompt_length} tokens; their start was cut"})
        if self.answers_cut:
            out.append({"code": "examples_truncated", "message": f"{self.answers_cut} of {self.pairs} {what} pairs are "
                        f"longer than max_seq_length {max_length} tokens; the end of their answers was cut"})
        if self.dropped:
            out.append({"code": "examples_dropped", "message": f"{self.dropped} of {self.pairs} {what} pairs were "
                        f"dropped: their prompt fills max_seq_length {max_length} (set max_prompt_length)"})
        return out


class ModxDPOTrainer(ModxTrainer, DPOTrainer):
    """TRL's DPO with modx's checkpoints and checks (see the module docstring)."""

    def __init__(self, *args: Any, max_prompt_length: int = 0, reference_adapter: bool = False, **kwargs: Any):
        self.max_prompt_length = max_prompt_length  # read while TRL tokenizes, inside its __init__
        self.fit_reports: list[FitReport] = []
        super().__init__(*args, **kwargs)
        peft_config = getattr(self.model, "peft_config", {})
        if not reference_adapter and "ref" in peft_config:
            # TRL copies any adapter it is given into a frozen "ref" adapter. A new adapter starts as the
            # identity, so the reference is the model with adapters disabled: no copy to keep or save.
            self.model.delete_adapter("ref")

    def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
        """TRL tokenizes (without its length filter); then the prompt is cut and pairs without room dropped."""
        from datasets import Dataset

        unlimited = SimpleNamespace(dataset_num_proc=args.dataset_num_proc, max_length=None,
                                    truncation_mode=args.truncation_mode)
        tokenized = super()._prepare_dataset(dataset, processing_class, unlimited, dataset_name)
        bos = getattr(self._tokenizer, "bos_token_id", None)
        report = FitReport(dataset_name, len(tokenized))
        kept: dict[str, list[list[int]]] = {"prompt_ids": [], "chosen_ids": [], "rejected_ids": []}
        for prompt, chosen, rejected in zip(tokenized["prompt_ids"], tokenized["chosen_ids"],
                                            tokenized["rejected_ids"]):
            fitted = fit_prompt(prompt, self.max_prompt_length, bos)
            report.prompts_cut += len(fitted) < len(prompt)
            if len(fitted) >= args.max_length:
                report.dropped += 1
                continue
            report.answers_cut += len(fitted) + max(len(chosen), len(rejected)) > args.max_length
            for key, ids in (("prompt_ids", fitted), ("chosen_ids", chosen), ("rejected_ids", rejected)):
                kept[key].append(ids)
        self.fit_reports.append(report)
        return Dataset.from_dict(kept)  # the collator cuts the answers to max_length

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        return None


def _prompt_part(labels: list[int]) -> int:
    count = 0
    while count < len(labels) and labels[count] == IGNORE:
        count += 1
    return count


class ModxORPOTrainer(ModxTrainer, ORPOTrainer):
    """TRL's (experimental) ORPO with modx's checkpoints and checks (see the module docstring)."""

    def __init__(self, *args: Any, max_length: int, max_prompt_length: int = 0, **kwargs: Any):
        self.fit_length = max_length  # ORPO's own limit is UNLIMITED: it would cut answers before prompts
        self.max_prompt_length = max_prompt_length
        self.fit_reports: list[FitReport] = []
        super().__init__(*args, **kwargs)
        self.train_dataset = self._keep_fitting(self.train_dataset, "train")
        if self.eval_dataset is not None:
            self.eval_dataset = self._keep_fitting(self.eval_dataset, "eval")

    def tokenize_row(self, feature: dict, model: Any = None) -> dict:
        row = super().tokenize_row(feature, model)
        bos = getattr(self.processing_class, "bos_token_id", None)
        limit = self.fit_length
        fits, prompt_cut, answer_cut = True, False, False
        for side in ("chosen", "rejected"):
            ids, labels = row[f"{side}_input_ids"], row[f"{side}_labels"]
            n = _prompt_part(labels)
            prompt = fit_prompt(ids[:n], self.max_prompt_length, bos)
            prompt_cut |= len(prompt) < n
            ids, labels = [*prompt, *ids[n:]], [IGNORE] * len(prompt) + labels[n:]
            fits &= len(prompt) < limit
            answer_cut |= len(ids) > limit
            row[f"{side}_input_ids"], row[f"{side}_labels"] = ids[:limit], labels[:limit]
            row[f"{side}_attention_mask"] = [1] * len(row[f"{side}_input_ids"])
        row["prompt_input_ids"] = fit_prompt(row["prompt_input_ids"], self.max_prompt_length, bos)
        row["prompt_attention_mask"] = [1] * len(row["prompt_input_ids"])
        row.update(modx_fits=fits, modx_prompt_cut=prompt_cut, modx_answer_cut=answer_cut)
        return row

    def _keep_fitting(self, dataset: Any, name: str) -> Any:
        report = FitReport(name, len(dataset), prompts_cut=sum(dataset["modx_prompt_cut"]),
                           answers_cut=sum(a and f for a, f in zip(dataset["modx_answer_cut"], dataset["modx_fits"])),
                           dropped=len(dataset) - sum(dataset["modx_fits"]))
        self.fit_reports.append(report)
        kept = dataset.filter(lambda row: row["modx_fits"]) if report.dropped else dataset
        return kept.remove_columns(["modx_fits", "modx_prompt_cut", "modx_answer_cut"])

    def _track_num_input_tokens(self, inputs: dict) -> None:
        """ORPO batches hold chosen_/rejected_ inputs, not input_ids: count both answers' sequences."""
        if "input_ids" in inputs or self.args.include_num_input_tokens_seen == "no":
            super()._track_num_input_tokens(inputs)
            return
        import torch

        tokens = inputs["chosen_attention_mask"].sum() + inputs["rejected_attention_mask"].sum()
        tokens = torch.as_tensor(tokens, device=self.args.device, dtype=torch.int64)
        self.state.num_input_tokens_seen += self.accelerator.gather(tokens).sum().item()

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        return None


class PreferenceEvents(EventCallback):
    """SFT's events (progress, commands, saves), each metrics point with the preference fields
    of engine/preference_metrics.py added and no perplexity."""

    @contextlib.contextmanager
    def _adding(self, fields: dict[str, Any]) -> Iterator[None]:
        emit = self.emit
        self.emit = lambda report: emit(dataclasses.replace(report, **fields) if isinstance(report, Metrics) else report)
        try:
            yield
        finally:
            self.emit = emit

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        with self._adding(point_fields(logs or {})):
            super().on_log(args, state, control, logs=logs, **kwargs)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> None:
        with self._adding(point_fields(metrics or {}, evaluation=True)):
            super().on_evaluate(args, state, control, metrics=metrics, **kwargs)
