"""Create-time checks that need the tokenizer: what would otherwise be accepted and fail in the worker.

- special tokens: a tokenizer with neither an eos nor a pad token cannot pad a batch (checked where the
  files alone decide: see check_tokenizer_files);
- vocabulary: a tokenizer with more base tokens than the model has embedding rows is another
  model's tokenizer (refused, naming both sizes); one whose *added* tokens go past the embedding is
  a deliberate extension: accepted, and the create response says the embeddings grow (and, with
  LoRA, that the new rows stay untrained) — docs/reliability.md, "Bad input";
- chat template (SFT): it must compile, render every kind of conversation in the data (the first
  example of each sequence of roles, and the longest) and keep the assistant's words as written, or
  their tokens cannot be labelled; a failure names the file and line and gives the template's error;
- length (SFT): at least one training example must keep an assistant token within max_seq_length,
  or the worker has nothing to train on.

Each is the worker's own code (engine/data.py) run on engine/templating.py's torch-free tokenizer.
Rendering is exactly the worker's. Token counts come from the dir's tokenizer.json, which a
model-specific transformers class may rebuild slightly differently (its own pre-tokenizer), so the
length check only refuses with a margin to spare (FIT_MARGIN): a refusal is never a close call.
"""
from __future__ import annotations

import os
from typing import Any

from .engine import data as engine_data
from .engine import formats
from .engine.templating import (GENERIC_CLASSES, ChatTokenizer, TemplateProblem, TokenizerDir,
                                missing_template_problem, read_tokenizer_dir)
from .errors import FailedPrecondition, InvalidArgument
from .params import needs_chat_template

Warnings = list[tuple[str, str]]
# Training examples tokenized at most to find one that keeps an assistant token; beyond, a warning
# instead of a refusal (the rest may still hold one).
MAX_FIT_CHECKS = 2000


