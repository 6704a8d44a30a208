"""Build the grpc.aio server: the modx services, health checking and reflection."""
from __future__ import annotations

import os
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from modx.v1 import (eval_pb2, eval_pb2_grpc, inference_pb2, inference_pb2_grpc, package_pb2,
                     package_pb2_grpc, system_pb2, system_pb2_grpc, training_pb2, training_pb2_grpc)

from .api.evaluate import EvalServicer
from .api.inference import InferenceServicer
from .api.package import PackageServicer
from .api.system import SystemServicer
from .api.training import TrainingServicer
from .app import App
from .errors import InvalidArgument

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
SERVICE_NAMES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in ((training_pb2, "TrainingService"), (eval_pb2, "EvalService"),
                         (inference_pb2, "InferenceService"), (package_pb2, "PackageService"),
                         (system_pb2, "SystemService")))


def build_server(app: App) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
    ])
    training_pb2_grpc.add_TrainingServiceServicer_to_server(TrainingServicer(app), server)
    system_pb2_grpc.add_SystemServiceServicer_to_server(SystemServicer(app), server)
    eval_pb2_grpc.add_EvalServiceServicer_to_server(EvalServicer(app), server)
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(InferenceServicer(app), server)
    package_pb2_grpc.add_PackageServiceServicer_to_server(PackageServicer(app), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server)
    return server, health_servicer


def bind(server: grpc.aio.Server, address: str, socket_mode: int) -> str:
    """Bind a unix:// path (removing a stale socket) or host:port; returns what was bound."""
    if address.startswith("unix:"):
        path = Path(address.removeprefix("unix://").removeprefix("unix:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()
        old_umask = os.umask(0o777 & ~socket_mode)
        try:
            server.add_insecure_port(f"unix:{path}")
        finally:
            os.umask(old_umask)
        return f"unix://{path}"
    if ":" not in address:
        raise InvalidArgument(f"listen address {address!r} must be unix:///path or host:port")
    port = server.add_insecure_port(address)
    if port == 0:
        raise InvalidArgument(f"cannot listen on {address}")
    host = address.rsplit(":", 1)[0]
    return f"{host}:{port}"


async def set_serving(health_servicer: health.aio.HealthServicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, status)
