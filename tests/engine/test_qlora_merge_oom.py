"""QLoRA's merge into the unquantized base, and a CUDA out-of-memory failure's sentence, on the CPU.

The quantized training itself needs a GPU (tests/gpu/); the merge it ends with does not care
how the adapters were trained: it saves them, loads the base again from model_dir in full
precision and merges there, which must give exactly what merging a plain LoRA model gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.plugin import EventRecorder
from tests.fixtures.tiny_models import make_tiny_llama

torch = pytest.importorskip("torch")


def test_full_precision_merge_equals_the_plain_merge(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from modxd.engine.models import apply_lora, load_model, load_tokenizer, merge_lora, merge_lora_full_precision
    from modxd.paths import pin_output_dir

    model_dir = make_tiny_llama(tmp_path / "m")
    tokenizer = load_tokenizer(str(model_dir))
    torch.manual_seed(0)
    model = apply_lora(load_model(str(model_dir)), 8, 16, 0.0, ["all-linear"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # as after training: a non-zero update
    emitted = EventRecorder()
    with pin_output_dir("output_dir", tmp_path, roots=None)[0] as out:
        merge_lora_full_precision(model, tokenizer, str(model_dir), out, emitted, "full")
        merge_lora(model, tokenizer, out, emitted, "plain")
    full, plain = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "plain" / "model.safetensors")
    assert full.keys() == plain.keys()
    for key in plain:
        torch.testing.assert_close(full[key].float(), plain[key].float(), atol=1e-6, rtol=1e-5, msg=key)
    base = load_file(model_dir / "model.safetensors")
    changed = [k for k in base if not torch.equal(base[k], full[k])]
    assert any("q_proj" in k for k in changed)  # the update is in the merged weights
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())  # nothing left behind
    removed = {path for message in emitted.of("files") for path in message["removed"]}
    assert str(tmp_path / ".tmp-adapter-full") in removed  # the scratch adapter left the manifest too
    assert load_model(str(tmp_path / "full")) is not None


def test_cuda_oom_fails_with_out_of_memory_and_advice() -> None:
    from modxd.engine.models import EngineError
    from modxd.engine.train import _train
    from modxd.worker.runtime import describe_failure

    class Exhausted:
        def train(self, resume_from_checkpoint=None) -> None:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)")

    from modxd.params import resolve

    cfg = resolve("sft", {}, {"train_file": "/d.jsonl", "output_dir": "/o", "model_dir": "/m",
                              "per_device_train_batch_size": 8, "max_seq_length": 2048,
                              "gradient_checkpointing": False, "use_lora": True, "quantization_bit": 0})
    with pytest.raises(EngineError) as info:
        _train(Exhausted(), None, cfg, "cuda:0")
    sentence = describe_failure(info.value)
    assert sentence.startswith("out of memory: ")
    assert "cuda:0 ran out of memory at batch 8 x up to 2048 tokens" in sentence
    assert "CUDA out of memory. Tried to allocate 2.00 GiB" in sentence
    for advice in ("per_device_train_batch_size (now 8", "gradient_checkpointing on", "quantization_bit 4"):
        assert advice in sentence


def test_qlora_run_is_refused_in_the_worker_on_the_cpu(tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    from modxd.engine.models import EngineError
    from modxd.engine.train import run_training
    from tests.fixtures.plugin import EventRecorder, engine_config

    config = engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "out", quantization_bit=4)
    with pytest.raises(EngineError, match="quantization_bit 4 .QLoRA. needs a CUDA GPU"):
        run_training(config, EventRecorder(), lambda: None)
    assert not (tmp_path / "out" / "checkpoints").exists()
