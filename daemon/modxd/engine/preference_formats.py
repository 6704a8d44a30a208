"""Preference-pair data (DPO, ORPO): validation and normalisation (stdlib only).

The daemon calls :func:`inspect_preference_file` when a dpo/orpo task is created, so a
malformed pair is reported with its file and line before anything runs; the training
worker reads the same file with :func:`iter_preference_pairs`, which applies the same rules.

Files are JSON Lines, one pair per line, in TRL's two preference formats:

* standard:       ``{"prompt": str, "chosen": str, "rejected": str}``
  (TRL joins ``prompt + chosen`` as they are and adds the eos token, so the prompt carries
  its own trailing space or newline);
* conversational: ``{"prompt": [messages], "chosen": [one assistant message],
  "rejected": [one assistant message]}`` (messages as in SFT, formatted by the chat template).

Both also come with an *implicit prompt* (TRL's ``extract_prompt``): no ``prompt`` key, and
``chosen`` / ``rejected`` hold the whole text or conversation, sharing the prompt as their
common start. Pairs normalise to an explicit prompt. Other keys (ids, scores) are ignored.

Rules: every text is a non-empty string; ``chosen`` and ``rejected`` differ; a conversational
prompt is an optional system message, then user and assistant turns alternating from a user
turn, ending with a user turn; the answers are one assistant message each; a file holds one
format (TRL cannot mix strings and message lists in one data set).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator

# The line reader and example helpers are shared with the SFT formats (one set of rules for
# UTF-8, JSON, lone surrogates, line length and message contents).
from .formats import (
    DEFAULT_MAX_LINE_BYTES,
    MAX_SAMPLED_SHAPES,
    DataError,
    DataSummary,
    _Invalid,
    _json_lines,
    _json_type,
    _short,
    _string,
    message_list,
)

__all__ = ["STANDARD", "CONVERSATIONAL", "PreferencePair", "normalize_preference_example",
           "inspect_preference_file", "iter_preference_pairs"]

STANDARD, CONVERSATIONAL = "standard", "conversational"
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class PreferencePair:
    """One pair with its prompt made explicit: strings (standard) or message lists (conversational)."""

    prompt: str | Messages
    chosen: str | Messages
    rejected: str | Messages
    format: str  # STANDARD or CONVERSATIONAL
    implicit_prompt: bool = False

    @property
    def variant(self) -> str:
        """The format as counted in :class:`DataSummary` ``formats``."""
        return f"{self.format}_implicit_prompt" if self.implicit_prompt else self.format

    def row(self) -> dict[str, Any]:
        """The pair as TRL's trainers take it."""
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}

    def characters(self) -> int:
        def size(part: str | Messages) -> int:
            return len(part) if isinstance(part, str) else sum(len(m["content"]) for m in part)
        return size(self.prompt) + size(self.chosen) + size(self.rejected)


# ---------------------------------------------------------------- one pair

def _family(value: Any, key: str) -> str:
    if isinstance(value, str):
        return STANDARD
    if isinstance(value, list):
        return CONVERSATIONAL
    raise _Invalid(f"'{key}' must be a string (standard format) or an array of messages (conversational "
                   f"format) (got {_json_type(value)})")


def _check_prompt(messages: Messages, key: str) -> None:
    """System first (optional), then user/assistant alternating from a user turn, ending on a user turn."""
    start = 1 if messages[0]["role"] == "system" else 0
    for i, message in enumerate(messages):
        if message["role"] == "system" and i > 0:
            raise _Invalid(f"'{key}[{i}]' is a system message, which is only allowed as the first message")
        if i >= start:
            expected = "user" if (i - start) % 2 == 0 else "assistant"
            if message["role"] != expected:
                raise _Invalid(f"'{key}[{i}].role' is {message['role']} where {expected} was expected: the prompt's "
                               "turns alternate user, assistant, ... (after an optional system message)")
    if start == len(messages):
        raise _Invalid(f"'{key}' holds only a system message: the prompt needs a user turn to answer")
    if messages[-1]["role"] != "user":
        raise _Invalid(f"'{key}' ends with an {messages[-1]['role']} turn: the prompt must end with the user turn "
                       "that 'chosen' and 'rejected' answer")


