"""SmolLM2-135M-Instruct end to end: import its GGUF as a trainable dir (through the daemon),
export that dir to Q4_K_M and Q8_0, and chat with each through llama.cpp."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# SmolLM2-135M is small enough that its first answer token is a near-tie between "The" and
# "L'" under its default system prompt; asking for an English sentence settles it.
SYSTEM = "Answer the question in one short English sentence."


@pytest.fixture(scope="module")
def imported(smollm2_import) -> tuple[Path, dict, float]:
    """`modxctl models import-gguf FILE DIR` on SmolLM2 (the session's import, see conftest)."""
    return smollm2_import


def test_import_gguf_makes_a_trainable_dir(daemon, imported) -> None:
    source, result, _seconds = imported
    out = Path(result["output_dir"])
    assert result["architecture"] == "llama" and 130e6 < int(result["parameters"]) < 140e6
    assert not result.get("cached")
    names = set(os.listdir(out))
    assert {"config.json", "model.safetensors", "tokenizer.json", ".modx-import.json"} <= names
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    template = (out / "chat_template.jinja").read_text() if "chat_template.jinja" in names else \
        json.loads((out / "tokenizer_config.json").read_text())["chat_template"]
    assert "<|im_start|>" in template
    assert not [n for n in os.listdir(out.parent) if n.startswith(".hf.import")]

    again = daemon.cli_json("models", "import-gguf", str(source), str(out))
    assert again["cached"] is True
    other = out.parent / "busy"
    other.mkdir()
    (other / "file.txt").write_text("x")
    refused = daemon.cli("models", "import-gguf", str(source), str(other), check=False)
    assert refused.returncode != 0 and "not empty" in refused.stderr


def test_smollm2_exports_and_answers_paris(imported, tmp_path) -> None:
    from modxd.engine.export.verify import open_llama

    from .conftest import run_export

    _source, result, _ = imported
    out = tmp_path / "gguf"
    exported, _events = run_export(Path(result["output_dir"]), out, ["Q4_K_M", "Q8_0"], name="smollm2")
    verified = {v["quant_type"]: v for v in exported["verifications"]}
    assert verified["Q8_0"]["tokenizer_match"] and verified["Q4_K_M"]["tokenizer_match"]
    assert verified["Q8_0"]["top1_agreement_all_positions"] > 0.9
    models = {f["quant_type"]: f["path"] for f in exported["files"] if f["kind"] == "model"}
    assert set(models) == {"Q4_K_M", "Q8_0"}
    assert "SYSTEM" in (out / "smollm2-Q8_0.Modelfile").read_text()
    for qtype, path in models.items():
        llm = open_llama(path, logits_all=False)
        try:
            reply = llm.create_chat_completion(
                [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is the capital of France?"}],
                max_tokens=32, temperature=0.0)
        finally:
            llm.close()
        choice = reply["choices"][0]
        assert "Paris" in choice["message"]["content"], (qtype, choice)
        assert choice["finish_reason"] == "stop", (qtype, choice)  # it stopped at <|im_end|>
