"""Token counts of SFT conversations exactly as the worker labels them, fast enough for 100,000 lines.

The worker (engine/data.py) renders each conversation with the chat template, finds every
assistant turn's character span by rendering the conversation up to that turn (with and without
the generation prompt) and labels the tokens that overlap a span. Done literally, that is three
Jinja renders and a Python loop over every token per single-turn conversation: minutes for a
large file. Here the same answer comes cheaper:

* **one real render per conversation**, many conversations per call to transformers' renderer;
* the prefix renders come from the template's **skeleton** for that sequence of roles: the
  template rendered once with placeholder contents, into which the real contents are put back.
  The worker's own span code (``engine.data.render_conversation``) runs on the skeleton, and the
  result is used only when the skeleton reproduces the real rendering character for character
  (a template that changes contents, e.g. ``| trim`` on a padded message, fails that check and
  that conversation takes the worker's slow path, unchanged);
* tokens are encoded in batches (``encode_batch``), and labelled tokens are counted by bisecting
  the token offsets at the span edges instead of testing every token (with a per-token fallback
  when the offsets are not monotonic or hold empty tokens).

The counts are the worker's for a template that renders a turn the same way whether or not it is
the last one (every common one); token ids come from tokenizer.json, as for the create-time checks
(modxd/tokenizer_checks.py explains the small difference a model-specific class can make).
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any, Sequence

from . import data as engine_data
from .templating import ChatTokenizer

__all__ = ["ConversationTokens", "SftTokenCounter"]

_SENTINEL = "\ue000{}\ue001"  # private-use characters: never in a template, checked absent from the data
_SENTINEL_RE = re.compile("\ue000(\\d+)\ue001")
_PRIVATE = ("\ue000", "\ue001")
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class ConversationTokens:
    """One conversation as the worker sees it: all tokens, and the labelled (assistant) ones.

    ``labelled_kept`` counts labelled tokens among the first ``max_seq_length``; 0 means the worker
    drops the example. ``first_labelled`` is the position of the first labelled token (-1: none).
    ``error`` is the template's complaint when the conversation cannot be rendered at all.
    """

    tokens: int
    labelled: int
    labelled_kept: int
    first_labelled: int
    error: str = ""


class _Skeletons:
    """Renders a conversation from its role sequence's skeleton (see the module docstring): a stand-in
    tokenizer for ``engine.data.render_conversation``, whose renders are string joins."""

    def __init__(self, chat: ChatTokenizer) -> None:
        self.chat = chat
        self.eos_token = chat.eos_token
        self._parts: dict[tuple[tuple[str, ...], bool], list[str | int] | None] = {}

    def parts(self, roles: tuple[str, ...], generation_prompt: bool) -> list[str | int] | None:
        key = (roles, generation_prompt)
        if key not in self._parts:
            placeholder = [{"role": role, "content": _SENTINEL.format(i)} for i, role in enumerate(roles)]
            try:
                text = self.chat.apply_chat_template(placeholder, add_generation_prompt=generation_prompt)
            except Exception:  # a template that inspects contents: every conversation of this shape goes slow
                self._parts[key] = None
                return None
            pieces = _SENTINEL_RE.split(text)  # literal, index, literal, index, ..., literal
            parts: list[str | int] = []
            for i, piece in enumerate(pieces):
                if i % 2:
                    parts.append(int(piece))
                elif piece:
                    parts.append(piece)
            mangled = any(c in p for p in parts if isinstance(p, str) for c in _PRIVATE)
            self._parts[key] = None if mangled or any(isinstance(p, int) and p >= len(roles) for p in parts) else parts
        return self._parts[key]

    def apply_chat_template(self, messages: Messages, tokenize: bool = False,
                            add_generation_prompt: bool = False, **_: Any) -> str:
        parts = self.parts(tuple(m["role"] for m in messages), add_generation_prompt)
        if parts is None:
            raise LookupError("no skeleton")
        return "".join(p if isinstance(p, str) else messages[p]["content"] for p in parts)


def _trained_part(messages: Messages) -> Messages:
    """The conversation up to its last assistant turn: what engine.data.render_conversation renders."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    return messages[: last + 1]


def _labelled_by_bisect(offsets: Sequence[tuple[int, int]], spans: list[tuple[int, int]],
                        max_seq_length: int) -> tuple[int, int, int] | None:
    """(labelled, labelled within max_seq_length, first labelled position) from monotonic offsets,
    or None when the offsets do not allow it (the caller counts token by token)."""
    if not offsets:
        return 0, 0, -1
    starts, ends = zip(*offsets)
    if list(starts) != sorted(starts) or list(ends) != sorted(ends) or any(map(int.__ge__, starts, ends)):
        return None  # not monotonic, or empty tokens (which the worker never labels)
    labelled = kept = 0
    first = previous = -1
    for a, b in spans:  # tokens overlapping [a, b): start < b and end > a
        lo, hi = max(bisect.bisect_right(ends, a), previous), bisect.bisect_left(starts, b)
        if hi <= lo:
            continue
        previous = hi
        first = lo if first < 0 else first
        labelled += hi - lo
        kept += max(0, min(hi, max_seq_length) - lo)
    return labelled, kept, first


