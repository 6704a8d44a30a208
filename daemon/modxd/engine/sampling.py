"""Chat sampling settings and conversations: the rules both backends and the daemon share.

Pure Python (no torch): the daemon checks a chat request with these functions before anything
is loaded, and the inference worker checks again with the same ones, so a setting means the
same thing at both ends and a refusal is the same sentence.

* ``temperature`` 0 is greedy decoding; ``top_k`` 0 and ``top_p`` 1 switch those filters
  off; ``repetition_penalty`` 1 is off. ``top_k`` 1 is greedy whatever the temperature.
* A setting the client did not give takes :data:`SAMPLING_DEFAULTS` (``max_new_tokens``
  capped by the daemon's ``max_chat_tokens``).
* A conversation is at most :data:`MESSAGES_MAX_COUNT` messages and
  :data:`CONVERSATION_MAX_CHARS` characters, may start with one system message and ends
  with the user's.
"""
from __future__ import annotations

import math
from typing import Any

__all__ = [
    "SAMPLING_DEFAULTS", "SamplingError", "ContextTooLong", "check_sampling", "check_messages", "ROLES",
]

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
# The smallest temperature and repetition penalty above 0: the logits are divided by them, and below
# this a logit of 10 grows past what float32 holds (inf, then NaN probabilities: a failed generation).
# The evaluation's generation settings (modxd/evaluations.py) keep to the same floor.
TEMPERATURE_MIN = 0.01
REPETITION_PENALTY_MIN = 0.01
TOP_K_MAX = 1_000_000
SEED_MAX = 2**32 - 1
STOP_MAX_COUNT = 16
STOP_MAX_CHARS = 256
MESSAGES_MAX_COUNT = 10_000
CONVERSATION_MAX_CHARS = 1_000_000
ROLES = ("system", "user", "assistant")


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
        if not (t == 0.0 or TEMPERATURE_MIN <= t <= TEMPERATURE_MAX):
            raise SamplingError(f"temperature must be 0 (greedy) or between {TEMPERATURE_MIN:g} and "
                                f"{TEMPERATURE_MAX:g}, got {t:g}")
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
        if not REPETITION_PENALTY_MIN <= r <= REPETITION_PENALTY_MAX:
            raise SamplingError(f"repetition_penalty must be above 0 and at most {REPETITION_PENALTY_MAX:g} (at least "
                                f"{REPETITION_PENALTY_MIN:g}; 1 = off, above 1 discourages repeats), got {r:g}")
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
