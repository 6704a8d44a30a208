"""The daemon never loads the ML stack: torch and friends live behind the worker boundary.

Each check runs in a fresh interpreter. The modules are found from the code, not from a list kept by
hand: the daemon's entry points; then every module of the daemon's side (all of modxd but the engine/
and worker/ packages) together with every engine or worker module that side imports, at the top of a
file or inside a function (read from the source with ast), since a lazy import runs in the daemon too.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "numpy", "transformers", "llama_cpp", "peft", "trl", "datasets")

_LOADED = f"""
print(__import__("json").dumps(sorted({{name.split(".")[0] for name in __import__("sys").modules}} & set({HEAVY!r}))))
"""

_EVERY_DAEMON_MODULE = """
import ast, importlib, importlib.util, pkgutil
import modxd

BEHIND = ("modxd.engine", "modxd.worker")  # the worker boundary and what runs behind it


def behind(name):
    return any(name == p or name.startswith(p + ".") for p in BEHIND)


def imported_by(name):
    \"\"\"Every modxd module `name` imports, anywhere in its source.\"\"\"
    spec = importlib.util.find_spec(name)
    package = name if spec.submodule_search_locations else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(open(spec.origin, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("modxd"):
                out.add(module)
                out.update(f"{module}.{a.name}" for a in node.names
                           if importlib.util.find_spec(module).submodule_search_locations
                           and importlib.util.find_spec(f"{module}.{a.name}") is not None)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("modxd"))
    return out


daemon_side = [m.name for m in pkgutil.walk_packages(modxd.__path__, "modxd.") if not behind(m.name)]
reached = sorted({m for name in daemon_side for m in imported_by(name) if behind(m)})
for name in daemon_side + reached:
    importlib.import_module(name)
print(__import__("json").dumps(reached))
"""


def _run(code: str) -> list[list[str]]:
    proc = subprocess.run([sys.executable, "-c", code + _LOADED], capture_output=True, text=True, cwd=REPO,
                          timeout=300, env={"PYTHONPATH": f"{REPO / 'daemon'}:{REPO / 'clients' / 'python'}:{REPO / 'gen' / 'python'}",
                                            "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.strip().splitlines()]


def test_the_daemon_entry_points_load_no_ml_library() -> None:
    (loaded,) = _run("import modxd.server, modxd.main, modxd.web.listener\n")
    assert loaded == [], f"importing the daemon loads {loaded}: import it behind the worker boundary"


def test_every_daemon_module_and_what_it_imports_lazily_load_no_ml_library() -> None:
    reached, loaded = _run(_EVERY_DAEMON_MODULE)
    assert "modxd.worker.spawn" in reached and "modxd.engine.formats" in reached  # the scan sees the imports
    assert loaded == [], f"the daemon's modules (and {reached}) load {loaded}"
