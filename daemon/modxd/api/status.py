"""The one place that maps domain errors to gRPC status codes (and those to Connect's).

Every servicer method is wrapped with `@rpc`, and every interceptor's check with
`guarded` (auth.py, limits.py, wire.py), so neither a handler nor an interceptor
builds a status itself: each raises a domain error (errors.py) and every error
reaches the client as a code plus the domain sentence,
passed through errors.sentence(): control characters escaped and at most
errors.MAX_SENTENCE_BYTES long, whatever value it quotes. Browsers calling over
Connect or gRPC-Web (modxd.web) run the same handlers; their `abort(code, sentence)`
becomes the Connect error whose name CONNECT_CODES gives, so a client sees one code
and one sentence whichever protocol it speaks.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Awaitable, Callable

import grpc
import structlog

from .. import errors

log = structlog.get_logger("modxd.api")

CODES: dict[type[errors.ModxError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
}


# gRPC status code -> the Connect protocol's error code name (the same sixteen codes, one spelling
# differs: CANCELLED / "canceled"). https://connectrpc.com/docs/protocol#error-codes
CONNECT_CODES: dict[grpc.StatusCode, str] = {
    code: ("canceled" if code is grpc.StatusCode.CANCELLED else code.name.lower())
    for code in grpc.StatusCode if code is not grpc.StatusCode.OK
}


def code_for(exc: errors.ModxError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]
    return grpc.StatusCode.UNKNOWN


async def abort(context: grpc.aio.ServicerContext, exc: errors.ModxError) -> None:
    """End the call with the status `exc` maps to and its sentence (raises grpc's AbortError)."""
    await context.abort(code_for(exc), errors.sentence(str(exc)))


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException, method: str) -> None:
    if isinstance(exc, errors.ModxError):
        await abort(context, exc)
    log.exception("rpc_internal_error", method=method)
    await context.abort(grpc.StatusCode.INTERNAL,
                        errors.sentence(f"internal error in {method}: {type(exc).__name__}: {exc}"))


def rpc(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a unary or server-streaming servicer method with the error mapping."""
    name = func.__name__
    if inspect.isasyncgenfunction(func):
        @functools.wraps(func)
        async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext):
            try:
                async for item in func(self, request, context):
                    yield item
            except (errors.ModxError, Exception) as exc:  # noqa: B014
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                await _abort(context, exc, name)
        return stream

    @functools.wraps(func)
    async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext):
        try:
            return await func(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, name)
    return unary


def unimplemented(what: str, issue: str) -> Callable[..., Any]:
    """A contract RPC that a later version implements: UNIMPLEMENTED with a sentence."""
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                            errors.sentence(f"{what} is not implemented in this modxd version yet ({issue})"))
    return handler


def unimplemented_stream(what: str, issue: str) -> Callable[..., Any]:
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                            errors.sentence(f"{what} is not implemented in this modxd version yet ({issue})"))
        yield  # pragma: no cover - makes this an async generator
    return handler


# ----- interceptors ------------------------------------------------------------------------------

Check = Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]]


def guarded(handler: grpc.RpcMethodHandler, check: Check) -> grpc.RpcMethodHandler:
    """The same handler with `await check(request_or_None, context)` run first: an interceptor's refusal
    is a domain error that `check` raises, answered here with its status before the handler runs."""

    async def checked(request: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            await check(request, context)
        except errors.ModxError as exc:
            await abort(context, exc)

    async def _run(behavior, request, context):
        result = behavior(request, context)
        if inspect.isawaitable(result):
            return await result
        return result

    if handler.unary_unary:
        inner = handler.unary_unary

        async def unary_unary(request, context):
            await checked(request, context)
            return await _run(inner, request, context)
        return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer,
                                                   handler.response_serializer)

    async def stream(behavior, request, context):
        result = behavior(request, context)
        if hasattr(result, "__aiter__"):
            async for item in result:
                yield item
        elif inspect.isawaitable(result):
            await result

    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(request, context):  # stream() inlined: one generator less per message
            await checked(request, context)
            result = inner_us(request, context)
            if hasattr(result, "__aiter__"):
                async for item in result:
                    yield item
            elif inspect.isawaitable(result):
                await result
        return grpc.unary_stream_rpc_method_handler(unary_stream, handler.request_deserializer,
                                                    handler.response_serializer)
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(request_iterator, context):
            await checked(None, context)
            return await _run(inner_su, request_iterator, context)
        return grpc.stream_unary_rpc_method_handler(stream_unary, handler.request_deserializer,
                                                    handler.response_serializer)
    inner_ss = handler.stream_stream

    async def stream_stream(request_iterator, context):
        await checked(None, context)
        async for item in stream(inner_ss, request_iterator, context):
            yield item
    return grpc.stream_stream_rpc_method_handler(stream_stream, handler.request_deserializer,
                                                 handler.response_serializer)
