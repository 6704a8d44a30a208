"""Where each parameter's value came from, and the hook automatic settings plug into."""
from __future__ import annotations

from pathlib import Path

import pytest

from modxd import params as P
from modxd.errors import InvalidArgument
from modxd.param_sources import (AUTO, DEFAULT, EXPLICIT, TEMPLATE, AutoFacts, apply_auto, explicit_keys,
                                 settings_of, value_sources)
from modxd.preflight import preflight
from modxd.validation import validate_task
from tests.fixtures.plugin import sft_jsonl, tiny_llama_dir  # noqa: F401

PATHS = {"model_dir": "/m", "train_file": "/d.jsonl", "output_dir": "/o"}


def test_request_template_and_default_sources() -> None:
    template = {**P.defaults_for("sft"), "learning_rate": 1e-3}
    named = value_sources("sft", template, {"num_train_epochs": 5, **PATHS}, template_is_default=False)
    assert named["num_train_epochs"] == named["train_file"] == EXPLICIT
    assert named["learning_rate"] == TEMPLATE
    builtin = value_sources("sft", P.defaults_for("sft"), {"num_train_epochs": 5}, template_is_default=True)
    assert builtin["learning_rate"] == DEFAULT and builtin["num_train_epochs"] == EXPLICIT
    assert set(builtin) == {s.key for s in P.specs_for("sft")}
    settings = [s.to_dict() for s in settings_of(P.resolve("sft", {}, {"fp16": True, **PATHS}), builtin)]
    assert explicit_keys(settings) == {"num_train_epochs"}


def _facts(params: P.TrainParams, examples: int = 66) -> AutoFacts:
    return AutoFacts("sft", params, examples, 6000, 2000, 80, 200, 135_000_000, "llama", {})


def epochs_for_small_data(facts: AutoFacts) -> dict:
    """A resolver defined by the test: a rule of the kind the automatic settings will have."""
    epochs = 6 if facts.examples < 100 else 2
    return {"num_train_epochs": (epochs, f"{facts.examples} examples: {epochs} epochs"),
            "learning_rate": (1e-3, "LoRA on a small set"), "lora_r": (32, "a template's value stays")}


def test_the_hook_fills_defaults_only_and_says_why() -> None:
    params = P.resolve("sft", {}, {"lora_r": 8, **PATHS})
    sources = value_sources("sft", {"lora_r": 8}, {"learning_rate": 2e-4, **PATHS}, template_is_default=False)
    resolved, new_sources, reasons = apply_auto(params, sources, _facts(params), epochs_for_small_data)
    assert resolved.num_train_epochs == 6 and new_sources["num_train_epochs"] == AUTO
    assert reasons == {"num_train_epochs": "66 examples: 6 epochs"}
    assert resolved.learning_rate == 2e-4 and new_sources["learning_rate"] == EXPLICIT  # --set wins
    assert resolved.lora_r == 8 and new_sources["lora_r"] == TEMPLATE  # a named template wins
    assert apply_auto(params, sources, _facts(params), None) == (params, sources, {})


def test_the_hook_refuses_what_the_schema_refuses() -> None:
    params = P.resolve("sft", {}, PATHS)
    sources = value_sources("sft", {}, PATHS, template_is_default=True)
    with pytest.raises(InvalidArgument, match="num_train_epochs"):
        apply_auto(params, sources, _facts(params), lambda _f: {"num_train_epochs": (0, "none")})
    with pytest.raises(ValueError, match="not_a_parameter"):
        apply_auto(params, sources, _facts(params), lambda _f: {"not_a_parameter": (1, "?")})


def test_preflight_gives_the_resolver_the_report_counts(tiny_llama_dir: Path, sft_jsonl: Path, tmp_path: Path) -> None:
    seen: list[AutoFacts] = []

    def resolver(facts: AutoFacts) -> dict:
        seen.append(facts)
        return {"max_seq_length": (64, "short examples"), "num_train_epochs": (4, "few examples")}

    overrides = {"model_dir": str(tiny_llama_dir), "train_file": str(sft_jsonl), "output_dir": str(tmp_path / "o")}
    params = P.resolve("sft", {}, overrides)
    roots = [Path("/")]
    checked = validate_task("sft", params, roots)
    sources = value_sources("sft", P.defaults_for("sft"), overrides, template_is_default=True)
    flight = preflight("sft", checked, sources, resolver, roots, tmp_path / "state", "cpu", [])
    (facts,) = seen
    assert facts.examples == 32 and facts.model_type == "llama" and facts.model_parameters > 0
    assert facts.params.max_seq_length == 512  # before the rule
    assert flight.params.max_seq_length == 64 and flight.params.num_train_epochs == 4
    assert flight.estimate.train.max_seq_length == 64  # reported again at the new length
    assert flight.estimate.run.epochs == 4
    by_key = {s.key: s for s in flight.settings}
    assert by_key["num_train_epochs"].source == AUTO and by_key["num_train_epochs"].reason == "few examples"
    assert by_key["train_file"].source == EXPLICIT and by_key["lora_r"].source == DEFAULT
