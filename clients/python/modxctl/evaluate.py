"""eval: compare checkpoints of a task on sampled data and pick the best."""
from __future__ import annotations

import sys
from typing import Iterator

import click

from modx.v1 import common_pb2, eval_pb2

from .connection import App, follow, get_app
from .download import report_saved, save, target_path
from .output import (
    LiveBlock,
    bar,
    echo,
    emit_json,
    enum_label,
    fmt_bool,
    fmt_clock,
    fmt_num,
    fmt_time,
    kv,
    note,
    opt,
    printable,
    table,
)
from .paging import all_pages

JOB_DONE_OK = {common_pb2.JOB_STATE_COMPLETED}
JOB_TERMINAL = {common_pb2.JOB_STATE_COMPLETED, common_pb2.JOB_STATE_FAILED, common_pb2.JOB_STATE_CANCELLED}


def job_label(state: int) -> str:
    return enum_label(common_pb2.JobState, state)


def job_events(app: App, open_call, after_seq: int = 0) -> Iterator:  # noqa: ANN001 - a stub method partial
    """A job's event stream (evaluation or package) that survives daemon restarts."""
    return follow(
        open_call,
        lambda r: r.event.seq,
        after_seq,
        connected=True,
        on_lost=lambda why: note(f"lost the connection to modxd ({why}); reconnecting…"),
        on_back=lambda: note("reconnected"),
    )


def scores_table(scores) -> str:  # noqa: ANN001 - repeated CheckpointScore
    """Checkpoints ranked by composite score, best first."""
    ordered = sorted(scores, key=lambda s: (s.rank <= 0, s.rank, -s.composite))
    rows = [
        [
            str(s.rank) if s.rank > 0 else "-",
            ("*" if s.is_best else "") + (s.label or s.checkpoint_id),
            str(s.step) if s.checkpoint_id != "base" else "-",
            f"{s.composite:.4f}",
            fmt_num(s.perplexity, ".3f"),
            fmt_num(s.bits_per_byte, ".4f"),
            fmt_num(opt(s, "semantic_similarity"), ".3f"),
            fmt_num(opt(s, "coherence"), ".3f"),
            fmt_num(opt(s, "coverage"), ".3f"),
        ]
        for s in ordered
    ]
    headers = ["RANK", "CHECKPOINT", "STEP", "COMPOSITE", "PERPLEXITY", "BITS/BYTE", "SIMILARITY", "COHERENCE", "COVERAGE"]
    align = "rlrrrrrrr"
    if any(s.HasField("preference_pairs") for s in ordered):  # dpo, orpo: on the held-out pairs
        headers += ["PREF ACC", "MARGIN", "PAIRS"]
        align += "rrr"
        for row, s in zip(rows, ordered):
            row += [fmt_num(opt(s, "preference_accuracy"), ".3f"), fmt_num(opt(s, "preference_margin"), ".4f"),
                    str(opt(s, "preference_pairs") or "-")]
    return table(headers, rows, align=align)


def generation_text(g: eval_pb2.GenerationSettings) -> str:
    """'greedy, at most 128 new tokens' or the sampling settings."""
    if g.temperature > 0:
        text = f"sampling: temperature {g.temperature:g}, top-p {g.top_p:g}" + (f", top-k {g.top_k}" if g.top_k else "")
    else:
        text = "greedy"
    if g.repetition_penalty and g.repetition_penalty != 1.0:
        text += f", repetition penalty {g.repetition_penalty:g}"
    if g.max_new_tokens:
        text += f", at most {g.max_new_tokens} new tokens"
    return text + (f", seed {g.seed}" if g.seed else "")


