"""Terminal escape codes from the daemon never reach a person's terminal raw.

Names, descriptions, paths, reasons, log lines, error sentences and chat replies come from the
daemon (and so from whoever wrote them: a data file, a worker, another client, an older daemon's
database). modxctl prints every one of them through one function of modxctl/output.py, which shows
C0 and C1 control characters, DEL and bidi overrides as visible escapes (\\x1b, \\u202e); --json
stays exact JSON that decodes to the very same strings. Unit tests of every printing helper, then
modxctl against a real daemon whose database holds hostile names (as an older daemon could have
stored them: today's daemon refuses them at the door).
"""
from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path

import pytest
from modx.v1 import common_pb2, inference_pb2, training_pb2
from modxctl import output
from modxctl.connection import CliError

from tests.support.daemon import Daemon

# Each is a way to take over or fool a terminal: clear the screen, set the window title, a hidden
# hyperlink, C1 CSI (one byte), backspace and carriage return overwriting text, DEL, a NUL, bidi
# overrides and isolates that reverse what is shown, a line separator.
HOSTILE = [
    "\x1b[2J\x1b[Hclear", "\x1b]0;pwned\x07title", "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\",
    "\x9b31mred", "ok\x08\x08no", "fake\rline", "del\x7f", "nul\x00", "evil\u202etxt.exe", "\u2066iso\u2069",
    "sep\u2028x", "bell\x07",
]
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def no_raw_controls(text: str, allow_newlines: bool = True) -> None:
    assert not RAW.search(text), f"raw control characters in {text!r}"
    if not allow_newlines:
        assert "\n" not in text and "\t" not in text, text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_one_function_makes_any_text_printable(hostile: str) -> None:
    shown = output.printable(hostile)
    no_raw_controls(shown, allow_newlines=False)
    assert output.printable(shown) == shown, "escaping twice changes nothing"
    kept = output.printable("a\tb\nc" + hostile, keep="\n\t")
    assert kept.startswith("a\tb\nc")
    no_raw_controls(kept)


def test_visible_escapes_name_the_character() -> None:
    assert output.printable("\x1b[2J") == "\\x1b[2J"
    assert output.printable("a\u202eb") == "a\\u202eb"
    assert output.printable("x\ny") == "x\\ny" and output.printable("é 中文 🙂") == "é 中文 🙂"


def test_tables_and_key_values_stay_one_line_per_row() -> None:
    rows = [[h, "x"] for h in HOSTILE + ["two\nlines", "tab\there"]]
    text = output.table(["NAME", "X"], rows)
    no_raw_controls(text)
    assert len(text.splitlines()) == len(rows) + 1
    assert len({output.display_width(line) for line in text.splitlines()}) == 1, text
    pairs = output.kv([("name", h) for h in HOSTILE + ["two\nlines"]])
    no_raw_controls(pairs)
    assert len(pairs.splitlines()) == len(HOSTILE) + 1


def test_echo_note_warn_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for hostile in HOSTILE:
        output.echo(f"task {hostile}\nsecond line")
        output.note(f"note {hostile}")
        output.note(f"dim {hostile}", dim=True)
        output.warn("code\x1b[31m", f"warning {hostile}")
        CliError(f"server said {hostile}").show()
    captured = capsys.readouterr()
    no_raw_controls(captured.out)
    assert "\nsecond line" in captured.out
    # dim=True styles the sentence itself (the only escape sequences left are modxctl's own SGR).
    no_raw_controls(re.sub(r"\x1b\[(?:2|0|22)m", "", captured.err))


