"""The studio in a real headless Chromium against a real modxd training a tiny model: a person's
whole path through the five pages, clicking and typing as they would.

Prepare: a bad value is refused by the daemon and shown at its field; validate shows the quota
estimate, the data report, the run estimate and the settings a rule chose (also at their field);
Calibrate times the run on this host; create + start opens the Monitor. Monitor: the loss curve grows while the worker logs;
a reload mid-run resumes the stream after the last seq (the points equal the daemon's ListMetrics,
no gap, no duplicate); stop and resume; after the run, whether it learned and the estimate next to the actual. Evaluate: two checkpoints and the base, ranking with the
best, the daemon's CSV and report downloaded (ReadEvaluationFile), the per-example answers paged
and filtered (ListEvaluationExamples). Test: a streamed reply, two models side by side. Package:
Q8_0 merged, files with checksums (one downloaded through ReadPackageFile and checked), the
verification table. Language switch; the token dialog when tokens are needed.

Skips with the reason where node/npm or Chromium is missing (.ci/run installs Chromium as root).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Iterator

import pytest
from modx.v1 import eval_pb2 as E
from modx.v1 import training_pb2 as T

from tests.daemon.helpers import wait_for_state
from tests.service.support import mint_token, write_config
from tests.support.daemon import Daemon
from tests.web.studio import Browser, Workspace, free_port, make_workspace, missing_tools, start_web_daemon

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=missing_tools() or "")


class Studio:
    """The shared scene: one daemon, one browser page, the task the tests build up."""

    def __init__(self, daemon: Daemon, url: str, browser: Browser, ws: Workspace) -> None:
        self.daemon, self.url, self.browser, self.ws = daemon, url, browser, ws
        self.task_id = ""

    def set_param(self, key: str, value: str) -> None:
        """Type into a parameter's field, opening its fold group first if it is closed."""
        b = self.browser
        closed = f"details:has([data-key={key}]):not([open]) > summary"
        if b.call("count", selector=closed):
            b.click(closed)
        b.fill(f"[data-key={key}] input", value)

    def metrics_steps(self) -> list[int]:
        points = self.daemon.training.ListMetrics(T.ListMetricsRequest(task_id=self.task_id)).points
        return [p.step for p in points if p.HasField("loss")]


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, roots: Path) -> Iterator[Studio]:
    base = tmp_path_factory.mktemp("studio-e2e")
    ws = make_workspace(base / "ws")
    daemon, url = start_web_daemon(base / "state", [roots])
    browser = Browser(url + "/#/prepare")
    try:
        yield Studio(daemon, url, browser, ws)
    finally:
        problems = browser.call("problems")
        browser.close()
        daemon.stop()
    # Refused calls show up as "Failed to load resource" (the browser's own line for a 4xx): expected
    # here, since the tests make the daemon refuse. Anything else is a script error of the page.
    assert not [p for p in problems if "Failed to load resource" not in p], problems


def check_first_run_report(studio: Studio) -> None:
    """What validate-only showed is what the daemon resolves for the same request (issue 19)."""
    b = studio.browser
    assert "192" in b.text("#run-estimate")
    report = b.text("[data-field=train_file]")
    assert "64" in report and "max_seq_length 64" in report
    assert b.call("count", selector="[data-field=train_file] table.histogram tr") >= 2  # header + a bin
    auto = b.eval("[...document.querySelectorAll('#settings tr[data-source=auto]')].map((r) => r.dataset.key)")
    assert "learning_rate" in auto  # nobody typed one: the measured rule chose it, with its reason
    assert "num_train_epochs" not in auto  # typed in the form: explicit wins
    assert b.eval("document.querySelector('#settings tr[data-key=num_train_epochs]').dataset.source") == "explicit"
    note = b.text("#p-learning_rate-auto")
    assert note.startswith("auto: ") and len(note) > len("auto: 0.001 — ")
    studio.set_param("num_train_epochs", "3")  # an edit: the automatic values were chosen for the old settings
    assert b.eval("document.querySelector('#p-learning_rate-auto').classList.contains('stale')")
    assert "validate again" in b.text("#p-learning_rate-auto")
    studio.set_param("learning_rate", note.split(": ", 1)[1].split(" — ")[0])  # typed: explicit, the note goes
    assert b.text("#p-learning_rate-auto") == ""
    if b.call("count", selector="#calibrate"):  # a fresh host: time it with one short measured run
        b.click("#calibrate")
        b.wait_for("document.querySelector('#run-time') && !document.querySelector('#calibrate') "
                   "&& !document.querySelector('#calibrating')", timeout=600)
    assert "≈" in b.text("#run-time")


