"""SystemService: status, environment, hardware advice and quota."""
from __future__ import annotations

import os

from modx.v1 import system_pb2 as S
from modx.v1 import system_pb2_grpc

from .. import API_VERSION, __version__, fields, hardware
from ..app import App
from ..states import TaskState
from . import convert as cv
from .status import rpc

MAX_LEDGER_ENTRIES = 10_000


def _device(gpu: hardware.Gpu) -> S.Device:
    return S.Device(index=gpu.index, name=gpu.name, kind="cuda", total_memory_bytes=gpu.total_memory_bytes,
                    free_memory_bytes=gpu.free_memory_bytes, compute_capability=gpu.compute_capability,
                    bf16_supported=gpu.bf16, fp16_supported=True, tf32_supported=gpu.bf16)


def _ledger_entry(entry) -> S.QuotaEntry:
    return S.QuotaEntry(id=entry.id, time=cv.ts(entry.time), delta=entry.delta, balance_after=entry.balance_after,
                        kind=entry.kind, task_id=entry.task_id, checkpoint_id=entry.checkpoint_id, note=entry.note)


class SystemServicer(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, app: App) -> None:
        self.app = app

    @rpc
    async def GetStatus(self, request, context) -> S.GetStatusResponse:
        counts = await self.app.tasks.counts()
        busy = self.app.supervisor.busy_devices()
        return S.GetStatusResponse(
            version=__version__, api_version=API_VERSION, start_time=cv.ts(self.app.start_time),
            uptime_seconds=self.app.uptime(), state_dir=str(self.app.config.state_dir),
            listen=self.app.config.listen_address,
            devices=[S.DeviceSlot(device=d, task_id=busy.get(d, "")) for d in self.app.devices],
            tasks_pending=counts.get(TaskState.PENDING.value, 0),
            tasks_running=counts.get(TaskState.RUNNING.value, 0) + counts.get(TaskState.STOPPING.value, 0),
            tasks_total=sum(counts.values()), quota_balance=await self.app.quota.balance(), pid=os.getpid())

    @rpc
    async def GetEnvironment(self, request, context) -> S.GetEnvironmentResponse:
        gpus = hardware.detect_gpus()
        versions = hardware.package_versions()
        return S.GetEnvironmentResponse(
            python_version=hardware.python_version(), platform=hardware.platform_name(),
            torch_version=versions.get("torch", ""), cuda_version=hardware.cuda_version(),
            cuda_available=bool(gpus), devices=[_device(g) for g in gpus], packages=versions,
            cpu_count=os.cpu_count() or 0, host_memory_bytes=hardware.host_memory_bytes())

    @rpc
    async def GetHardwareAdvice(self, request, context) -> S.GetHardwareAdviceResponse:
        advice = await self.app.advice(request.model_dir, request.params_billion)
        table = [S.VramGuidance(size_class=name, lora_bytes=lora * hardware.GiB, full_bytes=full * hardware.GiB)
                 for name, _, lora, full in hardware.VRAM_TABLE]
        return S.GetHardwareAdviceResponse(
            params_billion=advice["params_billion"],
            guidance=S.VramGuidance(size_class=advice["class"], lora_bytes=advice["lora"], full_bytes=advice["full"]),
            table=table, recommendation=advice["recommendation"],
            devices=[S.DeviceAdvice(device=_device(d["gpu"]), lora_fits=d["lora_fits"], full_fits=d["full_fits"],
                                    advice=d["advice"]) for d in advice["devices"]])

    @rpc
    async def GetQuota(self, request, context) -> S.GetQuotaResponse:
        limit = fields.check_limit(request.ledger_limit, "ledger_limit", MAX_LEDGER_ENTRIES) or 50
        balance, consumed, granted = await self.app.quota.totals()
        ledger = await self.app.quota.ledger(limit)
        return S.GetQuotaResponse(balance=balance, consumed=consumed, granted=granted,
                                  ledger=[_ledger_entry(e) for e in ledger], reserved=await self.app.quota.reserved())

    @rpc
    async def GrantQuota(self, request, context) -> S.GrantQuotaResponse:
        entry = await self.app.grant_quota(request.amount, request.note)
        return S.GrantQuotaResponse(balance=entry.balance_after, entry=_ledger_entry(entry))