def test_live_block_lines(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    block = output.LiveBlock(stream=stream, enabled=False)
    for hostile in HOSTILE:
        block.line(f"12:00:00 INFO    {hostile}\n12:00:01 ERROR   forged")
    no_raw_controls(stream.getvalue())
    assert len(stream.getvalue().splitlines()) == len(HOSTILE), "a log line forged another line"
    tty = io.StringIO()
    live = output.LiveBlock(stream=tty, enabled=True)
    live.update([f"status {h}" for h in HOSTILE])
    live.line("\x1b]0;pwned\x07 event")
    # Only the block's own cursor moves (ESC [ n F, ESC [ J) remain.
    no_raw_controls(re.sub(r"\x1b\[\d*[FJ]", "", tty.getvalue()))


def test_chat_reply_keeps_newlines_and_tabs_but_not_escapes() -> None:
    reply = "Sure:\n\tstep 1\n\x1b[2Jgone\rover\x9b1m"
    shown = output.model_text(reply)
    assert shown.startswith("Sure:\n\tstep 1\n")
    no_raw_controls(shown)


def test_json_stays_exact_and_escaped() -> None:
    for hostile in HOSTILE:
        msg = training_pb2.GetTaskResponse(task=training_pb2.Task(id="t-1", name=hostile, error=hostile))
        text = output.to_json(msg)
        no_raw_controls(text)
        data = json.loads(text)
        assert data["task"]["name"] == hostile and data["task"]["error"] == hostile
        line = output.to_json(inference_pb2.ChatResponse(delta=inference_pb2.ChatDelta(text=hostile)), compact=True)
        assert json.loads(line)["delta"]["text"] == hostile and "\n" not in line


# ----- against a real daemon ---------------------------------------------------------------------------------


async def _plant(state_dir: Path, data_file: Path) -> str:
    """Write a task, its events and a template with hostile text straight into a daemon's database."""
    from modxd.states import TaskState
    from modxd.store.db import Database
    from modxd.store.events import EventRepo
    from modxd.store.tasks import TaskRecord, TaskRepo
    from modxd.store.templates import TemplateRecord, TemplateRepo

    db = await Database.open(state_dir / "modx.db")
    try:
        tasks = TaskRepo(db)
        await tasks.insert(TaskRecord(id="t-e5c4ba5e", type="sft", name="\x1b]0;pwned\x07evil\u202etxt",
                                      template="default-sft",
                                      params={"train_file": f"{data_file}\x1b[2J", "output_dir": "/o\x9b1m",
                                              "model_dir": "/m", "chat_template": "{{ x }}\n\x1b[31m"}))
        await tasks.update("t-e5c4ba5e", state=TaskState.FAILED.value, state_reason="worker_exited: \x1b[2Jboom",
                           error="loss is NaN\x1b[5m at step 3", failure_log_tail=["last \x1b]8;;x\x07line"])
        await EventRepo(db).append("t-e5c4ba5e", "log", {"level": "error\x1b[1m", "message": "log \x1b[2J\rline"})
        await EventRepo(db).append("t-e5c4ba5e", "warning", {"code": "w\x07", "message": "warn \u202eing"})
        await TemplateRepo(db).save(TemplateRecord("hostile", "sft", "desc \x1b[2J\u2066x", False,
                                                   {"chat_template": "\x1b]0;t\x07"}), overwrite=True)
    finally:
        await db.close()
    return "t-e5c4ba5e"


def test_modxctl_prints_hostile_names_escaped(tmp_path: Path, roots: Path, sft_jsonl: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    task_id = asyncio.run(_plant(state, sft_jsonl))
    d = Daemon(state, [roots]).start()
    try:
        for args in (["train", "list"], ["train", "show", task_id], ["train", "logs", task_id],
                     ["train", "watch", task_id], ["templates", "list"], ["templates", "show", "hostile"],
                     ["train", "show", "t-nope\x1b[2J"]):
            proc = d.cli(*args, check=False)
            no_raw_controls(proc.stdout)
            no_raw_controls(proc.stderr)
            assert proc.stdout or proc.stderr
        shown = d.cli("train", "show", task_id).stdout
        assert "\\x1b]0;pwned\\x07evil\\u202etxt" in shown, shown
        data = d.cli_json("train", "show", task_id)
        assert data["task"]["name"] == "\x1b]0;pwned\x07evil\u202etxt"
        assert data["task"]["state"] == common_pb2.TaskState.Name(common_pb2.TASK_STATE_FAILED)
        no_raw_controls(d.cli("--json", "train", "show", task_id).stdout)
    finally:
        d.kill()
