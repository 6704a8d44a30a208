"""A tokenizer dir as the daemon sees it at create time, without torch.

The training worker loads the tokenizer with transformers (AutoTokenizer), which imports torch;
the daemon never does. To check at create what the worker will do with the data, this module
reads the same files (tokenizer.json with the `tokenizers` library, the chat template and the
named special tokens as transformers finds them) and renders conversations with transformers'
own Jinja renderer (`render_jinja_template`: the same sandbox, filters and globals as
`apply_chat_template`). `ChatTokenizer` offers the few things engine/data.py asks of a tokenizer
(`apply_chat_template(..., tokenize=False)`, `eos_token`, encoding with offsets), so create-time
checks run the worker's own labelling code on it.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TokenizerDir", "ChatTokenizer", "TemplateProblem", "read_tokenizer_dir", "load_backend",
           "SPECIAL_TOKEN_KEYS", "missing_template_problem"]

# The named special tokens apply_chat_template passes to a template (transformers' SPECIAL_TOKENS_ATTRIBUTES).
SPECIAL_TOKEN_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# tokenizer_class values whose tokens all come from the files: no class default fills a missing eos or pad.
GENERIC_CLASSES = ("", "TokenizersBackend", "PreTrainedTokenizerFast")
CHAT_TEMPLATE_FILE = "chat_template.jinja"


def missing_template_problem(needs_template: bool, template: str | None, tokenizer_path: str) -> str:
    """The one rule of a missing chat template ('' when there is none to report): a task whose data are
    conversations needs one, the chat_template parameter or else the tokenizer's own (as transformers
    picks it). `template` is the one in effect: read_tokenizer_dir's at create (tokenizer_checks.py),
    the loaded tokenizer's in the training and evaluation workers."""
    if not needs_template or (template or "").strip():
        return ""
    return (f"the tokenizer in {tokenizer_path} has no chat template, which is needed to format conversations; "
            "set the chat_template parameter (a Jinja template)")


class TemplateProblem(ValueError):
    """A chat template that does not compile; ``str()`` says where (line) and why."""


