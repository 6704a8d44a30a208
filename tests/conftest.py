"""Shared fixtures: tiny models and data (tests.fixtures.plugin) and real daemons."""
from __future__ import annotations

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