def _answer(messages: Messages, key: str) -> Messages:
    if len(messages) != 1:
        raise _Invalid(f"'{key}' must hold exactly one assistant message (got {len(messages)} messages)")
    if messages[0]["role"] != "assistant":
        raise _Invalid(f"'{key}[0].role' must be assistant (got {_short(messages[0]['role'])}): "
                       "'chosen' and 'rejected' are answers")
    return messages


def _check_distinct(chosen: str, rejected: str) -> None:
    if chosen.strip() == rejected.strip():
        raise _Invalid("'chosen' and 'rejected' are the same answer: a pair must prefer one answer to a different one")


def _standard(obj: dict) -> PreferencePair:
    chosen, rejected = _string(obj["chosen"], "chosen"), _string(obj["rejected"], "rejected")
    if "prompt" in obj:
        if isinstance(obj["prompt"], list):
            raise _Invalid("'prompt' is an array of messages but 'chosen' is a string: a pair is either all "
                           "strings (standard format) or all messages (conversational format)")
        _check_distinct(chosen, rejected)
        return PreferencePair(_string(obj["prompt"], "prompt"), chosen, rejected, STANDARD)
    _check_distinct(chosen, rejected)
    cut = 0  # TRL's extract_prompt: the common start, minus the space before the answers
    while cut < min(len(chosen), len(rejected)) and chosen[cut] == rejected[cut]:
        cut += 1
    if 0 < cut < min(len(chosen), len(rejected)) and chosen[cut - 1] == " ":
        cut -= 1
    prompt = chosen[:cut]
    if not prompt.strip():
        raise _Invalid("there is no 'prompt' and 'chosen' and 'rejected' share no prompt text: with an implicit "
                       "prompt both must start with the same prompt")
    for key, text in (("chosen", chosen), ("rejected", rejected)):
        if not text[cut:].strip():
            raise _Invalid(f"'{key}' holds nothing after the prompt it shares with the other answer")
    return PreferencePair(prompt, chosen[cut:], rejected[cut:], STANDARD, implicit_prompt=True)


def _conversational(obj: dict) -> PreferencePair:
    if not isinstance(obj["rejected"], list):
        raise _Invalid(f"'rejected' must be an array of messages like 'chosen' (got {_json_type(obj['rejected'])})")
    chosen, rejected = message_list(obj["chosen"], "chosen"), message_list(obj["rejected"], "rejected")
    if "prompt" in obj:
        if not isinstance(obj["prompt"], list):
            raise _Invalid(f"'prompt' must be an array of messages like 'chosen' (got {_json_type(obj['prompt'])})")
        prompt = message_list(obj["prompt"], "prompt")
        _check_prompt(prompt, "prompt")
        _answer(chosen, "chosen")
        _answer(rejected, "rejected")
        _check_distinct(chosen[0]["content"], rejected[0]["content"])
        return PreferencePair(prompt, chosen, rejected, CONVERSATIONAL)
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == len(chosen) == len(rejected):
        raise _Invalid("'chosen' and 'rejected' are the same conversation: a pair must prefer one answer to a "
                       "different one")
    if shared == 0:
        raise _Invalid("there is no 'prompt' and 'chosen' and 'rejected' share no prompt messages: with an "
                       "implicit prompt both conversations start with the same prompt and differ in their last "
                       "assistant message")
    prompt = chosen[:shared]
    _check_prompt(prompt, "chosen")
    for key, messages in (("chosen", chosen), ("rejected", rejected)):
        if len(messages) - shared != 1:
            raise _Invalid(f"'{key}' must end with exactly one assistant message after the prompt it shares with "
                           f"the other answer (got {len(messages) - shared} messages after the {shared} shared ones)")
        if messages[shared]["role"] != "assistant":
            raise _Invalid(f"'{key}[{shared}].role' must be assistant (got {_short(messages[shared]['role'])}): "
                           "the conversations end with the answers")
    _check_distinct(chosen[shared]["content"], rejected[shared]["content"])
    return PreferencePair(prompt, chosen[shared:], rejected[shared:], CONVERSATIONAL, implicit_prompt=True)


