"""The GPU path on a real CUDA device (marked ``gpu``: skipped without one; bench/gpu_check.sh runs them).

Run alone, without the daemon's conftest (the GPU image may lack the daemon's packages):
    python -m pytest --noconftest -p tests.fixtures.plugin -m gpu tests/gpu
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from tests.fixtures.plugin import EventRecorder, engine_config
from tests.fixtures.tiny_models import make_tiny_llama

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _ampere() -> bool:
    return torch.cuda.get_device_capability(0)[0] >= 8


@pytest.fixture(scope="module")
def gpu_llama(tmp_path_factory) -> Path:
    """A small Llama with FlashAttention-sized heads (head_dim 32, grouped-query attention)."""
    return make_tiny_llama(tmp_path_factory.mktemp("gpu-llama"), hidden_size=128, intermediate_size=256,
                           num_attention_heads=4, num_key_value_heads=2)


def _features(n: int, vocab: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ids = [rng.randrange(5, vocab) for _ in range(rng.randint(8, 300))]
        prompt = rng.randint(1, len(ids) - 1)
        out.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return out


def test_varlen_kernel_equals_the_loop_and_padded_batches(gpu_llama: Path) -> None:
    from modxd.engine import attention, packing
    from modxd.engine.data import PadCollator
    from modxd.engine.models import apply_lora, load_model
    from modxd.engine.packing import PackedCollator, labelled_loss, use_padding_free

    if not _ampere():
        pytest.skip("FlashAttention kernels need compute capability 8.0+")
    backend = attention.backend_for(torch.device("cuda", 0))
    assert backend in (attention.TORCH_VARLEN, attention.FLASH_ATTN), backend
    torch.manual_seed(0)
    model = apply_lora(load_model(str(gpu_llama), "bfloat16"), 8, 16, 0.0, ["all-linear"]).to("cuda")
    features = _features(8, model.config.vocab_size)
    n_items = torch.tensor(sum(1 for f in features for x in f["labels"][1:] if x != -100), device="cuda")

    def run(kind: str) -> tuple[float, dict]:
        model.zero_grad(set_to_none=True)
        if kind == "padded":
            model.get_base_model().set_attn_implementation("sdpa")
            batch = {k: v.to("cuda") for k, v in PadCollator(pad_token_id=0)(features).items()}
            loss = model(**batch, num_items_in_batch=n_items).loss
        else:
            use_padding_free(model)
            batch = {k: v.to("cuda") if hasattr(v, "to") else v for k, v in PackedCollator()(features).items()}
            labels = batch.pop("labels")
            loss = labelled_loss(model(**batch), labels, n_items)
        loss.backward()
        return loss.item(), {n: p.grad.float().clone() for n, p in model.named_parameters() if p.requires_grad}

    padded_loss, padded_grads = run("padded")
    kernel_loss, kernel_grads = run("kernel")
    original = packing.backend_for
    packing.backend_for = lambda device: attention.LOOP
    try:
        loop_loss, loop_grads = run("loop")
    finally:
        packing.backend_for = original
    assert abs(kernel_loss - loop_loss) < 1e-2 and abs(kernel_loss - padded_loss) < 1e-2
    for name, grad in loop_grads.items():
        rel = (kernel_grads[name] - grad).norm() / max(grad.norm(), 1e-6)
        assert rel < 5e-2, (name, float(rel))  # bf16 operands: ~1e-2 relative error


def test_precision_on_this_gpu() -> None:
    from modxd.engine.precision import resolve_precision

    p = resolve_precision("cuda:0", True, False, False)
    assert (p.bf16, p.fp16) == ((True, False) if _ampere() else (False, True))
    assert resolve_precision("cuda:0", True, False, False, fp16_explicit=True).fp16


def _train(model_dir: Path, data: Path, out: Path, **overrides) -> tuple[dict, EventRecorder]:
    from modxd.engine.train import run_training

    events = EventRecorder()
    config = engine_config(model_dir, data, out, device="cuda:0", fp16=True, max_seq_length=256, **overrides)
    return run_training(config, events, lambda: None), events


def test_training_on_cuda_reports_device_memory(gpu_llama: Path, sft_jsonl: Path, tmp_path: Path) -> None:
    result, events = _train(gpu_llama, sft_jsonl, tmp_path / "out", lora_target_modules=["all-linear"])
    assert result["outcome"] == "completed" and result["peak_device_memory_bytes"] > 0
    last = events.train_metrics[-1]
    assert last["device_memory_peak_bytes"] >= last["device_memory_allocated_bytes"] > 0
    assert last["device_memory_reserved_bytes"] >= last["device_memory_allocated_bytes"]
    if importlib.util.find_spec("pynvml"):
        assert "gpu_temperature_celsius" in last or any("NVML is unavailable" in e["message"]
                                                        for e in events.of("log"))


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="bitsandbytes is not installed")
def test_qlora_trains_and_merges_into_the_unquantized_base(gpu_llama: Path, sft_jsonl: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    result, events = _train(gpu_llama, sft_jsonl, tmp_path / "out", quantization_bit=4, gradient_checkpointing=True,
                            lora_target_modules=["all-linear"], merge_lora_after_training=True, num_train_epochs=2)
    losses = [m["loss"] for m in events.train_metrics]
    assert result["outcome"] == "completed" and losses[-1] < losses[0]
    assert any("QLoRA: base weights quantized to 4 bits" in e["message"] for e in events.of("log"))
    merged = load_file(Path(result["merged_dir"]) / "model.safetensors")
    base = load_file(gpu_llama / "model.safetensors")
    assert merged.keys() == base.keys()  # plain weights: no bitsandbytes quant state
    assert merged["model.layers.0.self_attn.q_proj.weight"].shape == base["model.layers.0.self_attn.q_proj.weight"].shape


@pytest.mark.skipif(importlib.util.find_spec("liger_kernel") is None, reason="liger-kernel is not installed")
def test_liger_kernels_train_to_the_same_losses(gpu_llama: Path, sft_jsonl: Path, tmp_path: Path) -> None:
    plain, plain_events = _train(gpu_llama, sft_jsonl, tmp_path / "plain")
    liger, liger_events = _train(gpu_llama, sft_jsonl, tmp_path / "liger", use_liger_kernel=True)
    assert "liger_ignored" not in liger_events.warning_codes()
    a = [m["loss"] for m in plain_events.train_metrics]
    b = [m["loss"] for m in liger_events.train_metrics]
    assert b == pytest.approx(a, rel=2e-2, abs=2e-2)


def test_chat_model_on_cuda_in_bf16(gpu_llama: Path) -> None:
    from modxd.engine.generate import HFChatModel
    from modxd.engine.sampling import check_sampling

    model = HFChatModel.load(str(gpu_llama), "cuda:0")
    assert next(model.model.parameters()).device.type == "cuda"
    assert next(model.model.parameters()).dtype == (torch.bfloat16 if _ampere() else torch.float16)
    pieces: list[str] = []
    result = model.generate([{"role": "user", "content": "hello"}],
                            check_sampling({"temperature": 0.0, "max_new_tokens": 8, "seed": 1}),
                            lambda text, ids: pieces.append(text))
    assert result["completion_tokens"] > 0
