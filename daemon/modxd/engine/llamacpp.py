"""Chat generation with a GGUF package through llama-cpp-python (optionally + a LoRA adapter GGUF).

Same contract as :class:`modxd.engine.generate.HFChatModel`: the conversation is rendered
with the chat template stored in the GGUF (``tokenizer.chat_template``), generation runs
token by token through ``Llama.generate`` (which reuses the KV cache for the common prefix
of the previous turn), and every token goes through :class:`ReplyStream` (stop strings,
deltas, timing). Cancellation is checked between tokens.

Sampling maps one to one: temperature (0 = greedy sampler), top_k (0 = off), top_p,
repetition_penalty (llama.cpp's repeat penalty, applied over the last 64 tokens, where
transformers penalises every earlier token), seed; min_p and typical_p are switched off
so the filters match the transformers backend.
"""
from __future__ import annotations

import codecs
import ctypes
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..hardware import usable_cpu_count
from .reply import FINISH_CANCELLED, FINISH_LENGTH, FINISH_STOP_TOKEN, PLAIN_TEMPLATE, ReplyStream
from .sampling import ContextTooLong

__all__ = ["LlamaChatModel", "estimate_gguf_bytes", "llama_generation_kwargs", "DEFAULT_CONTEXT"]

DEFAULT_CONTEXT = 4096  # tokens of context a loaded package gets (capped by what it was trained with)


