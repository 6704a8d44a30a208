"""Parameter templates: the built-in ones (one per training type, and `seed-sft`) plus user templates by name.

`default-<type>` is the schema's defaults: the values the App's automatic settings may replace
(param_sources.py). `seed-sft` holds the seed's literal SFT values as a named template, so nothing
replaces them: the way to train exactly as the seed specified."""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .. import params as P
from ..errors import FailedPrecondition, InvalidArgument, NotFound, quote
from .db import Database

BUILTIN = {f"default-{task_type}": task_type for task_type in P.TASK_TYPES} | {"seed-sft": "sft"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class TemplateRecord:
    name: str
    type: str
    description: str = ""
    builtin: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    create_time: float = 0.0
    update_time: float = 0.0


def builtin(name: str) -> TemplateRecord:
    task_type = BUILTIN[name]
    kind = P.TASK_TYPES[task_type].description
    if name == "seed-sft":
        return TemplateRecord(name, task_type, f"The seed's literal values for {kind}, never replaced by automatic "
                              "settings", True, P.defaults_for(task_type))
    return TemplateRecord(name, task_type, f"Built-in defaults for {kind} (automatic settings may replace some)",
                          True, P.defaults_for(task_type))


def check_name(name: str) -> str:
    """The one rule for template names (for saving, and for looking up: a name that breaks it cannot exist)."""
    if not _NAME.fullmatch(name):
        raise InvalidArgument(f"template name {quote(name)} must be 1-64 letters, digits, '.', '_' or '-', "
                              "starting with a letter or digit")
    return name


def default_template_name(task_type: str) -> str:
    return f"default-{task_type}"


class TemplateRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, name: str) -> TemplateRecord:
        return await self._load(check_name(name))

    async def _load(self, name: str) -> TemplateRecord:
        if name in BUILTIN:
            return builtin(name)
        row = await self.db.one("SELECT * FROM templates WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"template {name!r} does not exist (see ListTemplates, `modxctl templates list`)")
        return TemplateRecord(row["name"], row["type"], row["description"], False, json.loads(row["params"]),
                              row["create_time"], row["update_time"])

    async def list(self, task_type: str = "") -> list[TemplateRecord]:
        rows = await self.db.all("SELECT name FROM templates ORDER BY name")
        records = [builtin(n) for n in BUILTIN] + [await self._load(r["name"]) for r in rows]
        return [t for t in records if not task_type or t.type == task_type]

    async def save(self, record: TemplateRecord, overwrite: bool) -> TemplateRecord:
        check_name(record.name)
        if record.name in BUILTIN:
            raise FailedPrecondition(f"template {record.name} is built in and cannot be replaced")
        now = time.time()
        async with self.db.tx() as conn:
            cur = await conn.execute("SELECT create_time FROM templates WHERE name = ?", (record.name,))
            row = await cur.fetchone()
            await cur.close()
            if row is not None and not overwrite:
                raise FailedPrecondition(
                    f"template {record.name} already exists; pass overwrite to replace it")
            record.create_time = row["create_time"] if row else now
            record.update_time = now
            await conn.execute(
                "INSERT OR REPLACE INTO templates (name, type, description, params, create_time, update_time)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (record.name, record.type, record.description, json.dumps(record.params),
                 record.create_time, now))
        return record

    async def delete(self, name: str) -> None:
        check_name(name)
        if name in BUILTIN:
            raise FailedPrecondition(f"template {name} is built in and cannot be deleted")
        async with self.db.tx() as conn:
            cur = await conn.execute("DELETE FROM templates WHERE name = ?", (name,))
            if cur.rowcount == 0:
                raise NotFound(f"template {name!r} does not exist")
            await cur.close()
