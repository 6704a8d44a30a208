"""Request bytes that do not decode: INVALID_ARGUMENT with a sentence, not gRPC's UNKNOWN.

gRPC calls a method's request deserializer before any handler or interceptor code runs, and when
it raises (corrupt wire format, a string field that is not UTF-8: a lone surrogate, say) the client
gets UNKNOWN "Unexpected <class 'DecodeError'>...". This interceptor gives every unary-request
method a deserializer that returns an `Undecodable` marker instead of raising, and a handler that
answers the marker with INVALID_ARGUMENT naming the message type, before any other check sees it.
It sits after the auth interceptor, so a caller without a valid token still learns nothing more
than UNAUTHENTICATED.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import grpc
from google.protobuf.message import DecodeError

from .api.status import guarded
from .errors import InvalidArgument


@dataclass(frozen=True)
class Undecodable:
    """What a request deserializer returns for bytes that are not a valid message."""

    reason: str


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, UnicodeDecodeError, ValueError) as exc:
            return Undecodable(str(exc) or type(exc).__name__)
    return decode


def _message_name(method: str, handler: grpc.RpcMethodHandler) -> str:
    """The request type's full name, from the protobuf class behind the deserializer (else the method)."""
    owner = getattr(handler.request_deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", "") or f"request of {method}"


class WireInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or not (handler.unary_unary or handler.unary_stream):
            return handler  # streaming requests (server reflection) keep gRPC's own handling
        method = handler_call_details.method
        name = _message_name(method, handler)

        async def check(request: Any, context: grpc.aio.ServicerContext) -> None:
            if isinstance(request, Undecodable):
                hint = (" (a string field is not valid UTF-8: lone surrogates and other invalid sequences "
                        "cannot be sent)" if "UTF-8" in request.reason else
                        "; the client may have sent another message type or bytes that are not protobuf")
                raise InvalidArgument(f"the request could not be decoded as a {name} message: "
                                      f"{request.reason}{hint}")

        wrapped = guarded(handler, check)
        factory = (grpc.unary_unary_rpc_method_handler if handler.unary_unary
                   else grpc.unary_stream_rpc_method_handler)
        behavior = wrapped.unary_unary or wrapped.unary_stream
        return factory(behavior, _tolerant(handler.request_deserializer), handler.response_serializer)
