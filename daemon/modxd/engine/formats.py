"""Training data formats: validation and normalisation (stdlib only).

The daemon calls :func:`inspect_sft_file` / :func:`inspect_pretrain_file` when a
task is created, so a malformed line is reported with its file and line number
before anything runs; the training worker uses :func:`iter_sft_conversations` /
:func:`iter_pretrain_texts`, which apply exactly the same rules.

SFT files are JSON Lines, one example per line, in any of three formats (they
may be mixed line by line):

* OpenAI:   ``{"messages": [{"role": "system|user|assistant", "content": str}, ...]}``
  (``content`` may also be a list of ``{"type": "text", "text": str}`` parts);
* Alpaca:   ``{"instruction": str, "input": str (optional), "output": str,
  "system": str (optional), "history": [[user, assistant], ...] (optional)}``;
* ShareGPT: ``{"conversations": [{"from": "system|human|user|gpt|assistant",
  "value": str}, ...], "system": str (optional)}``.

Every example normalises to OpenAI messages. Rules: contents are non-empty
strings; a system message may only come first; a conversation must contain at
least one assistant turn (only assistant turns are trained on); blank lines are
skipped; a line longer than ``max_line_bytes`` is refused.

Pretraining files are either

* ``.jsonl`` / ``.ndjson`` / ``.json``: one ``{"text": str}`` object per line,
  one document per line; or
* anything else (``.txt`` usually): UTF-8 plain text where **one document is one
  paragraph**, i.e. a run of non-blank lines; blank lines separate documents.
  Line breaks inside a paragraph are kept. (Whole-file documents would make
  ``max_samples`` and ``eval_split_ratio`` meaningless, and a file with one
  document per line is simply written with blank lines between them.)
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field as dc_field
from typing import Any, Iterator

from ..paths import open_input_file

__all__ = [
    "DataError",
    "DataSummary",
    "SFT_ROLES",
    "SHAREGPT_ROLES",
    "DEFAULT_MAX_LINE_BYTES",
    "inspect_sft_file",
    "inspect_pretrain_file",
    "iter_sft_conversations",
    "iter_sft_records",
    "iter_pretrain_texts",
    "normalize_sft_example",
    "pretrain_kind",
]

DEFAULT_MAX_LINE_BYTES = 8_000_000
SFT_ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user",
                  "gpt": "assistant", "assistant": "assistant"}
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_SAMPLE_BYTES = 8192
MAX_SAMPLED_SHAPES = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class DataError(ValueError):
    """A data file that cannot be used, with the file, the line and a reason.

    ``str()`` is a complete sentence for people, e.g.
    ``train_file /x/y.jsonl line 7: 'messages[1].role' must be one of system,
    user, assistant (got 'bot')``.
    """

    def __init__(self, path: str, line: int | None, reason: str, field: str = "train_file"):
        self.path = str(path)
        self.line = line
        self.reason = reason
        self.field = field
        where = f"{field} {self.path}" + (f" line {line}" if line is not None else "")
        super().__init__(f"{where}: {reason}")


@dataclass
class DataSummary:
    """What a valid data file holds.

    ``format`` is the format of every example (``messages``, ``alpaca``,
    ``sharegpt`` for SFT; ``text`` for pretraining JSONL, ``txt`` for plain
    text) or ``mixed`` when SFT lines use several formats (``formats`` then
    counts them). ``characters`` counts the characters of the text contents
    (message contents / documents), a cheap proxy for the token count.
    """

    path: str
    format: str
    examples: int
    characters: int
    formats: dict[str, int] = dc_field(default_factory=dict)
    # SFT: a few (line, messages) examples that differ most for a chat template: the first of each
    # sequence of roles, and the longest; the daemon renders them at create (validation.py).
    samples: list[tuple[int, list[dict[str, str]]]] = dc_field(default_factory=list)


class _Invalid(Exception):
    """An example-level problem; the caller adds file and line."""


# ---------------------------------------------------------------- helpers

def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _string(value: Any, where: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"'{where}' must be a string (got {_json_type(value)})")
    if not allow_empty and not value.strip():
        raise _Invalid(f"'{where}' is empty")
    return value


def _content(value: Any, where: str) -> str:
    """A message content: a string, or OpenAI text parts joined together."""
    if isinstance(value, list):
        parts = []
        for i, part in enumerate(value):
            pw = f"{where}[{i}]"
            if not isinstance(part, dict):
                raise _Invalid(f"'{pw}' must be an object (got {_json_type(part)})")
            if part.get("type", "text") != "text":
                raise _Invalid(f"'{pw}.type' must be 'text' (got {_short(part.get('type'))}): "
                               "only text content can be trained on")
            parts.append(_string(part.get("text"), f"{pw}.text", allow_empty=True))
        value = "".join(parts)
        if not value.strip():
            raise _Invalid(f"'{where}' is empty")
        return value
    return _string(value, where)


def _check_conversation(messages: list[dict[str, str]], key: str) -> None:
    for i, message in enumerate(messages):
        if message["role"] == "system" and i > 0:
            raise _Invalid(f"'{key}[{i}]' is a system message, which is only allowed as the first message")
    if not any(m["role"] == "assistant" for m in messages):
        raise _Invalid(f"'{key}' has no assistant turn: there is nothing to train on")


def _from_messages(obj: dict) -> list[dict[str, str]]:
    raw = obj["messages"]
    if not isinstance(raw, list):
        raise _Invalid(f"'messages' must be an array (got {_json_type(raw)})")
    out = message_list(raw, "messages")
    _check_conversation(out, "messages")
    return out


def message_list(raw: list, key: str) -> list[dict[str, str]]:
    """The one rule of a list of chat messages (SFT's `messages`, preference pairs' `prompt`, `chosen`,
    `rejected`): objects with a known `role` and a string `content`, named by `key[i]` when refused."""
    if not raw:
        raise _Invalid(f"'{key}' is empty")
    out = []
    for i, m in enumerate(raw):
        where = f"{key}[{i}]"
        if not isinstance(m, dict):
            raise _Invalid(f"'{where}' must be a message object with 'role' and 'content' (got {_json_type(m)})")
        if "role" not in m:
            raise _Invalid(f"'{where}' has no 'role'")
        role = m["role"]
        if not isinstance(role, str):
            raise _Invalid(f"'{where}.role' must be a string (got {_json_type(role)})")
        if role not in SFT_ROLES:
            raise _Invalid(f"'{where}.role' must be one of {', '.join(SFT_ROLES)} (got {_short(role)})")
        if "content" not in m:
            raise _Invalid(f"'{where}' has no 'content'")
        out.append({"role": role, "content": _content(m["content"], f"{where}.content")})
    return out


def _from_sharegpt(obj: dict) -> list[dict[str, str]]:
    raw = obj["conversations"]
    if not isinstance(raw, list):
        raise _Invalid(f"'conversations' must be an array (got {_json_type(raw)})")
    if not raw:
        raise _Invalid("'conversations' is empty")
    out = []
    if obj.get("system") not in (None, ""):
        out.append({"role": "system", "content": _string(obj["system"], "system")})
    for i, m in enumerate(raw):
        where = f"conversations[{i}]"
        if not isinstance(m, dict):
            raise _Invalid(f"'{where}' must be an object (got {_json_type(m)})")
        if "from" not in m:
            raise _Invalid(f"'{where}' has no 'from'")
        who = m["from"]
        if not isinstance(who, str):
            raise _Invalid(f"'{where}.from' must be a string (got {_json_type(who)})")
        if who not in SHAREGPT_ROLES:
            raise _Invalid(f"'{where}.from' must be one of {', '.join(SHAREGPT_ROLES)} (got {_short(who)})")
        if "value" not in m:
            raise _Invalid(f"'{where}' has no 'value'")
        out.append({"role": SHAREGPT_ROLES[who], "content": _string(m["value"], f"{where}.value")})
    _check_conversation(out, "conversations")
    return out


def _from_alpaca(obj: dict) -> list[dict[str, str]]:
    for key in ("instruction", "output"):
        if key not in obj:
            raise _Invalid(f"an Alpaca example needs 'instruction' and 'output' (missing '{key}')")
    instruction = _string(obj["instruction"], "instruction")
    output = _string(obj["output"], "output")
    extra = obj.get("input")
    if extra is not None:
        extra = _string(extra, "input", allow_empty=True)
    out = []
    if obj.get("system") not in (None, ""):
        out.append({"role": "system", "content": _string(obj["system"], "system")})
    history = obj.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise _Invalid(f"'history' must be an array of [user, assistant] pairs (got {_json_type(history)})")
        for i, pair in enumerate(history):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise _Invalid(f"'history[{i}]' must be a [user, assistant] pair of strings")
            out.append({"role": "user", "content": _string(pair[0], f"history[{i}][0]")})
            out.append({"role": "assistant", "content": _string(pair[1], f"history[{i}][1]")})
    prompt = instruction if not extra or not extra.strip() else f"{instruction}\n\n{extra}"
    out.append({"role": "user", "content": prompt})
    out.append({"role": "assistant", "content": output})
    return out


def normalize_sft_example(obj: Any) -> tuple[str, list[dict[str, str]]]:
    """Detect the format of one parsed SFT example and normalise it.

    Returns ``(format, messages)``; raises ``ValueError`` with the reason
    (without file and line) when the example is invalid.
    """
    try:
        return _normalize(obj)
    except _Invalid as exc:
        raise ValueError(str(exc)) from None


def _normalize(obj: Any) -> tuple[str, list[dict[str, str]]]:
    if not isinstance(obj, dict):
        raise _Invalid(f"must be a JSON object (got {_json_type(obj)})")
    if "messages" in obj:
        return "messages", _from_messages(obj)
    if "conversations" in obj:
        return "sharegpt", _from_sharegpt(obj)
    if "instruction" in obj or "output" in obj:
        return "alpaca", _from_alpaca(obj)
    keys = ", ".join(repr(k) for k in list(obj)[:6]) or "none"
    hint = " (a 'text' object is pretraining data, not SFT)" if "text" in obj else ""
    raise _Invalid("is not a recognised SFT example: expected a 'messages' (OpenAI), "
                   f"'conversations' (ShareGPT) or 'instruction'/'output' (Alpaca) key; got keys {keys}{hint}")


# ---------------------------------------------------------------- reading

def _open_checked(path: str, field: str):
    """Open a data file for binary reading after the file-level checks, confined to the roots."""
    if not path:
        raise DataError(path, None, "no file given", field)
    if not os.path.exists(path):
        raise DataError(path, None, "does not exist", field)
    if os.path.isdir(path):
        raise DataError(path, None, "is a directory, not a file", field)
    try:
        handle = open_input_file(f"parameter {field}", path)  # refused when it now leads outside the roots
    except OSError as exc:
        raise DataError(path, None, f"cannot be read ({exc.strerror or exc})", field) from None
    head = handle.read(_SAMPLE_BYTES)
    handle.seek(0)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        handle.close()
        raise DataError(path, None, "is UTF-16 encoded; save it as UTF-8", field)
    if b"\x00" in head:
        handle.close()
        raise DataError(path, None, "is a binary file, not UTF-8 text", field)
    return handle


def _lines(path: str, field: str, max_line_bytes: int | None) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for every line, decoded and checked."""
    with _open_checked(path, field) as handle:
        number = 0
        while True:
            limit = -1 if max_line_bytes is None else max_line_bytes + 1
            raw = handle.readline(limit)
            if not raw:
                return
            number += 1
            if max_line_bytes is not None and len(raw.rstrip(b"\r\n")) > max_line_bytes:
                raise DataError(path, number, f"is longer than {max_line_bytes} bytes", field)
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if b"\x00" in raw:
                raise DataError(path, number, "contains binary data (a NUL byte); the file is not UTF-8 text", field)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(path, number, f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} "
                                f"at byte {exc.start + 1} of the line)", field) from None
            yield number, text.rstrip("\r\n")


