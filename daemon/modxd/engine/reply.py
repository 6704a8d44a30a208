"""What the two chat backends (engine/generate.py, engine/llamacpp.py) share about a reply.

Pure Python (no torch). Semantics, the same for both backends:

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

import time
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["ReplyStream", "PLAIN_TEMPLATE", "FINISH_STOP_TOKEN", "FINISH_LENGTH", "FINISH_STOP_STRING",
           "FINISH_CANCELLED"]

FINISH_STOP_TOKEN = "stop_token"
FINISH_LENGTH = "length"
FINISH_STOP_STRING = "stop_string"
FINISH_CANCELLED = "cancelled"

# The transcript used when a tokenizer has no chat template (a pretraining task's base model).
PLAIN_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


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