def test_prepare_shows_daemon_errors_at_their_field_then_creates(studio: Studio) -> None:
    b, ws = studio.browser, studio.ws
    b.wait("[data-key=train_file] input")
    assert "Use LoRA" in b.text("[data-key=use_lora]")  # the label comes from GetParamSchema
    studio.set_param("train_file", str(ws.train_file))
    studio.set_param("output_dir", str(ws.output_dir("task1")))
    studio.set_param("model_dir", str(ws.model_dir))
    studio.set_param("lora_r", "0")
    b.click("#validate")
    b.wait("#p-lora_r-error:not(:empty)")
    assert "parameter lora_r" in b.text("#p-lora_r-error")
    assert b.eval("document.querySelector('#p-lora_r').getAttribute('aria-invalid')") == "true"
    studio.set_param("lora_r", "8")
    assert b.text("#p-lora_r-error") == ""
    # A file the daemon cannot use is named at the field too (a check on the daemon host).
    studio.set_param("model_dir", str(ws.root / "no-such-model"))
    b.click("#validate")
    b.wait("#p-model_dir-error:not(:empty)")
    studio.set_param("model_dir", str(ws.model_dir))
    # Enough steps to watch, stop and resume: 64 examples, batch 1, 3 epochs, a point per step.
    for key, value in {"per_device_train_batch_size": "1", "gradient_accumulation_steps": "1", "num_train_epochs": "3",
                       "max_seq_length": "64", "logging_steps": "1", "save_steps": "40", "fp16": "", "seed": "7"}.items():
        if key == "fp16":
            closed = "details:has([data-key=fp16]):not([open]) > summary"
            if b.call("count", selector=closed):
                b.click(closed)
            b.call("check", selector="#p-fp16", checked=False)
        else:
            studio.set_param(key, value)
    b.click("#validate")
    b.wait("#validated")
    assert "192" in b.text("#report")  # total steps: 64 x 3
    assert b.text("#quota-fit")
    check_first_run_report(studio)
    b.fill("#task-name", "studio-e2e")
    b.click("#create-start")
    b.wait_for("location.hash.startsWith('#/monitor/')")
    studio.task_id = b.eval("decodeURIComponent(location.hash.split('/')[2].split('?')[0])")
    task = studio.daemon.training.GetTask(T.GetTaskRequest(task_id=studio.task_id)).task
    assert task.name == "studio-e2e" and task.params["lora_r"].int_value == 8
    assert task.params["num_train_epochs"].int_value == 3


def test_monitor_curve_grows_and_a_reload_resumes_without_gaps(studio: Studio) -> None:
    b = studio.browser
    b.wait_for("window.__studio.monitor.points >= 5", timeout=600)
    first = b.eval("window.__studio.monitor.points")
    b.wait_for(f"window.__studio.monitor.points > {first}", timeout=300)
    assert b.call("count", selector="[data-chart=loss] canvas") >= 1
    # the task list (polled) shows the open task's streamed step, not an older one
    row, step = b.eval("[document.querySelector('#task-list li.selected [data-summary]').textContent, "
                       "document.querySelector('#step').textContent]")
    assert f"· {step.replace(' / ', '/')} ·" in row, (row, step)
    seq_before = b.eval("window.__studio.monitor.lastSeq")
    b.call("reload")
    b.wait("#progress")
    resumed = b.wait_for("window.__studio.monitor.resumedFrom")
    assert resumed > 0 and resumed <= b.eval("window.__studio.monitor.lastSeq")
    assert resumed >= seq_before  # the cache was saved when the page went away (pagehide)
    b.wait_for(f"window.__studio.monitor.points > {b.eval('window.__studio.monitor.points')}", timeout=300)