def _json_lines(path: str, field: str, max_line_bytes: int) -> Iterator[tuple[int, Any]]:
    for number, text in _lines(path, field, max_line_bytes):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            hint = ""
            if text.lstrip().startswith("["):
                hint = "; the file looks like one JSON array, but it must be JSON Lines (one object per line)"
            raise DataError(path, number, f"is not valid JSON: {exc.msg} (column {exc.colno}){hint}", field) from None
        except RecursionError:
            raise DataError(path, number, "nests arrays and objects too deeply to be read (a training example "
                            "needs a few levels, this line has hundreds or more)", field) from None
        except ValueError as exc:  # e.g. an integer of more digits than Python converts (sys.int_info)
            raise DataError(path, number, f"is not usable JSON: {_digits_hint(exc)}", field) from None
        where = _surrogate_at(obj) if "\\u" in text else None
        if where is not None:
            raise DataError(path, number, f"{where} holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
                            "escape), which is not a character and cannot be tokenized; fix the escape or "
                            "drop it", field)
        yield number, obj


def _digits_hint(exc: ValueError) -> str:
    text = str(exc)
    if "digits" in text:
        return f"a number has more digits than can be read ({text.split(';')[0]})"
    return text[:200]


def _surrogate_at(obj: Any) -> str | None:
    """Where in a parsed JSON value a string (or a key) holds a lone surrogate, e.g. 'messages[1].content'."""
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return f"'{where}'" if where else "the line"
        elif isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    return f"a key of '{where}'" if where else "a key"
                stack.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
    return None


