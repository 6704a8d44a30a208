"""Chat generation with a Hugging Face model (base, base + LoRA adapter, or a full checkpoint).

The top of this module is pure Python and safe for the daemon to import (no torch):
sampling defaults and validation, message checks, the stop-string / streaming
bookkeeping shared with the llama.cpp backend (:class:`ReplyStream`) and the result
shape. torch, transformers and peft are imported inside the functions that load or
run a model, which only the inference worker calls.

Semantics, the same for both backends:

* ``temperature`` 0 is greedy decoding; ``top_k`` 0 and ``top_p`` 1 switch those filters
  off; ``repetition_penalty`` 1 is off. ``top_k`` 1 is greedy whatever the temperature.
* The reply streams as ``on_delta(text, token_ids)`` calls; their texts concatenate to the
  final ``text``. Text that might be the start of a stop string is held back until it
  is known not to be one, so a stop string never reaches the client.
* finish reasons: ``stop_token`` (an end-of-turn / eos token; it is counted in
  ``completion_tokens`` but never streamed), ``length`` (``max_new_tokens`` reached),
  ``stop_string`` (the text is cut before it), ``cancelled``.
* ``time_to_first_token_ms``: from the start of generation (prompt formatted, model
  loaded) to the first generated token, so it is prompt processing plus one step.
  ``tokens_per_second``: the decode rate, (completion_tokens - 1) / (last token time -
  first token time); with one token, 1 / time to first token.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "SAMPLING_DEFAULTS", "SamplingError", "check_sampling", "check_messages", "ReplyStream",
    "FINISH_STOP_TOKEN", "FINISH_LENGTH", "FINISH_STOP_STRING", "FINISH_CANCELLED",
    "HFChatModel", "format_prompt", "hf_generation_kwargs", "ContextTooLong",
]

FINISH_STOP_TOKEN = "stop_token"
FINISH_LENGTH = "length"
FINISH_STOP_STRING = "stop_string"
FINISH_CANCELLED = "cancelled"

# What a chat gets for a setting it does not give.
SAMPLING_DEFAULTS: dict[str, Any] = {
    "temperature": 0.7,
    "top_p": 0.9,
    "top_k": 50,
    "repetition_penalty": 1.1,
    "max_new_tokens": 512,
    "seed": None,  # None: a fresh random seed per reply
    "stop": [],
}
TEMPERATURE_MAX = 5.0
REPETITION_PENALTY_MAX = 10.0
TOP_K_MAX = 1_000_000
SEED_MAX = 2**32 - 1
STOP_MAX_COUNT = 16
STOP_MAX_CHARS = 256
MESSAGES_MAX_COUNT = 10_000
CONVERSATION_MAX_CHARS = 1_000_000
ROLES = ("system", "user", "assistant")

# End-of-turn markers used by common chat templates: when the template uses one and the
# tokenizer has it as a single token, generation stops at it even if eos is another token.
END_OF_TURN_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>")

# The transcript used when a tokenizer has no chat template (a pretraining task's base model).
PLAIN_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


class SamplingError(ValueError):
    """A sampling setting or a message the backends refuse; ``str()`` is the sentence."""


class ContextTooLong(SamplingError):
    """The conversation plus the reply does not fit in the model's context."""


