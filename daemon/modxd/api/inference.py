"""InferenceService (implemented by the Test/chat issue; UNIMPLEMENTED until then)."""
from __future__ import annotations

from modx.v1 import inference_pb2_grpc

from ..app import App
from .status import unimplemented, unimplemented_stream

_WHAT = "chat (issue: Test)"


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, app: App) -> None:
        self.app = app

    Chat = unimplemented_stream("Chat", _WHAT)
    ListLoadedModels = unimplemented("ListLoadedModels", _WHAT)
    UnloadModel = unimplemented("UnloadModel", _WHAT)
