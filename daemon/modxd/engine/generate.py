"""Chat generation with a Hugging Face model (base, base + LoRA adapter, or a full checkpoint).

The transformers backend of the inference worker; engine/llamacpp.py is the GGUF one. What
both share lives beside them: the sampling rules and conversation checks in
engine/sampling.py (the daemon uses those too), the reply stream (stop strings, deltas,
timing) and the finish reasons in engine/reply.py. torch, transformers and peft are imported
inside the functions that load or run a model, which only the inference worker calls.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from .reply import FINISH_CANCELLED, FINISH_LENGTH, FINISH_STOP_STRING, FINISH_STOP_TOKEN, PLAIN_TEMPLATE, ReplyStream
from .sampling import ContextTooLong

__all__ = ["HFChatModel", "format_prompt", "hf_generation_kwargs", "end_of_turn_ids", "estimate_hf_bytes",
           "IncrementalDetokenizer"]

# End-of-turn markers used by common chat templates: when the template uses one and the
# tokenizer has it as a single token, generation stops at it even if eos is another token.
END_OF_TURN_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>")


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
    from .safetensors_header import count_parameters

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
