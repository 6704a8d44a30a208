"""The GGUF exporter on tiny random models: llama.cpp must compute what transformers computes."""
from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from modxd.engine.export.arch import ExportError
from modxd.engine.export.verify import ROUND_TRIP_TEXTS, open_llama
from tests.fixtures.tiny_models import make_non_causal_model, make_tiny_llama

from .conftest import run_export

MIXED = ROUND_TRIP_TEXTS + ["English 中文 🙂 mixed: 你好, world! 🚀🚀 猫 & 狗 👍🏽 ✨ 12345"]


def _gguf_fields(path: Path) -> tuple[dict, list[str]]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    fields = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml.") and key.endswith(("tokens", "merges", "token_type", "scores")):
            continue
        try:
            fields[key] = field.contents()
        except Exception:  # noqa: BLE001
            pass
    return fields, [t.name for t in reader.tensors]


def _check_files(result: dict, out: Path) -> None:
    names = sorted(os.listdir(out))
    assert not [n for n in names if n.startswith(".")], names  # no partial file left
    for f in result["files"]:
        data = Path(f["path"]).read_bytes()
        assert len(data) == f["size_bytes"] and hashlib.sha256(data).hexdigest() == f["sha256"]
    assert {f["kind"] for f in result["files"]} >= {"model", "modelfile", "model_card"}


@pytest.mark.parametrize("model", ["tiny_llama_dir", "tiny_qwen2_dir"])
def test_f32_and_f16_match_transformers(model, request, tmp_path) -> None:
    source = request.getfixturevalue(model)
    result, events = run_export(source, tmp_path / "out", ["F32", "F16"])
    _check_files(result, tmp_path / "out")
    by_type = {v["quant_type"]: v for v in result["verifications"]}
    for qtype, tolerance in (("F32", 0.05), ("F16", 0.1)):
        v = by_type[qtype]
        assert v["tokenizer_match"], v["tokenizer_problems"]
        assert v["top1_agreement"] == 1.0 and v["max_logit_diff"] < tolerance, v
        assert v["top1_agreement_all_positions"] >= 0.98, v
    phases = {e["phase"] for e in events if e["type"] == "progress"}
    assert {"prepare", "convert", "verify", "finish"} <= phases
    converts = [e for e in events if e["type"] == "progress" and e["phase"] == "convert"]
    assert converts[-1]["tensors_done"] == converts[-1]["tensors_total"] > 10 and converts[-1]["bytes_written"] > 0
    f16 = next(f["path"] for f in result["files"] if f["quant_type"] == "F16" and f["kind"] == "model")
    fields, _ = _gguf_fields(Path(f16))
    arch = "qwen2" if "qwen2" in model else "llama"
    assert fields["general.architecture"] == arch and fields["general.file_type"] == 1
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] in ("gpt-2", "qwen2")
    assert fields[f"{arch}.attention.head_count_kv"] == 2 and "<|im_start|>" in fields["tokenizer.chat_template"]
    modelfile = (tmp_path / "out" / "tiny-F16.Modelfile").read_text()
    assert "FROM ./tiny-F16.gguf" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "<|im_start|>" in modelfile  # the ChatML template in Ollama's syntax
    card = (tmp_path / "out" / "README.md").read_text()
    assert "top-1 agreement" in card and "tiny-F32.gguf" in card


@pytest.mark.parametrize("model", ["tiny_llama_dir", "tiny_qwen2_dir"])
def test_tokenizer_round_trips_mixed_text(model, request, tmp_path) -> None:
    from transformers import AutoTokenizer

    source = request.getfixturevalue(model)
    result, _ = run_export(source, tmp_path / "out", ["F16"], skip_verification=True)
    tok = AutoTokenizer.from_pretrained(source)
    llm = open_llama(result["files"][0]["path"], logits_all=False)
    try:
        for text in MIXED:
            ids = llm.tokenize(text.encode(), add_bos=True, special=False)
            assert ids == tok(text)["input_ids"], text
            assert llm.detokenize(ids).decode() == text
        eot = tok.convert_tokens_to_ids("<|im_end|>")
        assert llm.token_eos() == eot  # llama.cpp stops a chat turn at the template's end-of-turn token
        chat = tok.apply_chat_template([{"role": "user", "content": "你好 🙂"}], tokenize=False,
                                       add_generation_prompt=True)
        assert llm.tokenize(chat.encode(), add_bos=False, special=True) == tok(chat, add_special_tokens=False)[
            "input_ids"]
    finally:
        llm.close()