def _normalize(obj: Any) -> PreferencePair:
    if not isinstance(obj, dict):
        raise _Invalid(f"must be a JSON object (got {_json_type(obj)})")
    missing = [key for key in ("chosen", "rejected") if key not in obj]
    if missing:
        keys = ", ".join(repr(k) for k in list(obj)[:6]) or "none"
        if any(k in obj for k in ("messages", "conversations", "instruction")):
            hint = "; this line is SFT data (a conversation), not a preference pair"
        elif "completion" in obj and "label" in obj:
            hint = "; prompt/completion/label is unpaired preference data (KTO's format), and dpo and orpo train on pairs"
        else:
            hint = ""
        raise _Invalid(f"is not a preference pair: it needs 'chosen' and 'rejected' (and 'prompt', or a prompt both "
                       f"start with); missing {' and '.join(repr(k) for k in missing)}, got keys {keys}{hint}")
    for key in ("image", "images"):
        if key in obj:
            raise _Invalid(f"has '{key}': only text pairs can be trained on")
    if _family(obj["chosen"], "chosen") == STANDARD:
        if not isinstance(obj["rejected"], str):
            raise _Invalid(f"'rejected' must be a string like 'chosen' (got {_json_type(obj['rejected'])})")
        return _standard(obj)
    return _conversational(obj)


def normalize_preference_example(obj: Any) -> PreferencePair:
    """Check one parsed pair and make its prompt explicit; ``ValueError`` (without file and line) if invalid."""
    try:
        return _normalize(obj)
    except _Invalid as exc:
        raise ValueError(str(exc)) from None


# ---------------------------------------------------------------- files

def _pairs(path: str, field: str, max_line_bytes: int) -> Iterator[tuple[int, PreferencePair]]:
    first: tuple[int, str] | None = None
    for number, obj in _json_lines(path, field, max_line_bytes):
        try:
            pair = _normalize(obj)
        except _Invalid as exc:
            raise DataError(path, number, str(exc), field) from None
        if first is None:
            first = (number, pair.format)
        elif pair.format != first[1]:
            raise DataError(path, number, f"is in the {pair.format} format but line {first[0]} is in the {first[1]} "
                            "format: one file holds one format (strings or message lists, not both)", field)
        yield number, pair


def iter_preference_pairs(path: str, field: str = "train_file",
                          max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, PreferencePair]]:
    """Yield ``(line number, pair)`` for every pair; raise :class:`DataError` at the first bad line."""
    yield from _pairs(path, field, max_line_bytes)


def inspect_preference_file(path: str, field: str = "train_file",
                            max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> DataSummary:
    """Validate a whole preference file.

    ``format`` is ``standard`` or ``conversational``; ``formats`` counts the pairs with an
    explicit and an implicit prompt (``<format>`` / ``<format>_implicit_prompt``). For the
    conversational format, ``samples`` holds prompt + chosen conversations of each role
    shape and the longest, for the daemon to render with the chat template at create.
    """
    counts: Counter[str] = Counter()
    characters = 0
    fmt = ""
    shapes: dict[tuple[str, ...], tuple[int, Messages]] = {}
    longest: tuple[int, int, Messages] = (-1, 0, [])
    for number, pair in _pairs(path, field, max_line_bytes):
        counts[pair.variant] += 1
        fmt = pair.format
        size = pair.characters()
        characters += size
        if pair.format == CONVERSATIONAL:
            conversation = [*pair.prompt, *pair.chosen]  # type: ignore[misc]
            shape = tuple(m["role"] for m in conversation)
            if shape not in shapes and len(shapes) < MAX_SAMPLED_SHAPES:
                shapes[shape] = (number, conversation)
            if size > longest[0]:
                longest = (size, number, conversation)
    if not counts:
        raise DataError(path, None, "has no preference pairs", field)
    samples = sorted(shapes.values(), key=lambda s: s[0])
    if samples and all(line != longest[1] for line, _ in samples):
        samples.append((longest[1], longest[2]))
    return DataSummary(str(path), fmt, sum(counts.values()), characters, dict(counts), samples)
