/** The first run's explanations as DOM, shared by Prepare (before a run) and the Monitor's task
 * view (after it): the data report, the resolved settings, the run estimate, "did it learn" and
 * the estimate next to the actual. The values come from first_run.ts. */
import { h } from "../dom";
import { RunEstimate_MemoryKind, type DataReport, type EstimateCheck, type LearningCheck, type ResolvedSetting,
         type RunEstimate } from "../gen/modx/v1/training_pb";
import { histogramBars, isSeconds, memoryVerdict, share, signedPercent, sourceName, verdictName } from "../first_run";
import { bytes, duration, metric } from "../format";
import { t, type Key } from "../i18n";
import { paramText } from "../params";

const kv = (rows: [string, Node | string][], id?: string) =>
  h("table", { class: "kv", id }, rows.map(([k, v]) => h("tr", null, h("th", null, k), h("td", null, v))));

/** One data file: examples by format, tokens, truncation, the length histogram, findings with lines. */
export function dataReportView(report: DataReport): HTMLElement {
  const lengths = report.lengths;
  const formats = Object.entries(report.formatCounts).sort().map(([name, n]) => `${name} ${n}`).join(", ");
  const rows: [string, string][] = [
    [t("data.file"), `${report.field} ${report.path}`],
    [t("data.examples"), `${report.examples} (${formats || report.format})`],
    [t("data.tokens"), `${report.totalTokens} · ${t("data.trained_on")} ${share(report.trainableTokens, report.totalTokens)}`],
    [t("data.kept"), `${report.keptTokens} @ max_seq_length ${report.maxSeqLength} · ${t("data.trained_on")} ${report.keptTrainableTokens}`],
  ];
  if (lengths) rows.push([t("data.per_example"), `min ${lengths.minTokens} · p50 ${lengths.p50Tokens} · p90 ${lengths.p90Tokens} · p99 ${lengths.p99Tokens} · max ${lengths.maxTokens}`]);
  if (report.truncatedTokensLost) {
    rows.push([t("data.truncated"), `${report.truncatedTokensLost} · ${t("data.trained_on")} ${report.truncatedTrainableTokensLost}`]);
  }
  if (report.blocks) rows.push([t("data.blocks"), `${report.blocks} × ${report.maxSeqLength}`]);
  const bars = histogramBars(lengths?.histogram ?? []);
  return h("div", { class: "data-report", "data-field": report.field },
    h("h3", null, `${t("data.title")} · ${report.field}`),
    kv(rows),
    bars.length ? h("table", { class: "histogram", "aria-label": t("data.histogram") },
      h("tr", null, h("th", null, "tokens"), h("th", null, "#"), h("th", null, "")),
      bars.map((b) => h("tr", null, h("td", null, b.label), h("td", null, String(b.count)),
        h("td", { class: "bar-cell" }, h("span", { class: "bar", style: `width:${(b.share * 100).toFixed(1)}%` }))))) : null,
    report.findings.length ? h("table", { class: "grid findings" },
      h("tr", null, h("th", null, t("data.finding")), h("th", null, t("data.examples")), h("th", null, t("data.lines")),
        h("th", null, t("data.first"))),
      report.findings.map((f) => h("tr", { "data-code": f.code },
        h("td", null, h("code", null, f.code)), h("td", null, share(f.count, report.examples)),
        h("td", { class: "lines" }, f.lines.map((l) => String(l.line)).join(", ")),
        h("td", null, f.lines[0]?.detail ?? "")))) : null,
    report.warnings.length ? h("ul", { class: "warnings" },
      report.warnings.map((w) => h("li", { "data-code": w.code }, h("code", null, w.code), " ", w.message))) : null);
}

/** Every resolved parameter with where its value came from: the automatic ones first, highlighted,
 * each with its reason; then the ones you or the template set; the schema's defaults folded. */
export function settingsView(settings: ResolvedSetting[]): HTMLElement {
  const rank = (s: ResolvedSetting) => ["auto", "explicit", "template", "default"].indexOf(sourceName(s.source));
  const sorted = [...settings].sort((a, b) => rank(a) - rank(b) || a.key.localeCompare(b.key));
  const rows = (list: ResolvedSetting[]) => list.map((s) => {
    const source = sourceName(s.source);
    return [h("tr", { class: `source-${source}`, "data-key": s.key, "data-source": source },
        h("td", null, h("code", null, s.key)), h("td", { class: "mono", title: paramText(s.value) }, paramText(s.value)),
        h("td", null, h("span", { class: "badge" }, t(`source.${source}` as Key)))),
      s.reason ? h("tr", { class: `source-${source} reason` }, h("td", { colspan: 3, class: "small" }, s.reason)) : null];
  });
  const defaults = sorted.filter((s) => sourceName(s.source) === "default");
  const chosen = sorted.filter((s) => sourceName(s.source) !== "default");
  const auto = chosen.filter((s) => sourceName(s.source) === "auto").length;
  const head = () => h("tr", null, h("th", null, t("settings.key")), h("th", null, t("settings.value")),
                       h("th", null, t("settings.source")));
  return h("div", { class: "settings", id: "settings" },
    h("h3", null, `${t("settings.title")} · ${auto} ${t("settings.auto_count")}`),
    chosen.length ? h("table", { class: "grid" }, head(), rows(chosen)) : null,
    defaults.length ? h("details", null, h("summary", { class: "small" }, `${t("source.default")} (${defaults.length})`),
      h("table", { class: "grid" }, head(), rows(defaults))) : null);
}

