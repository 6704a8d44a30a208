"""The modx.v1 services for browsers: connect-python speaks the protocols, the gRPC handlers answer.

connect-python (the Connect project's runtime on the standard `protobuf` package, the one grpcio
uses) handles Connect (JSON and binary, unary and server streaming over HTTP/1.1) and gRPC-Web.
Every RPC it receives is dispatched to the very handler grpc.aio runs for the same method:

- the generated `add_*Servicer_to_server` functions register the daemon's servicer instances into
  a `HandlerRecorder`, which keeps the grpc.RpcMethodHandler of every method;
- the daemon's interceptors (auth, limits: server.Services) wrap that handler per call exactly as
  grpc.aio does, so a token, a role, a watcher cap or a token cap is checked in one place;
- `WebCall` stands in for grpc.aio.ServicerContext with what those handlers use (abort, peer,
  invocation_metadata, add_done_callback, cancelled); an abort becomes a ConnectError with the
  code api/status.CONNECT_CODES names and the same sentence.

No message is converted: requests and responses are the grpcio stubs' own classes.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import zlib
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Sequence

import grpc
import structlog
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication, Endpoint
from google.protobuf import json_format, symbol_database

from ..api.status import CONNECT_CODES
from ..auth import LOCAL_WEB_PEER
from . import envelope

log = structlog.get_logger("modxd.web")

Metadata = tuple[tuple[str, str], ...]
# Request headers that are HTTP's business, not call metadata.
_NOT_METADATA = frozenset({"host", "content-type", "content-length", "content-encoding", "accept-encoding",
                           "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "cookie"})


class WebAbort(grpc.aio.AbortError):
    """`context.abort()` of a web call: an AbortError, so `@rpc` lets it through untouched."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


def connect_error(code: grpc.StatusCode, details: str) -> ConnectError:
    return ConnectError(Code(CONNECT_CODES[code]), details)


class WebCall:
    """What the servicers and interceptors use of grpc.aio.ServicerContext, for one web call."""

    def __init__(self, metadata: Metadata, peer: str) -> None:
        self._metadata = metadata
        self._peer = peer
        self._callbacks: list[Callable[[Any], None]] = []
        self._cancelled = False
        self._done = False

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        raise WebAbort(code, details)

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._done

    def time_remaining(self) -> float | None:
        return None

    def finish(self, cancelled: bool) -> None:
        """The call ended: run the done callbacks once (Chat's stops generation on a disconnect)."""
        if self._done:
            return
        self._done, self._cancelled = True, cancelled
        for callback in self._callbacks:
            try:
                callback(self)
            except Exception:  # a callback's bug must not hide the call's own outcome
                log.exception("web_done_callback_failed")


@dataclass(frozen=True)
class CallDetails(grpc.HandlerCallDetails):
    method: str
    invocation_metadata: Metadata


