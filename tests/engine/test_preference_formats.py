"""Preference-pair formats (TRL's standard and conversational, explicit and implicit prompt):
every refusal names the file, the line and the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modxd.engine.formats import DataError
from modxd.engine.preference_formats import (
    CONVERSATIONAL,
    STANDARD,
    inspect_preference_file,
    iter_preference_pairs,
    normalize_preference_example,
)

U = {"role": "user", "content": "What colour is the sky?"}
S = {"role": "system", "content": "Be brief."}


def A(text: str) -> dict[str, str]:  # noqa: N802 - reads like the message it builds
    return {"role": "assistant", "content": text}


STD = {"prompt": "Q: sky? A:", "chosen": " blue", "rejected": " green"}
CONV = {"prompt": [U], "chosen": [A("Blue.")], "rejected": [A("Green.")]}


def write_lines(path: Path, lines: list) -> str:
    """Objects as JSON lines; strings are written verbatim."""
    with open(path, "w", encoding="utf-8") as f:
        for item in lines:
            f.write(item if isinstance(item, str) else json.dumps(item, ensure_ascii=False))
            f.write("\n")
    return str(path)


def refusal(tmp_path: Path, bad: Any, good: dict = CONV, before: int = 2) -> DataError:
    path = write_lines(tmp_path / "pairs.jsonl", [good] * before + [bad] + [good])
    with pytest.raises(DataError) as info:
        inspect_preference_file(path)
    err = info.value
    assert err.path == path and err.line == before + 1 and err.field == "train_file"
    assert str(err).startswith(f"train_file {path} line {before + 1}: ")
    with pytest.raises(DataError) as again:  # the worker reads with the same rules
        list(iter_preference_pairs(path))
    assert str(again.value) == str(err)
    return err


def test_daemon_side_module_is_pure_python() -> None:
    code = ("import sys; import modxd.engine.preference_formats, modxd.preference_params; "
            "bad = [m for m in ('torch', 'transformers', 'peft', 'datasets', 'trl') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={"PYTHONPATH": str(Path(__file__).parents[2] / "daemon")})


def test_standard_explicit_and_implicit_prompt(tmp_path: Path) -> None:
    implicit = {"chosen": "Q: sky? A: blue", "rejected": "Q: sky? A: green", "id": 7, "score": 0.5}
    path = write_lines(tmp_path / "std.jsonl", [STD, "", implicit, "  "])
    pairs = list(iter_preference_pairs(path))
    assert [line for line, _ in pairs] == [1, 3]
    assert pairs[0][1].row() == STD and not pairs[0][1].implicit_prompt
    # TRL's extract_prompt: the common start, the space before the answers left with them
    assert pairs[1][1].row() == {"prompt": "Q: sky? A:", "chosen": " blue", "rejected": " green"}
    assert pairs[1][1].implicit_prompt and pairs[1][1].format == STANDARD
    summary = inspect_preference_file(path)
    assert (summary.format, summary.examples) == ("standard", 2)
    assert summary.formats == {"standard": 1, "standard_implicit_prompt": 1}
    assert summary.characters == 2 * (len("Q: sky? A:") + len(" blue") + len(" green"))
    assert summary.samples == []  # no chat template formats strings


def test_conversational_explicit_and_implicit_prompt(tmp_path: Path) -> None:
    multi = {"prompt": [S, U, A("Blue."), {"role": "user", "content": "And at night? 🌙"}],
             "chosen": [A([{"type": "text", "text": "Black, "}, {"type": "text", "text": "with stars."}])],
             "rejected": [A("Also blue.")]}
    implicit = {"chosen": [S, U, A("Blue.")], "rejected": [S, U, A("Green.")]}
    path = write_lines(tmp_path / "conv.jsonl", [CONV, multi, implicit])
    pairs = [p for _, p in iter_preference_pairs(path, field="eval_file")]
    assert pairs[0].row() == CONV
    assert pairs[1].chosen == [A("Black, with stars.")]  # text parts joined, as in SFT
    assert pairs[2].row() == {"prompt": [S, U], "chosen": [A("Blue.")], "rejected": [A("Green.")]}
    assert pairs[2].implicit_prompt and pairs[2].format == CONVERSATIONAL
    summary = inspect_preference_file(path)
    assert summary.format == "conversational" and summary.examples == 3
    assert summary.formats == {"conversational": 2, "conversational_implicit_prompt": 1}
    # one sample per role shape (prompt + chosen), for the chat template check at create
    assert [line for line, _ in summary.samples] == [1, 2, 3]
    assert summary.samples[0][1] == [U, A("Blue.")]


def test_normalize_reports_without_file_and_line() -> None:
    assert normalize_preference_example(CONV).format == CONVERSATIONAL
    with pytest.raises(ValueError, match="^'chosen' and 'rejected' are the same answer"):
        normalize_preference_example({"prompt": "p", "chosen": "same", "rejected": " same "})


@pytest.mark.parametrize("bad, message", [
    # not a pair at all
    ([1, 2], "must be a JSON object (got array)"),
    ("null", "must be a JSON object (got null)"),
    ({"prompt": "p", "chosen": "c"}, "it needs 'chosen' and 'rejected' (and 'prompt', or a prompt both start "
                                     "with); missing 'rejected', got keys 'prompt', 'chosen'"),
    ({"messages": [U, A("x")]}, "this line is SFT data (a conversation), not a preference pair"),
    ({"instruction": "i", "output": "o"}, "SFT data"),
    ({"prompt": "p", "completion": "c", "label": True}, "unpaired preference data (KTO's format)"),
    ({"text": "hello"}, "missing 'chosen' and 'rejected', got keys 'text'"),
    ({**CONV, "images": ["x.png"]}, "has 'images': only text pairs can be trained on"),
    # wrong types
    ({"prompt": "p", "chosen": 3, "rejected": "r"}, "'chosen' must be a string (standard format) or an array of "
                                                    "messages (conversational format) (got number)"),
    ({"prompt": "p", "chosen": {"role": "assistant", "content": "c"}, "rejected": "r"}, "(got object)"),
    ({"prompt": "p", "chosen": "c", "rejected": ["r"]}, "'rejected' must be a string like 'chosen' (got array)"),
    ({"prompt": [U], "chosen": [A("c")], "rejected": "r"}, "'rejected' must be an array of messages like 'chosen'"),
    ({"prompt": 5, "chosen": "c", "rejected": "r"}, "'prompt' must be a string (got number)"),
    ({"prompt": None, "chosen": "c", "rejected": "r"}, "'prompt' must be a string (got null)"),
    ({"prompt": [U], "chosen": "c", "rejected": "r"}, "'prompt' is an array of messages but 'chosen' is a string"),
    ({"prompt": "p", "chosen": [A("c")], "rejected": [A("r")]}, "'prompt' must be an array of messages like "
                                                                "'chosen' (got string)"),
    ({"prompt": [U], "chosen": [A(7)], "rejected": [A("r")]}, "'chosen[0].content' must be a string (got number)"),
    ({"prompt": [U], "chosen": ["Blue."], "rejected": [A("r")]}, "'chosen[0]' must be a message object"),
    ({"prompt": [{"content": "q"}], "chosen": [A("c")], "rejected": [A("r")]}, "'prompt[0]' has no 'role'"),
    ({"prompt": [{"role": "user"}], "chosen": [A("c")], "rejected": [A("r")]}, "'prompt[0]' has no 'content'"),
    ({"prompt": [{"role": "bot", "content": "q"}], "chosen": [A("c")], "rejected": [A("r")]},
     "'prompt[0].role' must be one of system, user, assistant (got 'bot')"),
    ({"prompt": [{"role": ["user"], "content": "q"}], "chosen": [A("c")], "rejected": [A("r")]},
     "'prompt[0].role' must be a string (got array)"),
    ({"prompt": [U], "chosen": [A([{"type": "image", "url": "x"}])], "rejected": [A("r")]},
     "'chosen[0].content[0].type' must be 'text'"),
    # empty texts
    ({"prompt": "", "chosen": "c", "rejected": "r"}, "'prompt' is empty"),
    ({"prompt": "p", "chosen": "  \n", "rejected": "r"}, "'chosen' is empty"),
    ({"prompt": "p", "chosen": "c", "rejected": ""}, "'rejected' is empty"),
    ({"prompt": [], "chosen": [A("c")], "rejected": [A("r")]}, "'prompt' is empty"),
    ({"prompt": [U], "chosen": [], "rejected": [A("r")]}, "'chosen' is empty"),
    ({"prompt": [U], "chosen": [A("c")], "rejected": [A(" ")]}, "'rejected[0].content' is empty"),
    # chosen == rejected
    ({"prompt": "p", "chosen": "same", "rejected": "same\n"}, "'chosen' and 'rejected' are the same answer"),
    ({"prompt": [U], "chosen": [A("Blue.")], "rejected": [A("Blue.")]}, "are the same answer"),
    ({"chosen": "Q? blue", "rejected": "Q? blue"}, "are the same answer"),
    ({"chosen": [U, A("x")], "rejected": [U, A("x")]}, "are the same conversation"),
    # roles out of order
    ({"prompt": [A("hi"), U], "chosen": [A("c")], "rejected": [A("r")]},
     "'prompt[0].role' is assistant where user was expected"),
    ({"prompt": [U, U], "chosen": [A("c")], "rejected": [A("r")]}, "'prompt[1].role' is user where assistant"),
    ({"prompt": [U, S], "chosen": [A("c")], "rejected": [A("r")]}, "'prompt[1]' is a system message, which is "
                                                                   "only allowed as the first message"),
    ({"prompt": [S], "chosen": [A("c")], "rejected": [A("r")]}, "'prompt' holds only a system message"),
    ({"prompt": [U, A("a")], "chosen": [A("c")], "rejected": [A("r")]},
     "'prompt' ends with an assistant turn: the prompt must end with the user turn"),
    ({"prompt": [U], "chosen": [U], "rejected": [A("r")]}, "'chosen[0].role' must be assistant (got 'user')"),
    ({"prompt": [U], "chosen": [A("c"), A("d")], "rejected": [A("r")]},
     "'chosen' must hold exactly one assistant message (got 2 messages)"),
    ({"prompt": [U], "chosen": [A("c")], "rejected": [{"role": "system", "content": "r"}]},
     "'rejected[0].role' must be assistant (got 'system')"),
    # implicit prompts that are not
    ({"chosen": "blue sky", "rejected": "green sky"}, "'chosen' and 'rejected' share no prompt text"),
    ({"chosen": " blue", "rejected": " green"}, "share no prompt text"),
    ({"chosen": "Q? blue", "rejected": "Q? blue sky"}, "'chosen' holds nothing after the prompt it shares"),
    ({"chosen": [A("c")], "rejected": [A("r")]}, "share no prompt messages"),
    ({"chosen": [U, A("c")], "rejected": [U, A("r"), U, A("s")]},
     "'rejected' must end with exactly one assistant message after the prompt it shares with the other answer "
     "(got 3 messages after the 1 shared ones)"),
    ({"chosen": [U, A("c")], "rejected": [U, U]}, "'rejected[1].role' must be assistant (got 'user')"),
    ({"chosen": [A("hi"), U, A("c")], "rejected": [A("hi"), U, A("r")]}, "'chosen[0].role' is assistant where "
                                                                        "user was expected"),
])
def test_malformed_pairs_are_refused(tmp_path: Path, bad: Any, message: str) -> None:
    good = STD if isinstance(bad, dict) and isinstance(bad.get("chosen"), str) else CONV
    err = refusal(tmp_path, bad, good=good)
    assert message in err.reason, err.reason


@pytest.mark.parametrize("raw, message", [
    ('{"prompt": "p", "chosen": "c", "rejected": "r"', "is not valid JSON"),
    ('[{"prompt": "p", "chosen": "c", "rejected": "r"}]', "must be a JSON object (got array)"),
    ('{"prompt": "p\\ud800", "chosen": "c", "rejected": "r"}', "'prompt' holds a lone UTF-16 surrogate"),
    ('{"prompt": [{"role": "user", "content": "\\udfff"}], "chosen": [], "rejected": []}',
     "'prompt[0].content' holds a lone UTF-16 surrogate"),
    ('{"prompt": "p", "chosen": "c", "rejected": "r", "\\ud83d": 1}', "a key holds a lone UTF-16 surrogate"),
    ('{"prompt": "p", "chosen": "c", "rejected": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests arrays"),
])
def test_broken_lines_are_refused(tmp_path: Path, raw: str, message: str) -> None:
    err = refusal(tmp_path, raw, good=STD)
    assert message in err.reason, err.reason


def test_bytes_that_are_not_utf8_json(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(STD).encode() + b"\n" + b'{"prompt": "caf\xe9", "chosen": "c", "rejected": "r"}\n')
    with pytest.raises(DataError, match=r"line 2: is not valid UTF-8 \(byte 0xe9"):
        inspect_preference_file(str(path))
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes(json.dumps(STD).encode("utf-16"))
    with pytest.raises(DataError, match="is UTF-16 encoded"):
        inspect_preference_file(str(utf16))
    nul = tmp_path / "nul.jsonl"
    nul.write_bytes(b'{"prompt": "p", "chosen": "c", "rejected": "r"}\n\x00\x00')
    with pytest.raises(DataError, match="binary"):
        inspect_preference_file(str(nul))
    long = write_lines(tmp_path / "long.jsonl", [STD, {**STD, "chosen": "x" * 5000}])
    with pytest.raises(DataError, match="line 2: is longer than 1000 bytes"):
        inspect_preference_file(long, max_line_bytes=1000)


def test_one_file_holds_one_format(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "mixed.jsonl", [CONV, {"chosen": [U, A("b")], "rejected": [U, A("g")]}, STD])
    with pytest.raises(DataError) as info:
        inspect_preference_file(path, field="eval_file")
    assert str(info.value) == (f"eval_file {path} line 3: is in the standard format but line 1 is in the "
                               "conversational format: one file holds one format (strings or message lists, not both)")


def test_files_without_pairs(tmp_path: Path) -> None:
    for name, content in (("empty.jsonl", ""), ("blank.jsonl", "\n  \n\n")):
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(DataError, match="has no preference pairs") as info:
            inspect_preference_file(str(path))
        assert info.value.line is None
    with pytest.raises(DataError, match="does not exist"):
        inspect_preference_file(str(tmp_path / "missing.jsonl"))
    with pytest.raises(DataError, match="is a directory"):
        inspect_preference_file(str(tmp_path))
