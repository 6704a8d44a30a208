"""The parameter schema covers SPEC.md and resolves values the way a user expects."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from modxd import params as P
from modxd.errors import InvalidArgument

SPEC = Path(__file__).resolve().parents[2] / "shared" / "SPEC.md"


def spec_keys() -> set[str]:
    text = SPEC.read_text()
    section = text.split("### Parameters", 1)[1].split("### Templates", 1)[0]
    keys = set(re.findall(r"`([a-z][a-z0-9_]+)`", section))
    return keys - {"steps", "epoch", "no", "info", "debug", "warning", "error", "q_proj", "v_proj"}


@pytest.mark.skipif(not SPEC.exists(), reason="shared/SPEC.md is not beside the checkout")
def test_schema_has_every_spec_parameter() -> None:
    missing = spec_keys() - set(P.BY_KEY)
    assert not missing, f"parameters of SPEC.md missing from the schema: {sorted(missing)}"


def test_every_spec_entry_is_complete() -> None:
    for spec in P.SCHEMA:
        assert spec.label_zh and spec.label_en and spec.help, spec.key
        assert spec.fold_group in P.FOLD_GROUPS, spec.key
        assert spec.applies_to, spec.key
        if spec.type == "choice":
            assert spec.default in spec.choices, spec.key
        if spec.type in ("int", "float") and spec.min is not None:
            for t in spec.applies_to:
                assert spec.min <= spec.default_for(t) <= spec.max, spec.key


def test_seed_defaults() -> None:
    sft, pt = P.defaults_for("sft"), P.defaults_for("pretrain")
    assert sft["per_device_train_batch_size"] == 2 and sft["gradient_accumulation_steps"] == 4
    assert sft["max_seq_length"] == 512 and sft["learning_rate"] == 2e-4 and sft["num_train_epochs"] == 2
    assert sft["lr_scheduler_type"] == "cosine" and sft["save_steps"] == 100 and sft["seed"] == 42
    assert sft["use_lora"] is True and pt["use_lora"] is False
    assert sft["lora_target_modules"] == ["q_proj", "v_proj"]
    assert "lora_r" not in pt and "chat_template" not in pt


def test_strings_are_converted_by_type() -> None:
    out = P.resolve("sft", {}, {"train_file": "/a", "output_dir": "/b", "model_dir": "/c", "lora_r": "32",
                                "learning_rate": "1e-4", "fp16": "false",
                                "lora_target_modules": "q_proj, k_proj"})
    assert out["lora_r"] == 32 and out["learning_rate"] == 1e-4 and out["fp16"] is False
    assert out["lora_target_modules"] == ["q_proj", "k_proj"]


@pytest.mark.parametrize("overrides, fragment", [
    ({"lora_r": "0"}, "lora_r must be between 1 and 512"),
    ({"lora_r": "x"}, "lora_r must be an integer"),
    ({"learning_rate": "5"}, "learning_rate must be between"),
    ({"optim": "adam9"}, "optim must be one of"),
    ({"fp16": "maybe"}, "fp16 must be true or false"),
    ({"num_train_epoch": "3"}, "did you mean num_train_epochs"),
    ({"eval_strategy": "steps"}, "eval_strategy needs evaluation data"),
    ({"early_stopping_patience": "2", "eval_split_ratio": "0.1"}, "early_stopping_patience needs eval_strategy"),
    ({"seed": "1000000"}, "seed must be between 0 and 999999"),
    ({"learning_rate": "nan"}, "learning_rate must be a finite number"),
])
def test_bad_values_name_the_parameter(overrides: dict, fragment: str) -> None:
    base = {"train_file": "/a", "output_dir": "/b", "model_dir": "/c"}
    with pytest.raises(InvalidArgument, match=re.escape(fragment)):
        P.resolve("sft", {}, {**base, **overrides})


def test_lora_parameters_do_not_apply_to_pretraining() -> None:
    with pytest.raises(InvalidArgument, match="lora_r does not apply to pretrain"):
        P.resolve("pretrain", {}, {"train_file": "/a", "output_dir": "/b", "model_dir": "/c", "lora_r": "8"})
