"""The evaluation metrics, as pure functions (no torch, no numpy).

Every definition here is the one written in docs/evaluation.md; change both
together. The evaluation job (engine/evaluate.py) gathers the raw numbers
(negative log-likelihoods, token and byte counts, embeddings) and this module
turns them into scores, ranks the checkpoints and says whether the best one
really beats the runner-up (a paired bootstrap over examples).
"""
from __future__ import annotations

import math
import random
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Sequence

__all__ = [
    "WEIGHTS_SFT", "WEIGHTS_PRETRAIN", "MAX_MEAN_NLL", "words", "content_words", "sentences",
    "perplexity", "bits_per_byte", "cosine", "similarity_score", "coherence", "coherence_parts", "coverage",
    "ExampleScores", "CandidateScores", "composite", "example_composite", "rank", "paired_bootstrap",
    "BootstrapResult", "verdict", "MIN_EXAMPLES_FOR_VERDICT",
]

# Weights of the composite score (they sum to 1). The perplexity family enters as 2^-(bits per byte): the
# geometric-mean probability per byte of the reference text, in (0, 1] and comparable across tokenizers.
WEIGHTS_SFT = {"bits_per_byte": 0.25, "semantic_similarity": 0.35, "coverage": 0.25, "coherence": 0.15}
WEIGHTS_PRETRAIN = {"bits_per_byte": 1.0}
# exp(690) is still a finite double: a mean NLL above this is clamped so perplexity stays finite.
MAX_MEAN_NLL = 690.0
# Below this many examples the bootstrap cannot tell checkpoints apart: the verdict says so.
MIN_EXAMPLES_FOR_VERDICT = 5
ALPHA = 0.05

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# A CJK character is a word on its own; otherwise a run of letters/digits (apostrophes inside kept).
_WORD = re.compile(rf"\d+(?:[.,:]\d+)+|[{_CJK}]|(?:(?![{_CJK}])[^\W_])+(?:'(?:(?![{_CJK}])[^\W_])+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；…])\s+|(?<=[。！？；…])|\n+")
_TERMINAL = tuple(".!?。！？…;；")
_CLOSERS = "\"')]}»”’」』"

STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves s t don isn aren wasn weren doesn didn
won wouldn shouldn couldn let's it's i'm you're that's there's what's also may might must shall
的 了 是 在 我 你 他 她 它 们 这 那 和 与 就 也 都 而 及 着 吗 呢 吧 啊 之 一 个 有 不 为 以 于 上 中
""".split())

CONNECTIVES = frozenset("""
and but so then because however therefore thus also this that it they he she these those which first second
finally next moreover furthermore besides instead still yet meanwhile hence consequently otherwise for or
因此 所以 但是 然后 而且 因为 此外 另外 首先 其次 最后 这 那 它
""".split())


# ----------------------------------------------------------------------------- text

def normalize(text: str) -> str:
    """NFKC and lower case: what every text metric compares."""
    return unicodedata.normalize("NFKC", text or "").lower()


def words(text: str) -> list[str]:
    """Word tokens: numbers like 3.14, runs of letters/digits (inner apostrophes kept), each CJK character alone."""
    return _WORD.findall(normalize(text))


def content_words(text: str) -> set[str]:
    """The set of words that are not stopwords."""
    return {w for w in words(text) if w not in STOPWORDS}


def sentences(text: str) -> list[str]:
    """Sentences: split after . ! ? ; … (and their CJK forms) and at line breaks."""
    return [s.strip() for s in _SENTENCE_END.split(text or "") if s and s.strip()]


# ----------------------------------------------------------------------------- perplexity family

def _mean_nll(total_nll: float, tokens: int) -> float:
    if tokens <= 0:
        raise ValueError("perplexity needs at least one scored token")
    return min(total_nll / tokens, MAX_MEAN_NLL)


def perplexity(total_nll: float, tokens: int) -> float:
    """exp(total NLL / tokens): the token-weighted perplexity (NLL in nats)."""
    return math.exp(_mean_nll(total_nll, tokens))


def bits_per_byte(total_nll: float, n_bytes: int) -> float:
    """Total NLL in nats / ln 2 / UTF-8 bytes of the scored text."""
    if n_bytes <= 0:
        raise ValueError("bits per byte needs at least one byte of text")
    return total_nll / math.log(2) / n_bytes


# ----------------------------------------------------------------------------- similarity

def cosine(u: Sequence[float], v: Sequence[float]) -> float:
    """Cosine of two vectors, clamped to [-1, 1]; 0 when either is all zeros."""
    dot = sum(a * b for a, b in zip(u, v))
    nu = math.sqrt(sum(a * a for a in u))
    nv = math.sqrt(sum(b * b for b in v))
    if nu == 0 or nv == 0:
        return 0.0
    return max(-1.0, min(1.0, dot / (nu * nv)))


def similarity_score(generated: str, gen_vec: Sequence[float] | None, ref_vec: Sequence[float]) -> float:
    """Cosine of the two sentence embeddings; an empty generation scores 0 (it is not embedded)."""
    if not (generated or "").strip() or gen_vec is None:
        return 0.0
    return cosine(gen_vec, ref_vec)


# ----------------------------------------------------------------------------- coherence

def _distinct(items: list, n: int) -> float:
    grams = [tuple(items[i:i + n]) for i in range(len(items) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def _junk(c: str) -> bool:
    """Characters fluent text does not contain: controls (not \\n \\t \\r), U+FFFD, private use, unassigned."""
    if c in "\n\t\r":
        return False
    return c == "\ufffd" or unicodedata.category(c) in ("Cc", "Co", "Cn", "Cs")


_ODD_SHAPE = re.compile(r"[a-z][A-Z]|[A-Z]{2,}[a-z]")


def coherence_parts(text: str) -> dict[str, float]:
    """The factors of :func:`coherence` (each in [0, 1]), for the report and for tests."""
    stripped = (text or "").strip()
    w = words(stripped)
    names = ("repetition", "char_repetition", "symbols", "word_shape", "length", "ending", "connected")
    if not stripped or not w:
        return dict.fromkeys(names, 0.0)
    repeats = sum(1 for sentence in sentences(stripped) for a, b in zip(words(sentence), words(sentence)[1:])
                  if a == b)  # a word said twice in a row, within a sentence
    repetition = _distinct(w, 3) * (1 - repeats / (len(w) - 1) if len(w) > 1 else 1.0)
    squeezed = re.sub(r"\s+", " ", normalize(stripped))
    char_repetition = min(1.0, _distinct(list(squeezed), 4) / 0.5) if len(squeezed) >= 20 else 1.0
    visible = [c for c in stripped if not c.isspace()]
    alnum = sum(1 for c in visible if c.isalnum())
    junk = sum(1 for c in stripped if _junk(c))
    symbols = min(1.0, (alnum / len(visible)) / 0.6) * max(0.0, 1 - 5 * junk / len(visible))
    raw_words = _WORD.findall(unicodedata.normalize("NFKC", stripped))
    odd = sum(1 for t in raw_words if _ODD_SHAPE.search(t))
    word_shape = 1 - 0.5 * odd / len(raw_words) if raw_words else 1.0
    length = min(1.0, (len(w) + 1) / 4)
    end = stripped.rstrip(_CLOSERS)
    ending = 1.0 if end.endswith(_TERMINAL) else 0.9
    sents = sentences(stripped)
    if len(sents) < 2:
        connected = 1.0
    else:
        linked = 0
        for a, b in zip(sents, sents[1:]):
            if normalize(a) == normalize(b):
                continue  # a repeated sentence is a loop, not a link
            wb = words(b)
            if (content_words(a) & content_words(b)) or (wb and wb[0] in CONNECTIVES):
                linked += 1
        connected = 0.7 + 0.3 * linked / (len(sents) - 1)
    values = (repetition, char_repetition, symbols, word_shape, length, ending, connected)
    return dict(zip(names, values))


def coherence(text: str) -> float:
    """Reference-free coherence in [0, 1]: the product of the factors of :func:`coherence_parts`.

    repetition: distinct word trigrams / word trigrams x (1 - immediate repeats / (words - 1)), an immediate
    repeat being a word equal to the one before it in the same sentence;
    char_repetition: distinct character 4-grams / 4-grams, over 0.5, capped at 1 (texts of 20+ chars);
    symbols: (share of visible characters that are letters or digits, over 0.6, capped at 1)
    x max(0, 1 - 5 x share of junk characters: controls, U+FFFD, private use, unassigned);
    word_shape: 1 - 0.5 x share of words with a case change inside (theAN, ERUnswer);
    length: (words + 1) / 4, capped at 1; ending: 1 if the text ends a sentence, else 0.9;
    connected: 0.7 + 0.3 x share of adjacent sentence pairs that share a content word or open with a
    connective (identical pairs never count). Empty text scores 0.
    """
    score = 1.0
    for value in coherence_parts(text).values():
        score *= value
    return score


# ----------------------------------------------------------------------------- coverage

VERBOSITY_ALLOWANCE = 3  # the generation may use this many times the reference's content words for free


def coverage(generated: str, reference: str) -> float:
    """Recall of the reference's content words in the generation, guarded against verbosity.

    R = content words of the reference (all its words if it has no content word), G = the same kind of
    words of the generation. recall = |R & G| / |R|; when |G| > 3 |R| the recall is multiplied by
    3 |R| / |G|, so dumping many words cannot buy coverage. A reference without any word scores 1 when
    the normalised texts are equal, else 0.
    """
    ref = content_words(reference)
    gen = content_words(generated)
    if not ref:
        ref, gen = set(words(reference)), set(words(generated))
    if not ref:
        return 1.0 if normalize(generated).strip() == normalize(reference).strip() else 0.0
    recall = len(ref & gen) / len(ref)
    allowed = VERBOSITY_ALLOWANCE * len(ref)
    if len(gen) > allowed:
        recall *= allowed / len(gen)
    return recall


# ----------------------------------------------------------------------------- composite and ranking

@dataclass
class ExampleScores:
    """One candidate on one example: raw perplexity numbers and the text metrics (None = not measured)."""

    nll: float
    tokens: int
    n_bytes: int
    semantic_similarity: float | None = None
    coherence: float | None = None
    coverage: float | None = None


def _norm(metric: str, value: float) -> float:
    """A metric mapped to [0, 1] for the composite."""
    if metric == "bits_per_byte":
        return 2.0 ** -max(0.0, value)
    return max(0.0, min(1.0, value))  # similarity: negative cosines count as 0


def composite(values: dict[str, float | None], weights: dict[str, float]) -> float:
    """sum(weight x normalised metric) / sum(weights of the metrics present).

    bits per byte is normalised as 2^-bpb; similarity, coherence and coverage are clamped to [0, 1].
    """
    total = used = 0.0
    for metric, weight in weights.items():
        value = values.get(metric)
        if value is None:
            continue
        total += weight * _norm(metric, value)
        used += weight
    return total / used if used else 0.0


def example_composite(example: ExampleScores, weights: dict[str, float]) -> float:
    """The composite of one example (its own bits per byte); shown per example in the JSONL."""
    values = {"bits_per_byte": bits_per_byte(example.nll, example.n_bytes) if example.n_bytes else None,
              "semantic_similarity": example.semantic_similarity, "coherence": example.coherence,
              "coverage": example.coverage}
    return composite(values, weights)


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


@dataclass
class CandidateScores:
    """A candidate's metrics over a set of examples (token-weighted perplexity, means of the others)."""

    perplexity: float
    bits_per_byte: float
    semantic_similarity: float | None
    coherence: float | None
    coverage: float | None
    composite: float
    tokens: int
    n_bytes: int
    examples: int

    def as_dict(self) -> dict[str, float | int | None]:
        return dict(self.__dict__)

    @classmethod
    def of(cls, examples: Sequence[ExampleScores], weights: dict[str, float]) -> "CandidateScores":
        if not examples:
            raise ValueError("no examples to score")
        nll = sum(e.nll for e in examples)
        tokens = sum(e.tokens for e in examples)
        n_bytes = sum(e.n_bytes for e in examples)
        ppl = perplexity(nll, tokens)
        bpb = bits_per_byte(nll, n_bytes)
        values = {"bits_per_byte": bpb,
                  "semantic_similarity": _mean(e.semantic_similarity for e in examples),
                  "coherence": _mean(e.coherence for e in examples),
                  "coverage": _mean(e.coverage for e in examples)}
        return cls(ppl, bpb, values["semantic_similarity"], values["coherence"],
                   values["coverage"], composite(values, weights), tokens, n_bytes, len(examples))


