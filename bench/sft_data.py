"""A synthetic, variable-length SFT chat set for throughput benchmarks (written for modx).

Real chat data is skewed: many short exchanges, some long explanations. Lengths here are
drawn uniformly between ``min_tokens`` and ``max_tokens`` (counted with the model's own
tokenizer and chat template), with a system prompt in a third of the conversations and a
second user/assistant exchange in a quarter, so batches mix short and long examples the way
real SFT sets do. The text is composed from templates and word lists: meaningless as
knowledge, but ordinary English prose in ordinary chat turns.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SYSTEMS = [
    "You are a patient assistant who explains things step by step.",
    "You are a concise assistant. Prefer short, exact answers.",
    "You help engineers debug their systems. Ask for logs when needed.",
]
TOPICS = ["the garden irrigation controller", "a sourdough starter", "the team's deployment pipeline",
          "a bicycle gearbox", "the city library's catalogue", "a small solar battery", "the weekly budget",
          "a chess opening", "the apartment heating", "a hiking route", "the photo archive", "a bread oven"]
QUESTIONS = ["How should I set up {t}?", "Why does {t} keep failing in the morning?",
             "Can you compare two ways of maintaining {t}?", "What is the first thing to check on {t}?",
             "Explain {t} to a beginner.", "Write a short plan for improving {t}."]
VERBS = ["check", "measure", "clean", "adjust", "record", "replace", "compare", "schedule", "label", "test"]
THINGS = ["the main valve", "the temperature", "the input cable", "each log entry", "the second filter",
          "the backup copy", "the timer", "the pressure gauge", "the oldest part", "the daily notes"]
REASONS = ["because small drifts add up over a week", "so that the next step starts from a known state",
           "since most failures begin there", "which keeps the results comparable",
           "because it is the cheapest thing to fix", "so nobody has to guess later"]
FOLLOW_UPS = ["Thanks. What if that does not help?", "Could you make that shorter?",
              "And how often should I repeat it?"]


def _sentence(rng: random.Random) -> str:
    return (f"{rng.choice(['First', 'Then', 'Next', 'Also', 'Finally', 'If needed'])}, "
            f"{rng.choice(VERBS)} {rng.choice(THINGS)}, {rng.choice(REASONS)}.")


def _conversation(rng: random.Random, answer_sentences: int) -> list[dict[str, str]]:
    topic = rng.choice(TOPICS)
    messages = [{"role": "system", "content": rng.choice(SYSTEMS)}] if rng.random() < 1 / 3 else []
    messages.append({"role": "user", "content": rng.choice(QUESTIONS).format(t=topic)})
    if rng.random() < 0.25 and answer_sentences > 4:
        first = answer_sentences // 3
        messages.append({"role": "assistant", "content": " ".join(_sentence(rng) for _ in range(first))})
        messages.append({"role": "user", "content": rng.choice(FOLLOW_UPS)})
        answer_sentences -= first
    messages.append({"role": "assistant", "content": " ".join(_sentence(rng) for _ in range(answer_sentences))})
    return messages


def _tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def make_conversations(tokenizer: Any, n: int, seed: int = 0, min_tokens: int = 20,
                       max_tokens: int = 1000) -> list[list[dict[str, str]]]:
    """``n`` conversations whose rendered lengths spread uniformly over [min_tokens, max_tokens]."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        target = rng.randint(min_tokens, max_tokens)
        sentences, conv = 1, _conversation(random.Random(rng.random()), 1)
        if _tokens(tokenizer, conv) > target:  # the shortest exchange: a one-word question and answer
            conv = [{"role": "user", "content": "Ready?"}, {"role": "assistant", "content": "Yes."}]
        else:
            state = rng.random()
            while True:  # grow the answer until the conversation reaches its target length
                longer = _conversation(random.Random(state), sentences + 1)
                if _tokens(tokenizer, longer) > target:
                    break
                conv, sentences = longer, sentences + 1
        out.append(conv)
    return out


def write_jsonl(path: Path, conversations: list[list[dict[str, str]]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for conv in conversations:
            f.write(json.dumps({"messages": conv}, ensure_ascii=False) + "\n")
    return path
