"""The evaluation metrics on hand-made cases whose right answer is known (pure Python, no torch)."""
from __future__ import annotations

import math

import pytest

from modxd.engine import metrics as M

REF = "The capital of France is Paris, a city on the river Seine."
FLUENT = ("The capital of France is Paris. Paris is known for the Eiffel Tower, which was built in 1889. "
          "Because of this, many tourists visit the city every year.")
OFF_TOPIC = "Bananas are rich in potassium and grow in tropical climates."


def test_identical_text_has_full_coverage() -> None:
    assert M.coverage(REF, REF) == 1.0
    assert M.coverage("你好，世界。", "你好，世界。") == 1.0
    assert M.coverage("the of and", "the of and") == 1.0  # only stopwords: falls back to every word
    assert M.coverage("!!", "!!") == 1.0 and M.coverage("?", "!!") == 0.0  # no word at all: exact match


def test_coverage_is_recall_of_content_words() -> None:
    # content words of REF: capital france paris city river seine -> 6
    assert M.content_words(REF) == {"capital", "france", "paris", "city", "river", "seine"}
    assert M.coverage("Paris is the capital.", REF) == pytest.approx(2 / 6)
    assert M.coverage(OFF_TOPIC, REF) == 0.0
    assert M.coverage("", REF) == 0.0


def test_coverage_cannot_be_gamed_by_verbosity() -> None:
    dump = REF + " " + " ".join(f"word{i}" for i in range(100))
    honest = M.coverage(REF, REF)
    gamed = M.coverage(dump, REF)
    assert gamed < 0.2 * honest
    # up to 3x the reference's content words are free
    allowed = REF + " " + " ".join(f"extra{i}" for i in range(12))
    assert M.coverage(allowed, REF) == 1.0


def test_repetition_loops_score_low_coherence() -> None:
    assert M.coherence(FLUENT) > 0.9
    assert M.coherence("ANSWER: the answer is always the same.") == 1.0
    for loop in ["I am a cat. I am a cat. I am a cat. I am a cat. I am a cat.",
                 "the the the the the the the the the",
                 "Paris Paris Paris Paris Paris Paris Paris.",
                 "abababababababababababababababab"]:
        assert M.coherence(loop) < 0.3, loop
    parts = M.coherence_parts("I am a cat. I am a cat. I am a cat.")
    assert parts["repetition"] < 0.5 and parts["connected"] == 0.7


def test_degenerate_output_scores_low_coherence() -> None:
    assert M.coherence("") == 0.0 and M.coherence("   \n ") == 0.0
    assert M.coherence("}}}{{{ ## @@ !! ?? ))") == 0.0
    assert M.coherence("\ufffd \x0e ->\ufffd\ufffd text\x1f\ufffd s") == 0.0  # broken bytes and control characters
    assert M.coherence("theAN theAN theAN theSWSW") < 0.4
    assert M.coherence("Yes.") == 0.5  # one word: short, not broken
    assert M.coherence("A fine sentence that was cut off in the") == pytest.approx(0.9)
    assert M.coherence("我们训练一个很小的模型。它学会了重复同样的回答。") == 1.0


def test_coherence_rewards_connected_sentences() -> None:
    linked = "The model was trained on small data. Therefore the model overfits quickly."
    unlinked = "The model was trained on small data. Bananas grow in tropical climates."
    assert M.coherence(linked) == 1.0
    assert M.coherence(unlinked) == pytest.approx(0.7)


