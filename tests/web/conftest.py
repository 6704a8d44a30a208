"""Real daemons with the browser listener on a free loopback port."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.service.support import free_port, make_pki, mint_token, write_config
from tests.support.daemon import Daemon

from .wire import WebClient


@dataclass
class Web:
    daemon: Daemon
    port: int
    static: Path
    client: WebClient

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def studio_files(root: Path) -> Path:
    """A stand-in build: an index page, a content-hashed script, a nested page, a file to hide."""
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>studio</title><script src='/assets/app-3f9a1c2e.js'>"
                                     "</script>" + "<p>modx</p>" * 100)
    (root / "assets" / "app-3f9a1c2e.js").write_text("console.log('studio');\n" * 200)
    (root / "assets" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_text("<p>docs</p>")
    (root / ".secret").write_text("hidden")
    return root


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("web-pki"))


@pytest.fixture(scope="session")
def web(tmp_path_factory: pytest.TempPathFactory, roots: Path) -> Iterator[Web]:
    """The default opt-in: loopback, no tokens; small caps so the tests can reach them."""
    base = tmp_path_factory.mktemp("web")
    static = studio_files(base / "static")
    (base / "outside.txt").write_text("outside the static root")
    (static / "link.txt").symlink_to(base / "outside.txt")
    port = free_port()
    config = write_config(base / "modxd.toml", web_listen=f"127.0.0.1:{port}", web_static_dir=str(static),
                          web_allowed_origins=["http://localhost:5173"], max_watchers_per_client=3,
                          max_request_bytes=65536)
    d = Daemon(base / "state", [roots], quota=1000, extra_env={"MODX_CONFIG": str(config)}).start()
    yield Web(d, port, static, WebClient("127.0.0.1", port))
    d.stop()


@dataclass
class SecuredWeb:
    daemon: Daemon
    client: WebClient           # https, no token
    tokens: dict[str, str]      # admin, user


@pytest.fixture(scope="session")
def secured_web(tmp_path_factory: pytest.TempPathFactory, roots: Path, pki) -> Iterator[SecuredWeb]:
    """auth_required with TLS on the web listener: every call needs a token, as on TCP gRPC."""
    import ssl

    base = tmp_path_factory.mktemp("secured-web")
    state = base / "state"
    tokens = {"admin": mint_token(state, "ops", "admin"), "user": mint_token(state, "alice", "user")}
    port = free_port()
    config = write_config(base / "modxd.toml", auth_required=True, web_listen=f"127.0.0.1:{port}",
                          tls_cert_file=str(pki["server.crt"]), tls_key_file=str(pki["server.key"]))
    d = Daemon(state, [roots], quota=1000, extra_env={"MODX_CONFIG": str(config)}).start()
    context = ssl.create_default_context(cafile=str(pki["ca.crt"]))
    yield SecuredWeb(d, WebClient("localhost", port, https_context=context), tokens)
    d.stop()
