"""PackageService (implemented by the Package issue; UNIMPLEMENTED until then)."""
from __future__ import annotations

from modx.v1 import package_pb2_grpc

from ..app import App
from .status import unimplemented, unimplemented_stream

_WHAT = "GGUF packaging (issue: Package)"


class PackageServicer(package_pb2_grpc.PackageServiceServicer):
    def __init__(self, app: App) -> None:
        self.app = app

    CreatePackage = unimplemented("CreatePackage", _WHAT)
    GetPackage = unimplemented("GetPackage", _WHAT)
    ListPackages = unimplemented("ListPackages", _WHAT)
    WatchPackage = unimplemented_stream("WatchPackage", _WHAT)
    ImportGguf = unimplemented("ImportGguf", _WHAT)
