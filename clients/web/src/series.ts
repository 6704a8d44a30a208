/** What the Monitor knows about one task, built from its WatchTask events: columnar metric series
 * for the charts, the last log lines, and the last event seq. The seq (with the series) is kept in
 * sessionStorage so a reload shows the curves at once and resumes the stream with `after_seq`
 * exactly where it stopped: no gap, no duplicate. Pure logic, unit-tested without a browser. */

export const COLUMNS = ["step", "loss", "perplexity", "learning_rate", "grad_norm", "eval_loss",
                        "eval_perplexity", "tokens_per_second", "time"] as const;
export type Column = (typeof COLUMNS)[number];
export type Point = Partial<Record<Column, number | null>> & { step: number };

export const MAX_LOG_LINES = 2000;
const CACHE_PREFIX = "modx.watch.";
const CACHE_VERSION = 2;

export interface LogEntry { seq: number; time: number; level: string; message: string }

export class TaskSeries {
  readonly cols: Record<Column, (number | null)[]>;
  logs: LogEntry[] = [];
  lastSeq = 0;
  /** Bumped on every change that needs a redraw (cheap dirty check for the render loop). */
  version = 0;

  constructor(readonly taskId: string) {
    this.cols = Object.fromEntries(COLUMNS.map((c) => [c, []])) as unknown as Record<Column, (number | null)[]>;
  }

  get length(): number {
    return this.cols.step.length;
  }

  /** Accept an event seq; false when it was seen already (a replay overlapping the cache). */
  accept(seq: number): boolean {
    if (seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    return true;
  }

  /** Add a metrics point. A point at the last step merges into it (an eval point joins the train
   * point of its step); a point at an earlier step means the task was resumed from a checkpoint,
   * so the curve drops the steps the resumed run replaces. */
  addPoint(p: Point): void {
    const steps = this.cols.step;
    const n = steps.length;
    if (n > 0 && p.step === steps[n - 1]) {
      for (const c of COLUMNS) {
        const v = p[c];
        if (v !== undefined && v !== null) this.cols[c][n - 1] = v;
      }
      this.version++;
      return;
    }
    if (n > 0 && p.step < (steps[n - 1] as number)) {
      let keep = n;
      while (keep > 0 && (steps[keep - 1] as number) >= p.step) keep--;
      for (const c of COLUMNS) this.cols[c].length = keep;
    }
    for (const c of COLUMNS) this.cols[c].push(p[c] ?? null);
    this.version++;
  }

  addLog(entry: LogEntry): void {
    this.logs.push(entry);
    if (this.logs.length > MAX_LOG_LINES) this.logs.splice(0, this.logs.length - MAX_LOG_LINES);
    this.version++;
  }

  last(c: Column): number | null {
    const col = this.cols[c];
    for (let i = col.length - 1; i >= 0; i--) if (col[i] !== null) return col[i];
    return null;
  }

  toJSON(): string {
    return JSON.stringify({ v: CACHE_VERSION, taskId: this.taskId, lastSeq: this.lastSeq, cols: this.cols,
                            logs: this.logs.slice(-300) });
  }

  static fromJSON(taskId: string, text: string | null): TaskSeries | null {
    if (!text) return null;
    try {
      const data = JSON.parse(text);
      if (data.v !== CACHE_VERSION || data.taskId !== taskId || typeof data.lastSeq !== "number") return null;
      const s = new TaskSeries(taskId);
      const n = data.cols.step.length;
      for (const c of COLUMNS) {
        if (!Array.isArray(data.cols[c]) || data.cols[c].length !== n) return null;
        s.cols[c].push(...data.cols[c]);
      }
      s.logs = data.logs;
      s.lastSeq = data.lastSeq;
      return s;
    } catch {
      return null;
    }
  }
}

/** sessionStorage for one task at a time: the one being watched (other tasks' entries go, to stay
 * inside the storage quota). A full store just means the next reload replays from seq 0. */
export function saveCache(store: Storage, series: TaskSeries): boolean {
  try {
    for (let i = store.length - 1; i >= 0; i--) {
      const key = store.key(i);
      if (key?.startsWith(CACHE_PREFIX) && key !== CACHE_PREFIX + series.taskId) store.removeItem(key);
    }
    store.setItem(CACHE_PREFIX + series.taskId, series.toJSON());
    return true;
  } catch {
    store.removeItem(CACHE_PREFIX + series.taskId);
    return false;
  }
}

export function loadCache(store: Storage, taskId: string): TaskSeries | null {
  return TaskSeries.fromJSON(taskId, store.getItem(CACHE_PREFIX + taskId));
}

export function dropCache(store: Storage, taskId: string): void {
  store.removeItem(CACHE_PREFIX + taskId);
}