def _finite(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SamplingError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise SamplingError(f"{name} must be a finite number, got {value!r}")
    return number


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise SamplingError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def check_sampling(given: dict[str, Any], max_new_tokens_limit: int = 4096) -> dict[str, Any]:
    """The full sampling settings: ``given`` (only the keys a client set) over the defaults.

    Raises :class:`SamplingError` naming the setting, its range and the value given.
    """
    unknown = sorted(set(given) - set(SAMPLING_DEFAULTS))
    if unknown:
        raise SamplingError(f"unknown sampling setting(s): {', '.join(unknown)}")
    out = dict(SAMPLING_DEFAULTS)
    out["stop"] = []
    out["max_new_tokens"] = min(SAMPLING_DEFAULTS["max_new_tokens"], max_new_tokens_limit)
    if "temperature" in given:
        t = _finite("temperature", given["temperature"])
        if not 0.0 <= t <= TEMPERATURE_MAX:
            raise SamplingError(f"temperature must be between 0 (greedy) and {TEMPERATURE_MAX:g}, got {t:g}")
        out["temperature"] = t
    if "top_p" in given:
        p = _finite("top_p", given["top_p"])
        if not 0.0 < p <= 1.0:
            raise SamplingError(f"top_p must be above 0 and at most 1 (1 = off), got {p:g}")
        out["top_p"] = p
    if "top_k" in given:
        k = _integer("top_k", given["top_k"])
        if not 0 <= k <= TOP_K_MAX:
            raise SamplingError(f"top_k must be between 0 (off) and {TOP_K_MAX}, got {k}")
        out["top_k"] = k
    if "repetition_penalty" in given:
        r = _finite("repetition_penalty", given["repetition_penalty"])
        if not 0.0 < r <= REPETITION_PENALTY_MAX:
            raise SamplingError(f"repetition_penalty must be above 0 and at most {REPETITION_PENALTY_MAX:g} "
                                f"(1 = off, above 1 discourages repeats), got {r:g}")
        out["repetition_penalty"] = r
    if "max_new_tokens" in given:
        n = _integer("max_new_tokens", given["max_new_tokens"])
        if not 1 <= n <= max_new_tokens_limit:
            raise SamplingError(f"max_new_tokens must be between 1 and {max_new_tokens_limit} "
                                f"(this daemon's max_chat_tokens), got {n}")
        out["max_new_tokens"] = n
    if given.get("seed") is not None:
        s = _integer("seed", given["seed"])
        if not 0 <= s <= SEED_MAX:
            raise SamplingError(f"seed must be between 0 and {SEED_MAX}, got {s}")
        out["seed"] = s
    stops = list(given.get("stop") or [])
    if len(stops) > STOP_MAX_COUNT:
        raise SamplingError(f"at most {STOP_MAX_COUNT} stop strings, got {len(stops)}")
    for s in stops:
        if not isinstance(s, str) or not s:
            raise SamplingError("a stop string must not be empty")
        if len(s) > STOP_MAX_CHARS:
            raise SamplingError(f"a stop string may have at most {STOP_MAX_CHARS} characters, got {len(s)}")
    out["stop"] = stops
    return out


def check_messages(messages: list[dict[str, str]], system_prompt: str = "") -> list[dict[str, str]]:
    """The conversation to format: the system prompt first, then the messages, ending with the user.

    Contents are model text and may hold any character; only their amount is bounded."""
    if not messages:
        raise SamplingError("messages is empty: send at least one user message")
    if len(messages) > MESSAGES_MAX_COUNT:
        raise SamplingError(f"messages has {len(messages)} entries; at most {MESSAGES_MAX_COUNT} are allowed")
    chars = len(system_prompt) + sum(len(m.get("content", "")) for m in messages)
    if chars > CONVERSATION_MAX_CHARS:
        raise SamplingError(f"the conversation (messages[].content and system_prompt) has {chars} characters; at "
                            f"most {CONVERSATION_MAX_CHARS} are allowed, far more than any model's context")
    out: list[dict[str, str]] = []
    if system_prompt:
        out.append({"role": "system", "content": system_prompt})
    for i, m in enumerate(messages):
        role, content = m.get("role", ""), m.get("content", "")
        if role not in ROLES:
            shown = repr(role[:64]) + (f"... ({len(role)} characters)" if len(role) > 64 else "")
            raise SamplingError(f"messages[{i}].role must be one of {', '.join(ROLES)}, got {shown}")
        if role == "system":
            if system_prompt:
                raise SamplingError(f"messages[{i}] is a system message and system_prompt is set too; "
                                    "give the system prompt once")
            if i != 0:
                raise SamplingError(f"messages[{i}] is a system message; only the first message may be one")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "user":
        raise SamplingError(f"the last message must be from the user (it is {out[-1]['role']!r}): the model "
                            "answers it")
    return out


# ------------------------------------------------------------------ streaming bookkeeping

@dataclass
class ReplyStream:
    """Collects generated tokens and text, cuts at stop strings, emits deltas, keeps time.

    ``add(token_id, piece)`` is called for every generated token that is not an end-of-turn
    token, with the text that token completes (possibly "" while a multi-byte character or
    a word is incomplete). It returns True when a stop string has ended the reply.
    """

    stop: list[str]
    on_delta: Callable[[str, list[int]], None]
    started: float = field(default_factory=time.perf_counter)
    text: str = ""
    sent: int = 0
    completion_tokens: int = 0
    first_token_time: float | None = None
    last_token_time: float | None = None
    finish_reason: str = ""
    _ids: list[int] = field(default_factory=list)

    def tick(self) -> None:
        """Count one generated token (an end-of-turn token counts too)."""
        now = time.perf_counter()
        self.completion_tokens += 1
        if self.first_token_time is None:
            self.first_token_time = now
        self.last_token_time = now

    def add(self, token_id: int, piece: str) -> bool:
        self.tick()
        self._ids.append(int(token_id))
        if not piece:
            return False
        self.text += piece
        hits = [at for at in (self.text.find(s, self.sent) for s in self.stop) if at >= 0]
        if hits:
            self.text = self.text[:min(hits)]
            self._emit(len(self.text), force=True)
            self.finish_reason = FINISH_STOP_STRING
            return True
        self._emit(len(self.text) - self._held())
        return False

    def _held(self) -> int:
        """Characters at the end of the text that could begin a stop string."""
        held = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(self.text) - self.sent), held, -1):
                if self.text.endswith(s[:k]):
                    held = k
                    break
        return held

    def _emit(self, upto: int, force: bool = False) -> None:
        if upto > self.sent or (force and self._ids):
            self.on_delta(self.text[self.sent:upto], self._ids)
            self.sent = upto
            self._ids = []

    def flush(self, tail: str = "") -> None:
        """The end: emit any held-back text (and ``tail``, text a decoder still held)."""
        if tail and self.finish_reason != FINISH_STOP_STRING:
            self.text += tail
        if self.finish_reason != FINISH_STOP_STRING:
            self._emit(len(self.text), force=True)

    def result(self, prompt_tokens: int) -> dict[str, Any]:
        ttft = ((self.first_token_time - self.started) * 1000.0) if self.first_token_time is not None else 0.0
        if self.completion_tokens >= 2 and self.last_token_time > self.first_token_time:
            tps = (self.completion_tokens - 1) / (self.last_token_time - self.first_token_time)
        elif self.completion_tokens == 1 and ttft > 0:
            tps = 1000.0 / ttft
        else:
            tps = 0.0
        return {"finish_reason": self.finish_reason or FINISH_LENGTH, "prompt_tokens": int(prompt_tokens),
                "completion_tokens": self.completion_tokens, "time_to_first_token_ms": ttft,
                "tokens_per_second": tps, "text": self.text}


