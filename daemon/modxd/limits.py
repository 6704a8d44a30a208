"""Sane caps on what one client may ask for, as RESOURCE_EXHAUSTED.

- request size: `max_request_bytes` is gRPC's own max_receive_message_length
  (server.py), so an oversized message is refused before it is parsed;
- queued tasks: `max_pending_tasks` (the supervisor refuses to queue more);
- concurrent watch streams per client: `max_watchers_per_client`, counted
  here for every `Watch*` server stream of a modx service and every download
  (`Read*File`). Who "a client" is (`client_key`): its token (by hash) when it sends one; else, on the Unix
  socket, the name it gives itself in the `modx-client-id` metadata (modxctl
  sends one per process); else its peer address without the port. gRPC tells
  a server nothing that tells two Unix-socket connections apart (the peer is
  just "unix:", no pid or credentials), so token-less local callers that do
  not name themselves share one count. A self-given name is only taken where
  no token is needed: those callers are trusted by the socket's permissions
  (they get `local_role`), and the cap guards against runaway tools, not
  against them;
- generated tokens: `max_chat_tokens` caps `max_new_tokens` of a chat and of
  an evaluation's generation settings.
"""
from __future__ import annotations

import collections
import hashlib
from typing import Any

import grpc
import structlog

from .api.status import abort, guarded
from .auth import bearer_token
from .errors import ResourceExhausted

log = structlog.get_logger("modxd.limits")

CHAT_METHOD = "/modx.v1.InferenceService/Chat"
EVAL_CREATE_METHOD = "/modx.v1.EvalService/CreateEvaluation"


def is_watch(method: str) -> bool:
    """A stream a client may hold open for long: the events of a task or job (Watch*), or a file
    download (Read*File: an fd and a chunk held while the client reads slowly)."""
    name = method.rsplit("/", 1)[-1]
    return method.startswith("/modx.v1.") and (name.startswith("Watch") or (name.startswith("Read")
                                                                            and name.endswith("File")))


CLIENT_ID_METADATA = "modx-client-id"
MAX_CLIENT_ID_CHARS = 64
ANONYMOUS_LOCAL = "unix"


def declared_client_id(metadata: Any) -> str:
    """The caller's `modx-client-id` metadata value, trimmed ('' when absent or blank)."""
    for key, value in metadata or ():
        if key.lower() == CLIENT_ID_METADATA:
            if isinstance(value, bytes):
                value = value.decode(errors="replace")
            return "".join(c for c in value.strip() if c.isprintable())[:MAX_CLIENT_ID_CHARS]
    return ""


def client_key(metadata: Any, peer: str) -> str:
    """Whose allowance a call counts against (see the module docstring)."""
    token = bearer_token(metadata)
    if token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    if peer.startswith("unix:"):
        declared = declared_client_id(metadata)
        return f"unix:{declared}" if declared else ANONYMOUS_LOCAL
    host = peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer
    return host


class LimitsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, max_watchers_per_client: int = 32, max_chat_tokens: int = 4096) -> None:
        self.max_watchers = max_watchers_per_client
        self.max_chat_tokens = max_chat_tokens
        self.watchers: collections.Counter[str] = collections.Counter()

    def _too_many_tokens(self, method: str, request: Any) -> str:
        if method == CHAT_METHOD:
            asked = request.sampling.max_new_tokens if request.HasField("sampling") else 0
            what = "sampling.max_new_tokens"
        elif method == EVAL_CREATE_METHOD:
            asked = request.generation.max_new_tokens if request.HasField("generation") else 0
            what = "generation.max_new_tokens"
        else:
            return ""
        if asked > self.max_chat_tokens:
            return (f"{what} is {asked}, above this daemon's limit of {self.max_chat_tokens} "
                    "(max_chat_tokens in its config)")
        return ""

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        metadata = handler_call_details.invocation_metadata
        if method in (CHAT_METHOD, EVAL_CREATE_METHOD):
            async def check_tokens(request, context) -> None:
                sentence = self._too_many_tokens(method, request)
                if sentence:
                    raise ResourceExhausted(sentence)
            return guarded(handler, check_tokens)
        if not (is_watch(method) and handler.unary_stream):
            return handler

        inner = handler.unary_stream
        counts = self.watchers

        async def watch(request, context):
            key = client_key(metadata, context.peer())
            if counts[key] >= self.max_watchers:
                log.warning("too_many_watchers", method=method, client=key, limit=self.max_watchers)
                hint = (f"; token-less local callers share one allowance unless each names itself with the "
                        f"'{CLIENT_ID_METADATA}' metadata (modxctl does)" if key == ANONYMOUS_LOCAL else "")
                await abort(context, ResourceExhausted(
                    f"this client already has {counts[key]} watch or download streams open, the limit "
                    f"(max_watchers_per_client); close one first{hint}"))
            counts[key] += 1
            try:
                result = inner(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:
                    await result
            finally:
                counts[key] -= 1
                if counts[key] <= 0:
                    del counts[key]

        return grpc.unary_stream_rpc_method_handler(watch, handler.request_deserializer,
                                                    handler.response_serializer)
