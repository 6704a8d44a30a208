"""The text files written beside the GGUF files: a model card (README.md) and Ollama Modelfiles."""
from __future__ import annotations

import re
import time
from typing import Any

__all__ = ["chat_family", "modelfile", "model_card"]

# Ollama (Go template) equivalents of the chat template families we recognise.
_OLLAMA_TEMPLATES = {
    "chatml": (
        "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
        "<|im_start|>assistant\n"),
    "llama3": (
        "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
        "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "inst": (
        "{{- range $i, $_ := .Messages }}{{- if eq .Role \"user\" }}[INST] "
        "{{ if and (eq $i 0) $.System }}{{ $.System }}\n\n{{ end }}{{ .Content }} [/INST]"
        "{{- else if eq .Role \"assistant\" }} {{ .Content }}</s>{{- end }}{{- end }}"),
}
_DEFAULT_SYSTEM = re.compile(r"<\|im_start\|>system(?:\n|\\n)([^{}']+?)<\|im_end\|>", re.S)


def chat_family(template: str | None) -> str | None:
    if not template:
        return None
    if "<|im_start|>" in template:
        return "chatml"
    if "<|start_header_id|>" in template:
        return "llama3"
    if "[INST]" in template:
        return "inst"
    return None


def _quoted(text: str) -> str:
    return '"""' + text.replace('"""', '\\"\\"\\"') + '"""'


def modelfile(model_file: str, chat_template: str | None, stop_tokens: list[str],
              adapter_file: str | None = None) -> str:
    """An Ollama Modelfile for ``model_file`` (a name relative to the Modelfile's dir)."""
    lines = [f"# Ollama: ollama create NAME -f {model_file.rsplit('.gguf', 1)[0]}.Modelfile",
             f"FROM ./{model_file}"]
    if adapter_file:
        lines.append(f"ADAPTER ./{adapter_file}")
    family = chat_family(chat_template)
    if family:
        lines.append(f"TEMPLATE {_quoted(_OLLAMA_TEMPLATES[family])}")
        match = _DEFAULT_SYSTEM.search(chat_template or "") if family == "chatml" else None
        if match and "{{" not in match.group(1):
            lines.append(f"SYSTEM {_quoted(match.group(1))}")
    elif chat_template:
        lines.append("# The chat template is not one modx translates; Ollama reads the one stored in the GGUF.")
    else:
        lines.append("# No chat template: this model completes text.")
    for token in stop_tokens:
        lines.append(f'PARAMETER stop "{token}"')
    return "\n".join(lines) + "\n"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def model_card(info: dict[str, Any], files: list[dict[str, Any]], verifications: list[dict[str, Any]]) -> str:
    """README.md for a package: what it is, where it came from, its files and how well it matches."""
    lines = [f"# {info['name']}", "",
             f"GGUF export of task `{info['task_id']}`, checkpoint `{info['checkpoint_id']}`, made by modx on "
             f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime())}.", "",
             "| | |", "|---|---|",
             f"| architecture | {info['architecture']} ({info['model_type']}) |",
             f"| parameters | {info['parameters']:,} |",
             f"| base model | `{info['base_model']}` |",
             f"| LoRA | {info['lora']} |",
             f"| context length | {info['context_length']} |",
             f"| tokenizer | {info['tokenizer']} |",
             f"| chat template | {'yes' if info.get('chat_template') else 'no'} |", "",
             "## Files", "", "| file | kind | type | size | sha256 |", "|---|---|---|---|---|"]
    for f in files:
        lines.append(f"| {f['name']} | {f['kind']} | {f.get('quant_type') or '-'} | {_size(f['size_bytes'])} | "
                     f"`{f['sha256']}` |")
    if verifications:
        lines += ["", "## Verification against the Hugging Face model", "",
                  "Same prompts through llama.cpp and transformers. Top-1 agreement on the next token after "
                  "each prompt (and on every position); logit differences over every position.", "",
                  "| type | tokenizer | top-1 agreement | (all positions) | max logit diff | mean logit diff | prompts |",
                  "|---|---|---|---|---|---|---|"]
        for v in verifications:
            lines.append(f"| {v['quant_type']} | {'identical ids' if v['tokenizer_match'] else 'MISMATCH'} | "
                         f"{v['top1_agreement'] * 100:.1f}% | {v.get('top1_agreement_all_positions', 0) * 100:.1f}% | "
                         f"{v['max_logit_diff']:.4g} | "
                         f"{v['mean_logit_diff']:.4g} | {v['prompts']} |")
    models = [f for f in files if f["kind"] == "model"]
    if models:
        first = models[0]["name"]
        adapter = next((f["name"] for f in files if f["kind"] == "adapter"), None)
        lora = f" --lora {adapter}" if adapter else ""
        lines += ["", "## Use", "", "```sh",
                  f"llama-cli -m {first}{lora} -cnv",
                  f"ollama create {info['slug'].lower()} -f {first.rsplit('.gguf', 1)[0]}.Modelfile",
                  "```", "", "```python", "from llama_cpp import Llama",
                  f"llm = Llama(\"{first}\"{', lora_path=' + repr(adapter) if adapter else ''})",
                  "llm.create_chat_completion([{\"role\": \"user\", \"content\": \"Hello!\"}])", "```"]
    return "\n".join(lines) + "\n"
