"""Where each of a task's parameter values came from, and the one place automatic values are applied.

A value is **explicit** when the request named it (CreateTask's params, `modxctl --set`), comes
from a **template** when a named template set it, or is the schema's **default** (the type's
built-in template is the schema's defaults, so its values count as defaults). An **auto** value was
chosen by a rule from the data and the model, with a one-line reason.

Automatic settings are not decided here: :func:`apply_auto` takes the resolver as a collaborator
(the App is given one; see :data:`AutoResolver`), asks it for values given the data report's counts
and the model's facts, and applies them only to parameters whose value is a default: an explicit
value or a named template's is never replaced. The resolved values are checked by the schema like
any other (``TrainParams.replace``). The sources are stored with the task (store/tasks.py
``settings``) and read back by the supervisor: ``fp16`` set explicitly keeps fp16 on a bf16 GPU
(train_config.TrainConfig.fp16_explicit, engine/precision.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

from . import params as P

__all__ = ["EXPLICIT", "TEMPLATE", "DEFAULT", "AUTO", "SOURCES", "Setting", "AutoFacts", "AutoResolver",
           "value_sources", "settings_of", "apply_auto", "explicit_keys"]

EXPLICIT, TEMPLATE, DEFAULT, AUTO = "explicit", "template", "default", "auto"
SOURCES = (DEFAULT, TEMPLATE, EXPLICIT, AUTO)
REPLACEABLE = (DEFAULT,)  # what an automatic value may replace


@dataclass(frozen=True)
class Setting:
    """One parameter as the task resolved it."""

    key: str
    value: Any
    source: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AutoFacts:
    """What an automatic rule may look at: the task's resolved parameters (before any auto value),
    the training data as the data report counted it, and the model."""

    task_type: str
    params: P.TrainParams
    examples: int  # training examples the worker keeps (after max_samples, the split, dropped ones)
    tokens_per_epoch: int
    trainable_tokens_per_epoch: int
    median_example_tokens: int
    longest_example_tokens: int
    model_parameters: int  # 0 when unknown
    model_type: str
    model_config: Mapping[str, Any]


# Given the facts, {parameter: (value, one-line reason)} for the parameters it has a rule for.
AutoResolver = Callable[[AutoFacts], Mapping[str, tuple[Any, str]]]


def value_sources(task_type: str, template_params: Mapping[str, Any], overrides: Mapping[str, Any],
                  template_is_default: bool) -> dict[str, str]:
    """The source of each parameter of ``task_type`` (see the module docstring)."""
    out = {}
    for spec in P.specs_for(task_type):
        key = spec.key
        if key in overrides:
            out[key] = EXPLICIT
        elif key in template_params and not template_is_default:
            out[key] = TEMPLATE
        else:
            out[key] = DEFAULT
    return out


def settings_of(params: Mapping[str, Any], sources: Mapping[str, str],
                reasons: Mapping[str, str] | None = None) -> list[Setting]:
    """Every parameter with its source (an auto one with its reason), in the schema's order."""
    reasons = reasons or {}
    return [Setting(key, params[key], sources.get(key, DEFAULT), reasons.get(key, "")) for key in params]


def explicit_keys(settings: list[dict[str, Any]]) -> set[str]:
    """The parameters a stored task's request set itself."""
    return {s["key"] for s in settings if s.get("source") == EXPLICIT}


def apply_auto(params: P.TrainParams, sources: Mapping[str, str], facts: AutoFacts,
               resolver: AutoResolver | None) -> tuple[P.TrainParams, dict[str, str], dict[str, str]]:
    """(params with the resolver's values applied where allowed, their sources, the reasons).

    A value for a parameter the request or a named template set is left out (theirs win); one the
    schema refuses raises InvalidArgument like a bad request would (a rule that proposes an
    impossible value is a bug the create must not hide)."""
    sources = dict(sources)
    if resolver is None:
        return params, sources, {}
    proposed = resolver(facts)
    changes, reasons = {}, {}
    for key, (value, reason) in proposed.items():
        if key not in params:
            raise ValueError(f"the automatic settings proposed {key!r}, which is not a parameter of "
                             f"{params.task_type} tasks")
        if sources.get(key, DEFAULT) not in REPLACEABLE:
            continue
        changes[key] = value
        reasons[key] = str(reason)
    if not changes:
        return params, sources, {}
    resolved = params.replace(**changes)
    for key in changes:
        sources[key] = AUTO
    return resolved, sources, reasons
