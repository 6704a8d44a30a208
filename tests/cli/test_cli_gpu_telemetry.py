"""`watch` and `metrics --plot` show device telemetry when the points carry it, and nothing new when not."""
from __future__ import annotations

from pathlib import Path

from modx.v1 import training_pb2

from modxctl.plots import plot_metrics
from modxctl.watch import device_text, progress_text

GiB = 1024**3


def _gpu_point(step: int) -> training_pb2.MetricsPoint:
    return training_pb2.MetricsPoint(step=step, total_steps=10, loss=2.0 - step / 10, learning_rate=1e-4,
                                     device_memory_allocated_bytes=12 * GiB, device_memory_reserved_bytes=14 * GiB,
                                     device_memory_peak_bytes=13 * GiB + step, gpu_utilization_percent=96.6,
                                     gpu_power_watts=512.4, gpu_temperature_celsius=61.0)


def test_watch_line_shows_gpu_memory_utilization_power_temperature() -> None:
    text = progress_text(_gpu_point(3), with_bar=False)
    assert "gpu 12.0 GiB (peak 13.0 GiB) 97% 512 W 61°C" in text


def test_cpu_points_show_no_device_part() -> None:
    point = training_pb2.MetricsPoint(step=1, total_steps=2, loss=1.0, host_memory_rss_bytes=500 << 20)
    assert device_text(point) == "" and "gpu" not in progress_text(point, with_bar=False)


def test_plot_has_the_device_panels_for_a_gpu_run(tmp_path: Path) -> None:
    empty = plot_metrics([_gpu_point(s) for s in range(1, 6)], str(tmp_path / "gpu.png"))
    assert (tmp_path / "gpu.png").stat().st_size > 0
    assert "GPU memory (GiB)" not in empty and "GPU utilization (%) and power (W)" not in empty
    assert "perplexity" in empty  # the points carry no perplexity
