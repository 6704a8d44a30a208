"""PackageService: GGUF export jobs (create, get, list, watch, their files) and GGUF import.

Export runs as a `package` job in a worker (modxd.engine.export:run_package); import as
an `import_gguf` job (modxd.engine.export:run_import) that the App waits for. Rules and
jobs live in modxd.packages (app.create_package ...); this module only translates
protobuf <-> domain.
"""
from __future__ import annotations

import os
from typing import Any

from modx.v1 import common_pb2 as C
from modx.v1 import package_pb2 as P
from modx.v1 import package_pb2_grpc

from .. import fields, packages
from ..app import App
from ..store.events import EventRecord
from ..store.jobs import JobRecord
from . import convert as cv
from .status import rpc

QUANT_TO_PROTO = {name: P.QuantType.Value(f"QUANT_TYPE_{name}") for name in packages.QUANT_TYPES}
QUANT_FROM_PROTO = {v: k for k, v in QUANT_TO_PROTO.items()}
JOB_STATES = {"pending": C.JOB_STATE_PENDING, "running": C.JOB_STATE_RUNNING, "completed": C.JOB_STATE_COMPLETED,
              "failed": C.JOB_STATE_FAILED, "cancelled": C.JOB_STATE_CANCELLED}


def _quant(name: str) -> int:
    return QUANT_TO_PROTO.get(name or "", P.QUANT_TYPE_UNSPECIFIED)


def file_to_proto(f: dict[str, Any]) -> P.PackageFile:
    return P.PackageFile(path=f.get("path", ""), kind=f.get("kind", ""), quant_type=_quant(f.get("quant_type", "")),
                         size_bytes=int(f.get("size_bytes") or 0), sha256=f.get("sha256", ""))


def verification_to_proto(v: dict[str, Any]) -> P.Verification:
    return P.Verification(tokenizer_match=bool(v.get("tokenizer_match")),
                          top1_agreement=float(v.get("top1_agreement") or 0.0),
                          max_logit_diff=float(v.get("max_logit_diff") or 0.0),
                          mean_logit_diff=float(v.get("mean_logit_diff") or 0.0),
                          prompts=int(v.get("prompts") or 0), quant_type=_quant(v.get("quant_type", "")))


def output_dir_of(job: JobRecord) -> str:
    req = job.request
    return (job.result.get("output_dir") or req.get("output_dir")
            or (os.path.join(req["default_output_root"], job.id) if req.get("default_output_root") else ""))


def package_to_proto(job: JobRecord) -> P.Package:
    req = job.request
    msg = P.Package(id=job.id, task_id=job.task_id, checkpoint_id=req.get("checkpoint_id", ""),
                    state=JOB_STATES.get(job.state, C.JOB_STATE_UNSPECIFIED), state_reason=job.state_reason,
                    quant_types=[_quant(q) for q in req.get("quant_types", [])], merge=bool(req.get("merge", True)),
                    output_dir=output_dir_of(job),
                    files=[file_to_proto(f) for f in job.result.get("files", [])],
                    verifications=[verification_to_proto(v) for v in job.result.get("verifications", [])])
    for name in ("create_time", "end_time"):
        stamp = cv.ts(getattr(job, name) or None)
        if stamp is not None:
            getattr(msg, name).CopyFrom(stamp)
    return msg


def event_to_proto(event: EventRecord) -> P.PackageEvent:
    msg = P.PackageEvent(package_id=event.task_id, seq=event.seq, time=cv.ts(event.time))
    p = event.payload
    if event.kind == "state":
        msg.state = JOB_STATES.get(p.get("state", ""), C.JOB_STATE_UNSPECIFIED)
    elif event.kind == "progress":
        msg.progress.CopyFrom(P.PackageProgress(
            phase=p.get("phase", ""), tensors_done=int(p.get("tensors_done") or 0),
            tensors_total=int(p.get("tensors_total") or 0), bytes_written=int(p.get("bytes_written") or 0),
            quant_type=_quant(p.get("quant_type", ""))))
    elif event.kind == "file":
        msg.file.CopyFrom(file_to_proto(p))
    else:  # log, warning and anything else a worker says: a log line
        msg.log.CopyFrom(C.LogLine(time=cv.ts(event.time), level=p.get("level", "warning" if event.kind == "warning"
                                                                        else "info"),
                                   message=p.get("message", "")))
    return msg


class PackageServicer(package_pb2_grpc.PackageServiceServicer):
    def __init__(self, app: App) -> None:
        self.app = app

    @rpc
    async def CreatePackage(self, request: P.CreatePackageRequest, context) -> P.CreatePackageResponse:
        task_id = fields.require_id(request.task_id, "task_id")
        checkpoint = fields.check_ref(request.checkpoint, "checkpoint")
        types = fields.check_enums(request.quant_types, "quant_types", QUANT_FROM_PROTO, P.QuantType.Name)
        merge = request.merge if request.HasField("merge") else True
        job = await self.app.create_package(task_id, checkpoint, types, merge, request.output_dir,
                                            request.skip_verification)
        return P.CreatePackageResponse(package=package_to_proto(job))

    @rpc
    async def GetPackage(self, request: P.GetPackageRequest, context) -> P.GetPackageResponse:
        job = await self.app.get_package(fields.require_id(request.package_id, "package_id"))
        return P.GetPackageResponse(package=package_to_proto(job))

    @rpc
    async def ListPackages(self, request: P.ListPackagesRequest, context) -> P.ListPackagesResponse:
        task_id = fields.optional_id(request.task_id, "task_id")
        offset, limit = cv.page(request.page)
        jobs, total = await self.app.list_packages(task_id, offset, limit)
        return P.ListPackagesResponse(packages=[package_to_proto(j) for j in jobs],
                                      next_page_token=cv.next_page_token(offset, limit, offset + limit < total))

    @rpc
    async def WatchPackage(self, request: P.WatchPackageRequest, context):
        package_id = fields.require_id(request.package_id, "package_id")
        after_seq = fields.check_non_negative(request.after_seq, "after_seq")
        async for event in self.app.watch_package(package_id, after_seq):
            yield P.WatchPackageResponse(event=event_to_proto(event))

    @rpc
    async def ImportGguf(self, request: P.ImportGgufRequest, context) -> P.ImportGgufResponse:
        imported = await self.app.import_gguf(request.gguf_path, request.output_dir, request.overwrite)
        return P.ImportGgufResponse(output_dir=imported.output_dir, architecture=imported.architecture,
                                    parameters=imported.parameters, cached=imported.cached)

    @rpc
    async def ReadPackageFile(self, request: P.ReadPackageFileRequest, context):
        package_id = fields.require_id(request.package_id, "package_id")
        offset = fields.check_non_negative(request.offset, "offset")
        async for chunk in self.app.read_package_file(package_id, request.path, offset):
            yield P.ReadPackageFileResponse(chunk=cv.chunk_to_proto(chunk))