def print_evaluation(e: eval_pb2.Evaluation) -> None:
    state = job_label(e.state) + (f" ({e.state_reason})" if e.state_reason else "")
    pairs = [
        ("evaluation", e.id),
        ("task", e.task_id),
        ("state", state),
        ("checkpoints", ", ".join(e.checkpoint_ids) or "-"),
        ("base model", fmt_bool(e.include_base)),
        ("samples", e.samples),
        ("generation", generation_text(e.generation)),
        ("created", fmt_time(e.create_time)),
        ("ended", fmt_time(e.end_time)),
    ]
    echo(kv(pairs))
    if e.scores:
        echo()
        if e.state not in JOB_DONE_OK:
            echo("scores so far (ranked when the evaluation completes):")
        echo(scores_table(e.scores))
    if e.best_checkpoint_id:
        best = next((s for s in e.scores if s.is_best), None)
        name = f"{best.label} ({e.best_checkpoint_id})" if best and best.label else e.best_checkpoint_id
        echo()
        echo(f"* best: {name}")
        if e.verdict:
            echo(f"  {e.verdict}")
    files = [("report", e.report_path), ("csv", e.csv_path), ("examples", e.examples_path)]
    files = [(k, v) for k, v in files if v]
    if files:
        echo()
        echo(kv(files))


def eval_progress_text(p: eval_pb2.EvalProgress) -> str:
    """'checkpoint 2/3 ckpt-x  example 12/50 ████░░ 58%  composite 0.61'.

    Indexes are taken as 0-based positions of the item being worked on.
    """
    cc, ec = max(1, p.checkpoint_count), max(1, p.example_count)
    frac = (min(p.checkpoint_index, cc) + min(p.example_index, ec) / ec) / cc
    text = (
        f"checkpoint {min(p.checkpoint_index + 1, cc)}/{p.checkpoint_count} {p.checkpoint_id}"
        f"  example {p.example_index}/{p.example_count}  {bar(frac)} {frac * 100:3.0f}%"
    )
    for key in sorted(p.running_scores):
        text += f"  {key} {p.running_scores[key]:.3g}"
    return text


def watch_evaluation(app: App, evaluation_id: str) -> int:
    """Follow an evaluation until it ends; print the ranked table; 1 unless it completed."""
    block = LiveBlock(enabled=False) if app.json else LiveBlock()
    last_checkpoint = None

    def open_call(seq: int):
        return app.evals.WatchEvaluation(eval_pb2.WatchEvaluationRequest(evaluation_id=evaluation_id, after_seq=seq))

    try:
        for resp in job_events(app, open_call):
            if app.json:
                emit_json(resp, stream=True)
                continue
            ev = resp.event
            kind = ev.WhichOneof("payload")
            if kind == "progress":
                text = eval_progress_text(ev.progress)
                if block.enabled:
                    block.update([text])
                elif ev.progress.checkpoint_id != last_checkpoint:
                    block.line(f"{fmt_clock(ev.time)} {text}")
                last_checkpoint = ev.progress.checkpoint_id
            elif kind == "state":
                block.line(f"{fmt_clock(ev.time)} evaluation {job_label(ev.state)}")
            elif kind == "score":
                s = ev.score
                block.line(
                    f"{fmt_clock(ev.time)} scored {s.label or s.checkpoint_id}: composite {s.composite:.4f}, perplexity {s.perplexity:.3f}"
                )
            elif kind == "log" and (ev.log.level.lower() in ("warning", "error", "critical")):
                block.line(f"{fmt_clock(ev.time)} {ev.log.level.upper()} {ev.log.message}")
    except KeyboardInterrupt:
        block.close()
        note(f"\ndetached: evaluation {evaluation_id} keeps running (see it with: modxctl eval show {evaluation_id})")
        raise click.exceptions.Exit(130) from None
    block.close(keep=False)
    resp = app.call(app.evals.GetEvaluation, eval_pb2.GetEvaluationRequest(evaluation_id=evaluation_id))
    if app.json:
        emit_json(resp, stream=True)
    else:
        echo()
        print_evaluation(resp.evaluation)
    return 0 if resp.evaluation.state in JOB_DONE_OK else 1


@click.group("eval")
def eval_group() -> None:
    """Compare checkpoints and recommend the best one.

    Each checkpoint (and optionally the base model) is scored on sampled
    data: perplexity plus semantic similarity, coherence and coverage of
    generated answers, combined into one composite score. The report and a
    CSV are written to the task's output dir.
    """