@dataclass
class TokenizerDir:
    """What transformers would read from a tokenizer dir, read without transformers' tokenizer classes."""

    path: str
    config: dict[str, Any]
    special_tokens: dict[str, str]
    chat_template: str = ""
    template_source: str = ""  # where the template came from, for sentences
    backend: Any = None  # a tokenizers.Tokenizer when tokenizer.json exists
    problems: list[str] = field(default_factory=list)

    @property
    def tokenizer_class(self) -> str:
        return str(self.config.get("tokenizer_class") or "")

    def vocab_sizes(self) -> tuple[int, int] | None:
        """(tokens of the base vocabulary, tokens with the added ones) or None without tokenizer.json."""
        if self.backend is None:
            return None
        return self.backend.get_vocab_size(with_added_tokens=False), self.backend.get_vocab_size(with_added_tokens=True)


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):  # an AddedToken as JSON
        return value["content"]
    return None


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TemplateProblem(f"{path} cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):  # transformers reads it as an object and fails in the worker otherwise
        kind = {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean", type(None): "JSON null"}.get(
            type(data), "a JSON number")
        raise TemplateProblem(f"{path} holds {kind}, not an object of tokenizer settings")
    return data


def _own_template(path: str, config: dict[str, Any]) -> tuple[str, str]:
    """The tokenizer's chat template as transformers picks it: chat_template.jinja, else the one in
    tokenizer_config.json (a named list: the 'default' one), else a processor's chat_template.json."""
    jinja = os.path.join(path, CHAT_TEMPLATE_FILE)
    if os.path.isfile(jinja):
        try:
            with open(jinja, encoding="utf-8") as f:
                return f.read(), jinja
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateProblem(f"{jinja} cannot be read ({exc})") from None
    value = config.get("chat_template")
    if isinstance(value, list):
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
        value = named.get("default")
        if value is None and named:
            raise TemplateProblem(f"{os.path.join(path, 'tokenizer_config.json')} has several chat templates "
                                  f"({', '.join(map(str, named))}) and no 'default' one")
    if isinstance(value, str) and value:
        return value, os.path.join(path, "tokenizer_config.json")
    processor = _read_json(os.path.join(path, "chat_template.json")).get("chat_template")
    if isinstance(processor, str) and processor:
        return processor, os.path.join(path, "chat_template.json")
    return "", ""


def read_tokenizer_dir(path: str, chat_template: str = "") -> TokenizerDir:
    """Read a tokenizer dir; `chat_template` (the task parameter) replaces the tokenizer's own, as in training."""
    config = _read_json(os.path.join(path, "tokenizer_config.json"))
    special: dict[str, str] = {}
    legacy = _read_json(os.path.join(path, "special_tokens_map.json"))
    for key in SPECIAL_TOKEN_KEYS:
        text = _token_text(config.get(key))
        if text is None:
            text = _token_text(legacy.get(key))
        if text is not None:
            special[key] = text
    if chat_template:
        template, source = chat_template, "parameter chat_template"
    else:
        template, source = _own_template(path, config)
    tokenizer_json = os.path.join(path, "tokenizer.json")
    backend = load_backend(tokenizer_json) if os.path.isfile(tokenizer_json) else None
    return TokenizerDir(path, config, special, template, source, backend)


def load_backend(tokenizer_json: str) -> Any:
    """The `tokenizers.Tokenizer` of a tokenizer.json, cached while the file is unchanged (a real model's
    takes most of a second to load, and every create and start of a task reads it)."""
    try:
        st = os.stat(tokenizer_json)
    except OSError as exc:
        raise TemplateProblem(f"{tokenizer_json} cannot be read ({exc.strerror or exc})") from None
    return _cached_backend(os.path.realpath(tokenizer_json), st.st_mtime_ns, st.st_size, st.st_ino)


@functools.lru_cache(maxsize=4)
def _cached_backend(path: str, mtime_ns: int, size: int, inode: int) -> Any:
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(path)
    except Exception as exc:  # the Rust library raises its own exception type for a damaged file
        raise TemplateProblem(f"{path} is not a tokenizer the tokenizers library can load "
                              f"({str(exc)[:200]})") from None


class ChatTokenizer:
    """The parts of a transformers tokenizer that engine/data.py uses to format and label a conversation."""

    def __init__(self, tokenizer_dir: TokenizerDir) -> None:
        from transformers.utils.chat_template_utils import _compile_jinja_template

        self.files = tokenizer_dir
        self.eos_token = tokenizer_dir.special_tokens.get("eos_token")
        try:
            _compile_jinja_template(tokenizer_dir.chat_template)  # cached by transformers for the renders
        except Exception as exc:  # jinja2.TemplateSyntaxError (with its line) and friends
            line = getattr(exc, "lineno", None)
            where = f" line {line}" if line else ""
            raise TemplateProblem(f"the chat template is not valid Jinja ({type(exc).__name__} at template"
                                  f"{where}: {exc})") from None

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = False,
                            add_generation_prompt: bool = False, **kwargs: Any) -> str:
        from transformers.utils.chat_template_utils import render_jinja_template

        if tokenize:
            raise NotImplementedError("the create-time tokenizer renders text only")
        rendered, _ = render_jinja_template(conversations=[messages], chat_template=self.files.chat_template,
                                            add_generation_prompt=add_generation_prompt,
                                            **{**self.files.special_tokens, **kwargs})
        return rendered[0]

    @property
    def can_encode(self) -> bool:
        return self.files.backend is not None

    def __call__(self, text: str, add_special_tokens: bool = False,
                 return_offsets_mapping: bool = False) -> dict[str, list[Any]]:
        encoding = self.files.backend.encode(text, add_special_tokens=add_special_tokens)
        out: dict[str, list[Any]] = {"input_ids": list(encoding.ids)}
        if return_offsets_mapping:
            out["offset_mapping"] = list(encoding.offsets)
        return out