/** Steps, tokens, time (or "not calibrated" with the Calibrate button) and peak memory. */
export function runEstimateView(run: RunEstimate, onCalibrate?: () => void): HTMLElement {
  const verdict = memoryVerdict(run);
  const memory = run.memoryKind === RunEstimate_MemoryKind.HOST_RSS ? "RSS" : t("run.device_memory");
  const time = run.totalSeconds !== undefined
    ? `≈ ${duration(run.totalSeconds)} (${t("run.training")} ${duration(run.trainingSeconds)}, ${t("run.startup")} ${
        duration(run.startupSeconds)}${run.evalSeconds ? `, ${t("run.eval")} ${duration(run.evalSeconds)}` : ""})`
    : t("run.not_calibrated");
  return h("div", { class: "run-estimate", id: "run-estimate" },
    h("h3", null, t("run.title")),
    kv([
      [t("data.examples"), `${run.examples}${run.droppedExamples ? ` · ${t("run.dropped")} ${run.droppedExamples}` : ""}${
        run.evalExamples ? ` · ${t("run.evaluated")} ${run.evalExamples}` : ""}`],
      [t("run.steps"), `${run.totalSteps} (${run.stepsPerEpoch} × ${run.epochs} ${t("run.epochs")})`],
      [t("data.tokens"), `${run.totalTokens} (${run.tokensPerEpoch} / ${t("run.epoch")}, ${t("data.trained_on")} ${run.trainableTokensPerEpoch})`],
      [t("time"), h("span", { id: "run-time" }, time, " ",
        onCalibrate && !run.calibrated ? h("button", { id: "calibrate", class: "small", onclick: onCalibrate }, t("run.calibrate")) : null)],
      [`${t("run.peak")} ${memory}`, h("span", { id: "run-memory", class: verdict === "no" ? "error-text" : verdict === "tight" ? "warn-text" : "ok-text",
        "data-verdict": verdict },
        `≈ ${bytes(run.peakMemoryBytes)} / ${bytes(run.memoryCapacityBytes)}${
          run.memoryAvailableBytes ? ` (${bytes(run.memoryAvailableBytes)} ${t("run.free")})` : ""}: ${t(`run.mem_${verdict}` as Key)}`)],
    ]),
    run.explanation.length ? h("ul", { class: "muted small explanation" }, run.explanation.map((line) => h("li", null, line))) : null);
}

/** After a run: the verdict, the losses, the sentence and what to change. */
export function learningView(learning: LearningCheck): HTMLElement {
  const verdict = verdictName(learning.verdict);
  const good = verdict === "learned";
  return h("div", { class: "learning", id: "learning", "data-verdict": verdict },
    h("p", { class: good ? "ok-text verdict" : "warn-text verdict" }, `${t("learn.title")} ${t(`learn.${verdict}` as Key)}`),
    kv([[t("learn.base_loss"), metric(learning.baseLoss)], [t("learn.final_loss"), metric(learning.finalLoss)],
        [t("learn.change"), signedPercent(-learning.relativeImprovement)], [t("learn.data"), `${learning.data} (${learning.examples})`]]),
    h("p", { id: "learning-sentence" }, learning.sentence),
    learning.advice.length ? h("ul", { class: "advice" }, learning.advice.map((a) => h("li", null, a))) : null);
}

/** The estimate made before the run next to what the run measured. */
export function estimateChecksView(checks: EstimateCheck[]): HTMLElement {
  const show = (quantity: string, x: number) => (isSeconds(quantity) ? duration(x) : bytes(Math.round(x)));
  return h("table", { class: "grid", id: "estimate-checks" },
    h("tr", null, h("th", null, t("check.quantity")), h("th", null, t("check.estimated")), h("th", null, t("check.actual")),
      h("th", null, t("check.error")), h("th", null, t("check.within"))),
    checks.map((c) => h("tr", { "data-quantity": c.quantity, title: c.sentence },
      h("td", null, c.quantity.replace(/_/g, " ")), h("td", null, show(c.quantity, c.estimated)),
      h("td", null, show(c.quantity, c.actual)), h("td", null, signedPercent(c.relativeError)),
      h("td", { class: c.withinTarget ? "ok-text" : "warn-text" },
        `${c.withinTarget ? "✓" : "✗"} (±${Math.round(c.target * 100)}%)`))));
}
