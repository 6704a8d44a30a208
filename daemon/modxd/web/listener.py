"""Start and stop the browser listener: uvicorn in the daemon's own event loop, next to grpc.aio.

The socket is bound here (not by uvicorn) so the rules hold on what was really bound: every
address a name resolved to must be loopback unless TLS is configured (config._check_web says the
same before anything starts), and only a loopback-only listener trusts callers without a token.
uvicorn's signal handling and its 10-per-second housekeeping loop are not used: the daemon owns
SIGTERM, and nothing here needs a timer (so no Date header, which only that loop keeps current).
"""
from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import structlog
import uvicorn

from ..config import Config, split_host_port
from ..errors import InvalidArgument
from ..server import MAX_MESSAGE_BYTES, Services
from .asgi import WebApp
from .rpc import BoundedGzip, Dispatcher, ModxConnectApp
from .static import StaticFiles

log = structlog.get_logger("modxd.web")

STATIC_DIR = Path(__file__).resolve().parent / "static"


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """The TLS settings of the gRPC TCP listener (tls_cert_file, tls_key_file, tls_client_ca_file)."""
    if not config.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"tls_cert_file {config.tls_cert_file} / tls_key_file {config.tls_key_file}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
    if config.tls_client_ca_file:
        try:
            context.load_verify_locations(config.tls_client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidArgument(f"tls_client_ca_file {config.tls_client_ca_file}: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def bind_sockets(address: str) -> list[socket.socket]:
    """Listening sockets for every address `host:port` resolves to (port 0: one free port for all)."""
    host, port = split_host_port("web_listen", address)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidArgument(f"web_listen {address}: cannot resolve {host!r} ({exc.strerror})") from None
    sockets: list[socket.socket] = []
    try:
        for family, type_, proto, _name, sockaddr in dict.fromkeys(infos):
            if port == 0 and sockets:  # the other families get the port the first one was given
                sockaddr = (sockaddr[0], sockets[0].getsockname()[1], *sockaddr[2:])
            sock = socket.socket(family, type_, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(512)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise InvalidArgument(f"cannot listen on web_listen {address}: {exc.strerror or exc}") from None
    return sockets


def all_loopback(sockets: list[socket.socket]) -> bool:
    return all(ipaddress.ip_address(s.getsockname()[0]).is_loopback for s in sockets)


@dataclass
class WebListener:
    server: uvicorn.Server
    app: WebApp
    sockets: list[socket.socket]
    url: str

    async def stop(self) -> None:
        """End the calls in flight (UNAVAILABLE), stop accepting, close the connections."""
        await self.app.close()
        await self.server.shutdown()


async def start_web(config: Config, services: Services) -> WebListener:
    """Bind `web_listen` and serve the studio and the modx.v1 services on it."""
    context = ssl_context(config)
    sockets = bind_sockets(config.web_listen)
    loopback = all_loopback(sockets)
    if not loopback and context is None:  # config checks the name; this checks what it resolved to
        for sock in sockets:
            sock.close()
        raise InvalidArgument(f"web_listen {config.web_listen} resolves to a non-loopback address: serving "
                              "browsers beyond this host needs TLS (set tls_cert_file and tls_key_file)")
    trusted_local = loopback and not config.auth_required
    max_bytes = min(config.max_request_bytes, MAX_MESSAGE_BYTES)
    dispatcher = Dispatcher(services.registrations, services.interceptors, trusted_local)
    connect_app = ModxConnectApp(dispatcher, read_max_bytes=max_bytes, compressions=[BoundedGzip(max_bytes)])
    static = StaticFiles(Path(config.web_static_dir) if config.web_static_dir else STATIC_DIR)
    app = WebApp(dispatcher, connect_app, static, trusted_local=trusted_local,
                 allowed_origins=list(config.web_allowed_origins), max_body_bytes=max_bytes)
    uv_config = uvicorn.Config(
        app, lifespan="off", interface="asgi3", http=_http_protocol(), ws="none", log_config=None,
        access_log=False, proxy_headers=False, server_header=False, date_header=False, timeout_keep_alive=30,
        timeout_graceful_shutdown=3,
        ssl_context_factory=(lambda _config, _default: context) if context is not None else None)
    uv_config.load()
    server = uvicorn.Server(uv_config)
    server.lifespan = uv_config.lifespan_class(uv_config)  # what Server.serve() sets up ("off": no events)
    await server.startup(sockets=sockets)
    name = sockets[0].getsockname()
    host = f"[{name[0]}]" if ":" in name[0] else name[0]
    url = f"{'https' if context else 'http'}://{host}:{name[1]}"
    log.info("web_listening", url=url, tokens="required" if not trusted_local else "optional (loopback)",
             static=str(static.root), allowed_origins=list(config.web_allowed_origins))
    return WebListener(server, app, sockets, url)


def _http_protocol() -> str:
    try:
        import httptools  # noqa: F401  (the C parser; h11 otherwise)
    except ImportError:
        return "h11"
    return "httptools"
