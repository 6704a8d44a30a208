"""Structured log entries for journald (the native protocol, no dependency).

Under systemd, stderr is a stream to the journal ($JOURNAL_STREAM names its
device and inode). Lines written there become MESSAGE= only; entries sent as
datagrams to /run/systemd/journal/socket keep their fields, so

    journalctl -u modxd MODX_EVENT=task_started
    journalctl -u modxd MODX_TASK_ID=t-1a2b3c4d -o verbose

work. Each structlog key becomes MODX_<KEY> (upper case; non-strings as JSON),
the event name is MODX_EVENT, the level maps to PRIORITY, and MESSAGE is the
readable line `event key=value ...`. An entry that cannot be sent (too large,
socket gone) is written to stderr as a JSON line instead, so nothing is lost.
"""
from __future__ import annotations

import json
import os
import re
import socket
import struct
import sys
from typing import Any

JOURNAL_SOCKET = "/run/systemd/journal/socket"
PRIORITIES = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "warn": 4, "info": 6, "debug": 7}
_BAD = re.compile(r"[^A-Z0-9_]")


def stderr_is_journal(env: dict[str, str] | None = None) -> bool:
    """True when stderr is the journal stream systemd connected ($JOURNAL_STREAM=dev:inode)."""
    env = os.environ if env is None else env
    value = env.get("JOURNAL_STREAM", "")
    if ":" not in value:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    dev, _, ino = value.partition(":")
    return f"{st.st_dev}:{st.st_ino}" == f"{dev}:{ino}"


def field_name(key: str) -> str:
    name = _BAD.sub("_", key.upper()).lstrip("_")
    return ("MODX_" + name)[:64]


def encode(fields: dict[str, str]) -> bytes:
    """The native protocol: KEY=value lines; values with a newline get a length prefix."""
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", errors="replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


def entry(level: str, event_dict: dict[str, Any], identifier: str = "modxd") -> dict[str, str]:
    event = str(event_dict.pop("event", ""))
    event_dict.pop("level", None)
    event_dict.pop("timestamp", None)  # journald stamps entries itself
    exc = event_dict.pop("exception", None)
    parts = [event]
    fields = {"PRIORITY": str(PRIORITIES.get(level, 6)), "SYSLOG_IDENTIFIER": identifier,
              "MODX_EVENT": event}
    for key, value in event_dict.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        fields[field_name(key)] = text
        parts.append(f"{key}={text}")
    message = " ".join(parts)
    if exc:
        message += "\n" + str(exc)
    fields["MESSAGE"] = message
    return fields


class JournalLogger:
    """A structlog logger: each call sends one journal entry."""

    def __init__(self, address: str | None = None, identifier: str = "modxd") -> None:
        self.address = address or JOURNAL_SOCKET
        self.identifier = identifier
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def _send(self, level: str, event_dict: dict[str, Any]) -> None:
        fallback = json.dumps({**event_dict, "level": level}, default=str)
        try:
            self.sock.sendto(encode(entry(level, dict(event_dict), self.identifier)), self.address)
        except OSError:
            print(fallback, file=sys.stderr, flush=True)

    def __getattr__(self, level: str):
        if level.startswith("_"):
            raise AttributeError(level)

        def log(*args: Any, **event_dict: Any) -> None:
            if args and "event" not in event_dict:
                event_dict["event"] = " ".join(str(a) for a in args)
            self._send(level, event_dict)
        return log


def journal_renderer(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Last structlog processor: hand the dict on as keyword arguments."""
    return event_dict
