"""The pieces of the data report that are counted example by example (engine/data_report.py uses them).

Types of the report's parts, the length distribution, and the per-conversation findings of an SFT
file: truncation, nothing to learn, very short answers, role order, template errors, exact
duplicates (by a 16-byte BLAKE2 digest of the normalised conversation), prompts with different
answers, and eval examples that are also in the training file. Each finding keeps its count and
the ``WORST`` examples by its own measure (most tokens lost, longest prompt, ...).
"""
from __future__ import annotations

import hashlib
import heapq
import math
from dataclasses import dataclass, field
from typing import Iterable

from .sft_tokens import ConversationTokens

__all__ = ["HistogramBin", "LengthDistribution", "LineExample", "Finding", "Worst", "SftFindings", "distribution",
           "digest", "lines_text", "share", "WORST", "SHORT_ANSWER_CHARS", "HISTOGRAM_BINS"]

WORST = 5  # lines shown per finding
SHORT_ANSWER_CHARS = 3  # "ok", "no", "42": an answer this short teaches little
HISTOGRAM_BINS = 8


@dataclass(frozen=True)
class HistogramBin:
    """Examples with ``low <= tokens < high``; ``high`` 0: no upper bound (longer than max_seq_length)."""

    low: int
    high: int
    count: int


@dataclass(frozen=True)
class LengthDistribution:
    """Tokens per example (SFT: the rendered conversation; pretraining: a document and its eos)."""

    count: int
    total: int
    p0: int
    p50: int
    p90: int
    p99: int
    max: int
    mean: float
    histogram: list[HistogramBin]


@dataclass(frozen=True)
class LineExample:
    """One line to look at: where, the number it is ranked by, and what is wrong in words."""

    line: int
    value: int
    detail: str


@dataclass
class Finding:
    """How many examples have one problem, and the worst few."""

    code: str
    count: int = 0
    examples: list[LineExample] = field(default_factory=list)



