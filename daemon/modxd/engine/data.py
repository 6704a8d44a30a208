"""Turning validated data files into token examples for ``Trainer``.

SFT: each conversation is rendered once with the chat template and tokenized
with offsets; the character span of every assistant turn is found by rendering
the conversation up to that turn (with and without the generation prompt), and
only tokens inside those spans get labels (everything else is -100). A turn's
span ends with the end-of-turn marker (the eos token when the template emits it
there), so the model learns to stop. Pretraining: documents are tokenized,
joined with eos between them and cut into ``max_seq_length`` blocks (the
remainder is dropped).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..params import SFT, TrainParams
from .formats import iter_pretrain_texts, iter_sft_conversations
from .models import EngineError
from ..plan import no_block_sentence, split_sizes

__all__ = ["TokenDataset", "PadCollator", "PreparedData", "render_conversation", "tokenize_conversation",
           "prepare_data", "has_labels", "held_out_indexes", "no_assistant_token_sentence", "IGNORE_INDEX"]

IGNORE_INDEX = -100


class TokenDataset:
    """A list of ``{"input_ids", "labels"}`` examples (a map-style torch dataset)."""

    def __init__(self, examples: list[dict[str, list[int]]]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.examples[index]


@dataclass
class PadCollator:
    """Pad a batch to its longest example: pad id for inputs, -100 for labels."""

    pad_token_id: int

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        length = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), length), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(features), length), dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            ids[row, :n] = torch.tensor(f["input_ids"], dtype=torch.long)
            labels[row, :n] = torch.tensor(f["labels"], dtype=torch.long)
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


@dataclass
class PreparedData:
    """Datasets plus the counts the run reports."""

    train: TokenDataset
    eval: TokenDataset | None
    notes: list[str] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _assistant_spans(tokenizer: Any, messages: list[dict[str, str]], text: str) -> list[tuple[int, int]]:
    """Character spans of the assistant turns inside the full rendering ``text``."""
    spans = []
    eos = tokenizer.eos_token or ""
    cursor = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], True) if i else ""
        through = _render(tokenizer, messages[: i + 1], False)
        if text.startswith(through) and through.startswith(before):
            start, end = len(before), len(through)
        else:  # a template that renders prefixes differently: find the content itself
            start = text.find(message["content"], cursor)
            if start < 0:
                raise EngineError("the chat template does not reproduce the assistant content verbatim, "
                                  "so assistant tokens cannot be labelled; use another chat_template")
            end = start + len(message["content"])
            if eos and text.startswith(eos, end):
                end += len(eos)
        cut = text.rfind(eos, start, end) if eos else -1
        if cut >= 0 and text[cut + len(eos): end].strip() == "":
            end = cut + len(eos)  # stop at the end-of-turn token, not the newline after it
        spans.append((start, end))
        cursor = end
    return spans


def render_conversation(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The conversation as the chat template renders it, and the character spans of its assistant turns.

    Raises whatever the template raises (the daemon runs this at create, on the data's own examples)."""
    while messages and messages[-1]["role"] != "assistant":
        messages = messages[:-1]  # trailing prompts carry no labels
    text = _render(tokenizer, messages, False)
    return text, _assistant_spans(tokenizer, messages, text)


