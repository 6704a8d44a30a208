"""Authentication and authorisation against real daemons: tokens, roles, TLS, mutual TLS."""
from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from modx.v1 import system_pb2 as S
from modx.v1 import system_pb2_grpc
from modx.v1 import training_pb2 as T
from modx.v1 import training_pb2_grpc

from modxd.auth import TokenStore, hash_token
from tests.daemon.helpers import create_request, sft_params
from tests.support.daemon import REPO, Daemon

from .support import bearer, tls_channel, write_config

UNAUTH = grpc.StatusCode.UNAUTHENTICATED


def _code(call, *args, **kwargs) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        result = call(*args, **kwargs)
        if hasattr(result, "__iter__") and not hasattr(result, "ByteSize"):
            list(result)
    return info.value.code()


# ----- tokens on the Unix socket with auth_required ------------------------------------------------


def test_missing_bad_and_expired_tokens_are_unauthenticated(secured) -> None:
    system = secured.daemon.system
    assert _code(system.GetStatus, S.GetStatusRequest()) == UNAUTH
    assert _code(system.GetStatus, S.GetStatusRequest(), metadata=bearer("modx_not-a-token")) == UNAUTH
    assert _code(system.GetStatus, S.GetStatusRequest(), metadata=[("authorization", "Basic abc")]) == UNAUTH
    with pytest.raises(grpc.RpcError) as info:
        system.GetStatus(S.GetStatusRequest(), metadata=bearer(secured.tokens["expired"]))
    assert info.value.code() == UNAUTH and "expired" in info.value.details()
    # streams too
    watch = secured.daemon.training.WatchTask(T.WatchTaskRequest(task_id="t-00000000"))
    assert _code(list, watch) == UNAUTH
    ok = system.GetStatus(S.GetStatusRequest(), metadata=bearer(secured.tokens["user"]))
    assert ok.version