def _labelled_by_token(offsets: Sequence[tuple[int, int]], spans: list[tuple[int, int]],
                       max_seq_length: int) -> tuple[int, int, int]:
    """The worker's own per-token rule (engine.data.tokenize_conversation)."""
    labelled = kept = 0
    first = -1
    for t, (s, e) in enumerate(offsets):
        if e > s and any(s < b and e > a for a, b in spans):
            labelled += 1
            kept += t < max_seq_length
            first = t if first < 0 else first
    return labelled, kept, first


class SftTokenCounter:
    """Counts tokens of conversations with one tokenizer dir's template and tokenizer.json."""

    def __init__(self, chat: ChatTokenizer, max_seq_length: int) -> None:
        if not chat.can_encode:
            raise ValueError(f"the tokenizer in {chat.files.path} has no tokenizer.json to count tokens with")
        self.chat = chat
        self.max_seq_length = int(max_seq_length)
        self.skeletons = _Skeletons(chat)
        self._direct: bool | None = None  # render with the compiled template directly (see _render_all)
        self.slow_renders = 0  # conversations that took the worker's own render path (for tests and bench)

    def _render_all(self, conversations: list[Messages]) -> list[str | Exception]:
        """The real full renderings.

        transformers' ``render_jinja_template`` first copies every message into plain data, which
        for these (dicts of strings already) is a third of its time; its cached compiled template is
        called here directly with the same arguments instead, once the first conversation rendered
        both ways has come out the same (else every render goes through ``ChatTokenizer``)."""
        from transformers.utils.chat_template_utils import _compile_jinja_template

        files = self.chat.files
        template = _compile_jinja_template(files.chat_template)

        def direct(messages: Messages) -> str | Exception:
            try:
                return template.render(messages=messages, tools=None, documents=None, add_generation_prompt=False,
                                       **files.special_tokens)
            except Exception as exc:  # jinja errors, raise_exception() in the template
                return exc

        out: list[str | Exception] = []
        for messages in conversations:
            if self._direct is None:
                reference = self._render_one(messages)
                if isinstance(reference, str):  # decided on the first conversation that renders
                    self._direct = direct(messages) == reference
                out.append(reference)
            else:
                out.append(direct(messages) if self._direct else self._render_one(messages))
        return out

    def _render_one(self, messages: Messages) -> str | Exception:
        try:
            return self.chat.apply_chat_template(messages)
        except Exception as exc:  # jinja errors, raise_exception() in the template
            return exc

    def _spans(self, messages: Messages, real: str) -> list[tuple[int, int]]:
        if _PRIVATE[0] not in real and _PRIVATE[1] not in real:  # no content holds a sentinel character
            try:
                text, spans = engine_data.render_conversation(self.skeletons, messages)
                if text == real:
                    return spans
            except LookupError:
                pass
        self.slow_renders += 1
        text, spans = engine_data.render_conversation(self.chat, messages)
        return spans

    def count(self, conversations: list[list[dict[str, str]]]) -> list[ConversationTokens]:
        """Token counts for a batch of conversations (normalised messages, as engine.formats yields)."""
        trained = [_trained_part(m) for m in conversations]
        rendered = self._render_all(trained)
        texts: list[str] = []
        spans: list[list[tuple[int, int]] | None] = []
        errors: list[str] = []
        for messages, real in zip(trained, rendered):
            problem = ""
            if isinstance(real, Exception):
                problem, real = f"{type(real).__name__}: {real}", ""
            else:
                try:
                    spans.append(self._spans(messages, real))
                except Exception as exc:  # e.g. a template that does not keep the answer verbatim
                    problem = f"{type(exc).__name__}: {exc}"
            if problem:
                spans.append(None)
            texts.append(real)
            errors.append(problem)
        encodings = self.chat.files.backend.encode_batch(texts, add_special_tokens=False)
        out = []
        for encoding, turn_spans, problem in zip(encodings, spans, errors):
            if turn_spans is None:
                out.append(ConversationTokens(0, 0, 0, -1, problem))
                continue
            offsets = encoding.offsets
            counted = _labelled_by_bisect(offsets, turn_spans, self.max_seq_length)
            if counted is None:
                counted = _labelled_by_token(offsets, turn_spans, self.max_seq_length)
            out.append(ConversationTokens(len(offsets), *counted))
        return out
