"""TrainingService: tasks, lifecycle, watch, metrics, checkpoints, estimates, schema, templates."""
from __future__ import annotations

from collections import OrderedDict

from modx.v1 import training_pb2 as T
from modx.v1 import training_pb2_grpc

from .. import fields
from .. import params as P
from ..app import App
from . import convert as cv
from .status import rpc


_RESPONSES: "OrderedDict[tuple[str, int], T.WatchTaskResponse]" = OrderedDict()
_RESPONSES_MAX = 4096


def _watch_response(event) -> T.WatchTaskResponse:
    """Events never change once stored: many watchers of one task share one converted message."""
    key = (event.task_id, event.seq)
    response = _RESPONSES.get(key)
    if response is None:
        response = _RESPONSES[key] = T.WatchTaskResponse(event=cv.event_to_proto(event))
        if len(_RESPONSES) > _RESPONSES_MAX:
            _RESPONSES.popitem(last=False)
    return response


def _task_id(value: str) -> str:
    return fields.require_id(value, "task_id")


class TrainingServicer(training_pb2_grpc.TrainingServiceServicer):
    def __init__(self, app: App) -> None:
        self.app = app

    def _task(self, task) -> T.Task:
        return cv.task_to_proto(task, self.app.supervisor.queue_position(task.id))

    @rpc
    async def CreateTask(self, request: T.CreateTaskRequest, context) -> T.CreateTaskResponse:
        task, warnings = await self.app.create_task(
            cv.task_type(request.type), request.template, cv.params_from_proto(request.params),
            request.name, request.validate_only)
        return T.CreateTaskResponse(task=self._task(task), warnings=cv.warnings_to_proto(warnings))

    @rpc
    async def GetTask(self, request: T.GetTaskRequest, context) -> T.GetTaskResponse:
        return T.GetTaskResponse(task=self._task(await self.app.get_task(_task_id(request.task_id))))

    @rpc
    async def ListTasks(self, request: T.ListTasksRequest, context) -> T.ListTasksResponse:
        offset, limit = cv.page(request.page)
        states = cv.states_filter(request.states)
        tasks, total = await self.app.list_tasks(states, cv.task_type(request.type, required=False), offset, limit)
        next_token = cv.next_page_token(offset, limit, offset + limit < total)
        return T.ListTasksResponse(tasks=[self._task(t) for t in tasks], next_page_token=next_token,
                                   total_size=total)

    @rpc
    async def DeleteTask(self, request: T.DeleteTaskRequest, context) -> T.DeleteTaskResponse:
        await self.app.delete_task(_task_id(request.task_id), request.delete_files)
        return T.DeleteTaskResponse()

    @rpc
    async def StartTask(self, request: T.StartTaskRequest, context) -> T.StartTaskResponse:
        task, warnings = await self.app.start_task(_task_id(request.task_id))
        return T.StartTaskResponse(task=self._task(task), warnings=cv.warnings_to_proto(warnings))

    @rpc
    async def StopTask(self, request: T.StopTaskRequest, context) -> T.StopTaskResponse:
        return T.StopTaskResponse(task=self._task(await self.app.stop_task(_task_id(request.task_id))))

    @rpc
    async def ResumeTask(self, request: T.ResumeTaskRequest, context) -> T.ResumeTaskResponse:
        task_id, ref = _task_id(request.task_id), fields.check_ref(request.checkpoint, "checkpoint")
        task, ckpt, warnings = await self.app.resume_task(task_id, ref)
        response = T.ResumeTaskResponse(task=self._task(task), warnings=cv.warnings_to_proto(warnings))
        if ckpt is not None:
            response.checkpoint.CopyFrom(cv.checkpoint_to_proto(ckpt))
        return response

    @rpc
    async def WatchTask(self, request: T.WatchTaskRequest, context):
        task_id = _task_id(request.task_id)
        after_seq = fields.check_non_negative(request.after_seq, "after_seq")
        kinds = cv.kinds_filter(request.kinds)
        async for event in self.app.watch(task_id, after_seq, kinds, request.history_only, request.follow_forever):
            yield _watch_response(event)

    @rpc
    async def ListMetrics(self, request: T.ListMetricsRequest, context) -> T.ListMetricsResponse:
        task_id = _task_id(request.task_id)
        after_step = fields.check_non_negative(request.after_step, "after_step")
        offset, limit = cv.page(request.page, default_size=1000, max_size=10_000)
        await self.app.tasks.get(task_id)
        points = await self.app.events.metrics(task_id, after_step if after_step else -1, offset, limit + 1)
        more = len(points) > limit
        return T.ListMetricsResponse(points=[cv.metrics_to_proto(p) for p in points[:limit]],
                                     next_page_token=cv.next_page_token(offset, limit, more))

    @rpc
    async def ListCheckpoints(self, request: T.ListCheckpointsRequest, context) -> T.ListCheckpointsResponse:
        task_id = _task_id(request.task_id)
        await self.app.tasks.get(task_id)
        ckpts = await self.app.checkpoints.list(task_id, request.include_deleted)
        return T.ListCheckpointsResponse(checkpoints=[cv.checkpoint_to_proto(c) for c in ckpts])

    @rpc
    async def EstimateQuota(self, request: T.EstimateQuotaRequest, context) -> T.EstimateQuotaResponse:
        task_id = fields.optional_id(request.task_id, "task_id")
        if task_id:
            found = await self.app.estimate_for(task_id=task_id, calibrate=request.calibrate)
        else:
            found = await self.app.estimate_for(
                task_type=cv.task_type(request.type), template=request.template,
                overrides=cv.params_from_proto(request.params), calibrate=request.calibrate)
        response = T.EstimateQuotaResponse(estimate=cv.estimate_to_proto(found.estimate),
                                           warnings=cv.warnings_to_proto(found.warnings),
                                           settings=cv.settings_to_proto(found.settings))
        if found.train_data:
            response.train_data.CopyFrom(cv.report_to_proto(found.train_data))
        if found.eval_data:
            response.eval_data.CopyFrom(cv.report_to_proto(found.eval_data))
        return response

    @rpc
    async def GetParamSchema(self, request: T.GetParamSchemaRequest, context) -> T.GetParamSchemaResponse:
        task_type = cv.task_type(request.type, required=False)
        specs = P.specs_for(task_type) if task_type else list(P.SCHEMA)
        return T.GetParamSchemaResponse(params=[cv.spec_to_proto(s, task_type) for s in specs],
                                        fold_groups=list(P.FOLD_GROUPS))

    @rpc
    async def ListTemplates(self, request: T.ListTemplatesRequest, context) -> T.ListTemplatesResponse:
        templates = await self.app.templates.list(cv.task_type(request.type, required=False))
        return T.ListTemplatesResponse(templates=[cv.template_to_proto(t) for t in templates])

    @rpc
    async def GetTemplate(self, request: T.GetTemplateRequest, context) -> T.GetTemplateResponse:
        tpl = await self.app.templates.get(request.name)
        return T.GetTemplateResponse(template=cv.template_to_proto(tpl))

    @rpc
    async def SaveTemplate(self, request: T.SaveTemplateRequest, context) -> T.SaveTemplateResponse:
        tpl = await self.app.save_template(
            request.name, cv.task_type(request.type, required=False),
            fields.optional_id(request.from_task_id, "from_task_id"), cv.params_from_proto(request.params),
            fields.check_text(request.description, "description", fields.MAX_TEXT_CHARS, fields.NEWLINES),
            request.overwrite)
        return T.SaveTemplateResponse(template=cv.template_to_proto(tpl))

    @rpc
    async def DeleteTemplate(self, request: T.DeleteTemplateRequest, context) -> T.DeleteTemplateResponse:
        await self.app.templates.delete(request.name)
        return T.DeleteTemplateResponse()
