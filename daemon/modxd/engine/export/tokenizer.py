"""The tokenizer part of a GGUF file: vocabulary, token types, merges or scores, the
pre-tokenizer, special tokens and the chat template.

Two tokenizer kinds are written:

* ``gpt2`` (byte-level BPE: Llama 3, SmolLM, Qwen2, GPT-2 style). llama.cpp re-implements
  the pre-tokenizer (the regex that cuts text before BPE) per *name*, so the name must be
  the one that behaves like the Hugging Face tokenizer. It is chosen by behaviour: the
  model's own pre-tokenizer cuts a probe text, and so does a reference built from the
  ``tokenizers`` library for each name llama.cpp knows; the name whose cuts are identical
  wins. A tokenizer that behaves like none of them is refused.
* ``llama`` (SentencePiece: Llama 2, Mistral v0.1-v0.3, TinyLlama): pieces, scores and
  types from ``tokenizer.model`` (or, without it, scores from the merge ranks of
  ``tokenizer.json``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .arch import ExportError

__all__ = ["Vocab", "load_vocab", "PRE_TOKENIZERS", "END_OF_TURN_TOKENS", "find_tokenizer_dir"]

# Normal, unknown, control, user-defined, unused, byte (gguf.TokenType values).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

_GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Texts that tell pre-tokenizers apart: digits runs, contractions in both cases, runs of
# spaces/tabs/newlines, punctuation glued to letters, accents, CJK and emoji.
PROBES = [
    "Hello world! I'm   fine, you're OK? SHE'LL DO IT'S 'tis",
    "\n\n  \tTabs\r\n  indented\n   code: def f(x):\n        return x**2  # done\n",
    "3333333 12345 1.5e10 2024-01-01 $100.00 42nd 7B ===> --> ...",
    "éàü naïve café Ünïcödé 中文测试，你好！ 日本語のテキスト 한국어 🙂🚀 👍🏽 ✨",
    "   leading spaces and trailing   ",
    "x=\"y\";z='w' [a](b) {c} <d> @e #f ~g `h` |i| \\j/",
]


def _ref_gpt2() -> Any:
    from tokenizers import pre_tokenizers as pt

    return pt.ByteLevel(add_prefix_space=False, use_regex=True)


def _ref_split(regex: str) -> Callable[[], Any]:
    def build() -> Any:
        from tokenizers import Regex
        from tokenizers import pre_tokenizers as pt

        return pt.Sequence([pt.Split(Regex(regex), behavior="isolated", invert=False),
                            pt.ByteLevel(add_prefix_space=False, use_regex=False)])
    return build


def _ref_smollm() -> Any:
    from tokenizers import pre_tokenizers as pt

    return pt.Sequence([pt.Digits(individual_digits=True), pt.ByteLevel(add_prefix_space=False, use_regex=True)])


# llama.cpp pre-tokenizer name -> a reference pre-tokenizer that behaves like it.
PRE_TOKENIZERS: dict[str, Callable[[], Any]] = {
    "gpt-2": _ref_gpt2,
    "llama-bpe": _ref_split(_LLAMA3_RE),
    "qwen2": _ref_split(_QWEN2_RE),
    "smollm": _ref_smollm,
}

# End-of-turn tokens a chat template may close a turn with, most specific first.
END_OF_TURN_TOKENS = ["<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>",
                      "<|endoftext|>", "</s>"]


def _cuts(pre: Any) -> list[list[str]]:
    return [[piece for piece, _ in pre.pre_tokenize_str(text)] for text in PROBES]


def classify_pre_tokenizer(pre: Any) -> str | None:
    """The llama.cpp pre-tokenizer name whose behaviour matches ``pre`` on every probe."""
    if pre is None:
        return None
    try:
        cuts = _cuts(pre)
    except Exception:  # noqa: BLE001 - a pre-tokenizer that cannot run is unknown
        return None
    for name, build in PRE_TOKENIZERS.items():
        if _cuts(build()) == cuts:
            return name
    return None


@dataclass
class Vocab:
    """A tokenizer as GGUF keys."""

    model: str                       # "gpt2" or "llama"
    pre: str                         # llama.cpp pre-tokenizer name
    tokens: list[str]
    types: list[int]
    merges: list[str] = field(default_factory=list)
    scores: list[float] | None = None
    special_ids: dict[str, int] = field(default_factory=dict)  # bos, eos, unk, pad, eot
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool | None = None
    chat_template: str | None = None
    source_dir: str = ""

    @property
    def eos_text(self) -> str | None:
        return self.token_text(self.special_ids.get("eos"))

    @property
    def eot_text(self) -> str | None:
        return self.token_text(self.special_ids.get("eot", self.special_ids.get("eos")))

    def token_text(self, token_id: int | None) -> str | None:
        return self.tokens[token_id] if token_id is not None and 0 <= token_id < len(self.tokens) else None

    def stop_tokens(self) -> list[str]:
        out = []
        for key in ("eot", "eos"):
            text = self.token_text(self.special_ids.get(key))
            if text and text not in out:
                out.append(text)
        return out

    def add_to(self, writer: Any) -> None:
        import gguf

        writer.add_tokenizer_model(self.model)
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        if self.scores is not None:
            writer.add_token_scores(self.scores)
        writer.add_token_types(self.types)
        special = gguf.SpecialVocab(self.source_dir, load_merges=False, n_vocab=len(self.tokens))
        special.merges = list(self.merges)
        special.special_token_ids = {k: v for k, v in self.special_ids.items() if k != "eot"}
        special.add_special_token = {"bos": self.add_bos, "eos": self.add_eos}
        special.chat_template = self.chat_template
        special.add_to_gguf(writer, quiet=True)
        if "eot" in self.special_ids:
            writer.add_eot_token_id(self.special_ids["eot"])
        if self.add_space_prefix is not None:
            writer.add_add_space_prefix(self.add_space_prefix)


def find_tokenizer_dir(candidates: list[str]) -> str:
    """The first dir that holds a tokenizer (tokenizer.json or tokenizer.model)."""
    for directory in candidates:
        if directory and (os.path.isfile(os.path.join(directory, "tokenizer.json"))
                          or os.path.isfile(os.path.join(directory, "tokenizer.model"))):
            return directory
    shown = ", ".join(c for c in candidates if c) or "none"
    raise ExportError(f"no tokenizer (tokenizer.json or tokenizer.model) found in {shown}")


def load_hf_tokenizer(directory: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(directory, local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"the tokenizer in {directory} cannot be loaded: {exc}") from None


def _add_flags(tok: Any) -> tuple[bool, bool]:
    """Whether encoding adds BOS / EOS, by encoding a text with and without special tokens."""
    with_special = tok("hello world", add_special_tokens=True)["input_ids"]
    without = tok("hello world", add_special_tokens=False)["input_ids"]
    add_bos = bool(tok.bos_token_id is not None and with_special[:1] == [tok.bos_token_id]
                   and without[:1] != [tok.bos_token_id])
    add_eos = bool(tok.eos_token_id is not None and with_special[-1:] == [tok.eos_token_id]
                   and without[-1:] != [tok.eos_token_id])
    extra = len(with_special) - len(without) - int(add_bos) - int(add_eos)
    if extra:
        raise ExportError("the tokenizer adds special tokens other than BOS/EOS around every text; "
                          "llama.cpp cannot reproduce that, so the export is refused")
    return add_bos, add_eos


def _special_ids(tok: Any, chat_template: str | None, vocab: dict[str, int]) -> dict[str, int]:
    ids = {}
    for key, attr in (("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unk", "unk_token_id"),
                      ("pad", "pad_token_id")):
        value = getattr(tok, attr, None)
        if isinstance(value, int):
            ids[key] = value
    if chat_template:
        for text in END_OF_TURN_TOKENS:
            if text in chat_template and text in vocab:
                ids["eot"] = vocab[text]
                break
    return ids


def load_vocab(directory: str, n_vocab: int) -> Vocab:
    """Read the tokenizer in ``directory`` for a model whose embedding has ``n_vocab`` rows."""
    tok = load_hf_tokenizer(directory)
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise ExportError(f"the tokenizer in {directory} has no fast (tokenizers) implementation; the GGUF "
                          "exporter needs tokenizer.json")
    data = json.loads(backend.to_str())
    model = data.get("model") or {}
    vocab = tok.get_vocab()
    if len(vocab) > n_vocab or max(vocab.values(), default=0) >= n_vocab:
        raise ExportError(f"the tokenizer in {directory} has {len(vocab)} tokens but the model's embedding has "
                          f"{n_vocab} rows; resize the embeddings or use the matching tokenizer")
    chat_template = tok.chat_template if isinstance(getattr(tok, "chat_template", None), str) else None
    add_bos, add_eos = _add_flags(tok)
    special = {tid for tid in getattr(tok, "all_special_ids", [])}
    added = {tid: t for tid, t in getattr(tok, "added_tokens_decoder", {}).items()}
    kind = _kind(data)
    if kind == "gpt2":
        pre = classify_pre_tokenizer(backend.pre_tokenizer)
        if pre is None:
            raise ExportError(
                f"the tokenizer in {directory} pre-tokenizes text in a way none of the known llama.cpp "
                f"pre-tokenizers ({', '.join(PRE_TOKENIZERS)}) reproduces; its GGUF would tokenize differently "
                "from the trained model, so the export is refused")
        if backend.normalizer is not None and type(backend.normalizer).__name__ not in ("NFC",):
            raise ExportError(f"the tokenizer in {directory} normalizes text ({type(backend.normalizer).__name__}), "
                              "which llama.cpp's BPE tokenizer does not do; the export is refused")
        by_id = {i: t for t, i in vocab.items()}
        tokens, types = [], []
        for i in range(n_vocab):
            if i not in by_id:
                tokens.append(f"[PAD{i}]")
                types.append(UNUSED)
                continue
            tokens.append(by_id[i])
            if i in added:
                types.append(CONTROL if (added[i].special or i in special) else USER_DEFINED)
            else:
                types.append(CONTROL if i in special else NORMAL)
        merges = _merges(model)
        return Vocab("gpt2", pre, tokens, types, merges=merges, special_ids=_special_ids(tok, chat_template, vocab),
                     add_bos=add_bos, add_eos=add_eos, chat_template=chat_template, source_dir=directory)
    if kind == "spm":
        return _spm_vocab(directory, tok, data, vocab, added, special, n_vocab, chat_template, add_bos, add_eos)
    raise ExportError(f"the tokenizer in {directory} is a {model.get('type', 'unknown')} tokenizer without byte-level "
                      "BPE or SentencePiece byte fallback; the GGUF exporter supports byte-level BPE (Llama 3, "
                      "Qwen2, SmolLM) and SentencePiece BPE (Llama 2, Mistral)")


def _kind(data: dict[str, Any]) -> str:
    model = data.get("model") or {}
    text = json.dumps([data.get("pre_tokenizer"), data.get("decoder")])
    if model.get("type") == "BPE" and '"ByteLevel"' in text:
        return "gpt2"
    if model.get("type") == "BPE" and model.get("byte_fallback"):
        return "spm"
    return "unknown"


def _merges(model: dict[str, Any]) -> list[str]:
    merges = model.get("merges") or []
    out = []
    for merge in merges:
        if isinstance(merge, str):
            out.append(merge)
        else:  # [left, right]: spaces inside a part are written as U+0120 like the byte-level alphabet
            out.append(" ".join("".join(chr(ord(c) + 256) if c == " " else c for c in part) for part in merge))
    return out


def _spm_vocab(directory: str, tok: Any, data: dict[str, Any], vocab: dict[str, int], added: dict[int, Any],
               special: set[int], n_vocab: int, chat_template: str | None, add_bos: bool, add_eos: bool) -> Vocab:
    by_id = {i: t for t, i in vocab.items()}
    scores_by_id: dict[int, float] = {}
    spm_path = os.path.join(directory, "tokenizer.model")
    if os.path.isfile(spm_path):
        try:
            import sentencepiece as spm

            proc = spm.SentencePieceProcessor(model_file=spm_path)
            scores_by_id = {i: float(proc.GetScore(i)) for i in range(proc.GetPieceSize())}
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"{spm_path} cannot be read with sentencepiece: {exc}") from None
    else:
        # Without the SentencePiece model, the merge rank orders the merges the same way.
        ranks = {"".join(m.split(" ")): r for r, m in enumerate(_merges(data.get("model") or {}))}
        scores_by_id = {i: -float(ranks.get(t, 0)) for t, i in vocab.items()}
    unk = tok.unk_token_id
    tokens, types, scores = [], [], []
    for i in range(n_vocab):
        text = by_id.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
            scores.append(-1000.0)
            continue
        tokens.append(text)
        scores.append(scores_by_id.get(i, 0.0))
        if i == unk:
            types.append(UNKNOWN)
        elif len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
            types.append(BYTE)
        elif i in special or (i in added and added[i].special):
            types.append(CONTROL)
        elif i in added:
            types.append(USER_DEFINED)
        else:
            types.append(NORMAL)
    text = json.dumps([data.get("normalizer"), data.get("pre_tokenizer")])
    prefix = '"prepend_scheme": "first"' in text or '"prepend_scheme": "always"' in text or \
             '"add_prefix_space": true' in text or '"prepend": "\\u2581"' in text
    return Vocab("llama", "default", tokens, types, scores=scores,
                 special_ids=_special_ids(tok, chat_template, vocab), add_bos=add_bos, add_eos=add_eos,
                 add_space_prefix=prefix, chat_template=chat_template, source_dir=directory)