def test_stop_then_resume(studio: Studio) -> None:
    b = studio.browser
    b.wait("#stop")
    b.click("#stop")
    b.wait("[data-state=stopped]", timeout=300)
    task = wait_for_state(studio.daemon, studio.task_id, {"stopped"})
    assert task.checkpoints_saved >= 1
    b.wait("#resume")
    b.click("#resume")
    wait_for_state(studio.daemon, studio.task_id, {"pending", "running", "completed"})
    task = wait_for_state(studio.daemon, studio.task_id, {"completed"}, timeout=900)
    assert task.resume_count == 1
    b.wait("#task-title [data-state=completed]", timeout=120)
    # Everything the daemon stored was drawn, each step once, across the reload and the resume.
    steps = studio.metrics_steps()
    b.wait_for(f"window.__studio.monitor.lastSeq > 0 && document.querySelector('#points').textContent == '{len(set(steps))}'",
               timeout=120)
    rows = b.call("count", selector="#checkpoints tr[data-checkpoint]")
    assert rows == len(studio.daemon.training.ListCheckpoints(
        T.ListCheckpointsRequest(task_id=studio.task_id, include_deleted=True)).checkpoints)
    # Did it learn: the worker's verdict and sentence as the daemon stores them.
    assert task.HasField("learning")
    b.wait("#learning", timeout=120)
    verdict = T.LearningCheck.Verdict.Name(task.learning.verdict).removeprefix("VERDICT_").lower()
    assert b.eval("document.querySelector('#learning').dataset.verdict") == verdict
    assert b.text("#learning-sentence") == task.learning.sentence
    assert b.call("count", selector="#estimate-checks tr[data-quantity]") == len(task.estimate_checks)