class HandlerRecorder:
    """A stand-in `server` for the generated add_*_to_server functions: keeps their method handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}
        self.services: list[str] = []

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        pass  # the same handlers arrive through add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.services.append(service)
        for name, handler in handlers.items():
            self.handlers[f"/{service}/{name}"] = handler


def web_peer(client_address: str | None, trusted_local: bool) -> str:
    """The peer string the interceptors see; `web-local:` only for a loopback-only listener's callers
    (auth.is_local_peer), `web:` for the rest."""
    return f"{LOCAL_WEB_PEER if trusted_local else 'web:'}{client_address or 'unknown'}"


def metadata_of(ctx: RequestContext) -> Metadata:
    return tuple((k, v) for k, v in ctx.request_headers().allitems() if k not in _NOT_METADATA)


class Dispatcher:
    """Builds one connect-python endpoint per modx.v1 method, each calling the gRPC handler."""

    def __init__(self, registrations: Sequence[tuple[Callable[[Any, Any], None], Any]],
                 interceptors: Sequence[grpc.aio.ServerInterceptor], trusted_local: bool) -> None:
        recorder = HandlerRecorder()
        for add, servicer in registrations:
            add(servicer, recorder)
        self.handlers = recorder.handlers
        self.services = recorder.services
        self.interceptors = list(interceptors)
        self.trusted_local = trusted_local
        self.stopping = False  # set when the daemon stops: a cancelled call then ends UNAVAILABLE

    def _stopped(self) -> ConnectError | None:
        """The error a call cancelled by the daemon's shutdown ends with (None: another cancel)."""
        if not self.stopping:
            return None
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            task.uncancel()
        return connect_error(grpc.StatusCode.UNAVAILABLE,
                             "modxd is stopping; call again when it is back (a watch resumes with after_seq)")

    def peer_of(self, ctx: RequestContext) -> str:
        return web_peer(ctx.client_address(), self.trusted_local)

    async def _intercepted(self, path: str, metadata: Metadata) -> grpc.RpcMethodHandler | None:
        """The handler after every interceptor, outermost first, as grpc.aio chains them."""
        details = CallDetails(path, metadata)
        base = self.handlers[path]

        async def call(index: int, d: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            if index == len(self.interceptors):
                return base
            return await self.interceptors[index].intercept_service(lambda nd: call(index + 1, nd), d)

        return await call(0, details)

    def endpoints(self) -> dict[str, Endpoint]:
        pool = symbol_database.Default().pool
        endpoints: dict[str, Endpoint] = {}
        for path, handler in self.handlers.items():
            service_name, method_name = path[1:].split("/")
            method = pool.FindServiceByName(service_name).methods_by_name[method_name]
            info = MethodInfo(name=method_name, service_name=service_name,
                              input=symbol_database.Default().GetSymbol(method.input_type.full_name),
                              output=symbol_database.Default().GetSymbol(method.output_type.full_name),
                              idempotency_level=IdempotencyLevel.UNKNOWN)  # POST only: no GET side door
            if handler.unary_unary is not None:
                endpoints[path] = Endpoint.unary(info, self._unary(path))
            elif handler.unary_stream is not None:
                endpoints[path] = Endpoint.server_stream(info, self._server_stream(path))
            # client and bidi streams: none in modx.v1 (browsers cannot send them over HTTP/1.1)
        return endpoints

    def _unary(self, path: str) -> Callable[[Any, RequestContext], Any]:
        async def unary(request: Any, ctx: RequestContext) -> Any:
            metadata = metadata_of(ctx)
            call = WebCall(metadata, self.peer_of(ctx))
            cancelled = False
            try:
                handler = await self._intercepted(path, metadata)
                result = handler.unary_unary(request, call)
                return await result if inspect.isawaitable(result) else result
            except WebAbort as exc:
                raise connect_error(exc.code, exc.details) from None
            except asyncio.CancelledError:
                cancelled = True
                stopped = self._stopped()
                if stopped is None:
                    raise
                raise stopped from None
            except ConnectError:
                raise
            except Exception as exc:
                raise _internal(path, exc) from None
            finally:
                call.finish(cancelled)
        return unary

    def _server_stream(self, path: str) -> Callable[[Any, RequestContext], AsyncIterator[Any]]:
        async def server_stream(request: Any, ctx: RequestContext) -> AsyncIterator[Any]:
            metadata = metadata_of(ctx)
            call = WebCall(metadata, self.peer_of(ctx))
            cancelled = False
            stream = None
            try:
                handler = await self._intercepted(path, metadata)
                stream = handler.unary_stream(request, call)
                async for item in stream:
                    yield item
            except WebAbort as exc:
                raise connect_error(exc.code, exc.details) from None
            except asyncio.CancelledError:
                cancelled = True
                stopped = self._stopped()
                if stopped is None:
                    raise
                raise stopped from None
            except GeneratorExit:
                cancelled = True
                raise
            except ConnectError:
                raise
            except Exception as exc:
                raise _internal(path, exc) from None
            finally:
                if stream is not None and hasattr(stream, "aclose"):
                    await stream.aclose()  # its finally blocks (bus subscription, watcher count) run now
                call.finish(cancelled)
        return server_stream


def _internal(path: str, exc: Exception) -> ConnectError:
    """Outside @rpc (an interceptor, this module): a bug, reported as INTERNAL like gRPC's path."""
    log.exception("web_rpc_internal_error", method=path)
    return connect_error(grpc.StatusCode.INTERNAL,
                         f"internal error in {path.rsplit('/', 1)[-1]}: {type(exc).__name__}: {exc}")


class RequestCodec:
    """connect-python's codec for one call, with two changes a client notices:

    - a request that does not decode is INVALID_ARGUMENT naming the message, not UNKNOWN
      (connect-python passes the parser's exception through; connect-go says invalid_argument);
    - JSON goes out compact and in UTF-8 (the zh labels stay readable), not indented ASCII.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.is_json = inner.name() == "json"

    def name(self) -> str:
        return self.inner.name()

    def encode(self, message: Any) -> bytes:
        if self.is_json:
            return json_format.MessageToJson(message, indent=None, ensure_ascii=False).encode()
        return self.inner.encode(message)

    def decode(self, data: bytes | bytearray, message: Any) -> Any:
        try:
            return self.inner.decode(data, message)
        except Exception as exc:
            kind = "JSON" if self.is_json else "binary protobuf"
            name = message.DESCRIPTOR.full_name
            top = _json_top_level(data) if self.is_json else None
            if top is not None and top != "object":  # the parser's own words name a Python type, not the body
                raise connect_error(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"the request body must be a JSON object holding the fields of {name} "
                                    f"({{}} for none); it is a JSON {top}") from None
            raise connect_error(grpc.StatusCode.INVALID_ARGUMENT,
                                f"the request is not a valid {name} in {kind}: {exc}") from None


def _json_top_level(data: bytes | bytearray) -> str | None:
    """The JSON type of a request body ('object', 'array', ...), None when it is not JSON at all."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


class ModxConnectApp(ConnectASGIApplication):
    """connect-python's ASGI application over every modx.v1 endpoint (one app, one path table).

    The two overrides hand connect-python's request handling the RequestCodec above; they rely
    on connect-python 0.9's internal method signatures (pinned <0.10 in pyproject), and
    tests/web/test_connect_unary.py fails if a release changes them.
    """

    def __init__(self, dispatcher: Dispatcher, read_max_bytes: int, compressions: Sequence[Any]) -> None:
        super().__init__(service=dispatcher, endpoints=lambda d: d.endpoints(), read_max_bytes=read_max_bytes,
                         compressions=compressions)
        self.procedures = frozenset(dispatcher.handlers)

    @property
    def path(self) -> str:
        return "/modx.v1."

    async def _handle_unary_connect(self, http_method: str, headers: Any, codec: Any, *args: Any) -> None:
        await super()._handle_unary_connect(http_method, headers, RequestCodec(codec), *args)

    async def _handle_stream(self, receive: Any, send: Any, protocol: Any, endpoint: Any, codec: Any,
                             headers: Any, *args: Any) -> None:
        await super()._handle_stream(self._framed(receive, protocol, headers), send, protocol, endpoint,
                                     RequestCodec(codec), headers, *args)

    def _framed(self, receive: Any, protocol: Any, headers: Any) -> Callable[[], Any]:
        """`receive` with the body's envelope framing checked first (web/envelope.py): a bad body ends
        the call INVALID_ARGUMENT, raised inside connect-python's stream handling so the client gets it
        in its protocol's own form (a Connect end-stream message, gRPC-Web trailers)."""
        request_compression, _ = protocol.negotiate_stream_compression(headers, self._compressions)
        compression = request_compression.name() if request_compression is not None else None
        header = "grpc-encoding" if headers.get("content-type", "").startswith("application/grpc-web") \
            else "connect-content-encoding"
        checked = False

        async def framed() -> dict[str, Any]:
            nonlocal checked
            if checked:
                return await receive()
            chunks: list[bytes] = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message  # a disconnect: connect-python ends the call CANCELED
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            checked = True
            body = b"".join(chunks)
            problem = envelope.request_problem(body, compression, header)
            if problem is not None:
                raise connect_error(grpc.StatusCode.INVALID_ARGUMENT, problem)
            return {"type": "http.request", "body": body, "more_body": False}
        return framed


class BoundedGzip:
    """gzip for Connect and gRPC-Web messages (connect-python's Compression protocol), whose
    decompression stops past the request limit: a small compressed body cannot unpack into
    gigabytes before the size check (connect-python checks after decompressing)."""

    def __init__(self, max_bytes: int, level: int = 6) -> None:
        self.max_bytes = max_bytes
        self.level = level

    def name(self) -> str:
        return "gzip"

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        return zlib_gzip_compress(data, self.level)

    def decompress(self, data: bytes | bytearray | memoryview) -> bytes:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out = inflater.decompress(data, self.max_bytes + 1)
        except zlib.error as exc:
            raise connect_error(grpc.StatusCode.INVALID_ARGUMENT, f"the gzip-compressed request is corrupt: {exc}"
                                ) from None
        if len(out) > self.max_bytes:
            raise connect_error(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"the request unpacks to more than this daemon's limit of {self.max_bytes} bytes "
                                "(max_request_bytes in its config)")
        return out


def zlib_gzip_compress(data: bytes | bytearray | memoryview, level: int) -> bytes:
    deflater = zlib.compressobj(level, zlib.DEFLATED, 31)
    return deflater.compress(data) + deflater.flush()