# ------------------------------------------------------------------ Hugging Face backend

class IncrementalDetokenizer:
    """Text of one new token at a time, exact under concatenation (the prefix-window method).

    Decodes a short window ending at the new token and returns what it adds to the window
    without it, holding text back while it ends in an incomplete character (U+FFFD).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = 0
        self.read = 0

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def add(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before):]
        return ""

    def tail(self) -> str:
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        return after[len(before):] if len(after) > len(before) else ""


def format_prompt(tokenizer: Any, messages: list[dict[str, str]], chat_template: str | None = None) -> str:
    """The conversation rendered by the model's chat template, ending with the assistant's turn."""
    template = chat_template or getattr(tokenizer, "chat_template", None) or PLAIN_TEMPLATE
    return tokenizer.apply_chat_template(messages, chat_template=template, add_generation_prompt=True,
                                         tokenize=False)


def end_of_turn_ids(tokenizer: Any, generation_eos: Any, template: str) -> set[int]:
    """eos of the generation config and tokenizer, plus end-of-turn tokens the template uses."""
    ids: set[int] = set()
    for value in (generation_eos, getattr(tokenizer, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value if isinstance(v, int))
    vocab = tokenizer.get_vocab()
    special = set(getattr(tokenizer, "all_special_tokens", []) or [])
    added = {t.content if hasattr(t, "content") else str(t) for t in
             (getattr(tokenizer, "added_tokens_decoder", {}) or {}).values()}
    for marker in END_OF_TURN_MARKERS:
        if marker in template and marker in vocab and (marker in special or marker in added):
            ids.add(int(vocab[marker]))
    return ids


def hf_generation_kwargs(sampling: dict[str, Any]) -> dict[str, Any]:
    """``model.generate`` keyword arguments for the sampling settings.

    Every sampling field is set explicitly, so a model's own generation_config.json
    (its temperature, min_p, ...) never changes what the request asked for.
    """
    greedy = sampling["temperature"] == 0.0
    kwargs: dict[str, Any] = {
        "max_new_tokens": int(sampling["max_new_tokens"]),
        "min_new_tokens": 0,
        "do_sample": not greedy,
        "repetition_penalty": float(sampling["repetition_penalty"]),
        "num_beams": 1,
        "no_repeat_ngram_size": 0,
    }
    if not greedy:  # the filters only act when sampling (transformers warns if given otherwise)
        kwargs.update(temperature=float(sampling["temperature"]), top_k=int(sampling["top_k"]),
                      top_p=float(sampling["top_p"]), min_p=0.0, typical_p=1.0, epsilon_cutoff=0.0,
                      eta_cutoff=0.0)
    return kwargs


def _torch_dtype(device: str) -> Any:
    import torch

    if device.startswith("cuda"):
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return torch.bfloat16 if torch.cuda.get_device_capability(index)[0] >= 8 else torch.float16
    return torch.float32


def dtype_bytes(device: str) -> int:
    """Bytes per parameter a model is loaded with on ``device`` (fp32 on the CPU, 16-bit on a GPU)."""
    return 2 if device.startswith("cuda") else 4


def estimate_hf_bytes(model_dir: str, adapter_dir: str | None, device: str) -> int:
    """Memory a model will take once loaded: weights at the load dtype, adapter, and a margin
    for activations and the KV cache (10% + 64 MiB)."""
    from ..hardware import count_parameters

    weights = count_parameters(model_dir) * dtype_bytes(device)
    adapter = 0
    if adapter_dir:
        for name in ("adapter_model.safetensors", "adapter_model.bin"):
            path = os.path.join(adapter_dir, name)
            if os.path.isfile(path):
                adapter = os.path.getsize(path)
                break
    return int((weights + adapter) * 1.1) + (64 << 20)


@dataclass
class HFChatModel:
    """A loaded causal LM + tokenizer, ready to chat (adapter merged into a private copy)."""

    model: Any
    tokenizer: Any
    device: str
    chat_template: str
    stop_ids: set[int]
    max_positions: int | None
    memory_bytes: int
    backend: str = "hf"

    @classmethod
    def load(cls, model_dir: str, device: str, adapter_dir: str | None = None, tokenizer_dir: str | None = None,
             chat_template: str = "") -> "HFChatModel":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from .models import load_model, load_tokenizer

        tokenizer = load_tokenizer(tokenizer_dir or adapter_dir or model_dir)
        dtype = _torch_dtype(device)
        model = load_model(model_dir, str(dtype).removeprefix("torch."))
        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))  # as training did
        if adapter_dir:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
            model = model.merge_and_unload()  # a private copy: faster steps, same outputs
        model.config.use_cache = True
        model.to(device)
        model.eval()
        template = chat_template or getattr(tokenizer, "chat_template", None) or PLAIN_TEMPLATE
        stop_ids = end_of_turn_ids(tokenizer, model.generation_config.eos_token_id, template)
        positions = None
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(model.config, key, None)
            if isinstance(value, int) and value > 0:
                positions = value
                break
        memory = sum(t.numel() * t.element_size() for t in model.parameters())
        memory += sum(t.numel() * t.element_size() for t in model.buffers())
        return cls(model, tokenizer, device, template, stop_ids, positions, memory)

    def encode(self, messages: list[dict[str, str]]) -> tuple[str, list[int]]:
        prompt = format_prompt(self.tokenizer, messages, self.chat_template)
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return prompt, list(ids)

    def generate(self, messages: list[dict[str, str]], sampling: dict[str, Any],
                 on_delta: Callable[[str, list[int]], None], should_stop: Callable[[], bool] = lambda: False,
                 ) -> dict[str, Any]:
        """Stream one reply to ``messages`` (already checked); returns the result dict."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        started = time.perf_counter()
        _prompt, ids = self.encode(messages)
        limit = self.max_positions
        if limit is not None and len(ids) + sampling["max_new_tokens"] > limit:
            raise ContextTooLong(
                f"the conversation is {len(ids)} tokens and max_new_tokens is {sampling['max_new_tokens']}: "
                f"together more than the model's context of {limit} tokens; start a new conversation "
                "(/reset), shorten it or lower max_new_tokens")
        stream = ReplyStream(list(sampling["stop"]), on_delta, started=started)
        detok = IncrementalDetokenizer(self.tokenizer)
        stop_ids = self.stop_ids
        max_new = sampling["max_new_tokens"]

        class Watch(StoppingCriteria):
            """Runs after every step: streams the new token, checks stop strings and cancellation."""

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                token = int(input_ids[0, -1])
                stop = False
                if token in stop_ids:
                    stream.tick()
                    stream.finish_reason = FINISH_STOP_TOKEN
                elif stream.add(token, detok.add(token)):
                    stop = True
                elif should_stop():
                    stream.finish_reason = FINISH_CANCELLED
                    stop = True
                elif stream.completion_tokens >= max_new:
                    stream.finish_reason = FINISH_LENGTH
                return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

        if sampling.get("seed") is not None:
            seed = int(sampling["seed"])
        else:
            seed = int.from_bytes(os.urandom(4), "little")
        torch.manual_seed(seed)
        if self.device.startswith("cuda"):
            torch.cuda.manual_seed_all(seed)
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else next(iter(stop_ids), 0)
        with torch.inference_mode():
            self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                stopping_criteria=StoppingCriteriaList([Watch()]),
                                eos_token_id=sorted(stop_ids) or None, pad_token_id=pad,
                                **hf_generation_kwargs(sampling))
        stream.flush(detok.tail() if stream.finish_reason != FINISH_STOP_STRING else "")
        return stream.result(len(ids))

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