def test_evaluate_ranks_checkpoints_and_the_base(studio: Studio, tmp_path: Path) -> None:
    b = studio.browser
    b.goto(f"{studio.url}/#/evaluate/{studio.task_id}")
    b.wait("#eval-checkpoints input[name=checkpoint]")
    b.fill("#eval-settings [name=samples]", "4")
    b.fill("#eval-settings [name=max_new_tokens]", "8")
    b.click("#run-eval")
    b.wait("#ranking", timeout=900)
    best = b.text("#eval-verdict")
    assert "Best" in best
    ranked = b.call("count", selector="#ranking tbody tr")
    checkpoints = b.call("count", selector="#eval-checkpoints input[name=checkpoint]")
    assert ranked == checkpoints + 1  # every checkpoint and the base model
    assert b.call("count", selector="#ranking tr.best") == 1
    name = b.call("download", selector="#download-csv", path=str(tmp_path / "scores.csv"))
    assert name.endswith("-scores.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "scores.csv").read_text())))
    assert len(rows) == ranked and sum(r["is_best"] == "true" for r in rows) == 1
    assert {r["checkpoint_id"] for r in rows} >= {"base"}
    # the daemon's own files, through ReadEvaluationFile: byte for byte what the evaluation wrote
    evaluation = studio.daemon.evals.ListEvaluations(E.ListEvaluationsRequest(task_id=studio.task_id)).evaluations[0]
    assert (tmp_path / "scores.csv").read_bytes() == Path(evaluation.csv_path).read_bytes()
    name = b.call("download", selector="#download-report", path=str(tmp_path / "report.md"))
    assert name == f"{evaluation.id}-report.md"
    assert (tmp_path / "report.md").read_bytes() == Path(evaluation.report_path).read_bytes()
    # the per-example answers, a page at a time, all candidates or one
    b.wait("#examples table.examples tbody tr")
    total = 4 * ranked  # 4 samples per candidate
    assert b.call("count", selector="#examples tbody tr") == min(total, 20)
    b.call("select", selector="#examples-checkpoint", value="base")
    b.wait_for("document.querySelectorAll('#examples tbody tr').length == 4 && "
               "[...document.querySelectorAll('#examples tbody tr')].every((r) => r.dataset.checkpoint == 'base')")
    answers = b.call("texts", selector="#examples tbody tr .cell-text.answer")
    served = studio.daemon.evals.ListEvaluationExamples(E.ListEvaluationExamplesRequest(
        evaluation_id=evaluation.id, checkpoint_id="base")).examples
    assert [a.strip() for a in answers] == [e.generation.strip() for e in served]


def test_chat_streams_and_compares_two_models(studio: Studio) -> None:
    b = studio.browser
    b.goto(f"{studio.url}/#/test/{studio.task_id}")
    b.wait("[data-pane=a] select.target option", state="attached")
    b.fill("#system-prompt", "You are a helpful assistant.")
    b.fill("#sampling [name=max_new_tokens]", "12")
    b.fill("#sampling [name=temperature]", "0")
    b.call("check", selector="#compare", checked=True)
    b.wait("[data-pane=b] select.target option[value='base:']", state="attached")
    b.call("select", selector="[data-pane=b] select.target", value="base:")
    b.fill("#message", "Question 1: what about the fox?")
    b.click("#send")
    for pane in ("a", "b"):
        b.wait(f"[data-pane={pane}] .bubble.assistant:not(.streaming)", timeout=300)
        meta = b.text(f"[data-pane={pane}] .meta")
        assert "tok/s" in meta, meta
    assert b.text("[data-pane=a] .bubble.user") == "Question 1: what about the fox?"


def test_package_exports_gguf_with_checksums_and_verification(studio: Studio, tmp_path: Path) -> None:
    b = studio.browser
    b.goto(f"{studio.url}/#/package/{studio.task_id}")
    b.wait("#package-checkpoint option", state="attached")
    b.click("#create-package")
    b.wait("#package-files", timeout=900)
    sha = b.call("texts", selector="#package-files td.sha")
    assert sha and all(len(s) == 64 for s in sha)
    saved = b.call("download", selector="#package-files tr[data-kind=model] .download-file",
                   path=str(tmp_path / "model.gguf"))
    assert saved.endswith(".gguf")
    assert hashlib.sha256((tmp_path / "model.gguf").read_bytes()).hexdigest() in sha
    assert b.call("count", selector="#verification tbody tr") >= 1


def test_delete_a_task_from_the_monitor(studio: Studio) -> None:
    import grpc

    from tests.daemon.helpers import create_request, sft_params

    ws = studio.ws
    doomed = studio.daemon.training.CreateTask(create_request(**sft_params(
        ws.model_dir, ws.train_file, ws.output_dir("doomed")))).task.id
    b = studio.browser
    b.goto(f"{studio.url}/#/monitor/{doomed}")
    b.wait(f"#task-list [data-task='{doomed}']")
    b.wait("#delete")
    b.click("#delete")  # the confirmation is accepted, as a person clicking OK
    b.wait_for("!location.hash.includes('" + doomed + "')")
    with pytest.raises(grpc.RpcError) as err:
        studio.daemon.training.GetTask(T.GetTaskRequest(task_id=doomed))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    b.wait_for(f"!document.querySelector(\"#task-list [data-task='{doomed}']\")")


def test_templates_save_and_load(studio: Studio) -> None:
    b = studio.browser
    b.goto(f"{studio.url}/#/prepare")
    b.call("reload")
    b.wait("[data-key=lora_r] input")
    studio.set_param("lora_r", "24")
    studio.set_param("learning_rate", "5e-4")
    b.fill("#template-name", "e2e-small")
    b.click("#save-template")
    b.wait("#template option[value='e2e-small']", state="attached")
    template = studio.daemon.training.GetTemplate(T.GetTemplateRequest(name="e2e-small")).template
    assert template.params["lora_r"].int_value == 24 and abs(template.params["learning_rate"].double_value - 5e-4) < 1e-12
    # A template is settings, not one task's files: the page sent no path.
    assert "train_file" not in template.params or template.params["train_file"].string_value == ""
    # The type's default template, then the saved one again: each fills the form with its values.
    b.call("select", selector="#template", value="")
    b.wait_for("document.querySelector('#p-lora_r').value === '16'")
    b.call("select", selector="#template", value="e2e-small")
    b.wait_for("document.querySelector('#p-lora_r').value === '24'")
    assert b.eval("document.querySelector('#p-learning_rate').value") == "5e-4"


def test_language_switch_uses_the_schema_labels(studio: Studio) -> None:
    b = studio.browser
    b.goto(f"{studio.url}/#/prepare")
    b.wait("[data-key=train_file] label")
    b.click("#lang")
    b.wait_for("document.querySelector('[data-page=monitor]').textContent.includes('监控')")
    assert "训练数据文件路径" in b.text("[data-key=train_file] label")
    b.click("#lang")
    b.wait_for("document.querySelector('[data-page=monitor]').textContent.includes('Monitor')")


def test_token_dialog_when_the_daemon_needs_a_token(tmp_path: Path, roots: Path) -> None:
    state = tmp_path / "state"
    token = mint_token(state, "alice", "user")
    port = free_port()
    config = write_config(tmp_path / "modxd.toml", auth_required=True, web_listen=f"127.0.0.1:{port}")
    daemon = Daemon(state, [roots], extra_env={"MODX_CONFIG": str(config)}).start()
    browser = Browser(f"http://127.0.0.1:{port}/#/monitor")
    try:
        browser.wait("dialog.token-dialog", timeout=60)
        browser.fill("dialog.token-dialog input[name=token]", token)
        browser.click("dialog.token-dialog button[value=save]")
        browser.wait_for("document.querySelector('#quota') !== null", timeout=60)
        assert browser.eval("sessionStorage.getItem('modx.token')") == token
        assert browser.call("count", selector="dialog.token-dialog") == 0
    finally:
        browser.close()
        daemon.stop()
