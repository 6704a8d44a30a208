"""Rules for the plain values a client sends: ids, names, free text, references, counts, limits, numbers.

The servicers check every request field with these (or with the rule of the field's own domain:
parameters in params.py, paths in paths.py, template names in store/templates.py, sampling and chat
messages in engine/sampling.py, evaluation settings in evaluations.py) before anything is looked up.
So a value that could never be valid is INVALID_ARGUMENT with a sentence naming the field: never
NOT_FOUND for an id that could not exist, INTERNAL from a database that cannot hold a number, or a
silently ignored filter. Sentences quote values with errors.quote (a bounded, escaped prefix).
"""
from __future__ import annotations

import math
import re
from typing import Callable, Iterable, Sized, TypeVar

from .errors import InvalidArgument, quote

T = TypeVar("T")

MAX_ID_CHARS = 128        # task, evaluation and package ids are 'xx-' + 8 hex digits; room for other forms
MAX_NAME_CHARS = 200      # a task's name
MAX_TEXT_CHARS = 2000     # a template's description, a quota grant's note
MAX_REF_CHARS = 4096      # a checkpoint reference: an id, a step or a path
MAX_KEY_CHARS = 512       # a loaded model's cache key
MAX_FILTER_VALUES = 64    # enum values in one filter (states, kinds, quant types)
MAX_PAGE_TOKEN_DIGITS = 9  # page tokens are decimal offsets this daemon issued
NEWLINES = "\n\t"         # what free text may hold of the control characters (and nothing else)

# C0 controls, DEL, C1 controls, bidi marks, overrides and isolates, line and paragraph separators:
# characters no id, name, reference or path needs, and that can take over a terminal or fake a log line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def control_char(text: str, allow: str = "") -> tuple[int, str] | None:
    """(position, character) of the first control character of `text` not in `allow`, or None."""
    for match in _CONTROL.finditer(text):
        if match.group() not in allow:
            return match.start(), match.group()
    return None


def check_text(value: str, field: str, max_chars: int, allow: str = "") -> str:
    """`value` when it is at most `max_chars` long and holds no control character but those in `allow`."""
    if len(value) > max_chars:
        raise InvalidArgument(f"{field} is too long: {len(value)} characters, at most {max_chars} are allowed")
    found = control_char(value, allow)
    if found:
        position, char = found
        raise InvalidArgument(f"{field} {quote(value)} has a control character ({quote(char)[1:-1]} at position "
                              f"{position + 1}); {field} must be printable text")
    return value


def require_id(value: str, field: str) -> str:
    """A required id: trimmed, not empty, short and printable."""
    value = value.strip()
    if not value:
        raise InvalidArgument(f"{field} is required")
    return check_text(value, field, MAX_ID_CHARS)


def optional_id(value: str, field: str) -> str:
    """An id that may be left empty ('' then)."""
    return require_id(value, field) if value.strip() else ""


def check_ref(value: str, field: str) -> str:
    """A reference that may be an id, a step number or a path (a checkpoint); '' when not given."""
    return check_text(value.strip(), field, MAX_REF_CHARS)


def check_count(values: Sized, field: str, max_count: int) -> None:
    if len(values) > max_count:
        raise InvalidArgument(f"{field} has {len(values)} entries; at most {max_count} are allowed")


def check_enums(values: Iterable[int], field: str, known: dict[int, T],
                name: Callable[[int], str] = str) -> list[T]:
    """The domain values of repeated enum numbers; an unknown number (or UNSPECIFIED) is refused, never skipped.
    `name` shows a known number as people read it (the enum value's name)."""
    values = list(values)
    check_count(values, field, MAX_FILTER_VALUES)
    unknown = [v for v in values if v not in known]
    if unknown:
        raise InvalidArgument(f"{field} holds {unknown[0]}, which is not a value this daemon accepts there "
                              f"(one of {', '.join(name(k) for k in sorted(known))})")
    return [known[v] for v in values]


def check_limit(value: int, field: str, maximum: int) -> int:
    """A count a client asks for: 0 means the default (returned as 0), negative or above `maximum` is refused."""
    if value < 0 or value > maximum:
        raise InvalidArgument(f"{field} must be between 1 and {maximum} (0 = the default), got {value}")
    return value


def check_non_negative(value: int, field: str) -> int:
    if value < 0:
        raise InvalidArgument(f"{field} must be 0 or more, got {value}")
    return value


def check_number(value: float, field: str, low: float, high: float) -> float:
    """A finite number between `low` and `high`."""
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidArgument(f"{field} must be a finite number between {low:g} and {high:g}, got {value:g}")
    return value


def page(size: int, token: str, default_size: int, max_size: int) -> tuple[int, int]:
    """(offset, limit) of a PageRequest; the token is a decimal offset this daemon issued."""
    if size < 0 or size > max_size:
        raise InvalidArgument(f"page_size must be between 1 and {max_size} (0 = {default_size}), got {size}")
    if token and not (token.isascii() and token.isdigit() and len(token) <= MAX_PAGE_TOKEN_DIGITS):
        raise InvalidArgument(f"page_token {quote(token)} is not one this daemon issued: pass back a "
                              "next_page_token unchanged, or nothing for the first page")
    return int(token or 0), size or default_size
