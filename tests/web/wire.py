"""A small client for the browser listener written from the protocol specs, over http.client.

Connect (https://connectrpc.com/docs/protocol) and gRPC-Web (grpc/grpc PROTOCOL-WEB.md) are spoken
byte by byte here, not through connect-python, so the tests check the wire a browser sees.
"""
from __future__ import annotations

import http.client
import json
import struct
from dataclasses import dataclass, field
from typing import Any, Iterator

from google.protobuf import json_format
from google.protobuf.message import Message


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class StreamEnd:
    """How a stream ended: the Connect end-stream message or the gRPC-Web trailers."""
    error: dict[str, Any] | None = None
    trailers: dict[str, str] = field(default_factory=dict)


class WebClient:
    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None,
                 https_context: Any = None) -> None:
        self.host, self.port = host, port
        self.headers = dict(headers or {})
        self.https_context = https_context

    def connection(self, timeout: float = 120.0) -> http.client.HTTPConnection:
        if self.https_context is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.https_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    # ----- Connect unary -----------------------------------------------------------------------

    def unary_json(self, path: str, body: bytes | dict, headers: dict[str, str] | None = None) -> Reply:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.request("POST", path, raw, {"Content-Type": "application/json", **(headers or {})})

    def unary_proto(self, path: str, message: Message, response_type: type[Message],
                    headers: dict[str, str] | None = None) -> tuple[Reply, Message | None]:
        reply = self.request("POST", path, message.SerializeToString(),
                             {"Content-Type": "application/proto", **(headers or {})})
        if reply.status != 200:
            return reply, None
        return reply, response_type.FromString(reply.body)

    # ----- server streams ----------------------------------------------------------------------

    def open_stream(self, path: str, message: Message, protocol: str = "connect", codec: str = "json",
                    headers: dict[str, str] | None = None) -> "Stream":
        if codec == "json":
            payload = json_format.MessageToJson(message).encode()
        else:
            payload = message.SerializeToString()
        content_type = f"application/connect+{codec}" if protocol == "connect" else f"application/grpc-web+{codec}"
        extra = {"Connect-Protocol-Version": "1"} if protocol == "connect" else {"X-Grpc-Web": "1"}
        conn = self.connection()
        conn.request("POST", path, body=envelope(payload),
                     headers={**self.headers, "Content-Type": content_type, **extra, **(headers or {})})
        return Stream(conn, conn.getresponse(), protocol, codec)


def envelope(payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(payload)) + payload


class Stream:
    """The messages of one server stream, read as they arrive; `end` is set when it ends."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, protocol: str,
                 codec: str) -> None:
        self.conn, self.resp, self.protocol, self.codec = conn, resp, protocol, codec
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        self.end: StreamEnd | None = None

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.resp.read(n - len(data))
            if not chunk:
                raise EOFError(f"stream ended after {len(data)} of {n} bytes")
            data += chunk
        return data

    def frames(self) -> Iterator[bytes]:
        """Payloads of the data frames; the end frame fills `self.end` and stops the iteration."""
        while True:
            flags, length = struct.unpack(">BI", self._read(5))
            payload = self._read(length)
            if self.protocol == "connect" and flags & 0x02:
                self.end = StreamEnd(error=json.loads(payload).get("error"))
                return
            if self.protocol == "grpc-web" and flags & 0x80:
                lines = payload.decode().strip().split("\r\n")
                self.end = StreamEnd(trailers={k.strip().lower(): v.strip()
                                               for k, v in (line.split(":", 1) for line in lines if line)})
                return
            yield payload

    def messages(self, message_type: type[Message]) -> Iterator[Message]:
        for payload in self.frames():
            if self.codec == "json":
                yield json_format.Parse(payload, message_type())
            else:
                yield message_type.FromString(payload)

    def close(self) -> None:
        """Go away mid-stream, as a closed browser tab does."""
        self.conn.close()
