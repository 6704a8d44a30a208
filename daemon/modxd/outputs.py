"""Where a task's files may go, against the other tasks: the store's half of the output-dir rule.

modxd/paths.py holds the rule itself (not a root, not the state dir or near it, not inside
another task's output dir); this class brings it the output dirs of the tasks already stored.
Task creation, package exports and GGUF imports all check through it.
"""
from __future__ import annotations

from pathlib import Path

from .paths import check_output_location
from .store.tasks import TaskRepo


class OutputLocations:
    def __init__(self, tasks: TaskRepo, roots: list[Path], state_dir: Path) -> None:
        self.tasks = tasks
        self.roots = roots
        self.state_dir = state_dir

    async def check(self, field: str, path: Path, own_task: str = "") -> None:
        """`path` may take new files (`own_task`'s own dir and what is in it are fine)."""
        others = [(task_id, out) for task_id, out in await self.tasks.output_dirs() if task_id != own_task]
        if own_task:
            mine = Path((await self.tasks.get(own_task)).params.get("output_dir") or "/")
            if path == mine or mine in path.parents:
                others = []
        check_output_location(field, path, self.roots, self.state_dir, others)
