/** One task in the Monitor: header and actions, progress and ETA, the four curves, the live log,
 * checkpoints and warnings, all fed by one WatchTask stream; after the run, whether it learned and
 * the estimate next to the actual, and (folded) what Prepare showed before it. The stream resumes after the last seq
 * it saw (after a dropped connection, and after a reload through the sessionStorage cache), so
 * nothing is missed and nothing is counted twice. */
import { errorText, isCanceled, training } from "../api";
import { MetricChart } from "../chart";
import { csvText } from "../csv";
import { download, h, replace } from "../dom";
import { TaskState } from "../gen/modx/v1/common_pb";
import type { Checkpoint, Task, TaskEvent } from "../gen/modx/v1/training_pb";
import { bytes, clock, dateTime, duration, metric, percent, tsMillis } from "../format";
import { t } from "../i18n";
import { paramText } from "../params";
import { routeHash, go } from "../router";
import { dropCache, loadCache, MAX_LOG_LINES, saveCache, TaskSeries, type Column } from "../series";
import { notify, progressBar, section, stateBadge, stateName, TERMINAL, typeName } from "../ui";
import { stats } from "../stats";
import { dataReportView, estimateChecksView, learningView, runEstimateView, settingsView } from "./first_run_view";

const ACTIVE = new Set([TaskState.PENDING, TaskState.RUNNING, TaskState.STOPPING]);

export class TaskView {
  readonly root = h("div", { class: "task-view" });
  private series: TaskSeries;
  private task: Task | null = null;
  private abort = new AbortController();
  private alive = true;
  private drawn = -1;
  private lastLogSeq = 0;
  private charts: { chart: MetricChart; cols: Column[] }[];
  private header = h("div", { class: "task-header" });
  private progress = h("div", { class: "task-progress", id: "progress" });
  private outcome = h("div", { class: "task-outcome", id: "outcome" });
  private logBox = h("pre", { class: "log", id: "log", tabindex: "0" });
  private ckptBox = h("div", { id: "checkpoints" });
  private warnBox = h("ul", { class: "warnings", id: "task-warnings" });
  private streamState = h("span", { class: "stream-state muted small", id: "stream-state" });
  private eta: number | null = null;
  private epoch: number | null = null;
  private ckptTimer = 0;
  private frame = 0;

  /** The task as last read or streamed (undefined before the first read). */
  current(): Task | undefined {
    return this.task ?? undefined;
  }

  /** `onProgress`: the streamed step, for the task list (it polls, so it lags behind the stream). */
  constructor(readonly taskId: string, private onStateChange: () => void,
              private onProgress: (step: bigint, total: bigint, percent: number) => void = () => {}) {
    this.series = loadCache(sessionStorage, taskId) ?? new TaskSeries(taskId);
    this.lastDrawnPoints = this.series.length;
    const drawn = () => this.chartDrawn();
    this.charts = [
      { chart: new MetricChart("loss", [{ label: "loss", color: "#2563eb" }, { label: "eval loss", color: "#dc2626", dash: [6, 4] }], drawn),
        cols: ["loss", "eval_loss"] },
      { chart: new MetricChart("perplexity", [{ label: "perplexity", color: "#7c3aed" }, { label: "eval ppl", color: "#db2777", dash: [6, 4] }], drawn),
        cols: ["perplexity", "eval_perplexity"] },
      { chart: new MetricChart("learning rate", [{ label: "lr", color: "#059669" }], drawn), cols: ["learning_rate"] },
      { chart: new MetricChart("grad norm", [{ label: "grad norm", color: "#d97706" }], drawn), cols: ["grad_norm"] },
    ];
    replace(this.root,
      this.header, this.progress, this.outcome,
      h("div", { class: "charts" }, this.charts.map((c) => c.chart.root)),
      h("div", { class: "two-col" },
        section(t("logs"), h("div", { class: "row between" }, this.streamState,
          h("button", { class: "link", onclick: () => this.exportLogs() }, t("download_logs"))), this.logBox),
        h("div", null,
          section(t("checkpoints"), this.ckptBox),
          section(t("warnings"), this.warnBox))));
    stats.monitor = { taskId, lastSeq: this.series.lastSeq, points: this.series.length, draws: [], redrawMs: [],
                      resumedFrom: this.series.lastSeq, addPoints: (points) => points.forEach((p) => this.series.addPoint(p)) };
    this.loadTask();
    this.loadCheckpoints();
    this.follow();
    this.loop();
    // Saved when the page goes away (reload, navigation, tab hidden), not on a timer: serializing
    // a long history takes tens of ms on the main thread, which a periodic save would turn into
    // dropped frames. A crash loses only the cache; the next view replays from seq 0.
    window.addEventListener("pagehide", this.persist);
    document.addEventListener("visibilitychange", this.persistIfHidden);
  }

