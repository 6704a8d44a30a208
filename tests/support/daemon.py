"""Start a real `modxd` process on a temp state dir and Unix socket."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from modx.v1 import (eval_pb2_grpc, inference_pb2_grpc, package_pb2_grpc, system_pb2_grpc,
                     training_pb2_grpc)

REPO = Path(__file__).resolve().parents[2]


class Daemon:
    def __init__(self, state_dir: Path, roots: list[Path], quota: int = 100,
                 extra_env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.socket = state_dir / "modxd.sock"
        self.address = f"unix://{self.socket}"
        self.env = {
            **os.environ,
            "MODX_STATE_DIR": str(state_dir),
            "MODX_ALLOWED_ROOTS": ":".join(str(r) for r in roots),
            "MODX_QUOTA_INITIAL": str(quota),
            "MODX_LOG_LEVEL": "info",
            "MODX_DEVICES": "cpu",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.log_path = state_dir.parent / f"{state_dir.name}-modxd.log"
        self._channel: grpc.Channel | None = None

    def start(self, timeout: float = 30.0) -> "Daemon":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "modxd.main"], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"modxd exited with {self.proc.returncode}:\n{self.log()}")
            if self.socket.exists() and self.healthy():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"modxd did not become healthy in {timeout}s:\n{self.log()}")

    def healthy(self) -> bool:
        try:
            with grpc.insecure_channel(self.address) as ch:
                resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
                return resp.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.address)
        return self._channel

    @property
    def training(self) -> training_pb2_grpc.TrainingServiceStub:
        return training_pb2_grpc.TrainingServiceStub(self.channel)

    @property
    def system(self) -> system_pb2_grpc.SystemServiceStub:
        return system_pb2_grpc.SystemServiceStub(self.channel)

    @property
    def evals(self) -> eval_pb2_grpc.EvalServiceStub:
        return eval_pb2_grpc.EvalServiceStub(self.channel)

    @property
    def inference(self) -> inference_pb2_grpc.InferenceServiceStub:
        return inference_pb2_grpc.InferenceServiceStub(self.channel)

    @property
    def packages(self) -> package_pb2_grpc.PackageServiceStub:
        return package_pb2_grpc.PackageServiceStub(self.channel)

    def stop(self, timeout: float = 60.0) -> int:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cli(self, *args: str, check: bool = True, timeout: float = 300.0) -> subprocess.CompletedProcess:
        """Run modxctl as a user would, against this daemon."""
        proc = subprocess.run([sys.executable, "-m", "modxctl.main", "--address", self.address, *args],
                              capture_output=True, text=True, timeout=timeout, cwd=REPO,
                              env={**os.environ, "COLUMNS": "200"})
        if check and proc.returncode != 0:
            raise AssertionError(f"modxctl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def cli_json(self, *args: str) -> Any:
        """Parse --json output: one document, or one object per line for streams."""
        out = self.cli("--json", *args).stdout.strip()
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            return [json.loads(line) for line in out.splitlines() if line.strip()]
