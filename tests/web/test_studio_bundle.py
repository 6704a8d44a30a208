"""The studio's committed build is fresh and small, and its logic passes its own unit tests.

The browser bundle in daemon/modxd/web/static/ and the generated client in clients/web/src/gen/
are committed so a Python-only host serves the studio without Node; these tests rebuild both
from protos/ and clients/web/src and require byte-identical output (`make studio` rewrites them).
They need node + npm (they run `npm ci` in clients/web) and skip with the reason otherwise.
"""
from __future__ import annotations

import filecmp
import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.daemon import REPO
from tests.web.studio import WEB, ensure_node_modules

STATIC = REPO / "daemon" / "modxd" / "web" / "static"
GZIP_BUDGET = 300 * 1024


def _same_tree(fresh: Path, committed: Path) -> list[str]:
    """Files that differ, are missing or are extra, relative to the two trees (compared by content)."""
    problems: list[str] = []

    def walk(c: filecmp.dircmp, prefix: str) -> None:
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        problems.extend(f"{prefix}{n} (stale)" for n in mismatch + errors)
        problems.extend(f"{prefix}{n} (not committed)" for n in c.left_only)
        problems.extend(f"{prefix}{n} (no longer generated)" for n in c.right_only)
        for name, sub in c.subdirs.items():
            walk(sub, f"{prefix}{name}/")
    walk(filecmp.dircmp(fresh, committed), "")
    return problems


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (Node 18+ builds the studio; the committed bundle is served as is)")
    return ensure_node_modules()


def _run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "BUF_CACHE_DIR": str(WEB / "node_modules" / ".cache" / "buf")})


def test_generated_client_is_fresh(node_modules: Path, tmp_path: Path) -> None:
    proc = _run([str(node_modules / ".bin" / "buf"), "generate", "--template", "clients/web/buf.gen.yaml",
                 "-o", str(tmp_path)], REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    problems = _same_tree(tmp_path / "clients/web/src/gen", WEB / "src/gen")
    assert not problems, "the studio's generated client is stale; run `make studio`: " + ", ".join(problems)


def test_typescript_compiles(node_modules: Path) -> None:
    for project in ("tsconfig.json", "test/tsconfig.json"):
        proc = _run([str(node_modules / ".bin" / "tsc"), "-p", project], WEB)
        assert proc.returncode == 0, f"tsc -p {project}:\n{proc.stdout}{proc.stderr}"


def test_committed_bundle_is_fresh(node_modules: Path, tmp_path: Path) -> None:
    proc = _run(["node", "build.mjs", "--out", str(tmp_path / "static")], WEB)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    problems = _same_tree(tmp_path / "static", STATIC)
    assert not problems, "the committed studio bundle is stale; run `make studio`: " + ", ".join(problems)


def test_bundle_is_deterministic(node_modules: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        proc = _run(["node", "build.mjs", "--out", str(tmp_path / name)], WEB)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not _same_tree(tmp_path / "a", tmp_path / "b")


def test_bundle_fits_the_budget() -> None:
    """Under 300 KB gzipped, everything the page loads (this needs no Node: it reads the committed files)."""
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert (STATIC / "index.html").is_file() and any(p.suffix == ".js" for p in files)
    total = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    assert total < GZIP_BUDGET, f"the studio is {total} bytes gzipped, over the {GZIP_BUDGET} budget"


def test_unit_tests_pass(node_modules: Path) -> None:
    build = _run(["node", "build.mjs", "--tests"], WEB)
    assert build.returncode == 0, build.stdout + build.stderr
    proc = _run(["node", "--test", ".test-build/"], WEB)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout
