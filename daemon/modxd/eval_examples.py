"""The per-example records of an evaluation (examples.jsonl, engine/report.py example_records), read
back a page at a time for EvalService.ListEvaluationExamples.

The file is the job's own output, opened by evaluations.py through the task's manifest
(files.open_recorded: no symlink followed, still the inode written). Every line served is checked
against the record's shape here, so a damaged line is a FAILED_PRECONDITION naming the file and the
line, never an INTERNAL error further up. Reads are bounded: a line longer than MAX_LINE_BYTES is
refused, and a page stops before PAGE_BUDGET_BYTES of lines (at least one record per page), so a
response stays well under gRPC's 4 MiB message limit.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .errors import FailedPrecondition

MAX_LINE_BYTES = 1 << 20
PAGE_BUDGET_BYTES = 2 << 20

TEXT_FIELDS = ("checkpoint_id", "label", "reference", "generation", "text")
INT_FIELDS = ("step", "example", "answer_tokens", "answer_bytes")
NUMBER_FIELDS = ("nll", "perplexity", "bits_per_byte", "semantic_similarity", "coherence", "coverage", "composite")


@dataclass
class ExampleRecord:
    """One line: one candidate on one example (None: not measured)."""

    line: int
    checkpoint_id: str
    label: str = ""
    step: int = 0
    example: int = 0
    prompt: list[dict[str, str]] = field(default_factory=list)
    reference: str = ""
    generation: str = ""
    text: str = ""
    answer_tokens: int = 0
    answer_bytes: int = 0
    scores: dict[str, float | None] = field(default_factory=dict)  # NUMBER_FIELDS


class Damaged(ValueError):
    """Why a line is not a record (the caller names the file and line)."""


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Damaged(f"{name} is {type(value).__name__}, not a number")
    return float(value)


def parse_record(raw: bytes, line: int) -> ExampleRecord:
    """One line of examples.jsonl as a record, or Damaged saying what is wrong with it."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Damaged(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Damaged(f"a JSON {type(data).__name__}, not an object")
    if not isinstance(data.get("checkpoint_id"), str) or not data["checkpoint_id"]:
        raise Damaged("no checkpoint_id")
    out: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = data.get(name, "")
        if not isinstance(value, str):
            raise Damaged(f"{name} is {type(value).__name__}, not text")
        out[name] = value
    for name in INT_FIELDS:
        value = data.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Damaged(f"{name} is {type(value).__name__}, not an integer")
        out[name] = value
    prompt = data.get("prompt", [])
    if not isinstance(prompt, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role", ""), str) and isinstance(m.get("content", ""), str)
            for m in prompt):
        raise Damaged("prompt is not a list of messages (role and content)")
    scores = {name: _number(name, data.get(name)) for name in NUMBER_FIELDS}
    return ExampleRecord(line=line, prompt=[{"role": m.get("role", ""), "content": m.get("content", "")}
                                            for m in prompt], scores=scores, **out)


def read_page(fd: int, what: str, checkpoint_id: str, offset: int, limit: int
              ) -> tuple[list[ExampleRecord], bool]:
    """Records `offset` .. `offset + limit` of those of `checkpoint_id` ('' = all) in the open file
    `fd` (closed here), and whether more follow. A page ends early at PAGE_BUDGET_BYTES."""
    records: list[ExampleRecord] = []
    used = 0
    matched = 0
    with os.fdopen(fd, "rb") as stream:
        for number, raw in _lines(stream, what):
            if not raw.strip():
                continue
            full = len(records) >= limit or (records and used + len(raw) > PAGE_BUDGET_BYTES)
            try:
                record = parse_record(raw, number)
            except Damaged as exc:
                if full:
                    return records, True  # the next page names it
                raise FailedPrecondition(f"{what} line {number} is damaged ({exc}); "
                                         "the evaluation's files were changed since it wrote them") from None
            if checkpoint_id and record.checkpoint_id != checkpoint_id:
                continue
            matched += 1
            if matched <= offset:
                continue
            if full:
                return records, True
            records.append(record)
            used += len(raw)
    return records, False


def _lines(stream: BinaryIO, what: str):
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise FailedPrecondition(f"{what} line {number} is longer than {MAX_LINE_BYTES} bytes; "
                                     "no record the evaluation writes is that long")
        yield number, raw