def test_llama3_rope_and_tied_embeddings(tmp_path) -> None:
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32, "rope_theta": 10000.0}
    model = make_tiny_llama(tmp_path / "m", tie_word_embeddings=True, rope_parameters=rope, head_dim=8,
                            num_attention_heads=2, num_key_value_heads=1)
    result, _ = run_export(model, tmp_path / "out", ["F32"])
    v = result["verifications"][0]
    assert v["tokenizer_match"] and v["top1_agreement"] == 1.0 and v["max_logit_diff"] < 0.05, v
    fields, tensors = _gguf_fields(Path(result["files"][0]["path"]))
    assert "rope_freqs.weight" in tensors and "output.weight" not in tensors
    assert fields["llama.rope.dimension_count"] == 8 and fields["llama.attention.key_length"] == 8


def test_every_quantization_type_loads_in_llama_cpp(wide_llama_dir, tmp_path) -> None:
    from modxd.engine.export.writer import ALL_TYPES, DIRECT_TYPES, LLAMA_TYPES

    result, events = run_export(wide_llama_dir, tmp_path / "out", list(ALL_TYPES))
    _check_files(result, tmp_path / "out")
    models = {f["quant_type"]: f for f in result["files"] if f["kind"] == "model"}
    assert set(models) == set(ALL_TYPES)
    verified = {v["quant_type"]: v for v in result["verifications"]}
    ftypes = {**DIRECT_TYPES, **LLAMA_TYPES}
    for qtype, f in models.items():
        fields, _ = _gguf_fields(Path(f["path"]))
        assert fields["general.file_type"] == ftypes[qtype], qtype
        v = verified[qtype]  # llama.cpp loaded it and computed logits
        assert v["tokenizer_match"] and v["prompts"] >= 5 and np.isfinite(v["max_logit_diff"]), v
    assert verified["F32"]["top1_agreement"] == verified["F16"]["top1_agreement"] == 1.0
    mean = {q: v["mean_logit_diff"] for q, v in verified.items()}  # fewer bits, larger differences
    assert mean["F32"] < mean["F16"] < mean["Q8_0"] < mean["Q6_K"] < mean["Q4_K_M"] < mean["Q3_K_M"] < mean["Q2_K"]
    assert verified["Q8_0"]["top1_agreement_all_positions"] >= 0.8
    sizes = {q: models[q]["size_bytes"] for q in models}
    assert sizes["Q2_K"] < sizes["Q4_K_M"] < sizes["Q8_0"] < sizes["F16"] < sizes["F32"]
    assert any(e["type"] == "progress" and e["phase"] == "quantize" for e in events)
    assert not any("intermediate" in n for n in os.listdir(tmp_path / "out"))


def test_lora_merged_and_adapter_outputs_agree(lora_checkpoint, tiny_llama_dir, tmp_path) -> None:
    merged, _ = run_export(lora_checkpoint, tmp_path / "merged", ["F32"], merge=True)
    split, _ = run_export(lora_checkpoint, tmp_path / "split", ["F32"], merge=False)
    for result in (merged, split):
        v = result["verifications"][0]  # against transformers + peft (the trained model)
        assert v["tokenizer_match"] and v["top1_agreement"] == 1.0 and v["max_logit_diff"] < 0.05, v
    assert merged["merged"] and not split["merged"]
    adapter = next(f for f in split["files"] if f["kind"] == "adapter")
    base = next(f for f in split["files"] if f["kind"] == "model")
    fields, tensors = _gguf_fields(Path(adapter["path"]))
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == 16.0
    assert "blk.0.attn_q.weight.lora_a" in tensors and "blk.1.attn_k.weight.lora_b" in tensors
    assert "ADAPTER ./" in Path(base["path"]).with_suffix(".Modelfile").read_text()
    merged_path = next(f["path"] for f in merged["files"] if f["kind"] == "model")
    ids = [1, 300, 301, 302, 150, 42, 7, 250]
    outputs = []
    for path, lora in ((merged_path, None), (base["path"], adapter["path"]), (base["path"], None)):
        llm = open_llama(path, lora)
        llm.eval(ids)
        outputs.append(np.asarray(llm.scores[: len(ids)]))
        llm.close()
    assert np.abs(outputs[0] - outputs[1]).max() < 1e-2  # merged == base + adapter at load time
    assert np.abs(outputs[0] - outputs[2]).max() > 1e-2  # and the adapter does change the model


