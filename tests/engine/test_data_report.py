"""The data report's numbers: hand-counted on a word-level tokenizer, and the worker's own on real templates.

The word-level tokenizer makes every word, and every role or end marker, exactly one token, so each
count below is worked out by hand from the rendered text (see the comments)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from modxd.engine import data as D
from modxd.engine.data_report import DataReport, HistogramBin, distribution, report_file
from modxd.engine.formats import iter_sft_conversations
from modxd.engine.sft_tokens import SftTokenCounter
from modxd.engine.templating import ChatTokenizer, read_tokenizer_dir

# Words not in the vocabulary ("dd") are one [UNK] token each.
WORD_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<assistant> {% endif %}")
TRIM_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SYSTEM_REFUSED = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system turns') }}"
                  "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                  "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def word_tokenizer_dir(path: Path, template: str = WORD_TEMPLATE) -> Path:
    """A tokenizer dir whose tokens are whitespace-separated words (unknown ones: [UNK])."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["[UNK]", "</s>", "<user>", "<assistant>", "<system>", *"abcdefghijklmnopqrstuvwxyz"]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "</s>", "chat_template": template}))
    return path


def write_lines(path: Path, objects: list[dict]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects), encoding="utf-8")
    return path


def msgs(*turns: tuple[str, str]) -> dict:
    return {"messages": [{"role": r, "content": c} for r, c in turns]}


TWENTY = " ".join("abcdefghijklmnopqrst")
SMALL_FILE = [
    msgs(("user", "a b c"), ("assistant", "dd ee")),  # <user> a b c </s> <assistant> dd ee </s>: 9 tokens, 3 trained
    msgs(("user", "a b c"), ("assistant", "dd ee")),  # the same: a duplicate
    msgs(("user", "a b c"), ("assistant", "f")),  # 8 tokens, 2 trained; same prompt, another answer; short
    {"instruction": "g h i j k l m n o p", "output": "qq rr"},  # 16 tokens: the answer starts at 13 > 12
    {"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"},  # 14 tokens, 7 trained;
                       {"from": "gpt", "value": "c d e f g h"}]},  # two user turns in a row
    msgs(("user", TWENTY), ("assistant", "xx yy zz")),  # 27 tokens: the answer starts at 23
]


@pytest.fixture()
def words(tmp_path: Path) -> Path:
    return word_tokenizer_dir(tmp_path / "tok")


def sft_report(tmp_path: Path, tokenizer: Path, objects: list[dict], max_seq_length: int, **extra) -> DataReport:
    path = write_lines(tmp_path / "train.jsonl", objects)
    return report_file("sft", {"train_file": str(path), "model_dir": str(tokenizer), "max_seq_length": max_seq_length,
                               **extra})