def estimate_gguf_bytes(model_path: str, lora_path: str | None, n_ctx: int = DEFAULT_CONTEXT) -> int:
    """Memory before loading: the files (weights are read in full), plus 10% and a KV-cache
    allowance of 64 MiB per 1024 tokens of context."""
    size = os.path.getsize(model_path) + (os.path.getsize(lora_path) if lora_path else 0)
    return int(size * 1.1) + (n_ctx // 1024) * (64 << 20)


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def gguf_context_length(path: str) -> int:
    """``<arch>.context_length`` from a GGUF header (0 when absent), read without loading it."""
    import struct

    with open(path, "rb") as f:
        def read(fmt: str) -> Any:
            size = struct.calcsize(fmt)
            return struct.unpack(fmt, f.read(size))[0]

        def string() -> str:
            return f.read(read("<Q")).decode("utf-8", "replace")

        def skip(kind: int) -> Any:
            if kind in _SCALARS:
                return read(_SCALARS[kind])
            if kind == 8:
                return string()
            if kind == 9:
                item, count = read("<I"), read("<Q")
                if item in _SCALARS:
                    f.seek(struct.calcsize(_SCALARS[item]) * count, 1)
                else:
                    for _ in range(count):
                        skip(item)
                return None
            raise ValueError(f"{path}: unknown GGUF value type {kind}")

        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        read("<I")
        read("<Q")
        n_kv = read("<Q")
        values: dict[str, Any] = {}
        for _ in range(n_kv):
            key = string()
            value = skip(read("<I"))
            if key == "general.architecture" or key.endswith(".context_length"):
                values[key] = value
            arch = values.get("general.architecture")
            if arch and f"{arch}.context_length" in values:
                return int(values[f"{arch}.context_length"])
    return 0


def llama_generation_kwargs(sampling: dict[str, Any]) -> dict[str, Any]:
    """``Llama.generate`` keyword arguments for the sampling settings."""
    return {
        "temp": float(sampling["temperature"]),
        "top_k": int(sampling["top_k"]),
        "top_p": float(sampling["top_p"]),
        "repeat_penalty": float(sampling["repetition_penalty"]),
        "min_p": 0.0,
        "typical_p": 1.0,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
    }


def _quiet() -> None:
    from llama_cpp import _logger

    _logger.set_verbose(False)


def gpu_offload_supported() -> bool:
    try:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:  # noqa: BLE001
        return False


@dataclass
class LlamaChatModel:
    llm: Any
    device: str
    template: str
    bos_text: str
    eos_text: str
    n_ctx: int
    memory_bytes: int
    backend: str = "gguf"

    @classmethod
    def load(cls, model_path: str, device: str = "cpu", lora_path: str | None = None,
             n_ctx: int = DEFAULT_CONTEXT, threads: int = 0) -> "LlamaChatModel":
        """Open the GGUF (and adapter). ``device`` cuda:N offloads every layer when this
        llama.cpp build can; otherwise it runs on the CPU and ``device`` says so."""
        _quiet()
        import llama_cpp
        from llama_cpp import Llama

        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"the package's model file {model_path} is missing")
        if lora_path and not os.path.isfile(lora_path):
            raise FileNotFoundError(f"the package's adapter file {lora_path} is missing")
        offload = device.startswith("cuda") and gpu_offload_supported()
        used_device = device if offload else "cpu"
        kwargs: dict[str, Any] = {}
        if offload and ":" in device:
            kwargs["main_gpu"] = int(device.split(":", 1)[1])
        trained = gguf_context_length(model_path)
        n_ctx = min(n_ctx, trained) if trained > 0 else n_ctx
        llm = Llama(model_path=model_path, lora_path=lora_path or None, n_ctx=n_ctx, n_batch=512,
                    n_gpu_layers=-1 if offload else 0, n_threads=threads or usable_cpu_count(),
                    logits_all=False, verbose=False, seed=0, **kwargs)
        meta = llm.metadata
        template = meta.get("tokenizer.chat_template") or PLAIN_TEMPLATE
        model = llm._model
        bos = model.token_bos()
        eos = model.token_eos()
        bos_text = model.token_get_text(bos) if bos >= 0 else ""
        eos_text = model.token_get_text(eos) if eos >= 0 else ""
        size = os.path.getsize(model_path) + (os.path.getsize(lora_path) if lora_path else 0)
        try:
            size += int(llama_cpp.llama_state_get_size(llm.ctx))  # KV cache and output buffers
        except Exception:  # noqa: BLE001
            size += (n_ctx // 1024) * (64 << 20)
        return cls(llm, used_device, template, bos_text, eos_text, llm.n_ctx(), size)

    def format(self, messages: list[dict[str, str]]) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(self.template, eos_token=self.eos_text, bos_token=self.bos_text)
        return formatter(messages=messages).prompt

    def encode(self, messages: list[dict[str, str]]) -> tuple[str, list[int]]:
        prompt = self.format(messages)
        # As transformers' apply_chat_template: the template writes any BOS itself.
        return prompt, self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def _piece(self, token: int) -> bytes:
        import llama_cpp

        size = 64
        while True:
            buf = (ctypes.c_char * size)()
            n = llama_cpp.llama_token_to_piece(self.llm._model.vocab, llama_cpp.llama_token(token), buf, size, 0,
                                               False)
            if n >= 0:
                return bytes(buf[:n])
            size = -n + 1

    def generate(self, messages: list[dict[str, str]], sampling: dict[str, Any],
                 on_delta: Callable[[str, list[int]], None], should_stop: Callable[[], bool] = lambda: False,
                 ) -> dict[str, Any]:
        import llama_cpp

        started = time.perf_counter()
        _prompt, ids = self.encode(messages)
        max_new = int(sampling["max_new_tokens"])
        if len(ids) + max_new > self.n_ctx:
            raise ContextTooLong(
                f"the conversation is {len(ids)} tokens and max_new_tokens is {max_new}: together more than "
                f"the {self.n_ctx} tokens of context this package is loaded with; start a new conversation "
                "(/reset), shorten it or lower max_new_tokens")
        seed = sampling.get("seed")
        self.llm.set_seed(int(seed) if seed is not None else random.getrandbits(32))
        stream = ReplyStream(list(sampling["stop"]), on_delta, started=started)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        vocab = self.llm._model.vocab
        for token in self.llm.generate(ids, reset=True, **llama_generation_kwargs(sampling)):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                stream.tick()
                stream.finish_reason = FINISH_STOP_TOKEN
                break
            if stream.add(token, decoder.decode(self._piece(token))):
                break
            if should_stop():
                stream.finish_reason = FINISH_CANCELLED
                break
            if stream.completion_tokens >= max_new:
                stream.finish_reason = FINISH_LENGTH
                break
        stream.flush(decoder.decode(b"", final=True) if stream.finish_reason != "stop_string" else "")
        return stream.result(len(ids))

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None