def test_similarity_of_vectors() -> None:
    assert M.cosine([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert M.cosine([1, 0], [0, 1]) == 0.0 and M.cosine([1, 0], [-1, 0]) == -1.0
    assert M.cosine([0, 0], [1, 0]) == 0.0
    assert M.similarity_score("", [1, 0], [1, 0]) == 0.0  # an empty answer is never similar


def test_perplexity_and_bits_per_byte() -> None:
    assert M.perplexity(0.0, 5) == 1.0
    assert M.perplexity(10 * math.log(4), 10) == pytest.approx(4.0)
    assert M.bits_per_byte(8 * math.log(2), 4) == pytest.approx(2.0)
    assert math.isfinite(M.perplexity(1e9, 1))
    with pytest.raises(ValueError):
        M.perplexity(1.0, 0)


def test_candidate_scores_are_token_weighted_and_composite_in_range() -> None:
    examples = [M.ExampleScores(2.0, 1, 4, 1.0, 1.0, 1.0), M.ExampleScores(6.0, 3, 8, 0.5, 0.5, 0.0)]
    c = M.CandidateScores.of(examples, M.WEIGHTS_SFT)
    assert c.perplexity == pytest.approx(math.exp(8.0 / 4))  # not the mean of the two perplexities
    assert c.bits_per_byte == pytest.approx(8.0 / math.log(2) / 12)
    assert (c.semantic_similarity, c.coherence, c.coverage) == (0.75, 0.75, 0.5)
    expected = 0.25 * 2 ** -c.bits_per_byte + 0.35 * 0.75 + 0.25 * 0.5 + 0.15 * 0.75
    assert c.composite == pytest.approx(expected)
    perfect = M.CandidateScores.of([M.ExampleScores(0.0, 3, 3, 1.0, 1.0, 1.0)], M.WEIGHTS_SFT)
    assert perfect.composite == pytest.approx(1.0)
    pretrain = M.CandidateScores.of([M.ExampleScores(3 * math.log(2), 3, 3)], M.WEIGHTS_PRETRAIN)  # 1 bit per byte
    assert pretrain.composite == pytest.approx(0.5) and pretrain.semantic_similarity is None
    assert pretrain.perplexity == pytest.approx(2.0)
    assert M.composite({"semantic_similarity": -0.4}, {"semantic_similarity": 1.0}) == 0.0


def test_rank_breaks_ties_explicitly() -> None:
    cands = [{"composite": 0.5, "bits_per_byte": 1.0, "step": 20},
             {"composite": 0.7, "bits_per_byte": 2.0, "step": 10},
             {"composite": 0.5, "bits_per_byte": 0.9, "step": 30},
             {"composite": 0.5, "bits_per_byte": 0.9, "step": 5}]
    assert M.rank(cands) == [1, 3, 2, 0]


def _examples(n: int, quality: float, noise: float, seed: int) -> list[M.ExampleScores]:
    import random

    rng = random.Random(seed)
    return [M.ExampleScores(10.0, 10, 30, min(1, max(0, quality + rng.uniform(-noise, noise))), 0.9, 0.8)
            for _ in range(n)]


def test_paired_bootstrap_separates_a_clear_winner() -> None:
    good, bad = _examples(40, 0.8, 0.1, 1), _examples(40, 0.3, 0.1, 2)
    res = M.paired_bootstrap(good, bad, M.WEIGHTS_SFT, M.resample_indexes(40, 500, 0))
    assert res.difference > 0 and res.p_value < 0.01 and res.low > 0
    sentence, tie = M.verdict("step 20", "step 10", res, 40)
    assert not tie and sentence.startswith("best beats runner-up: step 20 beats step 10")


def test_paired_bootstrap_calls_noise_a_tie() -> None:
    a, b = _examples(40, 0.5, 0.4, 1), _examples(40, 0.5, 0.4, 2)
    res = M.paired_bootstrap(a, b, M.WEIGHTS_SFT, M.resample_indexes(40, 500, 0))
    if res.difference < 0:
        res = M.paired_bootstrap(b, a, M.WEIGHTS_SFT, M.resample_indexes(40, 500, 0))
    assert res.p_value > 0.05 and res.low < 0 < res.high
    sentence, tie = M.verdict("a", "b", res, 40)
    assert tie and sentence.startswith("tie within noise")
    same = M.paired_bootstrap(a, a, M.WEIGHTS_SFT, M.resample_indexes(40, 100, 0))
    assert same.difference == 0 and same.p_value == 1.0
    assert M.verdict("a", "b", res, 3)[1]  # too few examples: always a tie