def _round_up(n: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``n``."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= n:
                return m * step
        step *= 10


def distribution(lengths: Iterable[int], max_seq_length: int) -> LengthDistribution:
    """Nearest-rank quantiles and a histogram of eight bins (+ one for examples longer than
    max_seq_length): eighths of max_seq_length, or, when every example fits with room to spare,
    bins of a round width (1, 2, 5, 10, 20, ...) up to the longest example, so short data is not
    drawn as one full bar and seven empty ones."""
    ordered = sorted(lengths)
    n = len(ordered)
    if not n:
        return LengthDistribution(0, 0, 0, 0, 0, 0, 0, 0.0, [])

    def rank(q: float) -> int:
        return ordered[min(n - 1, max(0, math.ceil(round(q * n, 6)) - 1))]

    width = max(1, -(-max_seq_length // HISTOGRAM_BINS))
    end = max_seq_length + 1  # the regular bins cover [0, end); longer examples have a bin of their own
    if ordered[-1] <= max_seq_length:  # all fit: bins of a round width over the lengths there are
        narrow = _round_up(-(-(ordered[-1] + 1) // HISTOGRAM_BINS))
        if narrow * HISTOGRAM_BINS <= max_seq_length:
            width, end = narrow, narrow * HISTOGRAM_BINS
    lows = list(range(0, end, width))[:HISTOGRAM_BINS]  # the last bin runs to end
    counts = [0] * (len(lows) + 1)
    for length in ordered:
        counts[min(length // width, len(lows) - 1) if length <= max_seq_length else len(lows)] += 1
    highs = lows[1:] + [end]
    bins = [HistogramBin(low, high, c) for low, high, c in zip(lows, highs, counts)]
    bins.append(HistogramBin(max_seq_length + 1, 0, counts[-1]))
    total = sum(ordered)
    return LengthDistribution(n, total, ordered[0], rank(0.5), rank(0.9), rank(0.99), ordered[-1],
                              round(total / n, 1), bins)


class Worst:
    """The ``WORST`` examples with the largest value (ties: the earliest line), and the count."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.count = 0
        self._heap: list[tuple[int, int, str]] = []

    def add(self, line: int, value: int, detail: str) -> None:
        self.count += 1
        item = (value, -line, detail)
        if len(self._heap) < WORST:
            heapq.heappush(self._heap, item)
        elif item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def finding(self) -> Finding:
        ranked = sorted(self._heap, reverse=True)
        return Finding(self.code, self.count, [LineExample(-line, value, detail) for value, line, detail in ranked])


def lines_text(lines: list[int], unit: str = "line") -> str:
    shown = ", ".join(str(n) for n in lines[:WORST])
    return f"{unit}s {shown}" if len(lines) > 1 else f"{unit} {shown}"


def share(count: int, total: int) -> str:
    if not total:
        return str(count)
    percent = 100 * count / total
    return f"{count} of {total} ({percent:.0f}%)" if percent >= 1 else f"{count} of {total} ({percent:.2g}%)"


def digest(*parts: str) -> bytes:
    return hashlib.blake2b("\x1e".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _role_problem(messages: list[dict[str, str]]) -> str:
    """What is out of the usual order in a conversation that engine/formats.py accepted, or ''."""
    roles = [m["role"] for m in messages if m["role"] != "system"]
    if roles and roles[0] != "user":
        return "the first turn is the assistant's, with no prompt before it"
    for a, b in zip(roles, roles[1:]):
        if a == b:
            return f"two {a} turns in a row"
    if roles and roles[-1] != "assistant":
        return "it ends with a user turn, which is not trained on"
    return ""


class SftFindings:
    """Everything about a file that is counted per conversation."""

    def __init__(self, max_seq_length: int, against: set[bytes] | None) -> None:
        self.max_seq_length = max_seq_length
        self.truncated = Worst("truncated")
        self.empty = Worst("nothing_to_learn")
        self.short = Worst("short_answer")
        self.order = Worst("role_order")
        self.errors = Worst("template_error")
        self.in_train = Worst("in_training_data")
        self.against = against
        self.copies: dict[bytes, list[int]] = {}  # digest -> lines (first WORST + 1), count kept separately
        self.copy_counts: dict[bytes, int] = {}
        self.prompts: dict[bytes, tuple[int, bytes, set[bytes] | None, list[int]]] = {}
        self.lost = self.lost_labelled = 0

    def add(self, line: int, messages: list[dict[str, str]], counted: ConversationTokens) -> None:
        if counted.error:
            self.errors.add(line, 0, counted.error[:300])
        else:
            self._lengths(line, counted)
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        shortest = min(answers, key=lambda a: len(a.strip()))
        if len(shortest.strip()) <= SHORT_ANSWER_CHARS:
            self.short.add(line, -len(shortest.strip()), f"answer {shortest.strip()!r}")
        problem = _role_problem(messages)
        if problem:
            self.order.add(line, -line, problem)
        self._duplicates(line, messages)

    def _lengths(self, line: int, c: ConversationTokens) -> None:
        if c.labelled_kept == 0:
            prompt = c.first_labelled if c.first_labelled >= 0 else c.tokens
            self.empty.add(line, prompt, f"the prompt takes {prompt} tokens before the first answer token "
                                         f"(max_seq_length {self.max_seq_length})")
        elif c.tokens > self.max_seq_length:
            lost, lost_labelled = c.tokens - self.max_seq_length, c.labelled - c.labelled_kept
            self.lost += lost
            self.lost_labelled += lost_labelled
            self.truncated.add(line, lost, f"{c.tokens} tokens: {lost} cut, {lost_labelled} of them answer tokens")

    def _duplicates(self, line: int, messages: list[dict[str, str]]) -> None:
        flat = [f"{m['role']}\x1f{m['content']}" for m in messages]
        whole = digest(*flat)
        if self.against is not None and whole in self.against:
            self.in_train.add(line, -line, "the same conversation is in the training file")
        seen = self.copies.setdefault(whole, [])
        if len(seen) <= WORST:
            seen.append(line)
        self.copy_counts[whole] = self.copy_counts.get(whole, 0) + 1
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        prompt, answer = digest(*flat[:last]), digest(messages[last]["content"])
        entry = self.prompts.get(prompt)
        if entry is None:
            self.prompts[prompt] = (line, answer, None, [line])
            return
        first, first_answer, others, lines = entry
        if answer != first_answer and (others is None or answer not in others):
            others = (others or set()) | {answer}
            if len(lines) <= WORST:
                lines = lines + [line]
            self.prompts[prompt] = (first, first_answer, others, lines)

    def findings(self) -> list[Finding]:
        duplicate = Worst("duplicate")
        for digest, lines in self.copies.items():
            n = self.copy_counts[digest]
            if n > 1:
                duplicate.count += n - 2  # add() counts the last one
                duplicate.add(lines[0], n - 1, f"repeated {n - 1} more time(s): {lines_text(lines[1:])}")
        conflicting = Worst("conflicting_answers")
        for first, _, others, lines in self.prompts.values():
            if others:
                conflicting.add(first, len(others) + 1, f"the same prompt with {len(others) + 1} different answers: "
                                                        f"{lines_text(lines)}")
        found = [self.errors, self.empty, self.truncated, duplicate, conflicting, self.short, self.order]
        if self.against is not None:
            found.append(self.in_train)
        return [w.finding() for w in found if w.count]
