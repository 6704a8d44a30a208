"""How modxctl reaches modxd: the address, the channel, the token, and errors.

One `App` per invocation holds a lazily opened channel, so `--help` and usage
errors never touch the network, and every RPC error becomes one sentence on
stderr with a stable exit status.
"""
from __future__ import annotations

import collections
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import click
import grpc

from modx.v1 import (
    eval_pb2_grpc,
    inference_pb2_grpc,
    package_pb2_grpc,
    system_pb2_grpc,
    training_pb2_grpc,
)

from .output import TEXT, printable

R = TypeVar("R")

DEFAULT_TIMEOUT = 30.0

# Words in gRPC's own UNAVAILABLE details that mean "no connection was made",
# as opposed to the daemon itself answering UNAVAILABLE (e.g. shutting down).
_TRANSPORT_MARKERS = (
    "failed to connect",
    "connection refused",
    "connect failed",
    "no such file",
    "dns resolution failed",
    "name resolution",
    "socket closed",
    "connection reset",
    "handshake",
    "unreachable",
    "permission denied",
    "broken pipe",
    "empty address list",
)


class CliError(click.ClickException):
    """A failure explained in one sentence: 'error: ...' on stderr, exit 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:  # noqa: ARG002 - Click's signature
        click.echo(printable(f"error: {self.format_message()}", keep=TEXT), err=True)


# ---------------------------------------------------------------- address


def default_state_dir() -> Path:
    """Where modxd keeps its socket by default (mirrors the daemon's rule)."""
    if os.environ.get("MODX_STATE_DIR"):
        return Path(os.environ["MODX_STATE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "modx"


def default_address() -> str:
    """MODX_LISTEN when the daemon's variable is set here too, else its default socket."""
    listen = os.environ.get("MODX_LISTEN", "").strip()
    if listen:
        return listen
    return f"unix://{(default_state_dir() / 'modxd.sock').absolute()}"


def normalize_address(address: str) -> str:
    """Turn what people type into a gRPC target.

    unix:///run/modxd.sock, unix:/run/modxd.sock and a bare path all become
    unix:///abs/path (relative paths are resolved here, where the user is);
    host:port and dns:/// targets pass through unchanged.
    """
    addr = address.strip()
    if not addr:
        raise CliError("the daemon address is empty (set --address or MODX_ADDRESS)")
    path: str | None = None
    if addr.startswith("unix://"):
        path = addr[len("unix://"):]
    elif addr.startswith("unix:"):
        path = addr[len("unix:"):]
    elif addr.startswith(("/", "./", "../", "~")) or addr.endswith(".sock"):
        path = addr
    if path is None:
        return addr
    if not path:
        raise CliError(f"the address {address!r} names no socket path")
    return "unix://" + os.path.abspath(os.path.expanduser(path))


def is_unix(target: str) -> bool:
    return target.startswith("unix:")


# ---------------------------------------------------------------- credentials


def read_token(env: dict[str, str] | None = None) -> str | None:
    """MODX_TOKEN, else the stripped contents of MODX_TOKEN_FILE, else None.

    Never a flag: flags end up in shell history and `ps` output.
    """
    env = os.environ if env is None else env
    token = env.get("MODX_TOKEN", "").strip()
    if token:
        return token
    path = env.get("MODX_TOKEN_FILE", "").strip()
    if not path:
        return None
    try:
        token = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise CliError(f"cannot read MODX_TOKEN_FILE {path}: {exc.strerror or exc}") from None
    return token or None


def _read_file(var: str) -> bytes | None:
    path = os.environ.get(var, "").strip()
    if not path:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {var} {path}: {exc.strerror or exc}") from None


def tls_credentials() -> grpc.ChannelCredentials | None:
    """TLS for TCP targets when MODX_TLS_CA is set (client cert optional)."""
    ca = _read_file("MODX_TLS_CA")
    if ca is None:
        return None
    cert, key = _read_file("MODX_TLS_CERT"), _read_file("MODX_TLS_KEY")
    if (cert is None) != (key is None):
        raise CliError("set both MODX_TLS_CERT and MODX_TLS_KEY for a client certificate, or neither")
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    pass


class _MetadataInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds fixed metadata (the client id, `authorization: Bearer <token>`) to every call."""

    def __init__(self, metadata: list[tuple[str, str]]) -> None:
        self._metadata = metadata

    def _details(self, d: grpc.ClientCallDetails) -> _CallDetails:
        md = list(d.metadata or []) + self._metadata
        return _CallDetails(
            d.method, d.timeout, md, d.credentials, getattr(d, "wait_for_ready", None), getattr(d, "compression", None)
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[override]
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[override]
        return continuation(self._details(client_call_details), request)


_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


# On the host's Unix socket a round trip takes microseconds, so gRPC's bandwidth-delay probing
# has no window worth growing to find. It only makes the daemon answer a PING for most messages
# during a connection's first minute: about a third of what each watched event costs the daemon then
# (docs/benchmarks.md, "Daemon overhead"). A fixed 8 MiB window keeps bulk reads above 1 GB/s.
# Over TCP the probing stays on: there it sizes the window to the link.
_UNIX_SOCKET_OPTIONS = [
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 8 * 1024 * 1024),
]


def channel_options(target: str) -> list[tuple[str, object]]:
    """gRPC channel arguments for `target` (also used by bench/ to make watchers like modxctl's)."""
    return list(_CHANNEL_OPTIONS) + (list(_UNIX_SOCKET_OPTIONS) if is_unix(target) else [])


def make_channel(target: str) -> grpc.Channel:
    """A channel to `target`: plain on Unix sockets, TLS on TCP when configured."""
    options = channel_options(target)
    creds = None if is_unix(target) else tls_credentials()
    if creds is not None:
        override = os.environ.get("MODX_TLS_SERVER_NAME", "").strip()
        if override:
            options.append(("grpc.ssl_target_name_override", override))
        channel = grpc.secure_channel(target, creds, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    metadata = [(CLIENT_ID_METADATA, client_id())]
    token = read_token()
    if token:
        metadata.append(("authorization", f"Bearer {token}"))
    return grpc.intercept_channel(channel, _MetadataInterceptor(metadata))


# The daemon counts watch streams per client (max_watchers_per_client). Without a token, a
# Unix-socket caller is only told apart from the others by the name it gives itself here.
CLIENT_ID_METADATA = "modx-client-id"


def client_id() -> str:
    """This channel's name for the daemon's per-client caps: one per channel (per invocation)."""
    return f"modxctl-{os.getpid()}-{secrets.token_hex(4)}"


# ---------------------------------------------------------------- the app


@dataclass
class App:
    """Per-invocation state: global options plus the lazily opened channel."""

    address: str
    json: bool = False
    timeout: float | None = None  # None: not given, use DEFAULT_TIMEOUT for unary calls
    _channel: grpc.Channel | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        return normalize_address(self.address)

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = make_channel(self.target)
        return self._channel

    @property
    def training(self) -> training_pb2_grpc.TrainingServiceStub:
        return training_pb2_grpc.TrainingServiceStub(self.channel)

    @property
    def system(self) -> system_pb2_grpc.SystemServiceStub:
        return system_pb2_grpc.SystemServiceStub(self.channel)

    @property
    def evals(self) -> eval_pb2_grpc.EvalServiceStub:
        return eval_pb2_grpc.EvalServiceStub(self.channel)

    @property
    def inference(self) -> inference_pb2_grpc.InferenceServiceStub:
        return inference_pb2_grpc.InferenceServiceStub(self.channel)

    @property
    def packages(self) -> package_pb2_grpc.PackageServiceStub:
        return package_pb2_grpc.PackageServiceStub(self.channel)

    def call(self, method: Callable[..., R], request: Any, *, long: bool = False) -> R:
        """A unary call with the --timeout deadline.

        `long` calls (importing a model) only get a deadline when --timeout
        was given explicitly: 30 s is right for a lookup, wrong for a conversion.
        """
        if long:
            timeout = self.timeout
        else:
            timeout = self.timeout if self.timeout is not None else DEFAULT_TIMEOUT
        return method(request, timeout=timeout)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def get_app(ctx: click.Context | None = None) -> App:
    ctx = ctx or click.get_current_context()
    app = ctx.find_object(App)
    if app is None:  # a subcommand invoked on its own (tests): use the defaults
        app = App(address=os.environ.get("MODX_ADDRESS") or default_address())
        ctx.find_root().obj = app
        ctx.obj = app
    return app


# ---------------------------------------------------------------- errors


def is_transport_failure(err: grpc.RpcError) -> bool:
    """UNAVAILABLE because nothing answered, not because modxd said so."""
    if err.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    details = (err.details() or "").lower()
    return any(marker in details for marker in _TRANSPORT_MARKERS) or not details


def describe_rpc_error(err: grpc.RpcError, address: str) -> str:
    """The sentence printed for a failed call (without the 'error: ' prefix)."""
    code = err.code()
    details = err.details() or ""
    if is_transport_failure(err):
        return f"cannot reach modxd at {address}: is it running? (start it with: modxd)"
    name = code.name if code is not None else "UNKNOWN"
    text = f"{name}: {details}" if details else name
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        text += " (the call took longer than --timeout allows)"
    elif code == grpc.StatusCode.UNAUTHENTICATED:
        text += " (set MODX_TOKEN or MODX_TOKEN_FILE)"
    return text


def report_rpc_error(err: grpc.RpcError, address: str) -> None:
    """The failed call's sentence on stderr (whatever the server wrote, no raw control characters)."""
    click.echo(printable(f"error: {describe_rpc_error(err, address)}", keep=TEXT), err=True)
    if is_transport_failure(err) and err.details():
        click.echo(printable(f"  ({err.details()})", keep=TEXT), err=True)


# ---------------------------------------------------------------- streams


def follow(
    open_call: Callable[[int], Iterable[R]],
    seq_of: Callable[[R], int],
    after_seq: int = 0,
    *,
    connected: bool = False,
    max_outage: float = 300.0,
    on_lost: Callable[[str], None] | None = None,
    on_back: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[R]:
    """Iterate a server stream of sequenced events, surviving daemon restarts.

    On UNAVAILABLE the stream is reopened with `after_seq` = the last seq seen,
    and anything at or below it is dropped, so no event is yielded twice. The
    first call is only retried once the daemon has been reached (`connected`,
    or an event arrived); otherwise an unreachable address fails at once.
    """
    last = after_seq
    delay = 0.5
    lost_since: float | None = None
    while True:
        call = open_call(last)
        try:
            for item in call:
                if lost_since is not None:
                    lost_since = None
                    delay = 0.5
                    if on_back:
                        on_back()
                connected = True
                seq = seq_of(item)
                if seq and seq <= last:
                    continue
                last = max(last, seq)
                yield item
            return
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE or not connected:
                raise
            now = time.monotonic()
            if lost_since is None:
                lost_since = now
                if on_lost:
                    on_lost(err.details() or "connection lost")
            elif now - lost_since > max_outage:
                raise
            sleep(delay)
            delay = min(delay * 2, 5.0)
        finally:
            cancel = getattr(call, "cancel", None)
            if cancel is not None:
                cancel()