  private persist = (): void => {
    saveCache(sessionStorage, this.series);
  };

  private persistIfHidden = (): void => {
    if (document.visibilityState === "hidden") this.persist();
  };

  destroy(): void {
    this.alive = false;
    this.abort.abort();
    cancelAnimationFrame(this.frame);
    clearTimeout(this.ckptTimer);
    window.removeEventListener("pagehide", this.persist);
    document.removeEventListener("visibilitychange", this.persistIfHidden);
    if (this.task) this.persist();
    this.charts.forEach((c) => c.chart.destroy());
  }

  private async loadTask(): Promise<void> {
    try {
      this.task = (await training.getTask({ taskId: this.taskId })).task ?? null;
      this.renderHeader();
      this.renderProgress();
      this.renderOutcome();
      this.drawn = -1;  // redraw once with the task known (the page counts as ready from then)
    } catch (err) {
      replace(this.header, h("p", { class: "error-text" }, errorText(err)));
    }
  }

  private async loadCheckpoints(): Promise<void> {
    try {
      const resp = await training.listCheckpoints({ taskId: this.taskId, includeDeleted: true });
      this.renderCheckpoints(resp.checkpoints);
    } catch (err) {
      if (this.alive) replace(this.ckptBox, h("p", { class: "error-text" }, errorText(err)));
    }
  }

