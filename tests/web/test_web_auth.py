"""Tokens, roles and listen rules of the browser listener: the gRPC rules, in one place."""
from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest
from modx.v1 import system_pb2 as S
from modx.v1 import training_pb2 as T

from modxd.config import load_config
from modxd.errors import InvalidArgument
from tests.service.support import bearer, write_config
from tests.support.daemon import REPO

STATUS = "/modx.v1.SystemService/GetStatus"
GRANT = "/modx.v1.SystemService/GrantQuota"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_and_roles_over_tls(secured_web) -> None:
    """auth_required + TLS: the same refusals, codes and sentences as on the gRPC socket."""
    web, daemon = secured_web.client, secured_web.daemon
    with pytest.raises(grpc.RpcError) as info:
        daemon.system.GetStatus(S.GetStatusRequest())
    missing = web.unary_json(STATUS, b"")
    assert missing.status == 401
    assert missing.json() == {"code": "unauthenticated", "message": info.value.details()}
    for header in (auth("modx_not-a-token"), {"Authorization": "Basic abc"}):
        assert web.unary_json(STATUS, b"", header).json()["code"] == "unauthenticated"
    ok = web.unary_json(STATUS, b"", auth(secured_web.tokens["user"]))
    assert ok.status == 200 and ok.json()["apiVersion"] == "modx.v1"
    # roles: GrantQuota needs admin
    with pytest.raises(grpc.RpcError) as info:
        daemon.system.GrantQuota(S.GrantQuotaRequest(amount=2), metadata=bearer(secured_web.tokens["user"]))
    before = int(web.unary_json("/modx.v1.SystemService/GetQuota", b"", auth(secured_web.tokens["user"]))
                 .json()["balance"])
    denied = web.unary_json(GRANT, {"amount": 2}, auth(secured_web.tokens["user"]))
    assert denied.status == 403
    assert denied.json() == {"code": "permission_denied", "message": info.value.details()}
    granted = web.unary_json(GRANT, {"amount": 2}, auth(secured_web.tokens["admin"]))
    assert int(granted.json()["balance"]) == before + 2
    # streams are checked too, before the handler runs
    stream = web.open_stream("/modx.v1.TrainingService/WatchTask", T.WatchTaskRequest(task_id="t-x"))
    list(stream.frames())
    stream.close()
    assert stream.end.error["code"] == "unauthenticated"
    stream = web.open_stream("/modx.v1.TrainingService/WatchTask", T.WatchTaskRequest(task_id="t-x"),
                             headers=auth(secured_web.tokens["user"]))
    list(stream.frames())
    stream.close()
    assert stream.end.error["code"] == "not_found"


def test_a_token_less_loopback_listener_trusts_like_the_socket(web) -> None:
    """Loopback, auth_required off: no token needed (local_role), but a token sent is checked."""
    assert web.client.unary_json(GRANT, {"amount": 1}).status == 200  # local_role is admin by default
    bad = web.client.unary_json(STATUS, b"", auth("modx_wrong"))
    assert bad.status == 401 and bad.json()["message"] == "the token is not valid"


@pytest.mark.parametrize("address", ["0.0.0.0:8470", "192.0.2.10:8470", "[::]:8470", "example.com:8470"])
def test_a_non_loopback_address_needs_tls(address, tmp_path) -> None:
    with pytest.raises(InvalidArgument) as info:
        load_config(None, {"MODX_STATE_DIR": str(tmp_path), "MODX_WEB_LISTEN": address})
    assert "needs TLS" in str(info.value) and "token" in str(info.value)
    # with TLS set, the rule is met (the certificate files are read when the listener starts)
    cfg = write_config(tmp_path / "c.toml", web_listen=address, tls_cert_file="/x.crt", tls_key_file="/x.key")
    assert load_config(cfg, {"MODX_STATE_DIR": str(tmp_path)}).web_listen == address


@pytest.mark.parametrize("address", ["8470", "unix:///tmp/x.sock", "127.0.0.1:http", "127.0.0.1:70000", ":8470"])
def test_malformed_web_listen(address, tmp_path) -> None:
    with pytest.raises(InvalidArgument) as info:
        load_config(None, {"MODX_STATE_DIR": str(tmp_path), "MODX_WEB_LISTEN": address})
    assert "web_listen" in str(info.value)


def modxd(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODX_")}
    return subprocess.run([sys.executable, "-m", "modxd.main"], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**clean, "MODX_DEVICES": "cpu", **env})


def test_the_daemon_refuses_to_start_on_a_public_address(tmp_path) -> None:
    proc = modxd(MODX_STATE_DIR=str(tmp_path), MODX_WEB_LISTEN="0.0.0.0:8470")
    assert proc.returncode != 0
    assert "web_listen 0.0.0.0:8470 is not a loopback address" in proc.stderr
    assert not (tmp_path / "modxd.sock").exists()


def test_web_listen_is_off_by_default(tmp_path) -> None:
    assert load_config(None, {"MODX_STATE_DIR": str(tmp_path)}).web_listen == ""


def test_a_port_in_use_is_a_clear_start_up_error(web, tmp_path) -> None:
    proc = modxd(MODX_STATE_DIR=str(tmp_path), MODX_WEB_LISTEN=f"127.0.0.1:{web.port}")
    assert proc.returncode != 0 and f"cannot listen on web_listen 127.0.0.1:{web.port}" in proc.stderr
