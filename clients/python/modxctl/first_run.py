"""What a first run explains, as tables: the data report, the run estimate, the resolved settings,
and after the run whether it learned and how the estimate compared (train create/estimate/show)."""
from __future__ import annotations

from modx.v1 import training_pb2

from .output import echo, fmt_bytes, fmt_duration, fmt_param, kv, table

SOURCE_LABELS = {
    training_pb2.ResolvedSetting.SOURCE_DEFAULT: "default",
    training_pb2.ResolvedSetting.SOURCE_TEMPLATE: "template",
    training_pb2.ResolvedSetting.SOURCE_EXPLICIT: "--set",
    training_pb2.ResolvedSetting.SOURCE_AUTO: "auto",
}
VERDICT_LABELS = {
    training_pb2.LearningCheck.VERDICT_LEARNED: "learned",
    training_pb2.LearningCheck.VERDICT_LEARNED_LITTLE: "learned little",
    training_pb2.LearningCheck.VERDICT_DID_NOT_LEARN: "did NOT learn",
    training_pb2.LearningCheck.VERDICT_GOT_WORSE: "got WORSE",
}


def _share(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.0f}%)" if whole else str(part)


def print_data_report(report: training_pb2.DataReport) -> None:
    """The file's examples and tokens, its length distribution and its findings with line numbers."""
    lengths = report.lengths
    formats = ", ".join(f"{name} {count}" for name, count in sorted(report.format_counts.items()))
    pairs = [
        ("file", f"{report.field} {report.path}"),
        ("examples", f"{report.examples} ({formats or report.format})"),
        ("tokens", f"{report.total_tokens} in all, {report.trainable_tokens} trained on"),
        ("after truncation", f"{report.kept_tokens} kept at max_seq_length {report.max_seq_length}, "
                             f"{report.kept_trainable_tokens} trained on"),
        ("tokens per example", f"min {lengths.min_tokens}, median {lengths.p50_tokens}, p90 {lengths.p90_tokens}, "
                               f"p99 {lengths.p99_tokens}, max {lengths.max_tokens}"),
    ]
    if report.truncated_tokens_lost:
        pairs.append(("cut by max_seq_length", f"{report.truncated_tokens_lost} tokens, "
                                               f"{report.truncated_trainable_tokens_lost} of them trained on"))
    if report.blocks:
        pairs.append(("blocks", f"{report.blocks} of {report.max_seq_length} tokens"))
    echo(f"data report ({report.field}):")
    echo(kv(pairs))
    if lengths.histogram and lengths.count:
        peak = max(b.count for b in lengths.histogram) or 1
        rows = [(f"{b.low_tokens}-{b.high_tokens - 1}" if b.high_tokens else f">= {b.low_tokens}", b.count,
                 "#" * max(round(30 * b.count / peak), 1 if b.count else 0)) for b in lengths.histogram]
        echo(table(["TOKENS", "EXAMPLES", ""], rows, align="rrl"))
    if report.findings:
        rows = [(f.code, _share(f.count, report.examples), ", ".join(str(line.line) for line in f.lines),
                 f.lines[0].detail if f.lines else "") for f in report.findings]
        echo(table(["FINDING", "EXAMPLES", "WORST LINES", "FIRST OF THEM"], rows, align="lrll"))


def print_run_estimate(run: training_pb2.RunEstimate) -> None:
    """Steps, tokens, time on this host and peak memory before the run."""
    memory = "RSS" if run.memory_kind == training_pb2.RunEstimate.MEMORY_KIND_HOST_RSS else "GPU memory"
    verdict = ("fits" if run.memory_fits and not run.memory_tight else "TIGHT" if run.memory_fits
               else "DOES NOT FIT")
    pairs = [
        ("examples", f"{run.examples} trained on" + (f", {run.dropped_examples} dropped" if run.dropped_examples
                                                     else "") + (f", {run.eval_examples} evaluated"
                                                                 if run.eval_examples else "")),
        ("steps", f"{run.total_steps} ({run.steps_per_epoch} per epoch x {run.epochs} epochs)"),
        ("tokens", f"{run.total_tokens} ({run.tokens_per_epoch} per epoch, {run.trainable_tokens_per_epoch} "
                   "trained on)"),
        ("time", (f"about {fmt_duration(run.total_seconds)} (training {fmt_duration(run.training_seconds)}, "
                  f"start-up {fmt_duration(run.startup_seconds)}"
                  + (f", evaluation {fmt_duration(run.eval_seconds)}" if run.eval_seconds else "") + ")")
         if run.HasField("training_seconds") else "not calibrated yet (modxctl train estimate --calibrate)"),
        (f"peak {memory}", f"about {fmt_bytes(run.peak_memory_bytes)} of {fmt_bytes(run.memory_capacity_bytes)}"
                           + (f" ({fmt_bytes(run.memory_available_bytes)} free now)"
                              if run.memory_available_bytes else "") + f": {verdict}"),
    ]
    echo("estimate:")
    echo(kv(pairs))


def print_settings(settings: list[training_pb2.ResolvedSetting], everything: bool = False) -> None:
    """The parameters a rule or the user chose (all of them with ``everything``), with their source."""
    shown = [s for s in settings if everything or s.source in (training_pb2.ResolvedSetting.SOURCE_AUTO,
                                                               training_pb2.ResolvedSetting.SOURCE_EXPLICIT,
                                                               training_pb2.ResolvedSetting.SOURCE_TEMPLATE)]
    if not shown:
        return
    echo("settings:")
    echo(table(["PARAMETER", "VALUE", "FROM", "WHY"],
               [(s.key, fmt_param(s.value), SOURCE_LABELS.get(s.source, "?"), s.reason or "") for s in shown]))


def print_outcome(task: training_pb2.Task) -> None:
    """After a run: did it learn, and the estimate next to the actual."""
    if task.HasField("learning"):
        learning = task.learning
        echo(f"did it learn: {VERDICT_LABELS.get(learning.verdict, '?')}")
        echo(f"  {learning.sentence}")
    if task.estimate_checks:
        rows = []
        for check in task.estimate_checks:
            show = fmt_duration if check.quantity == "training_seconds" else fmt_bytes
            rows.append((check.quantity.replace("_", " "), show(check.estimated), show(check.actual),
                         f"{check.relative_error:+.0%}", "yes" if check.within_target else "NO"))
        echo(table(["ESTIMATE", "ESTIMATED", "ACTUAL", "ERROR", "WITHIN TARGET"], rows, align="lrrrl"))


def print_first_run(train_data: training_pb2.DataReport | None, eval_data: training_pb2.DataReport | None,
                    run: training_pb2.RunEstimate | None, settings: list[training_pb2.ResolvedSetting]) -> None:
    """What create, validate-only and estimate print before the warnings."""
    for report in (train_data, eval_data):
        if report is not None and report.field:
            print_data_report(report)
            echo()
    if run is not None and run.total_steps:
        print_run_estimate(run)
        echo()
    print_settings(settings)