def rank(candidates: Sequence[dict]) -> list[int]:
    """Indexes of `candidates` best first: composite (higher), then bits per byte (lower), then step (lower).

    Every candidate gets its own rank; equal scores are ordered by the tie-breaks, so the order is
    always total and repeatable. Each dict needs composite, bits_per_byte and step.
    """
    return sorted(range(len(candidates)),
                  key=lambda i: (-candidates[i]["composite"], candidates[i]["bits_per_byte"], candidates[i]["step"],
                                 i))


@dataclass
class BootstrapResult:
    difference: float  # composite(a) - composite(b) on the real examples
    p_value: float  # share of resamples where a does not beat b (one-sided, +1 smoothed)
    low: float  # 2.5th percentile of the resampled differences
    high: float  # 97.5th percentile
    replicates: int
    examples: int
    resampled: list[float] = field(default_factory=list, repr=False)


def resample_indexes(n: int, replicates: int, seed: int) -> list[list[int]]:
    """The bootstrap resamples (n indexes drawn with replacement), shared by every comparison."""
    rng = random.Random(seed)
    return [[rng.randrange(n) for _ in range(n)] for _ in range(replicates)]


def paired_bootstrap(a: Sequence[ExampleScores], b: Sequence[ExampleScores], weights: dict[str, float],
                     resamples: list[list[int]]) -> BootstrapResult:
    """Does candidate `a` beat `b`? Both are scored on the same resampled examples (paired)."""
    if len(a) != len(b) or not a:
        raise ValueError("a paired bootstrap needs the same, non-empty examples for both candidates")
    observed = CandidateScores.of(a, weights).composite - CandidateScores.of(b, weights).composite
    diffs = []
    for idx in resamples:
        diffs.append(CandidateScores.of([a[i] for i in idx], weights).composite
                     - CandidateScores.of([b[i] for i in idx], weights).composite)
    not_better = sum(1 for d in diffs if d <= 0)
    p = (not_better + 1) / (len(diffs) + 1)
    ordered = sorted(diffs) or [observed]
    low = ordered[int(0.025 * (len(ordered) - 1))]
    high = ordered[int(math.ceil(0.975 * (len(ordered) - 1)))]
    return BootstrapResult(observed, p, low, high, len(diffs), len(a), diffs)


def verdict(best_label: str, runner_label: str, result: BootstrapResult | None, examples: int) -> tuple[str, bool]:
    """(sentence, tie): 'X beats Y …' when p < 0.05 on enough examples, else 'tie within noise …'."""
    if result is None or examples < MIN_EXAMPLES_FOR_VERDICT:
        return (f"tie within noise: {examples} example(s) are too few to separate {best_label} from "
                f"{runner_label} (need {MIN_EXAMPLES_FOR_VERDICT})", True)
    detail = (f"composite {result.difference:+.4f}, 95% CI [{result.low:+.4f}, {result.high:+.4f}], "
              f"paired bootstrap p={result.p_value:.3g} over {examples} examples")
    if result.p_value < ALPHA and result.difference > 0:
        return f"best beats runner-up: {best_label} beats {runner_label} ({detail})", False
    return f"tie within noise: {best_label} vs {runner_label} ({detail})", True
