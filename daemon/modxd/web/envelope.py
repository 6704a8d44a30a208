"""The framing rule for a browser's streaming-call request body, checked before connect-python reads it.

A Connect streaming call (`application/connect+json|proto`) and every gRPC-Web call carry their
request as enveloped messages: a flags byte, a 4-byte big-endian length, then that many bytes. The
modx.v1 streams are all server streams, so the body is exactly one envelope. connect-python answers
a body that breaks this (gRPC-Web unary calls are enveloped too) with the wrong code: an empty, truncated or over-promising body is
UNIMPLEMENTED ("unary request has zero messages"), and a message flagged compressed without a
negotiated compression is INTERNAL, which in modx means a bug in modx. Here each is the client's
mistake, INVALID_ARGUMENT with a sentence that says which byte is wrong.

The listener (web/asgi.py) has already read the whole body within max_request_bytes, so the check
sees all of it at once.
"""
from __future__ import annotations

PREFIX_BYTES = 5
COMPRESSED = 0x01  # the only flag a request may set (0x02 end-stream and 0x80 trailers are the server's)


def request_problem(body: bytes, compression: str | None, encoding_header: str) -> str | None:
    """Why `body` is not one well-formed request envelope (None when it is).

    `compression` is the name of the compression the call negotiated (None or "identity": none);
    `encoding_header` names the header a client sets to choose it, for the sentence."""
    how = ("a Connect streaming or gRPC-Web request is one enveloped message: a flags byte, a 4-byte "
           "big-endian length, then the message")
    if not body:
        return f"the request body is empty; {how}"
    if len(body) < PREFIX_BYTES:
        return f"the request body has {len(body)} bytes, fewer than the {PREFIX_BYTES}-byte envelope prefix; {how}"
    flags, length = body[0], int.from_bytes(body[1:PREFIX_BYTES], "big")
    if flags & ~COMPRESSED:
        looks_like = " (0x7b is '{': a JSON body sent without its envelope?)" if body[:1] == b"{" else ""
        return (f"the request envelope's flags byte is 0x{flags:02x}; a request may set only 0x01 "
                f"(compressed){looks_like}")
    if flags & COMPRESSED and compression in (None, "identity"):
        return (f"the request envelope is flagged compressed (0x01) but the call names no compression: set "
                f"{encoding_header}: gzip, or send the message uncompressed (flags 0x00)")
    rest = len(body) - PREFIX_BYTES
    if length > rest:
        return (f"the request envelope promises {length} bytes but the body holds {rest} after its "
                f"{PREFIX_BYTES}-byte prefix (a truncated body or a wrong length)")
    if length < rest:
        return (f"the request body has {rest - length} bytes after its message of {length} bytes; every "
                "modx.v1 call takes exactly one request message (or the length prefix is wrong)")
    return None
