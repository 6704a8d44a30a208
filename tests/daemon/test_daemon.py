"""The daemon process: health, reflection, single instance, graceful stop, status and quota."""
from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from modx.v1 import eval_pb2, system_pb2
from modx.v1 import training_pb2 as T

from tests.support.daemon import Daemon


def test_health_and_reflection(daemon) -> None:
    assert daemon.healthy()
    db = ProtoReflectionDescriptorDatabase(daemon.channel)
    services = set(db.get_services())
    assert {"modx.v1.TrainingService", "modx.v1.EvalService", "modx.v1.InferenceService",
            "modx.v1.PackageService", "modx.v1.SystemService", "grpc.health.v1.Health"} <= services
    proto = db.FindFileContainingSymbol("modx.v1.TrainingService")
    assert proto.name == "modx/v1/training.proto" and proto.package == "modx.v1"


def test_second_instance_refuses_to_start(make_daemon, tmp_path) -> None:
    first = make_daemon()
    second = Daemon(first.state_dir, [tmp_path])
    proc = subprocess.run([sys.executable, "-m", "modxd.main"], env=second.env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert "another modxd" in proc.stderr and str(first.state_dir) in proc.stderr
    assert first.healthy()


def test_sigterm_stops_cleanly(make_daemon) -> None:
    d = make_daemon()
    assert d.stop() == 0
    assert not d.socket.exists()
    assert '"modxd_stopped"' in d.log()


def test_status_quota_and_grant(make_daemon) -> None:
    d = make_daemon(quota=7)
    status = d.system.GetStatus(system_pb2.GetStatusRequest())
    assert status.quota_balance == 7 and [s.device for s in status.devices] == ["cpu"]
    quota = d.system.GetQuota(system_pb2.GetQuotaRequest())
    assert (quota.balance, quota.consumed, quota.granted) == (7, 0, 7)
    assert quota.ledger[0].kind == "initial"
    grant = d.system.GrantQuota(system_pb2.GrantQuotaRequest(amount=5, note="more"))
    assert grant.balance == 12 and grant.entry.kind == "grant"
    with pytest.raises(grpc.RpcError) as info:
        d.system.GrantQuota(system_pb2.GrantQuotaRequest(amount=-1))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_quota_initial_is_recorded_once(make_daemon, tmp_path) -> None:
    d = make_daemon(quota=3)
    d.stop()
    again = make_daemon(quota=50, state_dir=d.state_dir)
    assert again.system.GetQuota(system_pb2.GetQuotaRequest()).balance == 3


def test_environment_and_advice(daemon, tiny_llama_dir) -> None:
    env = daemon.system.GetEnvironment(system_pb2.GetEnvironmentRequest())
    assert env.python_version and env.packages["transformers"] and env.cpu_count >= 1
    advice = daemon.system.GetHardwareAdvice(system_pb2.GetHardwareAdviceRequest(params_billion=2.0))
    assert advice.guidance.size_class == "1-3B" and advice.guidance.lora_bytes == 6 * 1024**3
    assert [r.size_class for r in advice.table] == ["<1B", "1-3B", "3-7B", "7-14B"]
    sized = daemon.system.GetHardwareAdvice(system_pb2.GetHardwareAdviceRequest(model_dir=str(tiny_llama_dir)))
    assert 0 < sized.params_billion < 0.01 and sized.guidance.size_class == "<1B"
    assert sized.recommendation
    if "no GPU found" in sized.recommendation:  # a test model has thousands of weights, not "0.00B"
        assert "0.00B" not in sized.recommendation and "K model" in sized.recommendation


def test_unknown_evaluation_is_not_found(daemon) -> None:
    with pytest.raises(grpc.RpcError) as info:
        daemon.evals.GetEvaluation(eval_pb2.GetEvaluationRequest(evaluation_id="ev-missing"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "ev-missing" in info.value.details()


def test_unknown_task_is_not_found(daemon) -> None:
    with pytest.raises(grpc.RpcError) as info:
        daemon.training.GetTask(T.GetTaskRequest(task_id="t-missing"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "t-missing" in info.value.details()
