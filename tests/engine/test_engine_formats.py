"""Data-format validation: every refusal names the file, the line and the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modxd.engine.formats import (
    DataError,
    inspect_pretrain_file,
    inspect_sft_file,
    iter_pretrain_texts,
    iter_sft_conversations,
    normalize_sft_example,
)

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def write_lines(path: Path, lines: list) -> str:
    """Write objects as JSON lines (strings are written verbatim)."""
    with open(path, "w", encoding="utf-8") as f:
        for item in lines:
            f.write(item if isinstance(item, str) else json.dumps(item, ensure_ascii=False))
            f.write("\n")
    return str(path)


def error_of(path: str, **kw) -> DataError:
    with pytest.raises(DataError) as info:
        inspect_sft_file(path, **kw)
    return info.value


def test_message_in_the_spec_shape(tmp_path: Path) -> None:
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]}
    path = write_lines(tmp_path / "y.jsonl", [GOOD] * 6 + [bad])
    err = error_of(path)
    assert err.line == 7 and err.path == path
    assert str(err) == (f"train_file {path} line 7: 'messages[1].role' must be one of "
                        "system, user, assistant (got 'bot')")


def test_all_three_formats_normalise_and_mix(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "mix.jsonl", [
        {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "u"},
                      {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]},
        "",
        {"instruction": "Translate", "input": "chat", "output": "猫 🐱", "system": "S2"},
        {"instruction": "Say hi", "input": "", "output": "hi", "history": [["q0", "a0"]]},
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "system": "S3"},
    ])
    convs = list(iter_sft_conversations(path))
    assert convs[0] == [{"role": "system", "content": "S"}, {"role": "user", "content": "u"},
                        {"role": "assistant", "content": "ab"}]
    assert convs[1] == [{"role": "system", "content": "S2"}, {"role": "user", "content": "Translate\n\nchat"},
                        {"role": "assistant", "content": "猫 🐱"}]
    assert convs[2] == [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "a0"},
                        {"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi"}]
    assert convs[3] == [{"role": "system", "content": "S3"}, {"role": "user", "content": "q"},
                        {"role": "assistant", "content": "a"}]
    summary = inspect_sft_file(path)
    assert summary.examples == 4 and summary.format == "mixed"
    assert summary.formats == {"messages": 1, "alpaca": 2, "sharegpt": 1}
    assert summary.characters == sum(len(m["content"]) for c in convs for m in c)
    single = inspect_sft_file(write_lines(tmp_path / "one.jsonl", [GOOD, GOOD]))
    assert single.format == "messages" and single.examples == 2


@pytest.mark.parametrize("line, reason", [
    ('{"messages": [}', "is not valid JSON: "),
    ('[1, 2]', "must be a JSON object (got array)"),
    ('"text"', "must be a JSON object (got string)"),
    ('{"prompt": "x", "completion": "y"}', "is not a recognised SFT example"),
    ('{"text": "x"}', "'text' object is pretraining data"),
    ('{"messages": "hi"}', "'messages' must be an array (got string)"),
    ('{"messages": []}', "'messages' is empty"),
    ('{"messages": ["hi"]}', "'messages[0]' must be a message object with 'role' and 'content' (got string)"),
    ('{"messages": [{"content": "x"}]}', "'messages[0]' has no 'role'"),
    ('{"messages": [{"role": 3, "content": "x"}]}', "'messages[0].role' must be a string (got number)"),
    ('{"messages": [{"role": "user"}]}', "'messages[0]' has no 'content'"),
    ('{"messages": [{"role": "user", "content": 5}]}', "'messages[0].content' must be a string (got number)"),
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]}',
     "'messages[1].content' is empty"),
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "image_url"}]}]}',
     "'messages[1].content[0].type' must be 'text'"),
    ('{"messages": [{"role": "user", "content": "q"}]}', "'messages' has no assistant turn"),
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"}, '
     '{"role": "assistant", "content": "a"}]}', "'messages[1]' is a system message"),
    ('{"instruction": "x"}', "needs 'instruction' and 'output' (missing 'output')"),
    ('{"instruction": "x", "output": null}', "'output' must be a string (got null)"),
    ('{"instruction": "", "output": "y"}', "'instruction' is empty"),
    ('{"instruction": "x", "input": 1, "output": "y"}', "'input' must be a string (got number)"),
    ('{"instruction": "x", "output": "y", "history": [["a"]]}', "'history[0]' must be a [user, assistant] pair"),
    ('{"conversations": {}}', "'conversations' must be an array (got object)"),
    ('{"conversations": [{"from": "bot", "value": "x"}]}',
     "'conversations[0].from' must be one of system, human, user, gpt, assistant (got 'bot')"),
    ('{"conversations": [{"from": "human"}]}', "'conversations[0]' has no 'value'"),
    ('{"conversations": [{"from": "human", "value": "q"}]}', "'conversations' has no assistant turn"),
    ('{"conversations": [{"value": "q"}]}', "'conversations[0]' has no 'from'"),
])
def test_each_invalid_example_is_reported_with_its_line(tmp_path: Path, line: str, reason: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [GOOD, "", "   ", line, GOOD])
    err = error_of(path)
    assert err.line == 4, str(err)
    assert reason in err.reason, str(err)
    assert str(err).startswith(f"train_file {path} line 4: ")
    with pytest.raises(DataError):
        list(iter_sft_conversations(path))


def test_not_utf8_and_binary_and_utf16(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"instruction": "caf\xe9", "output": "x"}\n')
    err = error_of(str(path))
    assert err.line == 2 and "is not valid UTF-8 (byte 0xe9" in err.reason
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    err = error_of(str(binary))
    assert err.line is None and "binary file" in err.reason
    late_nul = tmp_path / "late.jsonl"
    late_nul.write_bytes((json.dumps(GOOD) + "\n").encode() * 400 + b"\x00\n")
    err = error_of(str(late_nul))
    assert err.line == 401 and "NUL" in err.reason
    utf16 = tmp_path / "u16.jsonl"
    utf16.write_bytes((json.dumps(GOOD) + "\n").encode("utf-16"))
    assert "UTF-16" in error_of(str(utf16)).reason


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\r\n")
    assert inspect_sft_file(str(path)).examples == 1


def test_line_too_long(tmp_path: Path) -> None:
    long = {"messages": [{"role": "user", "content": "x" * 500}, {"role": "assistant", "content": "y"}]}
    path = write_lines(tmp_path / "long.jsonl", [GOOD, long, GOOD])
    err = error_of(path, max_line_bytes=200)
    assert err.line == 2 and err.reason == "is longer than 200 bytes"
    assert inspect_sft_file(path).examples == 3


def test_empty_missing_directory_and_field_name(tmp_path: Path) -> None:
    empty = write_lines(tmp_path / "empty.jsonl", ["", "  "])
    err = error_of(empty)
    assert err.line is None and str(err) == f"train_file {empty}: has no examples"
    with pytest.raises(DataError, match="does not exist"):
        inspect_sft_file(str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match="is a directory"):
        inspect_sft_file(str(tmp_path))
    with pytest.raises(DataError) as info:
        inspect_sft_file(str(tmp_path / "nope.jsonl"), field="eval_file")
    assert str(info.value).startswith("eval_file ")
    assert info.value.field == "eval_file"


def test_json_array_file_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps([{"instruction": "a", "output": "b"}], indent=1))
    err = error_of(str(path))
    assert err.line == 1 and "JSON Lines" in err.reason


def test_normalize_sft_example_raises_value_error() -> None:
    assert normalize_sft_example(GOOD)[0] == "messages"
    with pytest.raises(ValueError, match="no assistant turn"):
        normalize_sft_example({"messages": [{"role": "user", "content": "q"}]})


def test_pretrain_txt_paragraphs(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("First doc line one.\nline two 中文 🙂\n\n\n  \nSecond doc.\n\nThird.", encoding="utf-8")
    docs = list(iter_pretrain_texts(str(path)))
    assert docs == ["First doc line one.\nline two 中文 🙂", "Second doc.", "Third."]
    summary = inspect_pretrain_file(str(path))
    assert (summary.format, summary.examples, summary.characters) == ("txt", 3, sum(map(len, docs)))


def test_pretrain_jsonl(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [{"text": "a b c", "meta": 1}, "", {"text": "d"}])
    assert list(iter_pretrain_texts(path)) == ["a b c", "d"]
    assert inspect_pretrain_file(path).format == "text"
    for line, reason in [('{"txt": "x"}', "has no 'text' key"), ('{"text": 3}', "'text' must be a string"),
                         ('{"text": ""}', "'text' is empty"), ("[1]", "must be a JSON object"),
                         ("{oops", "is not valid JSON")]:
        bad = write_lines(tmp_path / "bad.jsonl", [{"text": "ok"}, line])
        with pytest.raises(DataError) as info:
            inspect_pretrain_file(bad)
        assert info.value.line == 2 and reason in info.value.reason, str(info.value)


def test_pretrain_empty_and_bad_encoding(tmp_path: Path) -> None:
    empty = tmp_path / "e.txt"
    empty.write_text("\n\n   \n")
    with pytest.raises(DataError, match="has no text"):
        inspect_pretrain_file(str(empty))
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"fine\n\xff\xfeoops\n")
    with pytest.raises(DataError) as info:
        inspect_pretrain_file(str(bad))
    assert info.value.line == 2 and "UTF-8" in info.value.reason
    with pytest.raises(DataError, match="has no examples"):
        inspect_pretrain_file(write_lines(tmp_path / "e.jsonl", [""]))
