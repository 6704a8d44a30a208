/** Numbers, sizes, durations and times as people read them. */
import type { Timestamp } from "@bufbuild/protobuf/wkt";

export function bytes(n: number | bigint): string {
  let x = Number(n);
  const units = ["B", "KB", "MB", "GB", "TB"];
  let u = 0;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return `${u === 0 ? x : x.toFixed(x < 10 ? 2 : 1)} ${units[u]}`;
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}` : `${m}:${String(sec).padStart(2, "0")}`;
}

export function tsMillis(ts: Timestamp | undefined): number | null {
  if (!ts) return null;
  return Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6);
}

export function dateTime(ts: Timestamp | undefined): string {
  const ms = tsMillis(ts);
  if (ms === null || ms === 0) return "–";
  const d = new Date(ms);
  const pad = (x: number) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function clock(ms: number): string {
  const d = new Date(ms);
  const pad = (x: number, n = 2) => String(x).padStart(n, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A metric with 4 significant digits; "–" when absent. */
export function metric(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  if (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e6)) return x.toExponential(2);
  return Number(x.toPrecision(digits)).toString();
}

/** A parameter count given in billions, as modxctl writes it: "1.24B", "135M", "98.3K". */
export function paramCount(billion: number): string {
  if (billion >= 1) return `${billion.toFixed(2)}B`;
  if (billion >= 1e-3) return `${(billion * 1e3).toFixed(0)}M`;
  return `${(billion * 1e6).toFixed(1)}K`;
}

export function percent(x: number): string {
  return `${x.toFixed(x >= 10 ? 1 : 2)}%`;
}

/** "TASK_STATE_RUNNING"-style enum member name, lower case, without its prefix. */
export function enumName(e: Record<number, string>, value: number): string {
  return (e[value] ?? String(value)).toLowerCase();
}
