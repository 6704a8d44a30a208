"""Reading an evaluation's examples.jsonl a page at a time (modxd/eval_examples.py), without a daemon."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modxd import eval_examples as X
from modxd.errors import FailedPrecondition


def _record(checkpoint: str, j: int, **extra) -> dict:
    return {"evaluation_id": "ev-1", "checkpoint_id": checkpoint, "label": checkpoint, "step": 0, "example": j,
            "prompt": [{"role": "user", "content": f"q{j}"}], "reference": f"r{j}", "generation": f"g{j}",
            "answer_tokens": 3, "answer_bytes": 9, "nll": 1.5, "perplexity": 2.0, "bits_per_byte": 0.5,
            "semantic_similarity": 0.9, "coherence": None, "coverage": 0.1, "composite": 0.7, **extra}


def _write(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def _page(path: Path, checkpoint: str = "", offset: int = 0, limit: int = 50):
    return X.read_page(os.open(path, os.O_RDONLY), f"evaluation ev-1: {path}", checkpoint, offset, limit)


@pytest.fixture()
def examples(tmp_path: Path) -> Path:
    return _write(tmp_path / "examples.jsonl", [_record(c, j) for c in ("base", "ckpt-a", "ckpt-b") for j in range(4)])


def test_pages_cover_every_record_once_in_file_order(examples: Path) -> None:
    seen, offset = [], 0
    while True:
        records, more = _page(examples, offset=offset, limit=5)
        seen += [(r.checkpoint_id, r.example, r.line) for r in records]
        offset += len(records)
        if not more:
            break
    assert seen == [(c, j, 4 * i + j + 1) for i, c in enumerate(("base", "ckpt-a", "ckpt-b")) for j in range(4)]
    first = _page(examples, limit=1)[0][0]
    assert first.prompt == [{"role": "user", "content": "q0"}] and first.generation == "g0"
    assert first.scores["coherence"] is None and first.scores["composite"] == 0.7


def test_the_checkpoint_filter_pages_among_its_own_records(examples: Path) -> None:
    records, more = _page(examples, "ckpt-a", offset=1, limit=2)
    assert [(r.checkpoint_id, r.example) for r in records] == [("ckpt-a", 1), ("ckpt-a", 2)] and more
    records, more = _page(examples, "ckpt-a", offset=3, limit=2)
    assert [r.example for r in records] == [3] and not more


@pytest.mark.parametrize("line, why", [
    ("{not json", "not JSON"),
    ("[1, 2]", "a JSON list, not an object"),
    (json.dumps({"example": 1}), "no checkpoint_id"),
    (json.dumps(_record("base", 9, step="ten")), "step is str, not an integer"),
    (json.dumps(_record("base", 9, composite="high")), "composite is str, not a number"),
    (json.dumps(_record("base", 9, prompt="hi")), "prompt is not a list of messages"),
    (json.dumps(_record("base", 9, generation=None)), "generation is NoneType, not text"),
])
def test_a_damaged_line_is_named_with_its_number(tmp_path: Path, line: str, why: str) -> None:
    path = _write(tmp_path / "examples.jsonl", [_record("base", 0), _record("base", 1), line, _record("base", 3)])
    assert len(_page(path, limit=2)[0]) == 2  # the lines before it are served
    with pytest.raises(FailedPrecondition) as info:
        _page(path, limit=50)
    assert f"{path} line 3 is damaged ({why}" in str(info.value) and "evaluation ev-1" in str(info.value)


def test_a_page_ends_before_its_byte_budget_and_an_overlong_line_is_refused(tmp_path: Path) -> None:
    text = "x" * (X.PAGE_BUDGET_BYTES // 3)
    path = _write(tmp_path / "examples.jsonl", [_record("base", j, generation=text) for j in range(5)])
    records, more = _page(path, limit=50)
    assert len(records) == 2 and more
    assert [r.example for r in _page(path, offset=2, limit=50)[0]] == [2, 3]
    path = _write(tmp_path / "long.jsonl", [_record("base", 0, generation="y" * X.MAX_LINE_BYTES)])
    with pytest.raises(FailedPrecondition, match="line 1 is longer than"):
        _page(path)
