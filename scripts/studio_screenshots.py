"""Take the screenshots of docs/studio.md and the README: each studio page in headless Chromium,
against a real modxd that has trained, evaluated and packaged the tests' tiny model.

    .venv/bin/python scripts/studio_screenshots.py [--out docs/img] [--work DIR]

The scene is made through the API (as any client would), then each page is opened and
photographed as a person sees it. Chinese labels need a CJK font (Debian: fonts-noto-cjk).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "daemon"), str(REPO / "clients" / "python"), str(REPO / "gen" / "python")):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def wait_job(get, done: set[int], timeout: float = 1800):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = get()
        if job.state in done:
            return job
        time.sleep(0.5)
    raise TimeoutError("the job did not finish")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--work", type=Path, default=None, help="working dir (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    args.out = args.out.absolute()  # the browser driver runs in clients/web

    from modx.v1 import common_pb2 as C
    from modx.v1 import eval_pb2 as E
    from modx.v1 import package_pb2 as P
    from modx.v1 import training_pb2 as T

    from tests.daemon.helpers import create_request, sft_params, wait_for_state
    from tests.web.studio import Browser, make_workspace, missing_tools, start_web_daemon

    why = missing_tools()
    if why:
        raise SystemExit(why)
    work = (args.work or Path(tempfile.mkdtemp(prefix="modx-shots-"))).absolute()
    args.out.mkdir(parents=True, exist_ok=True)
    ws = make_workspace(work / "ws")
    daemon, url = start_web_daemon(work / "state", [work], quota=200)
    done = {C.JOB_STATE_COMPLETED, C.JOB_STATE_FAILED, C.JOB_STATE_CANCELLED}
    try:
        params = sft_params(ws.model_dir, ws.train_file, ws.output_dir("support-bot"), num_train_epochs=4,
                            per_device_train_batch_size=1, gradient_accumulation_steps=1, max_seq_length=64,
                            logging_steps=1, save_steps=64, eval_split_ratio=0.1, eval_strategy="steps", eval_steps=16,
                            learning_rate=1e-3, fp16="false", seed=7)
        req = create_request(**params)
        req.name = "support-bot-v1"
        task = daemon.training.CreateTask(req).task
        daemon.training.StartTask(T.StartTaskRequest(task_id=task.id))
        wait_for_state(daemon, task.id, {"completed"}, timeout=3600)
        ckpts = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task.id)).checkpoints
        ev = daemon.evals.CreateEvaluation(E.CreateEvaluationRequest(
            task_id=task.id, checkpoints=[c.id for c in ckpts], include_base=True, samples=6,
            generation=E.GenerationSettings(max_new_tokens=16))).evaluation
        ev = wait_job(lambda: daemon.evals.GetEvaluation(E.GetEvaluationRequest(evaluation_id=ev.id)).evaluation, done)
        pkg = daemon.packages.CreatePackage(P.CreatePackageRequest(
            task_id=task.id, checkpoint=ckpts[-1].id, quant_types=[P.QUANT_TYPE_Q8_0, P.QUANT_TYPE_F16])).package
        pkg = wait_job(lambda: daemon.packages.GetPackage(P.GetPackageRequest(package_id=pkg.id)).package, done)
        # A second task, running while the Monitor is photographed.
        live = create_request(**{**params, "output_dir": str(ws.output_dir("support-bot-v2")), "num_train_epochs": 8})
        live.name = "support-bot-v2"
        live_task = daemon.training.CreateTask(live).task
        daemon.training.StartTask(T.StartTaskRequest(task_id=live_task.id))

        browser = Browser(url + "/#/prepare", width=1360, height=900, lang="en-US")
        try:
            b = browser

            def prepare() -> None:
                b.wait("[data-key=train_file] input")
                for key, value in (("train_file", ws.train_file), ("output_dir", ws.output_dir("support-bot-v3")),
                                   ("model_dir", ws.model_dir)):
                    b.fill(f"[data-key={key}] input", str(value))
                b.click("#validate")
                b.wait("#validated")

            b.goto(url + "/#/prepare")
            b.eval("localStorage.setItem('modx.lang', 'zh')")
            b.call("reload")
            prepare()
            b.screenshot(args.out / "studio-prepare.png")
            b.eval("localStorage.setItem('modx.lang', 'en')")
            b.goto(f"{url}/#/monitor/{live_task.id}")
            b.call("reload")
            b.wait_for("window.__studio.monitor.points >= 60", timeout=1800)
            b.screenshot(args.out / "studio-monitor.png")
            b.goto(f"{url}/#/evaluate/{task.id}?eval={ev.id}")
            b.call("reload")
            b.wait("#ranking", timeout=300)
            b.wait("#examples table.examples tbody tr", timeout=300)
            b.screenshot(args.out / "studio-evaluate.png", full_page=True)
            b.goto(f"{url}/#/test/{task.id}?compare=1&b=base:")
            b.call("reload")
            b.wait("[data-pane=b] select.target option[value='base:']", state="attached")
            b.fill("#system-prompt", "You are a helpful assistant.")
            b.fill("#sampling [name=max_new_tokens]", "24")
            b.fill("#sampling [name=temperature]", "0")
            b.fill("#message", "Question 3: what about Paris?")
            b.click("#send")
            for pane in ("a", "b"):
                b.wait(f"[data-pane={pane}] .bubble.assistant:not(.streaming)", timeout=300)
            b.eval("window.scrollTo(0, 0)")
            b.screenshot(args.out / "studio-test.png")
            b.goto(f"{url}/#/package/{task.id}?package={pkg.id}")
            b.call("reload")
            b.wait("#package-files", timeout=300)
            b.screenshot(args.out / "studio-package.png", full_page=True)
        finally:
            browser.close()
        daemon.training.StopTask(T.StopTaskRequest(task_id=live_task.id))
    finally:
        daemon.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    for path in sorted(args.out.glob("studio-*.png")):
        shrink(path)
        print(f"{path} {path.stat().st_size // 1024} KB")


def shrink(path: Path) -> None:
    """128-colour palette PNG: UI text and flat colours survive, the file is a third of the size."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


if __name__ == "__main__":
    main()
