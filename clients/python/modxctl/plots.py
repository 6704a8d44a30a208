"""Curves: Unicode sparklines for the terminal, a matplotlib PNG for reports.

Sparklines let `train watch` show the shape of loss and learning rate in one
line each; the PNG is what people attach to a report. matplotlib is imported
only when a PNG is asked for (it is slow to import).
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

from modx.v1 import training_pb2

from .output import fmt_num

TICKS = "▁▂▃▄▅▆▇█"


def _finite(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def resample(values: Sequence[float], width: int) -> list[float]:
    """Average `values` into at most `width` buckets, keeping the overall shape."""
    n = len(values)
    if n <= width:
        return list(values)
    out = []
    for i in range(width):
        lo = i * n // width
        hi = max(lo + 1, (i + 1) * n // width)
        chunk = values[lo:hi]
        out.append(sum(chunk) / len(chunk))
    return out


def sparkline(values: Iterable[float | None], width: int = 40) -> str:
    """'▇▆▅▃▂▁' for a falling series; missing and non-finite points are skipped.

    A flat series draws at mid height, so it is not mistaken for zero.
    """
    points = resample(_finite(values), max(1, width))
    if not points:
        return ""
    lo, hi = min(points), max(points)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return TICKS[len(TICKS) // 2 - 1] * len(points)
    scale = (len(TICKS) - 1) / (hi - lo)
    return "".join(TICKS[int(round((p - lo) * scale))] for p in points)


def curve_line(label: str, values: Sequence[float | None], width: int = 40, spec: str = ".4g") -> str:
    """'loss  ▇▅▃▂▁  1.23 (min 1.1, max 2.5)' — a labelled sparkline with its range."""
    finite = _finite(values)
    if not finite:
        return f"{label:<5} (no data yet)"
    return (
        f"{label:<5} {sparkline(finite, width)}  {fmt_num(finite[-1], spec)}"
        f"  (min {fmt_num(min(finite), spec)}, max {fmt_num(max(finite), spec)})"
    )


def _series(points: Sequence[training_pb2.MetricsPoint], field: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for p in points:
        if p.HasField(field):
            value = getattr(p, field)
            if math.isfinite(value):
                xs.append(p.step)
                ys.append(value / 1024**3 if field.endswith("_bytes") else value)  # memory in GiB
    return xs, ys


def plot_metrics(points: Sequence[training_pb2.MetricsPoint], path: str, title: str = "") -> list[str]:
    """Write a 2x2 PNG: loss (+eval loss), perplexity, learning rate, grad norm; for a preference task
    (dpo, orpo) the reward margin instead of perplexity and a row of rewards and preference accuracy;
    for a GPU run a row with its memory and utilization.

    Returns the names of the panels that had no data (drawn empty, with a note).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    preference = any(p.HasField("reward_margin") or p.HasField("eval_reward_margin") for p in points)
    panels = [
        ("loss", [("loss", "train"), ("eval_loss", "eval")], False),
        # a preference loss has no perplexity: its reward margin instead (dpo, orpo)
        ("reward margin", [("reward_margin", "train"), ("eval_reward_margin", "eval")], False) if preference else
        ("perplexity", [("perplexity", "train"), ("eval_perplexity", "eval")], True),
        ("learning rate", [("learning_rate", "lr")], False),
        ("gradient norm", [("grad_norm", "grad norm")], False),
    ]
    if preference:
        panels += [
            ("rewards", [("reward_chosen", "chosen"), ("reward_rejected", "rejected"),
                         ("eval_reward_chosen", "eval chosen"), ("eval_reward_rejected", "eval rejected")], False),
            ("preference accuracy", [("reward_accuracy", "train"), ("eval_reward_accuracy", "eval")], False),
        ]
    device = any(p.HasField("device_memory_allocated_bytes") for p in points)
    if device:  # a GPU run: its memory (GiB) and utilization (%) below the curves
        panels += [
            ("GPU memory (GiB)", [("device_memory_allocated_bytes", "allocated"),
                                  ("device_memory_reserved_bytes", "reserved"),
                                  ("device_memory_peak_bytes", "peak")], False),
            ("GPU utilization (%) and power (W)", [("gpu_utilization_percent", "utilization"),
                                                   ("gpu_power_watts", "power")], False),
        ]
    from matplotlib.ticker import MaxNLocator

    empty = []
    rows = len(panels) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(11, 3.5 * rows), constrained_layout=True)
    for ax, (name, fields, log_scale) in zip(axes.flat, panels):
        drawn = 0
        for field, label in fields:
            xs, ys = _series(points, field)
            if not xs:
                continue
            style = "o-" if field.startswith("eval_") else "-"
            ax.plot(xs, ys, style, label=label, markersize=3, linewidth=1.2)
            drawn += 1
        ax.set_title(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if drawn:
            if log_scale:
                ax.set_yscale("log")
            elif name == "learning rate":
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
            if drawn > 1:
                ax.legend()
        else:
            empty.append(name)
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return empty
