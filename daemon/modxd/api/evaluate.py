"""EvalService: evaluation jobs (create, get, list, watch) and what they wrote (examples, files).

An evaluation runs as an `eval` job in a worker (modxd.engine.evaluate:run_evaluation).
The rules (checkpoint refs, data set, settings) and what a completed evaluation changes on
its task live in modxd.evaluations (app.create_evaluation ...); this module only translates
protobuf <-> domain.
"""
from __future__ import annotations

import math
from typing import Any

from modx.v1 import common_pb2 as C
from modx.v1 import eval_pb2 as E
from modx.v1 import eval_pb2_grpc
from modx.v1 import inference_pb2 as I

from .. import evaluations as ev
from .. import fields
from ..app import App
from ..eval_examples import ExampleRecord
from ..store.events import EventRecord
from ..store.jobs import JobRecord
from . import convert as cv
from .status import rpc

JOB_STATES = {"pending": C.JOB_STATE_PENDING, "running": C.JOB_STATE_RUNNING, "completed": C.JOB_STATE_COMPLETED,
              "failed": C.JOB_STATE_FAILED, "cancelled": C.JOB_STATE_CANCELLED}
OPTIONAL_METRICS = ("semantic_similarity", "coherence", "coverage", "preference_accuracy", "preference_margin")


def _finite(value: Any) -> float:
    value = float(value or 0.0)
    return value if math.isfinite(value) else (math.inf if value > 0 else 0.0)


def score_to_proto(s: dict[str, Any]) -> E.CheckpointScore:
    msg = E.CheckpointScore(checkpoint_id=s.get("checkpoint_id", ""), label=s.get("label", ""),
                            step=int(s.get("step") or 0), perplexity=_finite(s.get("perplexity")),
                            bits_per_byte=_finite(s.get("bits_per_byte")), composite=_finite(s.get("composite")),
                            rank=int(s.get("rank") or 0), is_best=bool(s.get("is_best")))
    for name in OPTIONAL_METRICS:
        if s.get(name) is not None:
            setattr(msg, name, float(s[name]))
    if s.get("preference_pairs") is not None:
        msg.preference_pairs = int(s["preference_pairs"])
    return msg


def generation_to_proto(g: dict[str, Any]) -> E.GenerationSettings:
    return E.GenerationSettings(temperature=float(g.get("temperature") or 0), top_p=float(g.get("top_p") or 0),
                                top_k=int(g.get("top_k") or 0),
                                repetition_penalty=float(g.get("repetition_penalty") or 0),
                                max_new_tokens=int(g.get("max_new_tokens") or 0), seed=int(g.get("seed") or 0))


def evaluation_to_proto(job: JobRecord, partial: list[dict[str, Any]] | None = None) -> E.Evaluation:
    req, res = job.request, job.result
    scores = res.get("scores") if job.state == "completed" else partial
    msg = E.Evaluation(
        id=job.id, task_id=job.task_id, state=JOB_STATES.get(job.state, C.JOB_STATE_UNSPECIFIED),
        state_reason=job.state_reason, checkpoint_ids=list(req.get("checkpoint_ids", [])),
        include_base=bool(req.get("include_base")), samples=int(res.get("samples") or req.get("samples") or 0),
        generation=generation_to_proto(req.get("generation", {})),
        scores=[score_to_proto(s) for s in scores or []],
        best_checkpoint_id=res.get("best_checkpoint_id", ""), verdict=res.get("verdict", ""),
        report_path=res.get("report_path", ""), csv_path=res.get("csv_path", ""),
        examples_path=res.get("examples_path", ""))
    for name in ("create_time", "end_time"):
        stamp = cv.ts(getattr(job, name) or None)
        if stamp is not None:
            getattr(msg, name).CopyFrom(stamp)
    return msg


def example_to_proto(r: ExampleRecord) -> E.EvalExample:
    msg = E.EvalExample(checkpoint_id=r.checkpoint_id, label=r.label, step=r.step, example=r.example,
                        prompt=[I.ChatMessage(role=m["role"], content=m["content"]) for m in r.prompt],
                        reference=r.reference, generation=r.generation, text=r.text,
                        answer_tokens=r.answer_tokens, answer_bytes=r.answer_bytes, line=r.line)
    for name, value in r.scores.items():
        if value is not None:
            setattr(msg, name, value)
    return msg


