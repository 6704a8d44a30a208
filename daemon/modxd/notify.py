"""sd_notify(3) without libsystemd: datagrams to $NOTIFY_SOCKET.

systemd (Type=notify) passes the path of a Unix datagram socket in
$NOTIFY_SOCKET; a name starting with '@' lives in the abstract namespace (a
leading NUL byte on the wire). Each message is newline-separated KEY=VALUE
lines. modxd sends:

    READY=1                  after migrations, reconciliation and bind
    STATUS=...               one line for `systemctl status` (running/pending counts)
    WATCHDOG=1               every $WATCHDOG_USEC / 2 while $WATCHDOG_PID is us (or unset)
    STOPPING=1               when shutdown begins
    MAINPID=..., ERRNO=...   not used

Without $NOTIFY_SOCKET every call is a no-op, so the daemon behaves the same
outside systemd. Errors sending are logged once and never raised: a lost
notification must not take the daemon down.
"""
from __future__ import annotations

import asyncio
import os
import socket
from typing import Awaitable, Callable

import structlog

log = structlog.get_logger("modxd.notify")


class Notifier:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = env.get("NOTIFY_SOCKET", "")
        self.watchdog_usec = 0
        usec = env.get("WATCHDOG_USEC", "")
        wd_pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not wd_pid or wd_pid == str(os.getpid())):
            self.watchdog_usec = int(usec)
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    @property
    def watchdog_interval(self) -> float:
        """Seconds between WATCHDOG=1 pings: half the watchdog timeout (0 = no watchdog)."""
        return self.watchdog_usec / 2 / 1_000_000

    def _sockaddr(self) -> str | bytes:
        if self.address.startswith("@"):
            return b"\0" + self.address[1:].encode()
        return self.address

    def send(self, **fields: object) -> bool:
        """Send one message: send(READY=1, STATUS="ready") -> b"READY=1\\nSTATUS=ready"."""
        if not self.address:
            return False
        lines = []
        for key, value in fields.items():
            text = str(value).replace("\n", " ")
            lines.append(f"{key}={text}")
        data = "\n".join(lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._sockaddr())
                sock.sendall(data)
            return True
        except OSError as exc:
            if not self._warned:
                log.warning("sd_notify_failed", socket=self.address, error=str(exc))
                self._warned = True
            return False

    def ready(self, status: str) -> bool:
        return self.send(READY=1, STATUS=status, MAINPID=os.getpid())

    def status(self, status: str) -> bool:
        return self.send(STATUS=status)

    def stopping(self, status: str) -> bool:
        return self.send(STOPPING=1, STATUS=status)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    async def run(self, status: Callable[[], Awaitable[str] | str], every: float = 10.0) -> None:
        """Ping the watchdog at half its timeout and refresh STATUS, until cancelled.

        The ping comes from the event loop itself, so a wedged loop stops pinging
        and systemd restarts the daemon (WatchdogSec=).
        """
        if not self.enabled:
            return
        interval = min(self.watchdog_interval or every, every)
        last_status = ""
        while True:
            await asyncio.sleep(interval)
            try:
                text = status()
                if asyncio.iscoroutine(text):
                    text = await text
            except Exception as exc:  # the status line is best effort
                text = f"status unavailable: {exc}"
            fields: dict[str, object] = {}
            if self.watchdog_usec:
                fields["WATCHDOG"] = 1
            if text != last_status:
                fields["STATUS"] = text
                last_status = text
            if fields:
                self.send(**fields)
