"""modxctl driven as a user would, against a real daemon."""
from __future__ import annotations

import json

from .helpers import sft_params


def test_status_env_params_quota(daemon) -> None:
    status = daemon.cli_json("status")
    assert status["version"] and status["devices"][0]["device"] == "cpu"
    assert "torch" in daemon.cli_json("env")["packages"]
    params = daemon.cli_json("params", "--type", "pretrain")
    keys = {p["key"] for p in params["params"]}
    assert "use_lora" in keys and "lora_r" not in keys
    human = daemon.cli("params").stdout
    assert "learning_rate" in human and "学习率" in human
    assert int(daemon.cli_json("quota")["balance"]) >= 0


def test_create_show_list_and_errors(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    out = tmp_path / "o"
    created = daemon.cli_json("train", "create", "--type", "sft", "--train-file", str(sft_jsonl),
                              "--model-dir", str(tiny_llama_dir), "--output-dir", str(out),
                              "--set", "lora_r=32", "--set", "learning_rate=1e-4", "--name", "cli-test")
    task = created["task"]
    assert task["params"]["lora_r"]["int_value"] in ("32", 32)
    shown = daemon.cli_json("train", "show", task["id"])["task"]
    assert shown["name"] == "cli-test" and shown["state"] == "TASK_STATE_CREATED"
    listed = daemon.cli_json("train", "list", "--state", "created")
    assert task["id"] in {t["id"] for t in listed["tasks"]}
    human = daemon.cli("train", "show", task["id"]).stdout
    assert task["id"] in human and "created" in human

    bad = daemon.cli("train", "create", "--type", "sft", "--train-file", str(sft_jsonl), "--model-dir",
                     str(tiny_llama_dir), "--output-dir", str(out), "--set", "lora_r=0", check=False)
    assert bad.returncode != 0 and bad.stdout == ""
    assert "lora_r must be between 1 and 512" in bad.stderr
    stop = daemon.cli("train", "stop", task["id"], check=False)
    assert stop.returncode != 0 and "cannot stop" in stop.stderr
    missing = daemon.cli("train", "show", "t-nothere", check=False)
    assert missing.returncode != 0 and "NOT_FOUND" in missing.stderr


def test_templates_through_the_cli(daemon) -> None:
    daemon.cli("templates", "save", "cli-tpl", "--type", "sft", "--set", "lora_r=8")
    shown = daemon.cli_json("templates", "show", "cli-tpl")
    assert shown["template"]["params"]["lora_r"]["int_value"] in ("8", 8)
    names = {t["name"] for t in daemon.cli_json("templates", "list")["templates"]}
    assert {"default-sft", "default-pretrain", "cli-tpl"} <= names
    daemon.cli("templates", "delete", "cli-tpl")
    assert daemon.cli("templates", "show", "cli-tpl", check=False).returncode != 0


def test_train_watch_logs_checkpoints_metrics(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    params = sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", num_train_epochs=1, save_steps=2, logging_steps=1,
                        max_seq_length=64)
    args = ["train", "create", "--type", "sft", "--train-file", params.pop("train_file"), "--model-dir",
            params.pop("model_dir"), "--output-dir", params.pop("output_dir")]
    for key, value in params.items():
        args += ["--set", f"{key}={value}"]
    task_id = daemon.cli_json(*args)["task"]["id"]
    daemon.cli("train", "start", task_id)
    watched = daemon.cli("train", "watch", task_id)
    assert "completed" in watched.stdout
    events = daemon.cli_json("train", "watch", task_id)
    seqs = [e["event"]["seq"] for e in events]
    assert [int(s) for s in seqs] == list(range(1, len(seqs) + 1))
    ckpts = daemon.cli_json("train", "checkpoints", task_id)["checkpoints"]
    assert len(ckpts) == 2
    logs = daemon.cli("train", "logs", task_id).stdout
    assert "checkpoint saved" in logs
    png = tmp_path / "curves.png"
    daemon.cli("train", "metrics", task_id, "--plot", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = daemon.cli_json("train", "metrics", task_id)
    assert len([p for p in metrics["points"] if "loss" in p]) == 4
    ledger = daemon.cli_json("quota")["ledger"]
    assert sum(1 for e in ledger if e.get("task_id") == task_id) == 2
    json.dumps(ledger)