def fit_margin(max_seq_length: int) -> int:
    """Tokens of slack for the length check (see the module docstring)."""
    return max(16, max_seq_length // 8)


def check_tokenizer_files(task_type: str, params: dict[str, Any], model_config: dict[str, Any],
                          conversations: bool = False) -> tuple[TokenizerDir, Warnings]:
    """Special tokens and vocabulary; returns the tokenizer dir as read, for the chat checks.
    `conversations`: the data are conversations though the type does not say so (preference pairs
    in the conversational format), so they need a chat template too."""
    key = "tokenizer_dir" if params.get("tokenizer_dir") else "model_dir"
    path = str(params.get("tokenizer_dir") or params["model_dir"])
    needs_template = needs_chat_template(task_type) or conversations
    try:
        tok = read_tokenizer_dir(path, str(params.get("chat_template") or "") if needs_template else "")
    except TemplateProblem as exc:
        raise FailedPrecondition(f"parameter {key}: {exc}") from None
    problem = missing_template_problem(needs_template, tok.chat_template, path)
    if problem:
        raise FailedPrecondition(f"parameter {key}: {problem}")
    special = tok.special_tokens
    # Only where transformers takes the special tokens from the files alone: a generic tokenizer class and no
    # config.json beside it (with one, AutoTokenizer may pick the model's own class, whose defaults fill in).
    from_files_only = tok.tokenizer_class in GENERIC_CLASSES and not os.path.isfile(os.path.join(path, "config.json"))
    if from_files_only and "eos_token" not in special and "pad_token" not in special:
        raise FailedPrecondition(
            f"parameter {key}: the tokenizer in {path} has neither an eos nor a pad token (its tokenizer_config.json "
            "names none), so batches cannot be padded and turns have no end; add eos_token to it")
    return tok, _vocab_warnings(tok, key, params, model_config)


def _vocab_warnings(tok: TokenizerDir, key: str, params: dict[str, Any], model_config: dict[str, Any]) -> Warnings:
    sizes = tok.vocab_sizes()
    rows = model_config.get("vocab_size") or (model_config.get("text_config") or {}).get("vocab_size")
    if sizes is None or not isinstance(rows, int) or rows <= 0:
        return []
    base, total = sizes
    model_dir = params["model_dir"]
    if base > rows:
        raise InvalidArgument(
            f"parameter {key}: the tokenizer in {tok.path} has {base} tokens but the model in {model_dir} has "
            f"{rows} embedding rows (vocab_size): it is another model's tokenizer, whose ids would mean other "
            "words; use the model's own tokenizer")
    if total <= rows:
        return []
    text = (f"the tokenizer in {tok.path} has {total} tokens, {total - base} of them added to its {base}-token "
            f"vocabulary, and the model in {model_dir} has {rows} embedding rows: the embeddings are resized to "
            f"{total} rows, the new ones starting as the mean of the others")
    if params.get("use_lora"):
        text += ("; with LoRA only the adapter trains, so the new tokens' rows stay as they start: set "
                 "use_lora=false to train them, or leave the added tokens out of the data")
    return [("vocab_resized", text)]


def check_chat_data(params: dict[str, Any], tok: TokenizerDir, train: formats.DataSummary,
                    evals: formats.DataSummary | None, fit: bool = True) -> Warnings:
    """Render the data's examples with the chat template as the worker will; see the module docstring.
    Preference pairs (`fit=False`) are rendered as prompt + chosen answer; their lengths are the
    worker's to count (it cuts the prompt first, engine/preference_trainers.py)."""
    key = "tokenizer_dir" if params.get("tokenizer_dir") else "model_dir"
    if tok.template_source == "parameter chat_template":
        where, code = "parameter chat_template", InvalidArgument
    else:
        where, code = f"parameter {key}: the chat template in {tok.template_source}", FailedPrecondition
    try:
        chat = ChatTokenizer(tok)
    except TemplateProblem as exc:
        raise code(f"{where}: {exc}") from None
    for summary, field in ((train, "train_file"), (evals, "eval_file")):
        for line, messages in summary.samples if summary else ():
            try:
                engine_data.render_conversation(chat, messages)
            except Exception as exc:  # jinja errors, raise_exception(), labelling that cannot work
                raise InvalidArgument(f"{where} cannot format {field} {summary.path} line {line}: "
                                      f"{type(exc).__name__}: {exc}") from None
    return _fit_warnings(params, chat, train) if fit and chat.can_encode else []


def _fit_warnings(params: dict[str, Any], chat: ChatTokenizer, train: formats.DataSummary) -> Warnings:
    """Refuse when no training example keeps an assistant token within max_seq_length (the worker's rule)."""
    max_len = int(params["max_seq_length"])
    limit = max_len + fit_margin(max_len)
    count = min(train.examples, int(params.get("max_samples") or 0) or train.examples)
    held_out: set[int] = set()
    if not params.get("eval_file") and float(params.get("eval_split_ratio") or 0) > 0:
        held_out = engine_data.held_out_indexes(count, float(params["eval_split_ratio"]), int(params["seed"]))
    checked, first = 0, 0
    for index, (line, messages) in enumerate(formats.iter_sft_records(train.path)):
        if index >= count:
            break
        if index in held_out:
            continue
        if checked >= MAX_FIT_CHECKS:
            return [("examples_truncated", f"the first {MAX_FIT_CHECKS} training examples of {train.path} lose every "
                                           f"assistant token at max_seq_length {max_len} (their prompts take more than "
                                           f"{limit} tokens): raise max_seq_length")]
        checked, first = checked + 1, first or line
        try:
            example, _ = engine_data.tokenize_conversation(chat, messages, limit)
        except Exception:  # rendering was checked on the samples; a rarer shape fails in the worker with its line
            return []
        if engine_data.has_labels(example):
            return []
    raise InvalidArgument(engine_data.no_assistant_token_sentence(
        train.path, max_len, f" (in each, the prompt before the first answer takes more than {limit}, e.g. line {first})"))
