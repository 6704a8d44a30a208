"""The dpo/orpo parameter specs: ready to join params.SCHEMA, typed and ranged like the others."""

from __future__ import annotations

import pytest

from modxd import params, preference_params as pp
from modxd.errors import InvalidArgument


BASE = {spec.key: spec for spec in params.BASE_SCHEMA}


def test_extend_makes_shared_keys_apply_and_adds_the_specs() -> None:
    schema = pp.extend(params.BASE_SCHEMA)
    assert schema == params.SCHEMA  # what params.py serves and resolves
    by_key = {spec.key: spec for spec in schema}
    assert len(by_key) == len(schema) == len(params.BASE_SCHEMA) + len(pp.SPECS)
    for key in pp.SHARED_KEYS:
        assert {"dpo", "orpo"} <= set(by_key[key].applies_to), key
        assert set(BASE[key].applies_to) <= set(by_key[key].applies_to)  # sft/pretrain unchanged
    assert by_key["lora_dropout"].applies_to == BASE["lora_dropout"].applies_to  # TRL turns dropout off
    assert by_key["learning_rate"].default_for("dpo") == 5e-5
    assert by_key["learning_rate"].default_for("sft") == BASE["learning_rate"].default_for("sft")
    assert by_key["use_lora"].default_for("orpo") is True and by_key["use_lora"].default_for("pretrain") is False
    assert by_key["beta"].applies_to == ("dpo",) and by_key["orpo_lambda"].applies_to == ("orpo",)
    assert not set(BASE) & {spec.key for spec in pp.SPECS}
    assert by_key["train_file"].help_for("dpo") == pp.TRAIN_FILE_HELP != by_key["train_file"].help_for("sft")
    with pytest.raises(KeyError, match="unknown schema keys: train_file"):
        pp.extend(tuple(spec for spec in params.BASE_SCHEMA if spec.key != "train_file"))


@pytest.mark.parametrize("spec", pp.SPECS, ids=lambda s: s.key)
def test_specs_are_complete_and_their_defaults_pass_their_own_checks(spec: params.ParamSpec) -> None:
    assert spec.label_zh and spec.label_en and spec.help.endswith((".", ")"))
    assert spec.fold_group in params.FOLD_GROUPS
    assert spec.type in ("bool", "int", "float", "string", "path", "choice", "string_list")
    for task in spec.applies_to:
        assert task in pp.PREFERENCE_TYPES
        assert params.coerce(spec, spec.default_for(task)) == spec.default_for(task)
    if spec.type == "choice":
        assert spec.default in spec.choices
    if spec.min is not None:
        with pytest.raises(InvalidArgument, match=f"parameter {spec.key} must be between"):
            params.coerce(spec, spec.max * 2 + 1)


def test_loss_types_are_trls() -> None:
    from trl import DPOConfig

    help_text = " ".join(f.metadata.get("help", "") for f in DPOConfig.__dataclass_fields__.values()
                         if f.name == "loss_type")
    for loss in pp.LOSS_TYPES:
        assert f"'{loss}'" in help_text, loss


def test_rules_between_parameters() -> None:
    ok = {"max_seq_length": 512, "max_prompt_length": 128, "loss_type": "sigmoid", "label_smoothing": 0.0}
    pp.check_preference(ok, "dpo")
    pp.check_preference({**ok, "loss_type": "robust", "label_smoothing": 0.1}, "dpo")
    pp.check_preference({**ok, "max_prompt_length": 999}, "sft")  # not a preference task: nothing to check
    for bad, message in (
        ({"max_prompt_length": 512}, "max_prompt_length \\(512\\) must be below max_seq_length \\(512\\)"),
        ({"loss_type": "exo_pair"}, "loss_type exo_pair needs label_smoothing above 0"),
        ({"label_smoothing": 0.1}, "label_smoothing is used by the robust and exo_pair losses only, not by 'sigmoid'"),
        ({"start_from_checkpoint": "/x", "use_lora": False}, "start_from_checkpoint continues a LoRA adapter"),
    ):
        with pytest.raises(InvalidArgument, match=message):
            pp.check_preference({**ok, **bad}, "dpo")
    pp.check_preference({**ok, "label_smoothing": 0.1}, "orpo")  # a dpo-only parameter is not read for orpo


def test_the_schema_resolves_and_serves_the_preference_types() -> None:
    from modx.v1 import common_pb2 as C

    from modxd.api import convert
    from modxd.store.templates import BUILTIN

    paths = {"train_file": "/d/pairs.jsonl", "output_dir": "/o", "model_dir": "/m"}
    dpo = params.resolve("dpo", {}, paths)
    assert (dpo.learning_rate, dpo.num_train_epochs, dpo.use_lora, dpo.beta, dpo.loss_type) == (5e-5, 1, True, 0.1,
                                                                                               "sigmoid")
    assert "orpo_lambda" not in dpo and "beta" not in params.resolve("orpo", {}, paths)
    assert params.resolve("orpo", {}, {**paths, "orpo_lambda": "0.5"}).orpo_lambda == 0.5
    with pytest.raises(InvalidArgument, match="parameter beta does not apply to orpo tasks"):
        params.resolve("orpo", {}, {**paths, "beta": 0.2})
    with pytest.raises(InvalidArgument, match="parameter lora_dropout does not apply to dpo tasks"):
        params.resolve("dpo", {}, {**paths, "lora_dropout": 0.1})
    with pytest.raises(InvalidArgument, match="max_prompt_length \\(64\\) must be below max_seq_length \\(64\\)"):
        params.resolve("dpo", {}, {**paths, "max_seq_length": 64, "max_prompt_length": 64})
    assert "start_from_checkpoint" in params.PATH_KEYS  # confined to the roots and pinned like every path
    assert {"default-dpo", "default-orpo"} <= set(BUILTIN)
    assert convert.TYPE_TO_PROTO == {"sft": C.TASK_TYPE_SFT, "pretrain": C.TASK_TYPE_PRETRAIN,
                                     "dpo": C.TASK_TYPE_DPO, "orpo": C.TASK_TYPE_ORPO}
    served = {s.key: convert.spec_to_proto(s, "dpo") for s in params.specs_for("dpo")}
    assert served["train_file"].help == pp.TRAIN_FILE_HELP and served["beta"].label_zh == "偏好强度 β"
    assert convert.spec_to_proto(params.BY_KEY["train_file"], "sft").help.startswith("JSONL on the daemon host")
    assert C.TASK_TYPE_DPO in served["learning_rate"].applies_to
