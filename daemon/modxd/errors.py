"""Domain errors. Each carries a sentence for people; api/status.py maps them to gRPC codes.

The engine and the store raise these (or plain ValueError from the engine's
pure modules, which the validation layer translates); nothing below the API
layer knows about gRPC.
"""
from __future__ import annotations

import re
from typing import ClassVar


class ModxError(Exception):
    """Base class: `str(err)` is the sentence the client sees."""

    # The name the error travels under between processes (a worker's refusal, modxd/protocol.py).
    code: ClassVar[str] = ""


class InvalidArgument(ModxError):
    """The request itself is wrong (a bad value, a malformed data line)."""

    code = "invalid_argument"


class NotFound(ModxError):
    """A named task, checkpoint, template, evaluation or package does not exist."""

    code = "not_found"


class FailedPrecondition(ModxError):
    """The request is fine but the world is not in a state that allows it."""

    code = "failed_precondition"


class ResourceExhausted(ModxError):
    """Quota, queue, memory or size limits."""

    code = "resource_exhausted"


class PermissionDenied(ModxError):
    """A path outside the allowed roots, or a role that may not do this."""

    code = "permission_denied"


class Unauthenticated(ModxError):
    """No valid credentials."""

    code = "unauthenticated"


class Unavailable(ModxError):
    """The daemon is shutting down or a dependency is missing."""

    code = "unavailable"


class Unimplemented(ModxError):
    """An RPC of the contract that this version does not implement yet."""

    code = "unimplemented"


# ----- error codes between processes ---------------------------------------------------------------

# A worker names the error it answers with by its code (modxd/protocol.py); this table turns the code
# back into the domain error, which api/status.py maps to a gRPC status like any other. INTERNAL is the
# one code with no class: a failure of modx or of a library, which the daemon answers as INTERNAL.
INTERNAL = "internal"
BY_CODE: dict[str, type[ModxError]] = {cls.code: cls for cls in (
    InvalidArgument, NotFound, FailedPrecondition, ResourceExhausted, PermissionDenied, Unauthenticated,
    Unavailable, Unimplemented)}
CODES = (*BY_CODE, INTERNAL)  # every code a worker may send


def error_for(code: str, sentence: str) -> ModxError | None:
    """The domain error a worker's `code` stands for, carrying its sentence; None for INTERNAL."""
    cls = BY_CODE.get(code)
    return cls(sentence) if cls is not None else None


# ----- how a sentence shows what a client sent ----------------------------------------------------

# Characters a sentence never carries raw: C0 controls, DEL, C1 controls, bidi marks, overrides and
# isolates, line and paragraph separators, and lone surrogates. They can move a terminal's cursor,
# hide or reorder text, or break a log line; sentence() and quote() show them as \x1b, \u202e, ...
UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
                          "\ud800-\udfff]")
MAX_QUOTED_CHARS = 64
# A refusal travels as the grpc-message trailer, percent-encoded (up to 3 bytes per byte): 2 KiB keeps it
# far below gRPC's 8 KiB metadata limit, where a client drops the whole response (a 1 MB id once did).
MAX_SENTENCE_BYTES = 2048


_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def quote(value: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """A client value as a sentence shows it: quoted, control characters escaped, at most `limit`
    characters of it (a longer one says how long it was), so no value is ever echoed in full."""
    if not isinstance(value, str):  # a number or a list: as Python shows it, without quotes, still bounded
        text = str(value)
        return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
    shown = "'" + UNSAFE_CHARS.sub(_escape, value[:limit].replace("\\", "\\\\").replace("'", "\\'")) + "'"
    return shown if len(value) <= limit else f"{shown}... ({len(value)} characters)"


def sentence(text: str) -> str:
    """The sentence a client receives: unsafe characters escaped, at most MAX_SENTENCE_BYTES of UTF-8.

    api/status.py passes every refusal through this, so it holds for every message, whatever
    built it and whatever it quotes."""
    text = UNSAFE_CHARS.sub(_escape, text)
    data = text.encode("utf-8", "replace")
    if len(data) <= MAX_SENTENCE_BYTES:
        return text
    cut = MAX_SENTENCE_BYTES - 40
    return data[:cut].decode("utf-8", "ignore") + f"... (cut: the message had {len(data)} bytes)"
