"""`watch`, `metrics` and `metrics --plot` show a preference task's (dpo, orpo) reward margin and
accuracy when the points carry them, and nothing new for SFT points."""
from __future__ import annotations

from pathlib import Path

import pytest
from modx.v1 import training_pb2

from modxctl import output
from modxctl.plots import plot_metrics
from modxctl.watch import TaskMonitor, progress_text


def _dpo_point(step: int, evaluation: bool = False) -> training_pb2.MetricsPoint:
    margin = step / 10
    if evaluation:
        return training_pb2.MetricsPoint(step=step, total_steps=10, eval_loss=0.6, eval_reward_margin=margin,
                                         eval_reward_chosen=margin / 2, eval_reward_rejected=-margin / 2,
                                         eval_reward_accuracy=0.75)
    return training_pb2.MetricsPoint(step=step, total_steps=10, loss=0.69 - step / 100, learning_rate=5e-5, grad_norm=1.0,
                                     reward_margin=margin, reward_chosen=margin / 2, reward_rejected=-margin / 2,
                                     reward_accuracy=min(1.0, step / 5), logps_chosen=-20.0, logps_rejected=-25.0)


def test_watch_line_shows_the_margin_and_accuracy() -> None:
    text = progress_text(_dpo_point(4), with_bar=False)
    assert "margin 0.400" in text and "acc 0.80" in text
    assert "eval_margin 0.500" in progress_text(_dpo_point(5, evaluation=True), with_bar=False)
    sft = training_pb2.MetricsPoint(step=1, total_steps=2, loss=1.0, perplexity=2.7)
    assert "margin" not in progress_text(sft, with_bar=False) and "acc" not in progress_text(sft, with_bar=False)


def test_monitor_draws_a_margin_curve_for_preference_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    mon = TaskMonitor(output.LiveBlock(enabled=False))
    for step in range(1, 5):
        mon.handle(training_pb2.TaskEvent(seq=step, metrics=_dpo_point(step)))
    mon.finish()
    out = capsys.readouterr().out
    assert mon.margins == [0.1, 0.2, 0.3, 0.4] and "margin " in out.splitlines()[-1]
    sft = TaskMonitor(output.LiveBlock(enabled=False))
    sft.handle(training_pb2.TaskEvent(seq=1, metrics=training_pb2.MetricsPoint(step=1, total_steps=2, loss=1.0)))
    assert sft.margins == [] and not any(line.startswith("margin") for line in sft.sparklines(force=True))


def test_plot_has_the_preference_panels(tmp_path: Path) -> None:
    points = [_dpo_point(s) for s in range(1, 6)] + [_dpo_point(5, evaluation=True)]
    empty = plot_metrics(points, str(tmp_path / "dpo.png"))
    assert (tmp_path / "dpo.png").stat().st_size > 0
    assert empty == []  # reward margin, rewards and accuracy drawn; no empty perplexity panel
    sft = [training_pb2.MetricsPoint(step=s, total_steps=5, loss=1.0 / s, perplexity=2.0, learning_rate=1e-4,
                                     grad_norm=0.5) for s in range(1, 4)]
    assert plot_metrics(sft, str(tmp_path / "sft.png")) == []