def event_to_proto(event: EventRecord) -> E.EvalEvent:
    msg = E.EvalEvent(evaluation_id=event.task_id, seq=event.seq, time=cv.ts(event.time))
    p = event.payload
    if event.kind == "state":
        msg.state = JOB_STATES.get(p.get("state", ""), C.JOB_STATE_UNSPECIFIED)
    elif event.kind == "progress":
        msg.progress.CopyFrom(E.EvalProgress(
            checkpoint_index=int(p.get("checkpoint_index") or 0), checkpoint_count=int(p.get("checkpoint_count") or 0),
            example_index=int(p.get("example_index") or 0), example_count=int(p.get("example_count") or 0),
            checkpoint_id=p.get("checkpoint_id", ""),
            running_scores={k: float(v) for k, v in (p.get("running_scores") or {}).items()}))
    elif event.kind == "score":
        msg.score.CopyFrom(score_to_proto(p))
    else:  # log, warning and anything else the worker says: a log line
        level = p.get("level") or ("warning" if event.kind == "warning" else "info")
        msg.log.CopyFrom(C.LogLine(time=cv.ts(event.time), level=level, message=p.get("message", "")))
    return msg


class EvalServicer(eval_pb2_grpc.EvalServiceServicer):
    def __init__(self, app: App) -> None:
        self.app = app

    @rpc
    async def CreateEvaluation(self, request: E.CreateEvaluationRequest, context) -> E.CreateEvaluationResponse:
        g = request.generation
        task_id = fields.require_id(request.task_id, "task_id")
        refs = list(request.checkpoints)
        fields.check_count(refs, "checkpoints", ev.MAX_CANDIDATES)
        refs = [fields.check_ref(ref, "checkpoints") for ref in refs]
        job = await self.app.create_evaluation(
            task_id, refs, request.include_base, request.samples, request.seed,
            dict(temperature=g.temperature, top_p=g.top_p, top_k=g.top_k, repetition_penalty=g.repetition_penalty,
                 max_new_tokens=g.max_new_tokens, seed=g.seed))
        return E.CreateEvaluationResponse(evaluation=evaluation_to_proto(job))

    @rpc
    async def GetEvaluation(self, request: E.GetEvaluationRequest, context) -> E.GetEvaluationResponse:
        job, partial = await self.app.get_evaluation(fields.require_id(request.evaluation_id, "evaluation_id"))
        return E.GetEvaluationResponse(evaluation=evaluation_to_proto(job, partial))

    @rpc
    async def ListEvaluations(self, request: E.ListEvaluationsRequest, context) -> E.ListEvaluationsResponse:
        task_id = fields.optional_id(request.task_id, "task_id")
        offset, limit = cv.page(request.page)
        jobs, total = await self.app.list_evaluations(task_id, offset, limit)
        return E.ListEvaluationsResponse(evaluations=[evaluation_to_proto(j) for j in jobs],
                                         next_page_token=cv.next_page_token(offset, limit, offset + limit < total))

    @rpc
    async def WatchEvaluation(self, request: E.WatchEvaluationRequest, context):
        evaluation_id = fields.require_id(request.evaluation_id, "evaluation_id")
        after_seq = fields.check_non_negative(request.after_seq, "after_seq")
        async for event in self.app.watch_evaluation(evaluation_id, after_seq):
            yield E.WatchEvaluationResponse(event=event_to_proto(event))

    @rpc
    async def ListEvaluationExamples(self, request: E.ListEvaluationExamplesRequest, context
                                     ) -> E.ListEvaluationExamplesResponse:
        evaluation_id = fields.require_id(request.evaluation_id, "evaluation_id")
        checkpoint_id = fields.check_ref(request.checkpoint_id, "checkpoint_id")
        offset, limit = cv.page(request.page)
        records, more = await self.app.evaluation_examples(evaluation_id, checkpoint_id, offset, limit)
        token = cv.next_page_token(offset, len(records), more)
        return E.ListEvaluationExamplesResponse(examples=[example_to_proto(r) for r in records],
                                                next_page_token=token)

    @rpc
    async def ReadEvaluationFile(self, request: E.ReadEvaluationFileRequest, context):
        evaluation_id = fields.require_id(request.evaluation_id, "evaluation_id")
        offset = fields.check_non_negative(request.offset, "offset")
        async for chunk in self.app.read_evaluation_file(evaluation_id, request.name, offset):
            yield E.ReadEvaluationFileResponse(chunk=cv.chunk_to_proto(chunk))