def tokenize_conversation(tokenizer: Any, messages: list[dict[str, str]],
                          max_seq_length: int) -> tuple[dict[str, list[int]], bool]:
    """Token ids and labels of one conversation; returns ``(example, truncated)``."""
    text, spans = render_conversation(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = [IGNORE_INDEX] * len(ids)
    for t, (s, e) in enumerate(enc["offset_mapping"]):
        if e <= s:
            continue
        if any(s < b and e > a for a, b in spans):  # overlap: a token merged across the edge counts
            labels[t] = ids[t]
    truncated = len(ids) > max_seq_length
    return {"input_ids": ids[:max_seq_length], "labels": labels[:max_seq_length]}, truncated


def has_labels(example: dict[str, list[int]]) -> bool:
    """Whether an example keeps a trained (assistant) token after truncation; one without is dropped."""
    return any(label != IGNORE_INDEX for label in example["labels"])


def take_samples(items: Iterable[Any], max_samples: int) -> list[Any]:
    """The first `max_samples` items (all of them with 0): training's max_samples, which evaluation repeats."""
    out = []
    for item in items:
        if max_samples and len(out) >= max_samples:
            break
        out.append(item)
    return out


def held_out_indexes(count: int, ratio: float, seed: int) -> set[int]:
    """Which of `count` examples the seeded split holds out for evaluation (the daemon asks too)."""
    _, eval_n = split_sizes(count, ratio)
    if not eval_n:
        return set()
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return set(order[:eval_n])


def split_held_out(items: list[Any], ratio: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(trained on, held out): training's seeded split, which evaluation repeats to score the held-out part."""
    eval_idx = held_out_indexes(len(items), ratio, seed)
    if not eval_idx:
        return items, []
    return ([x for i, x in enumerate(items) if i not in eval_idx],
            [x for i, x in enumerate(items) if i in eval_idx])


def _sft_dataset(tokenizer: Any, conversations: list[list[dict[str, str]]], max_seq_length: int,
                 what: str, out: PreparedData) -> TokenDataset:
    examples, truncated, dropped = [], 0, 0
    for index, conv in enumerate(conversations):
        try:
            example, cut = tokenize_conversation(tokenizer, conv, max_seq_length)
        except EngineError:
            raise
        except Exception as exc:  # jinja errors, templates that refuse a role, ...
            raise EngineError(f"the chat template cannot format {what} example {index + 1}: {exc}") from None
        if not has_labels(example):
            dropped += 1
            continue
        truncated += cut
        examples.append(example)
    if truncated:
        out.warnings.append({"code": "examples_truncated",
                             "message": f"{truncated} of {len(conversations)} {what} examples are longer than "
                                        f"max_seq_length {max_seq_length} tokens and were truncated"})
    if dropped:
        out.warnings.append({"code": "examples_dropped",
                             "message": f"{dropped} of {len(conversations)} {what} examples were dropped: no "
                                        f"assistant token fits in max_seq_length {max_seq_length}"})
    return TokenDataset(examples)


def _blocks(tokenizer: Any, docs: Iterable[str], max_seq_length: int, keep_short: bool,
            limit: int = 0) -> list[dict[str, list[int]]]:
    """Documents + eos, concatenated and cut into blocks (the daemon counts tokens the same way)."""
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    blocks: list[dict[str, list[int]]] = []
    for doc in docs:
        stream.extend(tokenizer(doc, add_special_tokens=False)["input_ids"])
        if eos is not None:
            stream.append(eos)
        pos = 0
        while len(stream) - pos >= max_seq_length:
            chunk = stream[pos:pos + max_seq_length]
            pos += max_seq_length
            blocks.append({"input_ids": chunk, "labels": list(chunk)})
            if limit and len(blocks) >= limit:
                return blocks
        del stream[:pos]
    if not blocks and keep_short and stream:
        blocks.append({"input_ids": stream, "labels": list(stream)})
    return blocks


def no_assistant_token_sentence(train_file: str, max_seq_length: int, detail: str = "") -> str:
    """The refusal of SFT data none of whose examples keeps an assistant token within max_seq_length (so
    nothing is labelled): said at create (tokenizer_checks.py, with `detail`) and by the worker."""
    return (f"parameter max_seq_length {max_seq_length}: no training example of train_file {train_file} keeps an "
            f"assistant token within {max_seq_length} tokens{detail}, so there is nothing to train on; raise "
            "max_seq_length or shorten the prompts")


def prepare_data(params: TrainParams, tokenizer: Any, log: Callable[[str], None]) -> PreparedData:
    """Read, cap, split and tokenize train/eval data as the task's parameters say."""
    sft = params.task_type == SFT
    max_seq_length, seed, max_samples, ratio = (params.max_seq_length, params.seed, params.max_samples,
                                                params.eval_split_ratio)
    train_file, eval_file = params.train_file, params.eval_file
    out = PreparedData(TokenDataset([]), None)
    if sft:
        items = take_samples(iter_sft_conversations(train_file, field="train_file"), max_samples)
        if not items:
            raise EngineError(f"train_file {train_file} has no examples")
        eval_items: list[Any] = []
        if eval_file:
            eval_items = list(iter_sft_conversations(eval_file, field="eval_file"))
        elif ratio > 0:
            items, eval_items = split_held_out(items, ratio, seed)
        out.train = _sft_dataset(tokenizer, items, max_seq_length, "training", out)
        out.eval = _sft_dataset(tokenizer, eval_items, max_seq_length, "evaluation", out) if eval_items else None
    else:  # examples are blocks: max_samples and the split count blocks, as the quota estimate does
        blocks = _blocks(tokenizer, iter_pretrain_texts(train_file, field="train_file"),
                         max_seq_length, keep_short=False, limit=max_samples)
        eval_blocks: list[dict[str, list[int]]] = []
        if eval_file:
            eval_blocks = _blocks(tokenizer, iter_pretrain_texts(eval_file, field="eval_file"),
                                  max_seq_length, keep_short=True)
        elif ratio > 0:
            blocks, eval_blocks = split_held_out(blocks, ratio, seed)
        out.train = TokenDataset(blocks)
        out.eval = TokenDataset(eval_blocks) if eval_blocks else None
    if not len(out.train):
        if sft:
            raise EngineError(no_assistant_token_sentence(train_file, max_seq_length))
        raise EngineError(no_block_sentence(train_file, max_seq_length))
    unit = "examples" if sft else f"blocks of {max_seq_length} tokens"
    log(f"training data: {len(out.train)} {unit}"
        + (f"; evaluation data: {len(out.eval)} {'examples' if sft else 'blocks'}" if out.eval else ""))
    return out
