"""The GPU path's decisions, on the CPU: precision, the VRAM estimate, OOM advice, telemetry, features.

Each decision is a function of facts (a device's capability, a model's config, the task's
parameters), so every rule is checked here with the facts of real cards and real models
(SmolLM2-135M's and Llama-3.2-1B's published configs) without a GPU.
"""

from __future__ import annotations

import pytest

from modxd.engine.memory import (GiB, estimate_training_memory, largest_fitting_batch, memory_advice, model_shape,
                                 model_shape_problem, oom_advice)
from modxd.engine.precision import DeviceCaps, decide_precision

CPU = DeviceCaps()
T4 = DeviceCaps("cuda", "Tesla T4", 7)
A100 = DeviceCaps("cuda", "NVIDIA A100-SXM4-80GB", 8)
H100 = DeviceCaps("cuda", "NVIDIA H100 80GB HBM3", 9)

SMOLLM2_135M = {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "intermediate_size": 1536,
                "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152, "tie_word_embeddings": True}
LLAMA_32_1B = {"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16, "intermediate_size": 8192,
               "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256,
               "tie_word_embeddings": True}
SEED = {"use_lora": True, "lora_r": 16, "lora_target_modules": ["q_proj", "v_proj"], "fp16": True, "bf16": False,
        "per_device_train_batch_size": 2, "max_seq_length": 512, "gradient_checkpointing": True,
        "quantization_bit": 0, "optim": "adamw_torch"}


# ------------------------------------------------------------------ precision

def _codes(p) -> list[str]:
    return [w["code"] for w in p.warnings]


@pytest.mark.parametrize("caps, asked, used, codes", [
    # the seed's default (fp16 on, bf16 off)
    (CPU, (True, False, False), "float32", []),  # the default falls back with a note (below), not a warning
    (T4, (True, False, False), "float16", []),
    (A100, (True, False, False), "bfloat16", []),  # bf16 preferred where it exists
    (H100, (True, False, False), "bfloat16", []),
    # bf16 asked
    (H100, (False, True, False), "bfloat16", []),
    (T4, (False, True, False), "float32", ["bf16_unavailable"]),
    (T4, (True, True, False), "float16", ["precision_conflict", "bf16_unavailable"]),
    (CPU, (False, True, False), "float32", ["bf16_unavailable"]),
    # fp32 asked
    (H100, (False, False, False), "float32", []),
    # tf32
    (H100, (False, False, True), "float32", []),
    (T4, (False, False, True), "float32", ["tf32_unavailable"]),
    (CPU, (False, False, True), "float32", ["tf32_unavailable"]),
])
def test_precision_decision(caps: DeviceCaps, asked: tuple[bool, bool, bool], used: str, codes: list[str]) -> None:
    p = decide_precision(caps, *asked)
    assert p.load_dtype_name == used
    assert _codes(p) == codes
    assert p.tf32 == (asked[2] and caps.major >= 8)
    assert p.loss_scaling == (used == "float16")  # Trainer's fp16=True runs the GradScaler


def test_fp16_kept_when_asked_for_explicitly() -> None:
    p = decide_precision(H100, True, False, False, fp16_explicit=True)
    assert p.fp16 and not p.bf16 and p.loss_scaling and not p.warnings


def test_fp16_on_the_cpu_warns_only_when_the_task_asked_for_it() -> None:
    default = decide_precision(CPU, True, False, False)
    assert not default.warnings and any("fp16 is on (the default)" in n for n in default.notes)
    asked = decide_precision(CPU, True, False, False, fp16_explicit=True)
    assert _codes(asked) == ["fp16_unavailable"] and asked.load_dtype_name == "float32"


def test_bf16_preference_is_said() -> None:
    p = decide_precision(H100, True, False, False)
    assert any("supports bf16" in n and "H100" in n for n in p.notes)


def test_fallback_warnings_name_the_device() -> None:
    assert "Tesla T4" in decide_precision(T4, False, True, False).warnings[0]["message"]
    assert "the CPU" in decide_precision(CPU, True, False, False, fp16_explicit=True).warnings[0]["message"]


# ------------------------------------------------------------------ memory estimate

def test_mpt_style_dimension_names_size_the_model_too() -> None:
    mpt = {"d_model": 2048, "n_layers": 24, "n_heads": 16, "vocab_size": 50368}
    shape = model_shape(mpt)
    assert (shape.hidden, shape.layers, shape.heads, shape.intermediate) == (2048, 24, 16, 4 * 2048)
    assert model_shape_problem(mpt, shape.parameters) == ""
    assert "names no hidden_size" in model_shape_problem({"vocab_size": 10}, 100)


def test_parameter_counts_of_known_configs() -> None:
    assert model_shape(SMOLLM2_135M).parameters == 134_515_008
    assert model_shape(LLAMA_32_1B).parameters == 1_235_814_400
    assert model_shape(SMOLLM2_135M, parameters=123).parameters == 123  # the weights' count wins


def test_weights_and_state_follow_the_training_mode() -> None:
    shape = model_shape(LLAMA_32_1B)
    n = shape.parameters
    lora = estimate_training_memory(shape, SEED)
    assert lora.parts["weights"] == n * 2  # 16-bit frozen base under mixed precision
    trainable = 16 * 16 * (2048 + 2048) + 16 * 16 * (2048 + 512)  # r 16 on q_proj and v_proj, 16 layers
    assert lora.trainable_parameters == trainable and lora.parts["trainable_state"] == trainable * 16
    full = estimate_training_memory(shape, {**SEED, "use_lora": False})
    assert full.parts["weights"] == n * 4 and full.parts["trainable_state"] == n * 12
    qlora = estimate_training_memory(shape, {**SEED, "quantization_bit": 4})
    assert qlora.parts["weights"] < lora.parts["weights"] * 0.45  # 4.5 bits for the blocks, 16 for embeddings
    all_linear = estimate_training_memory(shape, {**SEED, "lora_target_modules": ["all-linear"]})
    assert all_linear.trainable_parameters > 5 * lora.trainable_parameters


def test_activations_scale_with_tokens_and_checkpointing_saves_most() -> None:
    shape = model_shape(LLAMA_32_1B)
    one = estimate_training_memory(shape, SEED, batch_size=1)
    four = estimate_training_memory(shape, SEED, batch_size=4)
    assert four.parts["activations"] == 4 * one.parts["activations"]
    assert four.parts["logits"] == 4 * one.parts["logits"] == 4 * 512 * 128256 * 8
    without = estimate_training_memory(shape, SEED, batch_size=4, gradient_checkpointing=False)
    assert without.parts["activations"] > 5 * four.parts["activations"]


def test_estimates_agree_with_the_seed_guidance() -> None:
    """SPEC.md's table: <1B LoRA 4 GB; 1-3B full fine-tuning 24 GB (seed defaults: batch 2 x 512)."""
    assert estimate_training_memory(model_shape(SMOLLM2_135M), SEED).total < 4 * GiB
    full_1b = estimate_training_memory(model_shape(LLAMA_32_1B), {**SEED, "use_lora": False}).total
    assert 16 * GiB < full_1b < 26 * GiB


def test_advice_names_what_would_fit() -> None:
    shape = model_shape(LLAMA_32_1B)
    big_batch = {**SEED, "per_device_train_batch_size": 64, "max_seq_length": 2048, "gradient_checkpointing": False}
    text = " ".join(memory_advice(shape, big_batch, 24 * GiB))
    assert "gradient_checkpointing" in text and "per_device_train_batch_size" in text and "quantization_bit 4" in text
    assert "max_seq_length (now 2048)" in text and "larger GPU" in text
    cpu = " ".join(memory_advice(shape, big_batch, 24 * GiB, "cpu"))  # no QLoRA, no GPU on a CPU run
    assert "quantization_bit" not in cpu and "GPU" not in cpu and "per_device_train_batch_size" in cpu
    full = memory_advice(shape, {**SEED, "use_lora": False}, 8 * GiB)
    assert any("use_lora" in a for a in full)


def test_preference_pairs_count_two_sequences_and_full_dpo_a_reference_copy() -> None:
    shape = model_shape(LLAMA_32_1B)
    sft = estimate_training_memory(shape, SEED)
    for kind in ("dpo", "orpo"):
        pairs = estimate_training_memory(shape, SEED, task_type=kind)
        assert pairs.tokens_per_step == 2 * sft.tokens_per_step and pairs.parts["logits"] == 2 * sft.parts["logits"]
        assert pairs.parts["weights"] == sft.parts["weights"]  # LoRA: the reference is the adapter switched off
    full = {**SEED, "use_lora": False}
    dpo, orpo = (estimate_training_memory(shape, full, task_type=k) for k in ("dpo", "orpo"))
    assert dpo.parts["weights"] == orpo.parts["weights"] + shape.parameters * 2  # a bf16/fp16 frozen reference
    assert any("reference" in n for n in dpo.notes) and not any("reference" in n for n in orpo.notes)
    assert largest_fitting_batch(shape, SEED, 24 * GiB, task_type="dpo") < largest_fitting_batch(shape, SEED, 24 * GiB)


def test_largest_fitting_batch_is_the_boundary() -> None:
    shape = model_shape(LLAMA_32_1B)
    params = {**SEED, "max_seq_length": 2048}
    best = largest_fitting_batch(shape, params, 24 * GiB)
    assert best >= 1
    assert estimate_training_memory(shape, params, batch_size=best).total <= 24 * GiB
    assert estimate_training_memory(shape, params, batch_size=best + 1).total > 24 * GiB


def test_oom_advice_names_what_to_change() -> None:
    text = oom_advice({**SEED, "per_device_train_batch_size": 8, "gradient_checkpointing": False})
    assert "per_device_train_batch_size (now 8" in text and "gradient_checkpointing on" in text
    assert "quantization_bit 4" in text and "max_seq_length" in text
    assert "quantization_bit" not in oom_advice({**SEED, "per_device_train_batch_size": 1, "quantization_bit": 4})
    assert "use_lora" in oom_advice({**SEED, "use_lora": False})


# ------------------------------------------------------------------ telemetry, features, distribution

def test_telemetry_on_the_cpu_is_the_rss_only() -> None:
    from modxd.engine.telemetry import DeviceTelemetry, nvml_index, peak_memory_bytes

    sample = DeviceTelemetry("cpu").sample()
    assert set(sample) == {"host_memory_rss_bytes"} and sample["host_memory_rss_bytes"] > 0
    assert peak_memory_bytes("cpu") is None
    assert nvml_index(1, "3,5") == 5 and nvml_index(1, None) == 1 and nvml_index(0, "GPU-abc") == 0


def test_liger_and_qlora_on_the_cpu() -> None:
    from modxd.engine.features import check_gpu_features, liger_problem
    from modxd.engine.models import EngineError

    assert "CPU" in liger_problem("cpu", "llama")
    warned: list[tuple[str, str]] = []
    cfg = {"quantization_bit": 0, "use_liger_kernel": True}
    assert check_gpu_features(cfg, "cpu", "llama", lambda code, message: warned.append((code, message))) is False
    assert warned[0][0] == "liger_ignored"
    with pytest.raises(EngineError, match="quantization_bit 4 .QLoRA. needs a CUDA GPU"):
        check_gpu_features({"quantization_bit": 4, "use_liger_kernel": False}, "cpu", "llama", lambda *a: None)


def test_distributed_gpus_use_nccl(monkeypatch) -> None:
    from modxd.engine.distributed import training_args_extra

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert training_args_extra({}, "cuda:0")["ddp_backend"] == "nccl"
    assert training_args_extra({}, "cpu")["ddp_backend"] == "gloo"
    assert training_args_extra({"distributed_strategy": "fsdp"}, "cuda:1")["fsdp"] is True
