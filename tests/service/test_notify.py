"""The sd_notify protocol against a fake $NOTIFY_SOCKET: READY, STATUS, WATCHDOG, STOPPING."""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

from modx.v1 import training_pb2 as T

from modxd.notify import Notifier
from tests.daemon.helpers import create_request, sft_params, state_name, wait_for_state


class FakeSystemd:
    """A datagram socket like systemd's notify socket; records each message as a dict."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + address[1:].encode() if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []
        self.on_ready = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            msg = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            if "READY" in msg and self.on_ready:
                msg["_checked"] = self.on_ready()
            self.messages.append(msg)

    def wait_for(self, key: str, timeout: float = 30.0) -> dict[str, str]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for msg in self.messages:
                if key in msg:
                    return msg
            time.sleep(0.05)
        raise AssertionError(f"no {key} message in {timeout}s; got {self.messages}")

    def count(self, key: str) -> int:
        return sum(1 for m in self.messages if key in m)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def test_notifier_messages_path_and_abstract(tmp_path: Path) -> None:
    for address in (str(tmp_path / "notify"), f"@modx-test-{uuid.uuid4().hex}"):
        fake = FakeSystemd(address)
        try:
            n = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "3000000"})
            assert n.enabled and n.watchdog_interval == 1.5
            assert n.ready("ready on unix:///x; 0 running, 0 pending")
            n.status("1 running,\n2 pending")
            n.watchdog()
            n.stopping("bye")
            fake.wait_for("STOPPING")
            ready, status, watchdog, stopping = fake.messages[:4]
            assert ready["READY"] == "1" and ready["STATUS"].startswith("ready on") and ready["MAINPID"] == str(os.getpid())
            assert status == {"STATUS": "1 running, 2 pending"}
            assert watchdog == {"WATCHDOG": "1"}
            assert stopping == {"STOPPING": "1", "STATUS": "bye"}
        finally:
            fake.close()


def test_notifier_is_a_noop_without_systemd() -> None:
    n = Notifier({})
    assert not n.enabled and not n.ready("x") and n.watchdog_interval == 0
    # a watchdog meant for another process is not ours to ping
    assert Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_usec == 0


def test_notifier_survives_a_missing_socket(tmp_path: Path) -> None:
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready("x") is False


def test_daemon_notifies_ready_after_recovery_and_bind(make_daemon, tmp_path, tiny_llama_dir, sft_jsonl) -> None:
    # A task left running by a daemon that died: the next daemon must mark it failed before READY.
    first = make_daemon()
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", num_train_epochs=100,
                                      max_seq_length=64))
    task_id = first.training.CreateTask(req).task.id
    first.training.StartTask(T.StartTaskRequest(task_id=task_id))
    wait_for_state(first, task_id, {"running"}, timeout=120)
    first.kill()

    address = f"@modx-test-{uuid.uuid4().hex}"
    fake = FakeSystemd(address)
    second = None
    try:
        from tests.support.daemon import Daemon

        second = Daemon(first.state_dir, [tmp_path], extra_env={"NOTIFY_SOCKET": address,
                                                                 "WATCHDOG_USEC": "400000"})

        def check_at_ready() -> str:
            healthy = second.healthy()
            task = second.training.GetTask(T.GetTaskRequest(task_id=task_id)).task
            return f"healthy={healthy} state={state_name(task.state)} reason={task.state_reason}"

        fake.on_ready = check_at_ready
        second.start()
        ready = fake.wait_for("READY")
        assert ready["_checked"] == "healthy=True state=failed reason=daemon_restarted"
        assert ready["STATUS"].startswith(f"ready on unix://{second.socket}")
        assert "0 running, 0 pending" in ready["STATUS"]
        assert ready["MAINPID"] == str(second.proc.pid)
        deadline = time.time() + 10
        while fake.count("WATCHDOG") < 3 and time.time() < deadline:  # every 0.2 s
            time.sleep(0.05)
        assert fake.count("WATCHDOG") >= 3
        assert second.stop() == 0
        stopping = fake.wait_for("STOPPING")
        assert stopping["STATUS"].startswith("stopping")
    finally:
        fake.close()
        if second is not None:
            second.kill()
