"""Helpers for the service tests: config files, certificates, tokens, authenticated channels."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from tests.support.daemon import REPO


def write_config(path: Path, **values: object) -> Path:
    """A TOML config with these keys (str, bool, int and list[str] values)."""
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text = str(value)
        elif isinstance(value, (list, tuple)):
            text = "[" + ", ".join(f'"{v}"' for v in value) + "]"
        else:
            text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append(f"{key} = {text}")
    path.write_text("\n".join(lines) + "\n")
    return path


def mint_token(state_dir: Path, name: str, role: str = "user", *extra: str) -> str:
    """`modxd token create` as an operator runs it; returns the token it prints once."""
    state_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "modxd.main", "token", "create", "--name", name, "--role", role,
                           *extra], capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={"PATH": "/usr/bin:/bin", "MODX_STATE_DIR": str(state_dir)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def make_pki(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = directory
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d, timeout=60)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=modx test CA")
    for name, ext in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext")
    # A client certificate from a CA the server does not trust.
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-keyout", "rogue.key", "-out", "rogue.crt", "-subj", "/CN=rogue")
    return {n: d / n for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key", "rogue.crt",
                               "rogue.key")}


def tls_channel(address: str, pki: dict[str, Path], client: str | None = None) -> grpc.Channel:
    key = cert = None
    if client:
        key, cert = pki[f"{client}.key"].read_bytes(), pki[f"{client}.crt"].read_bytes()
    creds = grpc.ssl_channel_credentials(pki["ca.crt"].read_bytes(), private_key=key, certificate_chain=cert)
    return grpc.secure_channel(address, creds)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