def test_hand_counted_sft_report(tmp_path: Path, words: Path) -> None:
    r = sft_report(tmp_path, words, SMALL_FILE, 12)
    assert r.formats == {"messages": 4, "alpaca": 1, "sharegpt": 1} and r.format == "mixed" and r.examples == 6
    assert r.total_tokens == 9 + 9 + 8 + 16 + 14 + 27
    assert r.trainable_tokens == 3 + 3 + 2 + 3 + 7 + 4
    # lines 4 and 6 keep no answer token; line 5 keeps 12 tokens, 5 of its 7 answer tokens
    assert list(r.kept_lengths) == [9, 9, 8, 0, 12, 0]
    assert list(r.kept_labelled) == [3, 3, 2, 0, 5, 0]
    assert (r.kept_tokens, r.kept_trainable_tokens) == (38, 13)
    assert (r.truncated_tokens_lost, r.truncated_trainable_tokens_lost) == (2, 2)
    lengths = r.lengths
    assert (lengths.p0, lengths.p50, lengths.p90, lengths.p99, lengths.max) == (8, 9, 27, 27, 27)
    assert lengths.mean == round(83 / 6, 1)
    assert lengths.histogram == [HistogramBin(0, 2, 0), HistogramBin(2, 4, 0), HistogramBin(4, 6, 0),
                                 HistogramBin(6, 8, 0), HistogramBin(8, 10, 3), HistogramBin(10, 12, 0),
                                 HistogramBin(12, 13, 0), HistogramBin(13, 0, 3)]

    empty = r.finding("nothing_to_learn")
    assert empty.count == 2 and [(e.line, e.value) for e in empty.examples] == [(6, 23), (4, 13)]
    truncated = r.finding("truncated")
    assert truncated.count == 1 and [(e.line, e.value) for e in truncated.examples] == [(5, 2)]
    assert r.finding("duplicate").count == 1 and r.finding("duplicate").examples[0].line == 1
    conflicting = r.finding("conflicting_answers")
    assert conflicting.count == 1 and "lines 1, 3" in conflicting.examples[0].detail
    assert [(e.line, e.detail) for e in r.finding("short_answer").examples] == [(3, "answer 'f'")]
    assert [(e.line, e.detail) for e in r.finding("role_order").examples] == [(5, "two user turns in a row")]
    codes = [c for c, _ in r.warnings]
    assert codes == ["examples_dropped", "examples_truncated", "duplicate_examples", "conflicting_answers",
                     "short_answers", "role_order"]
    sentences = dict(r.warnings)
    assert "2 of 6 (33%)" in sentences["examples_dropped"] and "lines 6, 4" in sentences["examples_dropped"]
    assert "max_seq_length 64 would keep 99%" in sentences["examples_truncated"]
    json.dumps(r.to_dict())  # plain data for the wire
    assert "kept_lengths" not in r.to_dict()


def test_a_long_enough_max_seq_length_finds_nothing_to_cut(tmp_path: Path, words: Path) -> None:
    r = sft_report(tmp_path, words, SMALL_FILE, 27)
    assert r.finding("truncated").count == 0 and r.finding("nothing_to_learn").count == 0
    assert r.kept_tokens == r.total_tokens == 83 and r.kept_trainable_tokens == r.trainable_tokens == 22
    assert r.lengths.histogram[-1] == HistogramBin(28, 0, 0)
    assert "examples_truncated" not in dict(r.warnings)


def test_short_answers_are_warned_about_only_when_common(tmp_path: Path, words: Path) -> None:
    rows = [msgs(("user", "a"), ("assistant", "b c d e")) for _ in range(30)] + [msgs(("user", "z"), ("assistant", "k"))]
    r = sft_report(tmp_path, words, rows, 64)
    assert r.finding("short_answer").count == 1 and "short_answers" not in dict(r.warnings)  # 1 of 31 < 5%


def test_eval_examples_found_in_the_training_file(tmp_path: Path, words: Path) -> None:
    train = sft_report(tmp_path, words, SMALL_FILE, 64)
    path = write_lines(tmp_path / "eval.jsonl", [SMALL_FILE[5], msgs(("user", "q"), ("assistant", "r s t u"))])
    evals = report_file("sft", {"eval_file": str(path), "model_dir": str(words), "max_seq_length": 64},
                        field="eval_file", against=train)
    found = evals.finding("in_training_data")
    assert found.count == 1 and found.examples[0].line == 1
    assert "eval_in_train" in dict(evals.warnings) and "eval_file" in dict(evals.warnings)["eval_in_train"]


def test_lines_the_template_refuses_are_named(tmp_path: Path, tiny_llama_dir: Path) -> None:
    rows = [msgs(("user", "hello"), ("assistant", "there")),
            msgs(("system", "be brief"), ("user", "hello"), ("assistant", "there"))]
    r = sft_report(tmp_path, tiny_llama_dir, rows, 64, chat_template=SYSTEM_REFUSED)
    errors = r.finding("template_error")
    assert errors.count == 1 and errors.examples[0].line == 2 and "no system turns" in errors.examples[0].detail
    assert r.lengths.count == 1 and list(r.kept_lengths)[1] == 0
    assert "line 2" in dict(r.warnings)["template_error"]


