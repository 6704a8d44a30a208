"""What the studio's end-to-end tests, bench/studio.py and scripts/studio_screenshots.py share:
a workspace (tiny model + SFT data, made offline), a real modxd with its browser listener on a
free loopback port, and a headless Debian Chromium driven by playwright-core through a small
Node program (tests/web/driver.mjs) that reads JSON commands on stdin.

Nothing here stands in for a part: the daemon, its listener, the committed bundle and the browser
are the real ones. Tools that are missing are reported by `missing_tools()` so callers can skip.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.daemon import REPO, Daemon

WEB = REPO / "clients" / "web"
DRIVER = Path(__file__).resolve().parent / "driver.mjs"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    env = os.environ.get("MODX_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    return next((p for p in CHROMIUM_CANDIDATES if Path(p).exists()), None)


def missing_tools() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed (the studio's browser driver is playwright-core from npm)"
    if chromium_path() is None:
        return "Chromium is not installed (apt-get install chromium; .ci/run does it as root)"
    return None


def ensure_node_modules() -> Path:
    """`npm ci` in clients/web once per lockfile change (marker file as for clients/typescript)."""
    marker = WEB / "node_modules" / ".modx-installed"
    lock = WEB / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        proc = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, capture_output=True, text=True,
                              timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"npm ci failed in {WEB}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        marker.touch()
    return WEB / "node_modules"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Workspace:
    root: Path
    model_dir: Path
    train_file: Path
    output_root: Path

    def output_dir(self, name: str) -> Path:
        return self.output_root / name


def make_workspace(root: Path, examples: int = 64) -> Workspace:
    """A tiny Llama (seeded, offline) and a learnable SFT set under `root`."""
    from tests.fixtures.datasets import write_sft_jsonl
    from tests.fixtures.tiny_models import make_tiny_llama

    root.mkdir(parents=True, exist_ok=True)
    model = make_tiny_llama(root / "tiny-llama")
    data = write_sft_jsonl(root / "data" / "sft.jsonl", n=examples)
    out = root / "out"
    out.mkdir(exist_ok=True)
    return Workspace(root, model, data, out)


def start_web_daemon(state_dir: Path, roots: list[Path], quota: int = 1000, **env: str) -> tuple[Daemon, str]:
    """A real modxd with MODX_WEB_LISTEN on a free loopback port; returns it and the studio's URL."""
    port = free_port()
    daemon = Daemon(state_dir, roots, quota=quota, extra_env={"MODX_WEB_LISTEN": f"127.0.0.1:{port}", **env}).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as resp:
                if resp.status == 200:
                    return daemon, url
        except OSError:
            if time.time() > deadline:
                daemon.stop()
                raise RuntimeError(f"the web listener at {url} did not answer:\n{daemon.log()[-3000:]}")
            time.sleep(0.2)


class Browser:
    """A headless Chromium page driven by tests/web/driver.mjs (playwright-core, no downloaded
    browser). Each call sends one JSON command and waits for its JSON answer."""

    def __init__(self, url: str, width: int = 1360, height: int = 900, lang: str = "en-US") -> None:
        ensure_node_modules()
        self.profile = tempfile.mkdtemp(prefix="modx-chromium-")
        env = {**os.environ, "MODX_CHROMIUM": chromium_path() or "", "MODX_CHROMIUM_PROFILE": self.profile,
               "MODX_CHROMIUM_FLAGS": json.dumps(CHROMIUM_FLAGS), "NODE_PATH": str(WEB / "node_modules")}
        self.proc = subprocess.Popen(["node", str(DRIVER)], cwd=WEB, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.call("open", url=url, width=width, height=height, locale=lang)

    def call(self, op: str, timeout: float = 120.0, **args: Any) -> Any:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"op": op, "timeout": int(timeout * 1000), **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"the browser driver exited during {op}:\n{err[-3000:]}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise AssertionError(f"browser {op} {args}: {reply.get('error')}")
        return reply.get("value")

    # Small conveniences over `call`, named like what a person does.
    def goto(self, url: str) -> None:
        self.call("goto", url=url)

    def click(self, selector: str) -> None:
        self.call("click", selector=selector)

    def fill(self, selector: str, value: str) -> None:
        self.call("fill", selector=selector, value=value)

    def text(self, selector: str) -> str:
        return self.call("text", selector=selector)

    def wait(self, selector: str, timeout: float = 120.0, state: str = "visible") -> None:
        """Wait for an element; state "attached" for what is never visible itself (an <option>)."""
        self.call("wait", selector=selector, state=state, timeout=timeout)

    def wait_for(self, expression: str, timeout: float = 300.0) -> Any:
        """Wait until a JavaScript expression is truthy in the page; returns its value."""
        return self.call("waitFunction", expression=expression, timeout=timeout)

    def eval(self, expression: str) -> Any:
        return self.call("eval", expression=expression)

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        self.call("screenshot", path=str(path), fullPage=full_page)

    def close(self) -> None:
        try:
            self.call("close", timeout=30)
        except (AssertionError, RuntimeError, OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