def _sft_records(path: str, field: str, max_line_bytes: int) -> Iterator[tuple[int, str, list[dict[str, str]]]]:
    for number, obj in _json_lines(path, field, max_line_bytes):
        try:
            fmt, messages = _normalize(obj)
        except _Invalid as exc:
            raise DataError(path, number, str(exc), field) from None
        yield number, fmt, messages


def inspect_sft_file(path: str, field: str = "train_file",
                     max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> DataSummary:
    """Validate a whole SFT JSONL file; raise :class:`DataError` at the first bad line."""
    counts: Counter[str] = Counter()
    characters = 0
    shapes: dict[tuple[str, ...], tuple[int, list[dict[str, str]]]] = {}
    longest: tuple[int, int, list[dict[str, str]]] = (-1, 0, [])
    for number, fmt, messages in _sft_records(path, field, max_line_bytes):
        counts[fmt] += 1
        size = sum(len(m["content"]) for m in messages)
        characters += size
        shape = tuple(m["role"] for m in messages)
        if shape not in shapes and len(shapes) < MAX_SAMPLED_SHAPES:
            shapes[shape] = (number, messages)
        if size > longest[0]:
            longest = (size, number, messages)
    if not counts:
        raise DataError(path, None, "has no examples", field)
    fmt = next(iter(counts)) if len(counts) == 1 else "mixed"
    samples = sorted(shapes.values(), key=lambda s: s[0])
    if all(line != longest[1] for line, _ in samples):
        samples.append((longest[1], longest[2]))
    return DataSummary(str(path), fmt, sum(counts.values()), characters, dict(counts), samples)


def iter_sft_records(path: str, field: str = "train_file",
                     max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, list[dict[str, str]]]]:
    """Yield ``(line number, messages)`` for every example (as :func:`iter_sft_conversations`)."""
    for number, _, messages in _sft_records(path, field, max_line_bytes):
        yield number, messages


