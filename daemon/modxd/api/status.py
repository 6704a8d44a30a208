"""The one place that maps domain errors to gRPC status codes (and those to Connect's).

Every servicer method is wrapped with `@rpc`, so a handler never builds a status
itself and every error reaches the client as a code plus the domain sentence,
passed through errors.sentence(): control characters escaped and at most
errors.MAX_SENTENCE_BYTES long, whatever value it quotes. Browsers calling over
Connect or gRPC-Web (modxd.web) run the same handlers; their `abort(code, sentence)`
becomes the Connect error whose name CONNECT_CODES gives, so a client sees one code
and one sentence whichever protocol it speaks.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

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


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException, method: str) -> None:
    if isinstance(exc, errors.ModxError):
        await context.abort(code_for(exc), errors.sentence(str(exc)))
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
                            f"{what} is not implemented in this modxd version yet ({issue})")
        yield  # pragma: no cover - makes this an async generator
    return handler