@pytest.mark.parametrize("template", ["", TRIM_TEMPLATE, SYSTEM_REFUSED.replace("raise_exception('no system turns')",
                                                                               "''")],
                         ids=["tokenizer's", "trim", "own"])
@pytest.mark.parametrize("max_seq_length", [12, 40, 4096])
def test_counts_are_the_workers(tiny_llama_dir: Path, sft_mixed_jsonl: Path, tmp_path: Path, template: str,
                                max_seq_length: int) -> None:
    """Every conversation's tokens and labels as engine/data.py makes them, whatever path the counter takes."""
    conversations = list(iter_sft_conversations(str(sft_mixed_jsonl)))
    conversations.append([{"role": "user", "content": "  padded  "}, {"role": "assistant", "content": " spaced  "}])
    conversations.append([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a"},
                          {"role": "user", "content": "more"}, {"role": "assistant", "content": "b c"},
                          {"role": "user", "content": "trailing, not trained"}])
    chat = ChatTokenizer(read_tokenizer_dir(str(tiny_llama_dir), template))
    counter = SftTokenCounter(chat, max_seq_length)
    for messages, counted in zip(conversations, counter.count(conversations)):
        whole, _ = D.tokenize_conversation(chat, messages, 10**9)
        cut, _ = D.tokenize_conversation(chat, messages, max_seq_length)
        labelled = [i for i, x in enumerate(whole["labels"]) if x != D.IGNORE_INDEX]
        assert counted.tokens == len(whole["input_ids"])
        assert counted.labelled == len(labelled)
        assert counted.labelled_kept == sum(x != D.IGNORE_INDEX for x in cut["labels"])
        assert counted.first_labelled == (labelled[0] if labelled else -1)
    if template == TRIM_TEMPLATE:  # only the padded conversation differs from its skeleton
        assert counter.slow_renders == 1
    else:
        assert counter.slow_renders == 0


def test_pretraining_documents_and_blocks(tmp_path: Path, words: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    write_lines(path, [{"text": "a b c"}, {"text": "d e"}, {"text": "a b c"}])
    r = report_file("pretrain", {"train_file": str(path), "model_dir": str(words), "max_seq_length": 4})
    # documents of 3 + eos, 2 + eos, 3 + eos tokens = 11; two blocks of 4, 3 tokens left over
    assert (r.examples, r.total_tokens, r.blocks, r.kept_tokens, r.truncated_tokens_lost) == (3, 11, 2, 8, 3)
    assert list(r.kept_lengths) == [4, 4]
    assert r.finding("duplicate").count == 1 and "document 3" in r.finding("duplicate").examples[0].detail
    assert [c for c, _ in r.warnings] == ["duplicate_examples", "tokens_dropped"]


def test_distribution_quantiles_are_nearest_rank() -> None:
    d = distribution(range(1, 101), 100)
    assert (d.p0, d.p50, d.p90, d.p99, d.max, d.count, d.total) == (1, 50, 90, 99, 100, 100, 5050)
    assert [b.count for b in d.histogram] == [12, 13, 13, 13, 13, 13, 13, 10, 0]
    assert distribution([], 64).count == 0


def test_short_data_is_binned_over_its_own_lengths() -> None:
    d = distribution([30, 45, 60, 61, 118], 2048)  # all far below max_seq_length: round bins of 20 up to 160
    assert [(b.low, b.high) for b in d.histogram] == [(0, 20), (20, 40), (40, 60), (60, 80), (80, 100),
                                                      (100, 120), (120, 140), (140, 160), (2049, 0)]
    assert [b.count for b in d.histogram] == [0, 1, 1, 2, 0, 1, 0, 0, 0]
    longer = distribution([30, 3000], 2048)  # one longer than max_seq_length: eighths of it, as before
    assert longer.histogram[0] == HistogramBin(0, 256, 1) and longer.histogram[-1] == HistogramBin(2049, 0, 1)
    assert [b.high for b in distribution([7], 8).histogram][:2] == [1, 2]  # no room to spare: eighths