def test_unknown_architecture_and_tokenizer_are_refused(tmp_path) -> None:
    bert = make_non_causal_model(tmp_path / "bert")
    with pytest.raises(ExportError, match="does not support"):
        run_export(bert, tmp_path / "out", ["F16"])
    assert not (tmp_path / "out").exists()

    odd = make_tiny_llama(tmp_path / "odd")
    data = json.loads((odd / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                      "use_regex": False}]}
    (odd / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(ExportError, match="pre-tokenizes"):
        run_export(odd, tmp_path / "out2", ["F16"])
    assert not (tmp_path / "out2").exists()


def test_a_failure_leaves_no_partial_file(tiny_llama_dir, tmp_path, monkeypatch) -> None:
    from modxd.engine.export import writer

    real = writer._encode
    calls = {"n": 0}

    def disk_full(data, ttype):
        calls["n"] += 1
        if calls["n"] == 30:  # in the second file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(data, ttype)

    monkeypatch.setattr(writer, "_encode", disk_full)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("not ours")
    with pytest.raises(OSError, match="No space left"):
        run_export(tiny_llama_dir, out, ["F32", "F16"], skip_verification=True)
    assert os.listdir(out) == ["keep.txt"]

    monkeypatch.setattr(writer, "_encode", real)
    from modxd.engine.export import quantize

    def broken(*_a, **_k):
        raise ExportError("llama.cpp could not quantize")

    monkeypatch.setattr(quantize, "quantize_file", broken)
    with pytest.raises(ExportError):
        run_export(tiny_llama_dir, tmp_path / "new", ["F16", "Q4_0"], skip_verification=True)
    assert not (tmp_path / "new").exists()


def _spm_llama(directory: Path) -> Path:
    """A tiny Llama with a SentencePiece (BPE, byte fallback) tokenizer trained here."""
    import sentencepiece as spm
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tests.fixtures.tiny_models import _CORPUS, CHATML_TEMPLATE

    directory.mkdir(parents=True)
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_CORPUS * 20), model_prefix=str(directory / "tokenizer"),
                                   vocab_size=400, model_type="bpe", byte_fallback=True, character_coverage=1.0,
                                   bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2,
                                   user_defined_symbols=["<|im_start|>", "<|im_end|>"])
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))
    tok = AutoTokenizer.from_pretrained(directory)
    tok.chat_template = CHATML_TEMPLATE
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2,
                                 initializer_range=0.2)).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


def test_sentencepiece_is_written_and_checked(tmp_path) -> None:
    """A SentencePiece vocabulary is written (scores, byte tokens); the verification then compares
    llama.cpp's tokenization with transformers' and refuses the package when they differ, as
    they do for this tokenizer on whitespace runs and on text right after a special token."""
    model = _spm_llama(tmp_path / "spm")
    result, _ = run_export(model, tmp_path / "raw", ["F32"], skip_verification=True)
    fields, _ = _gguf_fields(Path(result["files"][0]["path"]))
    assert fields["tokenizer.ggml.model"] == "llama"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    llm = open_llama(result["files"][0]["path"], logits_all=False)
    try:
        text = "Hello 中文 🙂"  # byte fallback for the unseen "H", CJK and emoji pieces
        assert llm.tokenize(text.encode(), add_bos=True, special=False) == tok(text)["input_ids"]
    finally:
        llm.close()
    with pytest.raises(ExportError, match="tokenizes differently"):
        run_export(model, tmp_path / "checked", ["F32"])
    assert not (tmp_path / "checked").exists()