def iter_sft_conversations(path: str, field: str = "train_file",
                           max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[list[dict[str, str]]]:
    """Yield every example as OpenAI messages ``[{"role", "content"}, ...]``."""
    for _, _, messages in _sft_records(path, field, max_line_bytes):
        yield messages


def pretrain_kind(path: str) -> str:
    """``"text"`` for a JSONL pretraining file, ``"txt"`` for plain text (by suffix)."""
    return "text" if str(path).lower().endswith(_JSONL_SUFFIXES) else "txt"


def _pretrain_docs(path: str, field: str, max_line_bytes: int) -> Iterator[str]:
    if pretrain_kind(path) == "text":
        for number, obj in _json_lines(path, field, max_line_bytes):
            if not isinstance(obj, dict):
                raise DataError(path, number, f"must be a JSON object (got {_json_type(obj)})", field)
            if "text" not in obj:
                keys = ", ".join(repr(k) for k in list(obj)[:6]) or "none"
                raise DataError(path, number, f"has no 'text' key (got keys {keys})", field)
            try:
                yield _string(obj["text"], "text")
            except _Invalid as exc:
                raise DataError(path, number, str(exc), field) from None
        return
    paragraph: list[str] = []
    for _, text in _lines(path, field, None):
        if text.strip():
            paragraph.append(text)
        elif paragraph:
            yield "\n".join(paragraph)
            paragraph = []
    if paragraph:
        yield "\n".join(paragraph)


def inspect_pretrain_file(path: str, field: str = "train_file",
                          max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> DataSummary:
    """Validate a pretraining file (.txt paragraphs or JSONL ``{"text"}``)."""
    examples = characters = 0
    for doc in _pretrain_docs(path, field, max_line_bytes):
        examples += 1
        characters += len(doc)
    if not examples:
        raise DataError(path, None, "has no examples" if pretrain_kind(path) == "text" else "has no text", field)
    kind = pretrain_kind(path)
    return DataSummary(str(path), kind, examples, characters, {kind: examples})


def iter_pretrain_texts(path: str, field: str = "train_file",
                        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[str]:
    """Yield every document of a pretraining file (see the module docstring)."""
    yield from _pretrain_docs(path, field, max_line_bytes)