def test_rejected_requests_change_nothing(secured, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    tr, system = secured.daemon.training, secured.daemon.system
    user, admin = bearer(secured.tokens["user"]), bearer(secured.tokens["admin"])
    before = tr.ListTasks(T.ListTasksRequest(), metadata=user).total_size
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out"))
    for md in (None, bearer("modx_wrong"), bearer(secured.tokens["expired"])):
        assert _code(tr.CreateTask, req, metadata=md) == UNAUTH
    assert tr.ListTasks(T.ListTasksRequest(), metadata=user).total_size == before
    assert not (tmp_path / "out").exists()
    balance = system.GetQuota(S.GetQuotaRequest(), metadata=user).balance
    assert _code(system.GrantQuota, S.GrantQuotaRequest(amount=5), metadata=None) == UNAUTH
    assert system.GetQuota(S.GetQuotaRequest(), metadata=user).balance == balance


def test_grant_quota_needs_admin(secured) -> None:
    system = secured.daemon.system
    with pytest.raises(grpc.RpcError) as info:
        system.GrantQuota(S.GrantQuotaRequest(amount=3), metadata=bearer(secured.tokens["user"]))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "admin" in info.value.details() and "alice" in info.value.details()
    before = system.GetQuota(S.GetQuotaRequest(), metadata=bearer(secured.tokens["user"])).balance
    granted = system.GrantQuota(S.GrantQuotaRequest(amount=3, note="test"), metadata=bearer(secured.tokens["admin"]))
    assert granted.balance == before + 3


def test_health_and_reflection_stay_open(secured) -> None:
    assert secured.daemon.healthy()
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    services = set(ProtoReflectionDescriptorDatabase(secured.daemon.channel).get_services())
    assert "modx.v1.TrainingService" in services


def test_tokens_file_is_hashed_private_and_reloaded(secured) -> None:
    path = secured.daemon.state_dir / "tokens.toml"
    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for token in secured.tokens.values():
        assert token.startswith("modx_") and token not in text and hash_token(token) in text
    # A token minted while the daemon runs works at once; a revoked one stops working.
    store = TokenStore(path)
    fresh = store.create("ci-fresh", "user")
    system = secured.daemon.system
    assert system.GetStatus(S.GetStatusRequest(), metadata=bearer(fresh)).version
    store.revoke("ci-fresh")
    assert _code(system.GetStatus, S.GetStatusRequest(), metadata=bearer(fresh)) == UNAUTH


def test_token_command_lists_without_secrets(secured) -> None:
    proc = subprocess.run([sys.executable, "-m", "modxd.main", "token", "list"], capture_output=True, text=True,
                          cwd=REPO, timeout=60, env={**os.environ, "MODX_STATE_DIR": str(secured.daemon.state_dir)})
    assert proc.returncode == 0, proc.stderr
    assert "ops\tadmin" in proc.stdout and "alice\tuser" in proc.stdout and "(expired)" in proc.stdout
    assert not any(t in proc.stdout for t in secured.tokens.values())


def test_modxctl_reads_the_token_from_a_file(secured, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(secured.tokens["user"] + "\n")
    token_file.chmod(0o600)
    base = [sys.executable, "-m", "modxctl.main", "--address", secured.daemon.address, "--json", "quota"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODX_TOKEN")}
    denied = subprocess.run(base, capture_output=True, text=True, cwd=REPO, timeout=60, env=env)
    assert denied.returncode != 0 and "UNAUTHENTICATED" in denied.stderr
    ok = subprocess.run(base, capture_output=True, text=True, cwd=REPO, timeout=60,
                        env={**env, "MODX_TOKEN_FILE": str(token_file)})
    assert ok.returncode == 0, ok.stderr
    assert '"balance"' in ok.stdout


# ----- the Unix socket without auth_required ---------------------------------------------------------


def test_local_socket_without_tokens_is_admin_but_bad_tokens_fail(daemon) -> None:
    mode = stat.S_IMODE(os.stat(daemon.socket).st_mode)
    assert mode == 0o660
    assert daemon.system.GetStatus(S.GetStatusRequest()).version
    assert _code(daemon.system.GetStatus, S.GetStatusRequest(), metadata=bearer("modx_nope")) == UNAUTH


def test_socket_mode_and_group_come_from_the_config(mtls) -> None:
    import grp

    from .conftest import socket_group

    st = os.stat(mtls.daemon.socket)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert grp.getgrgid(st.st_gid).gr_name == socket_group()


# ----- TCP: always TLS, always a token ---------------------------------------------------------------


def test_tcp_needs_tls_and_a_token(secured, pki) -> None:
    with tls_channel(secured.tcp, pki) as channel:
        system = system_pb2_grpc.SystemServiceStub(channel)
        assert _code(system.GetStatus, S.GetStatusRequest(), timeout=10) == UNAUTH
        assert system.GetStatus(S.GetStatusRequest(), metadata=bearer(secured.tokens["user"]), timeout=10).version
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    # A plaintext client cannot talk to the TLS port.
    with grpc.insecure_channel(secured.tcp) as channel:
        system = system_pb2_grpc.SystemServiceStub(channel)
        code = _code(system.GetStatus, S.GetStatusRequest(), metadata=bearer(secured.tokens["user"]), timeout=5)
        assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_tls_client_with_an_untrusted_ca_fails_the_handshake(secured, pki, tmp_path) -> None:
    creds = grpc.ssl_channel_credentials(pki["rogue.crt"].read_bytes())
    with grpc.secure_channel(secured.tcp, creds) as channel:
        system = system_pb2_grpc.SystemServiceStub(channel)
        code = _code(system.GetStatus, S.GetStatusRequest(), metadata=bearer(secured.tokens["user"]), timeout=5)
        assert code == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_needs_a_client_certificate(mtls, pki) -> None:
    token = bearer(mtls.tokens["user"])
    with tls_channel(mtls.tcp, pki, client="client") as channel:
        system = system_pb2_grpc.SystemServiceStub(channel)
        assert system.GetStatus(S.GetStatusRequest(), metadata=token, timeout=10).version
        # the certificate does not replace the token
        assert _code(system.GetStatus, S.GetStatusRequest(), timeout=10) == UNAUTH
    for client in (None, "rogue"):
        with tls_channel(mtls.tcp, pki, client=client) as channel:
            system = system_pb2_grpc.SystemServiceStub(channel)
            code = _code(system.GetStatus, S.GetStatusRequest(), metadata=token, timeout=5)
            assert code == grpc.StatusCode.UNAVAILABLE, client


def test_modxctl_over_tls(mtls, pki, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(mtls.tokens["user"])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MODX_")},
           "MODX_TOKEN_FILE": str(token_file), "MODX_TLS_CA": str(pki["ca.crt"]),
           "MODX_TLS_CERT": str(pki["client.crt"]), "MODX_TLS_KEY": str(pki["client.key"])}
    proc = subprocess.run([sys.executable, "-m", "modxctl.main", "--address", mtls.tcp, "--json", "status"],
                          capture_output=True, text=True, cwd=REPO, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert '"version"' in proc.stdout


def test_plain_tcp_is_refused_at_start(tmp_path, roots) -> None:
    config = write_config(tmp_path / "modxd.toml", listen="127.0.0.1:0")
    d = Daemon(tmp_path / "state", [roots], extra_env={"MODX_CONFIG": str(config)})
    proc = subprocess.run([sys.executable, "-m", "modxd.main"], env=d.env, capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert proc.returncode == 2
    assert "needs TLS" in proc.stderr


def test_token_store_rules(tmp_path) -> None:
    store = TokenStore(tmp_path / "tokens.toml")
    token = store.create("ci", "admin", expires=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    assert store.check(token).role == "admin"
    with pytest.raises(LookupError):
        store.check(token + "x")
    from modxd.errors import InvalidArgument

    with pytest.raises(InvalidArgument):
        store.create("ci", "user")  # names are unique
    with pytest.raises(InvalidArgument):
        store.create("x", "root")
    with pytest.raises(InvalidArgument):
        store.create("bad name", "user")


def test_a_broken_tokens_file_fails_closed(tmp_path) -> None:
    store = TokenStore(tmp_path / "tokens.toml")
    token = store.create("ci", "user")
    assert store.check(token).name == "ci"
    path = tmp_path / "tokens.toml"
    path.write_text(path.read_text() + "\n[[token]\nbroken")
    with pytest.raises(LookupError):
        store.check(token)
    store2 = TokenStore(path)
    from modxd.errors import InvalidArgument

    with pytest.raises(InvalidArgument):
        store2.read()
