"""Daemons configured like a production host: tokens, TLS on TCP, caps."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.daemon import Daemon

from .support import free_port, make_pki, mint_token, write_config


@dataclass
class Secured:
    daemon: Daemon
    tcp: str                  # localhost:PORT, TLS
    tokens: dict[str, str]    # admin, user, expired
    config: Path


def socket_group() -> str:
    """A group to give the socket: one we belong to other than our own, else (as root) any other."""
    import grp

    own = os.getegid()
    for gid in os.getgroups():
        if gid != own:
            return grp.getgrgid(gid).gr_name
    if os.geteuid() == 0:
        for name in ("nogroup", "daemon", "users"):
            try:
                return grp.getgrnam(name).gr_name
            except KeyError:
                continue
    return grp.getgrgid(own).gr_name


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def secured(tmp_path_factory: pytest.TempPathFactory, roots: Path, pki) -> Iterator[Secured]:
    """auth_required, a TLS TCP listener, and small caps so tests can reach them."""
    base = tmp_path_factory.mktemp("secured")
    state = base / "state"
    tokens = {"admin": mint_token(state, "ops", "admin"), "user": mint_token(state, "alice", "user"),
              "expired": mint_token(state, "old", "user", "--expires-in=-1h")}
    port = free_port()
    config = write_config(base / "modxd.toml", auth_required=True, tcp_listen=f"127.0.0.1:{port}",
                          tls_cert_file=str(pki["server.crt"]), tls_key_file=str(pki["server.key"]),
                          max_watchers_per_client=2, max_chat_tokens=64, max_request_bytes=65536,
                          max_pending_tasks=1)
    d = Daemon(state, [roots], quota=1000, extra_env={"MODX_CONFIG": str(config)}).start()
    yield Secured(d, f"localhost:{port}", tokens, config)
    d.stop()


@pytest.fixture(scope="session")
def mtls(tmp_path_factory: pytest.TempPathFactory, roots: Path, pki) -> Iterator[Secured]:
    """A TCP listener that also requires a client certificate signed by the test CA."""
    base = tmp_path_factory.mktemp("mtls")
    state = base / "state"
    tokens = {"user": mint_token(state, "bob", "user")}
    port = free_port()
    config = write_config(base / "modxd.toml", tcp_listen=f"127.0.0.1:{port}",
                          tls_cert_file=str(pki["server.crt"]), tls_key_file=str(pki["server.key"]),
                          tls_client_ca_file=str(pki["ca.crt"]), socket_group=socket_group())
    d = Daemon(state, [roots], quota=10, extra_env={"MODX_CONFIG": str(config)}).start()
    yield Secured(d, f"localhost:{port}", tokens, config)
    d.stop()
