"""What one training parameter is (its schema entry), apart from the list of them.

params.py holds the schema and the rules that apply it; the parameters of a group of task
types that arrived later (preference_params.py) are written in the same form, and params.py
joins them, so both import this leaf rather than each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SFT, PRETRAIN = "sft", "pretrain"
BOTH = (SFT, PRETRAIN)  # the parameters the first two types share (preference_params.SHARED_KEYS adds its types)

Value = bool | int | float | str | list[str]


@dataclass(frozen=True)
class ParamSpec:
    key: str
    category: str
    label_zh: str
    label_en: str
    help: str
    type: str  # bool, int, float, string, path, choice, string_list
    default: Value
    fold_group: str = ""
    applies_to: tuple[str, ...] = BOTH
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False
    type_defaults: dict[str, Value] = field(default_factory=dict)
    unit: str = ""
    # Strings (and each name of a list): at most this long, no control characters but those in `allow`.
    max_chars: int = 256
    allow: str = ""
    # Help that differs by task type (train_file: what the data of that type look like).
    type_help: dict[str, str] = field(default_factory=dict)

    def default_for(self, task_type: str) -> Value:
        value = self.type_defaults.get(task_type, self.default)
        return list(value) if isinstance(value, list) else value

    def help_for(self, task_type: str) -> str:
        return self.type_help.get(task_type, self.help)


def _p(key, category, zh, en, help, type, default, fold="", **kw) -> ParamSpec:
    return ParamSpec(key, category, zh, en, help, type, default, fold, **kw)
