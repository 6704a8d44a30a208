"""Build the grpc.aio server: the modx services, health checking and reflection."""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2
from modx.v1 import (eval_pb2, eval_pb2_grpc, inference_pb2, inference_pb2_grpc, package_pb2,
                     package_pb2_grpc, system_pb2, system_pb2_grpc, training_pb2, training_pb2_grpc)

from .api.evaluate import EvalServicer
from .api.inference import InferenceServicer
from .api.package import PackageServicer
from .api.system import SystemServicer
from .api.training import TrainingServicer
from .app import App
from .auth import AuthInterceptor, TokenStore
from .config import Config
from .errors import InvalidArgument
from .limits import LimitsInterceptor
from .wire import WireInterceptor

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
SERVICE_NAMES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in ((training_pb2, "TrainingService"), (eval_pb2, "EvalService"),
                         (inference_pb2, "InferenceService"), (package_pb2, "PackageService"),
                         (system_pb2, "SystemService")))


class Services:
    """The servicers and interceptors, built once: the gRPC server and the web listener
    (modxd.web) dispatch to the same instances, so both share one token store and one
    count of watch streams per client."""

    def __init__(self, app: App) -> None:
        config = app.config
        self.interceptors: list[grpc.aio.ServerInterceptor] = [  # outermost first: who calls, then whether
            AuthInterceptor(TokenStore(config.tokens_path), config.auth_required, config.local_role),
            WireInterceptor(),  # the bytes decode (the web listener decodes them itself), then the caps
            LimitsInterceptor(config.max_watchers_per_client, config.max_chat_tokens),
        ]
        self.registrations: list[tuple[Callable[[Any, Any], None], Any]] = [
            (training_pb2_grpc.add_TrainingServiceServicer_to_server, TrainingServicer(app)),
            (system_pb2_grpc.add_SystemServiceServicer_to_server, SystemServicer(app)),
            (eval_pb2_grpc.add_EvalServiceServicer_to_server, EvalServicer(app)),
            (inference_pb2_grpc.add_InferenceServiceServicer_to_server, InferenceServicer(app)),
            (package_pb2_grpc.add_PackageServiceServicer_to_server, PackageServicer(app)),
        ]

    def register(self, server: Any) -> None:
        for add, servicer in self.registrations:
            add(servicer, server)


def build_server(app: App, services: Services | None = None) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    config = app.config
    services = services or Services(app)
    server = grpc.aio.server(interceptors=services.interceptors, options=[
        ("grpc.max_receive_message_length", min(config.max_request_bytes, MAX_MESSAGE_BYTES)),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
    ])
    services.register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # Reflection in both versions: grpcurl and current clients ask grpc.reflection.v1, older ones v1alpha.
    names = (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME,
             REFLECTION_V1)
    reflection.enable_server_reflection(names, server)
    server.add_generic_rpc_handlers((reflection_v1_handler(names),))
    return server, health_servicer


def reflection_v1_handler(service_names: tuple[str, ...]) -> grpc.GenericRpcHandler:
    """grpc.reflection.v1, which grpcio-reflection does not ship yet: its messages are those of
    v1alpha under a new package name (same fields, same numbers), so the v1alpha servicer answers
    both and only the method path differs."""
    servicer = reflection.aio.ReflectionServicer(service_names)
    return grpc.method_handlers_generic_handler(REFLECTION_V1, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString),
    })


def server_credentials(config: Config) -> grpc.ServerCredentials | None:
    """TLS for TCP listeners: the server certificate, and client certificates when a client CA is set.

    The files are checked with Python's ssl module first: gRPC only says "cannot bind" when a
    certificate is not PEM or the key belongs to another certificate.
    """
    if not config.tls_cert_file:
        return None

    def read(key: str) -> bytes:
        path = getattr(config, key)
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise InvalidArgument(f"{key} {path}: {exc.strerror or exc}") from None

    cert, key = read("tls_cert_file"), read("tls_key_file")
    client_ca = read("tls_client_ca_file") if config.tls_client_ca_file else None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    except (ssl.SSLError, ValueError) as exc:
        raise InvalidArgument(f"tls_cert_file {config.tls_cert_file} and tls_key_file {config.tls_key_file} are "
                              f"not a usable certificate and key (PEM, the key of that certificate): "
                              f"{getattr(exc, 'reason', None) or exc}") from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cadata=client_ca.decode("ascii", errors="replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise InvalidArgument(f"tls_client_ca_file {config.tls_client_ca_file} holds no usable PEM "
                                  f"certificate: {getattr(exc, 'reason', None) or exc}") from None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


def bind_tcp(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> str:
    """Bind host:port (only with TLS `credentials`); returns what was bound. Unix sockets: unix_socket.py."""
    if ":" not in address:
        raise InvalidArgument(f"listen address {address!r} must be unix:///path or host:port")
    if credentials is None:
        raise InvalidArgument(f"listening on TCP ({address}) needs TLS: set tls_cert_file and tls_key_file")
    try:
        port = server.add_secure_port(address, credentials)
    except RuntimeError:
        port = 0
    if port == 0:
        raise InvalidArgument(f"cannot listen on {address} (is the port in use, or the host not this machine's?)")
    host = address.rsplit(":", 1)[0]
    return f"{host}:{port}"


async def set_serving(health_servicer: health.aio.HealthServicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, status)