@eval_group.command("run")
@click.argument("task_id")
@click.option("--checkpoint", "checkpoints", multiple=True, required=True, metavar="C", help="Checkpoint id or step; repeat for each (at least 2), or 'all'.")
@click.option("--base", is_flag=True, help="Score the untrained base model too, as a baseline (step 0).")
@click.option("--samples", type=click.IntRange(min=1), metavar="N", help="Examples to sample from the training data when the task has no eval file (caps the eval file otherwise).  [default: 50]")
@click.option("--max-new-tokens", type=click.IntRange(min=1), metavar="N", help="Length limit of each generated answer.  [default: 128]")
@click.option("--temperature", type=click.FloatRange(min=0), default=0.0, show_default=True, help="0 = greedy decoding.")
@click.option("--top-p", type=click.FloatRange(0, 1), default=None, metavar="P", help="Nucleus sampling (with --temperature).")
@click.option("--top-k", type=click.IntRange(min=0), default=None, metavar="K", help="Top-k sampling (with --temperature).")
@click.option("--repetition-penalty", type=click.FloatRange(min=0, min_open=True), default=None, metavar="R", help="Penalty on repeated tokens.  [default: 1.0]")
@click.option("--seed", type=click.IntRange(min=0), default=0, metavar="N", help="Seed of the data sample, the bootstrap and sampling.  [default: the task's seed]")
@click.option("--detach", is_flag=True, help="Print the new evaluation and return without following it.")
def eval_run(
    task_id: str,
    checkpoints: tuple[str, ...],
    base: bool,
    samples: int | None,
    max_new_tokens: int | None,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    repetition_penalty: float | None,
    seed: int,
    detach: bool,
) -> None:
    """Score checkpoints of TASK_ID and rank them.

    Creates the evaluation, follows its progress, then prints the ranking.

    Exits 0 when the evaluation completes, 1 when it fails or is cancelled.

    \b
    Examples:
      modxctl eval run TASK_ID --checkpoint 200 --checkpoint 400 --base
      modxctl eval run TASK_ID --checkpoint all --samples 100
    """
    app = get_app()
    gen = eval_pb2.GenerationSettings(
        max_new_tokens=max_new_tokens or 0,
        temperature=temperature,
        top_p=top_p or 0.0,
        top_k=top_k or 0,
        repetition_penalty=repetition_penalty or 0.0,
    )
    req = eval_pb2.CreateEvaluationRequest(
        task_id=task_id, checkpoints=list(checkpoints), include_base=base, samples=samples or 0, seed=seed, generation=gen
    )
    resp = app.call(app.evals.CreateEvaluation, req)
    e = resp.evaluation
    if app.json:
        emit_json(resp, stream=not detach)
    else:
        echo(f"evaluation {e.id}: {len(e.checkpoint_ids)} checkpoints" + (" + base model" if e.include_base else "") + f", {e.samples} examples")
    if detach:
        if not app.json:
            echo(f"follow it with: modxctl eval watch {e.id}")
        return
    sys.exit(watch_evaluation(app, e.id))


@eval_group.command("watch")
@click.argument("evaluation_id", metavar="ID")
def eval_watch(evaluation_id: str) -> None:
    """Follow a running evaluation (or replay a finished one), then print its ranking.

    Exits 0 when the evaluation completed, 1 otherwise.
    """
    app = get_app()
    sys.exit(watch_evaluation(app, evaluation_id))


@eval_group.command("show")
@click.argument("evaluation_id", metavar="ID")
def eval_show(evaluation_id: str) -> None:
    """Show an evaluation: ranked scores (best starred), verdict and report files."""
    app = get_app()
    resp = app.call(app.evals.GetEvaluation, eval_pb2.GetEvaluationRequest(evaluation_id=evaluation_id))
    if app.json:
        emit_json(resp)
        return
    print_evaluation(resp.evaluation)


