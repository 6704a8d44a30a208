"""EvalService (implemented by the Evaluate issue; UNIMPLEMENTED until then)."""
from __future__ import annotations

from modx.v1 import eval_pb2_grpc

from ..app import App
from .status import unimplemented, unimplemented_stream

_WHAT = "evaluation (issue: Evaluate)"


class EvalServicer(eval_pb2_grpc.EvalServiceServicer):
    def __init__(self, app: App) -> None:
        self.app = app

    CreateEvaluation = unimplemented("CreateEvaluation", _WHAT)
    GetEvaluation = unimplemented("GetEvaluation", _WHAT)
    ListEvaluations = unimplemented("ListEvaluations", _WHAT)
    WatchEvaluation = unimplemented_stream("WatchEvaluation", _WHAT)
