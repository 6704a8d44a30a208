"""InferenceService: chat with a checkpoint, the base model or a package; the model cache.

Rules live in modxd.chat and the worker's manager in modxd.jobs.inference (app.chat ...);
this module translates protobuf.
"""
from __future__ import annotations

from contextlib import aclosing
from typing import Any

from modx.v1 import inference_pb2 as I
from modx.v1 import inference_pb2_grpc

from .. import fields
from ..app import App
from ..errors import InvalidArgument
from . import convert as cv
from .status import rpc

FINISH = {
    "stop_token": I.FINISH_REASON_STOP_TOKEN,
    "length": I.FINISH_REASON_LENGTH,
    "stop_string": I.FINISH_REASON_STOP_STRING,
    "cancelled": I.FINISH_REASON_CANCELLED,
}
DEVICES = {
    I.DEVICE_PREFERENCE_UNSPECIFIED: "",
    I.DEVICE_PREFERENCE_CPU: "cpu",
    I.DEVICE_PREFERENCE_ACCELERATOR: "accelerator",
}
_OPTIONAL = ("temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens", "seed")


def sampling_fields(request: I.ChatRequest) -> dict[str, Any]:
    """Only the settings the client set (proto3 `optional` presence): the daemon fills the rest."""
    if not request.HasField("sampling"):
        return {}
    s = request.sampling
    fields: dict[str, Any] = {name: getattr(s, name) for name in _OPTIONAL if s.HasField(name)}
    if s.stop:
        fields["stop"] = list(s.stop)
    return fields


def done_to_proto(d: dict[str, Any]) -> I.ChatDone:
    return I.ChatDone(finish_reason=FINISH.get(d.get("finish_reason", ""), I.FINISH_REASON_UNSPECIFIED),
                      prompt_tokens=int(d.get("prompt_tokens") or 0),
                      completion_tokens=int(d.get("completion_tokens") or 0),
                      time_to_first_token_ms=float(d.get("time_to_first_token_ms") or 0.0),
                      tokens_per_second=float(d.get("tokens_per_second") or 0.0),
                      text=d.get("text", ""), model_key=d.get("model_key", ""))


def loaded_to_proto(m: dict[str, Any]) -> I.LoadedModel:
    msg = I.LoadedModel(key=m.get("key", ""), task_id=m.get("task_id", ""), target=m.get("target", ""),
                        backend=m.get("backend", ""), device=m.get("device", ""),
                        memory_bytes=int(m.get("memory_bytes") or 0))
    stamp = cv.ts(m.get("last_used_time") or None)
    if stamp is not None:
        msg.last_used_time.CopyFrom(stamp)
    return msg


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, app: App) -> None:
        self.app = app

    @rpc
    async def Chat(self, request: I.ChatRequest, context):
        task_id = fields.require_id(request.task_id, "task_id")
        if request.device not in DEVICES:
            raise InvalidArgument(f"device {request.device} is not a DevicePreference value")
        target = request.WhichOneof("target")
        checkpoint = fields.check_ref(request.checkpoint, "checkpoint") if target == "checkpoint" else ""
        package_id = fields.optional_id(request.package_id, "package_id") if target == "package_id" else ""
        if target == "base" and not request.base:
            target = None
        app = self.app

        def on_request(rid: str) -> None:  # a disconnect stops generation even mid-write
            context.add_done_callback(lambda _ctx: app.cancel_chat(rid))

        stream = app.chat(
            task_id, [{"role": m.role, "content": m.content} for m in request.messages], request.system_prompt,
            sampling_fields(request), checkpoint=checkpoint, package_id=package_id, base=target == "base",
            device=DEVICES[request.device], on_request=on_request)
        async with aclosing(stream):
            async for item in stream:
                if item["type"] == "delta":
                    yield I.ChatResponse(delta=I.ChatDelta(text=item.get("text", ""),
                                                           token_ids=item.get("token_ids") or []))
                else:
                    yield I.ChatResponse(done=done_to_proto(item))

    @rpc
    async def ListLoadedModels(self, request: I.ListLoadedModelsRequest, context) -> I.ListLoadedModelsResponse:
        models, limit = self.app.loaded_models()
        return I.ListLoadedModelsResponse(models=[loaded_to_proto(m) for m in models], memory_limit_bytes=limit)

    @rpc
    async def UnloadModel(self, request: I.UnloadModelRequest, context) -> I.UnloadModelResponse:
        key = fields.check_text(request.key.strip(), "key", fields.MAX_KEY_CHARS)
        return I.UnloadModelResponse(unloaded=await self.app.unload_model(key))