  /** Follow the task's events for as long as the view is open (follow_forever: a finished task
   * may be resumed from another client); reconnect after the last seen seq when the stream drops. */
  private async follow(): Promise<void> {
    let backoff = 250;
    while (this.alive) {
      try {
        this.streamState.textContent = t("stream.connecting");
        const stream = training.watchTask({ taskId: this.taskId, afterSeq: BigInt(this.series.lastSeq), followForever: true },
                                          { signal: this.abort.signal });
        this.streamState.textContent = t("stream.live");
        for await (const resp of stream) {
          if (resp.event) this.handle(resp.event);
          backoff = 250;
        }
      } catch (err) {
        if (isCanceled(err) || !this.alive) return;
        this.streamState.textContent = `${t("stream.retry")} ${errorText(err)}`;
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  private handle(event: TaskEvent): void {
    if (!this.series.accept(Number(event.seq))) return;
    const p = event.payload;
    const time = tsMillis(event.time) ?? Date.now();
    switch (p.case) {
      case "metrics": {
        const m = p.value;
        this.series.addPoint({ step: Number(m.step), loss: m.loss, perplexity: m.perplexity, learning_rate: m.learningRate,
                               grad_norm: m.gradNorm, eval_loss: m.evalLoss, eval_perplexity: m.evalPerplexity,
                               tokens_per_second: m.tokensPerSecond, time: tsMillis(m.time) ?? time });
        if (this.task) {
          this.task.currentStep = m.step;
          if (m.totalSteps > 0n) this.task.totalSteps = m.totalSteps;
          this.task.percent = m.percent;
        }
        this.eta = m.etaSeconds ?? null;
        this.epoch = m.epoch;
        break;
      }
      case "log":
        this.series.addLog({ seq: Number(event.seq), time, level: p.value.level, message: p.value.message });
        break;
      case "warning":
        this.series.addLog({ seq: Number(event.seq), time, level: "warning", message: `${p.value.code}: ${p.value.message}` });
        this.warnBox.appendChild(h("li", { "data-code": p.value.code }, h("code", null, p.value.code), " ", p.value.message));
        break;
      case "stateChange":
        if (this.task) this.task.state = p.value.toState;
        this.series.addLog({ seq: Number(event.seq), time, level: "state",
                             message: `${stateName(p.value.fromState)} → ${stateName(p.value.toState)}${p.value.reason ? " (" + p.value.reason + ")" : ""}` });
        this.loadTask();
        this.onStateChange();
        break;
      case "checkpointSaved":
      case "checkpointDeleted":
        clearTimeout(this.ckptTimer);
        this.ckptTimer = window.setTimeout(() => this.loadCheckpoints(), 200);
        break;
    }
  }

  /** One redraw per animation frame at most, and only when the series changed. */
  private loop = (): void => {
    if (!this.alive) return;
    if (this.series.version !== this.drawn) {
      this.drawn = this.series.version;
      const x = this.series.cols.step;
      this.redrawStart = performance.now();
      this.chartsPending = this.charts.length;
      for (const { chart, cols } of this.charts) chart.setData(x, cols.map((c) => this.series.cols[c]));
      this.renderLogs();
      this.renderProgress();
      stats.monitor.lastSeq = this.series.lastSeq;
      stats.monitor.points = this.series.length;
    }
    this.frame = requestAnimationFrame(this.loop);
  };

  /** Every chart's draw hook: when all four have drawn the new data, record how long the redraw
   * took (setData to pixels) and, for each new point, how long after the worker logged it. */
  private redrawStart = 0;
  private chartsPending = 0;
  private chartDrawn(): void {
    if (this.chartsPending <= 0 || --this.chartsPending > 0) return;
    const ms = stats.monitor.redrawMs;
    const now = performance.now();
    ms.push(now - this.redrawStart);
    if (this.task && this.series.length > 0) stats.ready.monitor ??= now;
    if (ms.length > 5000) ms.splice(0, ms.length - 5000);
    this.recordLatency();
  }

  private lastDrawnPoints = 0;
  private readonly openedAt = Date.now();
  private recordLatency(): void {
    const n = this.series.length;
    if (n <= this.lastDrawnPoints) {
      this.lastDrawnPoints = n;
      return;
    }
    const now = Date.now();
    const times = this.series.cols.time;
    const steps = this.series.cols.step;
    for (let i = Math.max(this.lastDrawnPoints, n - 50); i < n; i++) {
      const tm = times[i];
      // Only points logged while the view is open: replayed history says nothing about latency.
      if (tm !== null && tm >= this.openedAt) stats.monitor.draws.push({ step: steps[i] as number, latencyMs: now - tm });
    }
    if (stats.monitor.draws.length > 5000) stats.monitor.draws.splice(0, stats.monitor.draws.length - 5000);
    this.lastDrawnPoints = n;
  }

  /** Append the log lines not shown yet (by seq), then keep the box as long as the series' buffer. */
  private renderLogs(): void {
    const logs = this.series.logs;
    const atBottom = this.logBox.scrollTop + this.logBox.clientHeight >= this.logBox.scrollHeight - 8;
    let first = logs.length;
    while (first > 0 && logs[first - 1].seq > this.lastLogSeq) first--;
    for (const line of logs.slice(first)) {
      this.logBox.appendChild(h("div", { class: `log-${line.level}` },
                                `${clock(line.time)} ${line.level.padEnd(7)} ${line.message}`));
      this.lastLogSeq = line.seq;
    }
    while (this.logBox.childNodes.length > MAX_LOG_LINES) this.logBox.removeChild(this.logBox.firstChild!);
    if (atBottom) this.logBox.scrollTop = this.logBox.scrollHeight;
  }

  private renderHeader(): void {
    const task = this.task;
    if (!task) return;
    const s = task.state;
    const ckptSelect = h("select", { id: "resume-checkpoint", "aria-label": t("checkpoint") }, h("option", { value: "" }, t("resume.last")));
    training.listCheckpoints({ taskId: task.id }).then((r) => r.checkpoints.forEach((c) =>
      ckptSelect.appendChild(h("option", { value: c.id }, `step ${c.step}`))), () => {});
    const deleteFiles = h("input", { type: "checkbox", id: "delete-files" });
    replace(this.header,
      h("div", { class: "row between wrap" },
        h("div", null,
          h("h2", { id: "task-title" }, task.name || task.id, " ", stateBadge(s)),
          h("div", { class: "muted small" }, `${task.id} · ${typeName(task.type)} · ${task.device || "–"} · ${t("created_at")} ${dateTime(task.createTime)}`),
          task.stateReason ? h("div", { class: "small", id: "state-reason" }, `${t("reason")}: ${task.stateReason}`) : null),
        h("div", { class: "actions row wrap" },
          s === TaskState.CREATED ? h("button", { id: "start", class: "primary", onclick: () => this.act("start") }, t("start")) : null,
          s === TaskState.PENDING || s === TaskState.RUNNING ? h("button", { id: "stop", onclick: () => this.act("stop") }, t("stop")) : null,
          s === TaskState.STOPPED || s === TaskState.FAILED ? [ckptSelect,
            h("button", { id: "resume", class: "primary", onclick: () => this.act("resume", ckptSelect.value) }, t("resume"))] : null,
          !ACTIVE.has(s) ? h("span", { class: "row" },
            h("label", { class: "small" }, deleteFiles, " ", t("delete_files")),
            h("button", { id: "delete", class: "danger", onclick: () => this.remove(deleteFiles.checked) }, t("delete"))) : null,
          h("a", { href: routeHash("evaluate", task.id), class: "button" }, t("page.evaluate")),
          h("a", { href: routeHash("test", task.id), class: "button" }, t("page.test")),
          h("a", { href: routeHash("package", task.id), class: "button" }, t("page.package")),
          h("button", { class: "link", onclick: () => this.exportMetrics() }, t("download_metrics")))),
      task.error || task.failureLogTail.length ? h("pre", { class: "failure", id: "failure" },
        [task.error, ...task.failureLogTail].filter(Boolean).join("\n")) : null,
      h("details", { class: "params" }, h("summary", null, t("parameters")),
        h("table", { class: "kv" }, Object.keys(task.params).sort().map((k) =>
          h("tr", null, h("th", null, k), h("td", null, paramText(task.params[k])))))));
  }

  /** Did it learn and how the estimate compared (once the run has them); what the task was
   * created with (data report, settings, run estimate) folded below. */
  private renderOutcome(): void {
    const task = this.task;
    if (!task) return;
    const run = task.quotaEstimate?.run;
    const before = [run && run.totalSteps ? runEstimateView(run) : null, task.settings.length ? settingsView(task.settings) : null,
      [task.trainData, task.evalData].map((d) => (d && d.field ? dataReportView(d) : null))];
    const hasBefore = before.flat().some(Boolean);
    replace(this.outcome,
      task.learning || task.estimateChecks.length ? section(t("outcome"),
        task.learning ? learningView(task.learning) : null,
        task.estimateChecks.length ? h("div", null, h("h3", null, t("check.title")), estimateChecksView(task.estimateChecks)) : null) : null,
      hasBefore ? h("details", { class: "before-run", id: "before-run" }, h("summary", null, t("before_run")),
        h("div", { class: "report" }, before)) : null);
  }

  private renderProgress(): void {
    const task = this.task;
    if (!task) return;
    const total = Number(task.totalSteps);
    const step = Number(task.currentStep);
    const loss = this.series.last("loss") ?? task.lastLoss;
    const tps = this.series.last("tokens_per_second");
    this.onProgress(task.currentStep, task.totalSteps, task.percent);
    replace(this.progress,
      progressBar(task.percent, `${step} / ${total || "?"} · ${percent(task.percent)}`),
      h("dl", { class: "stats" },
        h("div", null, h("dt", null, t("step")), h("dd", { id: "step" }, `${step} / ${total || "?"}`)),
        h("div", null, h("dt", null, t("eta")), h("dd", { id: "eta" }, TERMINAL.has(task.state) ? "–" : duration(this.eta))),
        h("div", null, h("dt", null, t("epoch")), h("dd", null, metric(this.epoch, 3))),
        h("div", null, h("dt", null, "loss"), h("dd", { id: "loss" }, metric(loss))),
        h("div", null, h("dt", null, "tokens/s"), h("dd", null, metric(tps, 3))),
        h("div", null, h("dt", null, t("points")), h("dd", { id: "points" }, String(this.series.length))),
        h("div", null, h("dt", null, t("checkpoints")), h("dd", null, String(task.checkpointsSaved)))));
  }

  private renderCheckpoints(list: Checkpoint[]): void {
    if (!list.length) {
      replace(this.ckptBox, h("p", { class: "muted" }, t("no_checkpoints")));
      return;
    }
    replace(this.ckptBox, h("table", { class: "grid" },
      h("thead", null, h("tr", null, [t("step"), t("epoch"), "loss", t("size"), t("time"), ""].map((c) => h("th", null, c)))),
      h("tbody", null, list.map((c) => h("tr", { class: c.deleted ? "deleted" : "", "data-checkpoint": c.id },
        h("td", null, String(c.step)), h("td", null, metric(c.epoch, 3)), h("td", null, metric(c.loss)),
        h("td", null, c.deleted ? t("deleted") : bytes(c.sizeBytes)), h("td", null, dateTime(c.createTime)),
        h("td", { class: "mono small", title: c.path }, c.id))))));
  }

  private async act(action: "start" | "stop" | "resume", checkpoint = ""): Promise<void> {
    try {
      if (action === "start") await training.startTask({ taskId: this.taskId });
      if (action === "stop") await training.stopTask({ taskId: this.taskId });
      if (action === "resume") {
        const r = await training.resumeTask({ taskId: this.taskId, checkpoint });
        r.warnings.forEach((w) => notify(w.message, "info"));
      }
      await this.loadTask();
      this.onStateChange();
    } catch (err) {
      notify(errorText(err));
    }
  }

  private async remove(deleteFiles: boolean): Promise<void> {
    const what = deleteFiles ? t("delete_confirm_files") : t("delete_confirm");
    if (!confirm(what.replace("{id}", this.taskId))) return;
    try {
      await training.deleteTask({ taskId: this.taskId, deleteFiles });
      dropCache(sessionStorage, this.taskId);
      this.task = null;
      notify(`${t("deleted")} ${this.taskId}`, "info");
      go("monitor");
    } catch (err) {
      notify(errorText(err));
    }
  }

  /** Every stored point (ListMetrics, paged) as CSV. */
  private async exportMetrics(): Promise<void> {
    try {
      const rows: (number | undefined)[][] = [];
      let pageToken = "";
      do {
        const r = await training.listMetrics({ taskId: this.taskId, page: { pageSize: 5000, pageToken } });
        for (const m of r.points) {
          rows.push([Number(m.step), Number(m.totalSteps), m.epoch, m.loss, m.perplexity, m.learningRate, m.gradNorm,
                     m.evalLoss, m.evalPerplexity, m.tokensPerSecond, tsMillis(m.time) ?? undefined]);
        }
        pageToken = r.nextPageToken;
      } while (pageToken);
      download(`${this.taskId}-metrics.csv`, csvText(["step", "total_steps", "epoch", "loss", "perplexity", "learning_rate",
        "grad_norm", "eval_loss", "eval_perplexity", "tokens_per_second", "time_ms"], rows), "text/csv");
    } catch (err) {
      notify(errorText(err));
    }
  }

  private exportLogs(): void {
    download(`${this.taskId}-log.txt`, this.series.logs.map((l) => `${new Date(l.time).toISOString()} ${l.level} ${l.message}`).join("\n") + "\n");
  }
}
