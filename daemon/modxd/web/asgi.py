"""The browser listener's ASGI application: checks every request, then RPC or file.

`POST /<package>.<Service>/<Method>` goes to connect-python (web/rpc.py) after the listener's own
rules; everything else is the studio's files (web/static.py). The rules, in order:

1. Host: on a loopback-only listener, where calls without a token are trusted like the Unix
   socket's, the Host header must name a loopback address or `localhost`, so a page on another
   site whose name was re-pointed at 127.0.0.1 (DNS rebinding) cannot use that trust.
2. Origin: a browser call must come from the studio's own origin or one in `web_allowed_origins`
   (CORS, preflight included); any other cross-origin call is refused before its handler runs.
3. Protocol: Connect and gRPC-Web only; native gRPC (`application/grpc`) has its own listener.
4. Size: the body is read up to `max_request_bytes` (plus the 5-byte envelope); past it the call
   is RESOURCE_EXHAUSTED before anything is parsed. An empty Connect JSON body means `{}`.
5. Disconnect: a client that goes away cancels its call at once, whatever the handler awaits (an
   idle watch, a chat's generation), so nothing keeps running for nobody.
"""
from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Awaitable, Callable

from connectrpc.errors import ConnectError

from ..config import is_loopback_host
from .rpc import Dispatcher, ModxConnectApp
from .static import StaticFiles, respond

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

RPC_PATH = re.compile(r"^/[A-Za-z_][\w.]*\.[A-Za-z_]\w*/[A-Za-z_]\w*$")
ENVELOPE_BYTES = 5
# What a browser may send cross-origin (connect-web and grpc-web clients set these).
CORS_ALLOW_HEADERS = ("content-type, connect-protocol-version, connect-timeout-ms, connect-content-encoding, "
                      "connect-accept-encoding, authorization, x-grpc-web, x-user-agent, grpc-timeout, "
                      "modx-client-id")
CORS_EXPOSE_HEADERS = "grpc-status, grpc-message, grpc-status-details-bin, content-encoding, connect-content-encoding"
HTTP_STATUS = {"permission_denied": 403, "resource_exhausted": 429, "unimplemented": 415,
               "invalid_argument": 400, "unavailable": 503}


async def error_response(send: Send, code: str, message: str, extra: list[tuple[bytes, bytes]] | None = None,
                         status: int | None = None) -> None:
    """A refusal in the Connect unary error form ({"code", "message"}), before any handler ran."""
    body = json.dumps({"code": code, "message": message}).encode()
    await respond(send, status or HTTP_STATUS.get(code, 400), body,
                  [(b"content-type", b"application/json"), *(extra or [])])


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def host_name(host_header: str) -> str:
    """'127.0.0.1:8470' -> '127.0.0.1', '[::1]:8470' -> '::1', 'localhost' -> 'localhost'."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class WebApp:
    def __init__(self, dispatcher: Dispatcher, connect_app: ModxConnectApp, static: StaticFiles, *,
                 trusted_local: bool, allowed_origins: list[str], max_body_bytes: int) -> None:
        self.dispatcher = dispatcher
        self.connect_app = connect_app
        self.static = static
        self.trusted_local = trusted_local
        self.allowed_origins = frozenset(allowed_origins)
        self.max_body_bytes = max_body_bytes
        self.inflight: set[asyncio.Task[Any]] = set()

    async def close(self) -> None:
        """End every call in flight (streams end with UNAVAILABLE: the daemon is stopping)."""
        self.dispatcher.stopping = True
        for task in list(self.inflight):
            task.cancel()
        for _ in range(500):  # each ends at its next await; bounded all the same
            if not self.inflight:
                break
            await asyncio.sleep(0.01)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no lifespan events (the daemon starts us), no websockets
            return
        host = _header(scope, b"host")
        if self.trusted_local and not is_loopback_host(host_name(host)):
            await error_response(send, "permission_denied",
                                 f"Host {host!r} is not a loopback name: this listener serves only "
                                 "http://127.0.0.1 / localhost (a guard against DNS rebinding)")
            return
        base_url = f"{scope.get('scheme', 'http')}://{host}"
        if not RPC_PATH.match(scope["path"]):
            await self.static(scope, send, base_url)
            return
        origin = _header(scope, b"origin")
        cors: list[tuple[bytes, bytes]] = []
        if origin and origin != base_url:
            if origin not in self.allowed_origins:
                await error_response(send, "permission_denied",
                                     f"calls from origin {origin!r} are not allowed: the studio's own origin is "
                                     f"{base_url}; add the origin to web_allowed_origins to allow it")
                return
            cors = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"origin")]
        if scope["method"] == "OPTIONS":
            await respond(send, 204 if cors else 403, b"", [
                *cors, (b"access-control-allow-methods", b"POST"),
                (b"access-control-allow-headers", CORS_ALLOW_HEADERS.encode()),
                (b"access-control-max-age", b"7200")])
            return
        if cors:
            cors.append((b"access-control-expose-headers", CORS_EXPOSE_HEADERS.encode()))
        await self.rpc(scope, receive, send, cors)

    async def rpc(self, scope: Scope, receive: Receive, send: Send, cors: list[tuple[bytes, bytes]]) -> None:
        content_type = _header(scope, b"content-type").lower()
        media = content_type.split(";", 1)[0].strip()
        if media == "application/grpc" or media.startswith("application/grpc+"):
            await error_response(send, "unimplemented",
                                 "this is modxd's browser listener (Connect, gRPC-Web); native gRPC clients "
                                 "connect to its gRPC listener (listen / tcp_listen)", cors)
            return
        body = await self._read_body(scope, receive, send, cors)
        if body is None:
            return
        if not body and media == "application/json" and scope["method"] == "POST":
            body = b"{}"  # an empty Connect JSON request is the empty message
        await self._dispatch(scope, receive, send, body, cors)

    async def _read_body(self, scope: Scope, receive: Receive, send: Send,
                         cors: list[tuple[bytes, bytes]]) -> bytes | None:
        limit = self.max_body_bytes + ENVELOPE_BYTES
        declared = _header(scope, b"content-length")
        chunks, size = [], 0
        too_big = declared.isdigit() and int(declared) > limit
        while not too_big:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                too_big = True
                break
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
        await error_response(send, "resource_exhausted",
                             f"the request is larger than this daemon's limit of {self.max_body_bytes} bytes "
                             "(max_request_bytes in its config)", [*cors, (b"connection", b"close")])
        return None

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send, body: bytes,
                        cors: list[tuple[bytes, bytes]]) -> None:
        task = asyncio.current_task()
        assert task is not None
        state = {"delivered": False, "complete": False, "gone": False}
        gone = asyncio.Event()

        async def inner_receive() -> dict[str, Any]:
            if not state["delivered"]:
                state["delivered"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def inner_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and cors:
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["complete"] = True  # before the send: the client's "disconnect" that follows is no cancel
            await send(message)

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            if not state["complete"]:
                state["gone"] = True
                task.cancel()

        watcher = asyncio.create_task(watch_disconnect())
        self.inflight.add(task)
        try:
            await self.connect_app(scope, inner_receive, inner_send)
        except (asyncio.CancelledError, ConnectError):
            if not (state["gone"] or self.dispatcher.stopping):
                raise  # a cancel from elsewhere (the server going down) stays a cancel
        finally:
            self.inflight.discard(task)
            watcher.cancel()
            if (state["gone"] or self.dispatcher.stopping) and task.cancelling():
                task.uncancel()