@eval_group.command("list")
@click.option("--task", "task_id", metavar="ID", default="", help="Only evaluations of this task.")
def eval_list(task_id: str) -> None:
    """List evaluations, newest first."""
    app = get_app()
    merged = all_pages(app, app.evals.ListEvaluations, eval_pb2.ListEvaluationsRequest(task_id=task_id), "evaluations")
    if app.json:
        emit_json(merged)
        return
    if not merged.evaluations:
        echo("no evaluations")
        return
    rows = [
        [e.id, e.task_id, job_label(e.state), str(len(e.checkpoint_ids)) + (" + base" if e.include_base else ""), e.best_checkpoint_id or "-", fmt_time(e.create_time)]
        for e in merged.evaluations
    ]
    echo(table(["ID", "TASK", "STATE", "CHECKPOINTS", "BEST", "CREATED"], rows))


EXAMPLE_TEXT_CHARS = 40


def _short(text: str, chars: int = EXAMPLE_TEXT_CHARS) -> str:
    """One table cell of free text: on one line, control characters escaped, clipped."""
    flat = printable(" ".join(text.split()))
    return flat if len(flat) <= chars else flat[: chars - 1] + "…"


def examples_table(examples) -> str:  # noqa: ANN001 - repeated EvalExample
    """One row per (candidate, example): the scores, then the prompt's last message, the answer and
    the reference (pretraining: the text) clipped to a cell; --json has them whole."""
    sft = any(e.prompt or e.generation or e.reference for e in examples)
    rows = []
    for e in examples:
        scores = [fmt_num(opt(e, "composite"), ".4f"), fmt_num(opt(e, "perplexity"), ".3f")]
        if sft:
            last = e.prompt[-1].content if e.prompt else ""
            rows.append([e.label or e.checkpoint_id, str(e.example), *scores,
                         fmt_num(opt(e, "semantic_similarity"), ".3f"), _short(last), _short(e.generation),
                         _short(e.reference)])
        else:
            rows.append([e.label or e.checkpoint_id, str(e.example), *scores, _short(e.text, 60)])
    headers = ["CANDIDATE", "EX", "COMPOSITE", "PERPLEXITY"]
    headers += ["SIMILARITY", "PROMPT", "ANSWER", "REFERENCE"] if sft else ["TEXT"]
    return table(headers, rows, align="lrrr" + ("rlll" if sft else "l"))


@eval_group.command("examples")
@click.argument("evaluation_id", metavar="ID")
@click.option("--checkpoint", "checkpoint_id", default="", metavar="C", help="Only this checkpoint's answers (its id, or 'base').")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help="At most N records.  [default: all]")
def eval_examples(evaluation_id: str, checkpoint_id: str, limit: int | None) -> None:
    """Show every example's prompt, reference, generated answer and scores, per checkpoint."""
    app = get_app()
    request = eval_pb2.ListEvaluationExamplesRequest(evaluation_id=evaluation_id, checkpoint_id=checkpoint_id)
    merged = all_pages(app, app.evals.ListEvaluationExamples, request, "examples", limit=limit)
    if app.json:
        emit_json(merged)
        return
    if not merged.examples:
        echo("no examples")
        return
    echo(examples_table(merged.examples))
    if merged.next_page_token:
        note(f"more records follow (--limit {limit})")


@eval_group.command("download")
@click.argument("evaluation_id", metavar="ID")
@click.argument("name")
@click.option("-o", "--output", metavar="PATH", default=None, help="Where to save it (a directory keeps the name).  [default: ./NAME]")
@click.option("--force", is_flag=True, help="Replace PATH when it exists.")
def eval_download(evaluation_id: str, name: str, output: str | None, force: bool) -> None:
    """Save a file the evaluation wrote (report.md, scores.csv, examples.jsonl, scores.png, result.json),
    checked against its SHA-256."""
    app = get_app()

    def open_stream(offset: int):
        request = eval_pb2.ReadEvaluationFileRequest(evaluation_id=evaluation_id, name=name, offset=offset)
        return app.evals.ReadEvaluationFile(request, timeout=app.timeout)

    report_saved(app.json, save(open_stream, target_path(output, name), force))

