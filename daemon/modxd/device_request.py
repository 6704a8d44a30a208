"""The `devices` parameter's syntax: a count, device ids or auto (no hardware involved).

Part of the parameter schema (param_rules.py checks it at create); placement.py matches the
request against the host's device slots.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidArgument

__all__ = ["MAX_PROCESSES", "DeviceRequest", "parse_devices"]

MAX_PROCESSES = 1024
_COUNT = re.compile(r"^\d+$")
_ID = re.compile(r"^(?:cuda:)?(\d+)$")


@dataclass(frozen=True)
class DeviceRequest:
    count: int = 0  # any `count` devices (0 when ids or auto)
    ids: tuple[str, ...] = ()  # exactly these slots
    auto: bool = False  # every training device

    def describe(self) -> str:
        if self.auto:
            return "auto (every training device)"
        if self.ids:
            return ",".join(self.ids)
        return f"{self.count} device(s)"


def parse_devices(text: object) -> DeviceRequest:
    """The syntax of the `devices` parameter (no hardware involved)."""
    value = str(text if text is not None else "").strip().lower()
    if value in ("", "auto", "all"):
        return DeviceRequest(auto=True) if value else DeviceRequest(count=1)
    if _COUNT.match(value):
        count = int(value)
        if not 1 <= count <= MAX_PROCESSES:
            raise InvalidArgument(f"parameter devices must be a count between 1 and {MAX_PROCESSES}, got {count}")
        return DeviceRequest(count=count)
    ids: list[str] = []
    for part in (p.strip() for p in value.split(",")):
        if part == "cpu":
            ids.append("cpu")
            continue
        match = _ID.match(part)
        if not match:
            raise InvalidArgument(
                f"parameter devices must be auto, a count (2), or device ids (0,1 or cuda:0,cuda:1), got {text!r}")
        ids.append(f"cuda:{int(match.group(1))}")
    if len(set(ids)) != len(ids):
        raise InvalidArgument(f"parameter devices names a device twice: {text!r}")
    if "cpu" in ids and len(ids) > 1:
        raise InvalidArgument("parameter devices cannot mix cpu with GPUs")
    return DeviceRequest(ids=tuple(ids))
