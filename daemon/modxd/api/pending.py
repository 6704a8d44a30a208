"""Servicers of the contract whose engines land in later issues.

Each RPC answers UNIMPLEMENTED with a sentence naming what is missing, so a
client can be written against the whole contract today.
"""
from __future__ import annotations

from modx.v1 import eval_pb2_grpc, inference_pb2_grpc, package_pb2_grpc

from .status import unimplemented, unimplemented_stream

_EVAL = "evaluation (issue: Evaluate)"
_CHAT = "chat (issue: Test)"
_PACKAGE = "GGUF packaging (issue: Package)"


class EvalServicer(eval_pb2_grpc.EvalServiceServicer):
    CreateEvaluation = unimplemented("CreateEvaluation", _EVAL)
    GetEvaluation = unimplemented("GetEvaluation", _EVAL)
    ListEvaluations = unimplemented("ListEvaluations", _EVAL)
    WatchEvaluation = unimplemented_stream("WatchEvaluation", _EVAL)


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    Chat = unimplemented_stream("Chat", _CHAT)
    ListLoadedModels = unimplemented("ListLoadedModels", _CHAT)
    UnloadModel = unimplemented("UnloadModel", _CHAT)


class PackageServicer(package_pb2_grpc.PackageServiceServicer):
    CreatePackage = unimplemented("CreatePackage", _PACKAGE)
    GetPackage = unimplemented("GetPackage", _PACKAGE)
    ListPackages = unimplemented("ListPackages", _PACKAGE)
    WatchPackage = unimplemented_stream("WatchPackage", _PACKAGE)
    ImportGguf = unimplemented("ImportGguf", _PACKAGE)
