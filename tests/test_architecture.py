"""docs/architecture.md's picture of the layers is drawn from the code by scripts/import_graph.py."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "import_graph.py"


def _script():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_committed_picture_is_what_the_imports_draw() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_imports_inside_functions_count_and_upward_ones_are_listed(tmp_path: Path) -> None:
    graph = _script()
    package = tmp_path / "modxd"
    (package / "engine").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "engine" / "__init__.py").write_text("")
    (package / "app.py").write_text("def run():\n    from .engine.train import fit\n    return fit\n")
    (package / "engine" / "train.py").write_text("import modxd.app\n\ndef fit():\n    pass\n")
    assert graph.imports(package) == {"app": {"engine.train"}, "engine.train": {"app"}}
    block = graph.render(package)
    assert "app -->|1| engine" in block and "engine -. 1 up .-> app" in block
    assert "- `modxd.engine.train` imports `modxd.app`" in block
    (package / "mystery.py").write_text("")
    with pytest.raises(SystemExit, match="modxd/mystery.py is in no layer"):
        graph.render(package)
