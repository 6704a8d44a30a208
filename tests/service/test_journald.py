"""Structured journald entries: the native protocol against a fake journal socket."""
from __future__ import annotations

import socket
import struct
import subprocess
import sys
from pathlib import Path

from modxd.journald import JournalLogger, encode, entry, field_name
from tests.support.daemon import REPO


def parse(data: bytes) -> dict[str, str]:
    """Decode the journal's native protocol (KEY=value lines and length-prefixed binary fields)."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode()
            i = nl + 1
        else:
            (size,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            fields[line.decode()] = data[nl + 9:nl + 9 + size].decode()
            i = nl + 9 + size + 1
    return fields


def test_entry_fields_and_encoding() -> None:
    fields = entry("warning", {"event": "task_started", "task_id": "t-1", "device": "cuda:0",
                               "running": ["t-1"], "timestamp": "x", "level": "warning"})
    assert fields["PRIORITY"] == "4" and fields["MODX_EVENT"] == "task_started"
    assert fields["MODX_TASK_ID"] == "t-1" and fields["MODX_RUNNING"] == '["t-1"]'
    assert fields["MESSAGE"] == 'task_started task_id=t-1 device=cuda:0 running=["t-1"]'
    assert "MODX_TIMESTAMP" not in fields
    assert field_name("a-b.c") == "MODX_A_B_C"
    multi = {"MESSAGE": "line one\nline two", "PRIORITY": "3"}
    assert parse(encode(multi)) == multi


def test_journal_logger_sends_datagrams(tmp_path: Path) -> None:
    path = str(tmp_path / "journal.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as journal:
        journal.bind(path)
        journal.settimeout(5)
        JournalLogger(path).error(event="worker_failed", task_id="t-2", exception="Traceback\n  boom")
        fields = parse(journal.recv(65536))
    assert fields["PRIORITY"] == "3" and fields["SYSLOG_IDENTIFIER"] == "modxd"
    assert fields["MODX_TASK_ID"] == "t-2" and fields["MESSAGE"].endswith("Traceback\n  boom")


def test_daemon_logging_goes_to_the_journal_under_systemd(tmp_path: Path) -> None:
    """With $JOURNAL_STREAM naming its stderr (as systemd sets it), modxd logs structured entries."""
    path = str(tmp_path / "journal.sock")
    stderr_file = tmp_path / "stderr"
    code = (
        "import os, sys, modxd.journald as j, structlog\n"
        f"j.JOURNAL_SOCKET = {path!r}\n"
        "st = os.fstat(2); os.environ['JOURNAL_STREAM'] = f'{st.st_dev}:{st.st_ino}'\n"
        "from modxd.logging_setup import configure\n"
        "configure('info')\n"
        "structlog.get_logger('modxd').info('modxd_ready', listen='unix:///run/modx/modxd.sock', pid=7)\n"
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as journal:
        journal.bind(path)
        journal.settimeout(10)
        with open(stderr_file, "wb") as err:
            subprocess.run([sys.executable, "-c", code], stderr=err, check=True, timeout=60, cwd=REPO)
        fields = parse(journal.recv(65536))
    assert fields["MODX_EVENT"] == "modxd_ready" and fields["MODX_PID"] == "7"
    assert fields["MODX_LISTEN"] == "unix:///run/modx/modxd.sock" and fields["PRIORITY"] == "6"
    assert stderr_file.read_text() == ""
