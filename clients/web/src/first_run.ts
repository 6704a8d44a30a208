/** What a first run explains, as plain values the pages render: the token-length histogram's bars,
 * a setting's source, the memory verdict, the learning verdict and an estimate's error. Pure (no
 * DOM), so `npm test` checks them; the same wording as modxctl's first_run.py. */
import { LearningCheck_Verdict, ResolvedSetting_Source, type HistogramBin, type RunEstimate } from "./gen/modx/v1/training_pb";

export type SourceName = "default" | "template" | "explicit" | "auto" | "unknown";
export type MemoryVerdict = "fits" | "tight" | "no";
export type VerdictName = "learned" | "learned_little" | "did_not_learn" | "got_worse" | "unknown";

export interface Bar {
  label: string;
  count: number;
  /** The bar's length, 0..1 of the tallest bin; a bin with examples is never drawn empty. */
  share: number;
}

/** "10-19" for [10, 20); ">= 512" for the open last bin (high_tokens 0). */
export function binLabel(bin: Pick<HistogramBin, "lowTokens" | "highTokens">): string {
  const low = Number(bin.lowTokens);
  const high = Number(bin.highTokens);
  return high ? `${low}-${high - 1}` : `>= ${low}`;
}

export function histogramBars(bins: Pick<HistogramBin, "lowTokens" | "highTokens" | "count">[]): Bar[] {
  const peak = Math.max(0, ...bins.map((b) => Number(b.count)));
  return bins.map((b) => {
    const count = Number(b.count);
    return { label: binLabel(b), count, share: peak ? Math.max(count / peak, count ? 0.02 : 0) : 0 };
  });
}

export function sourceName(source: ResolvedSetting_Source): SourceName {
  switch (source) {
    case ResolvedSetting_Source.DEFAULT: return "default";
    case ResolvedSetting_Source.TEMPLATE: return "template";
    case ResolvedSetting_Source.EXPLICIT: return "explicit";
    case ResolvedSetting_Source.AUTO: return "auto";
    default: return "unknown";
  }
}

export function verdictName(verdict: LearningCheck_Verdict): VerdictName {
  switch (verdict) {
    case LearningCheck_Verdict.LEARNED: return "learned";
    case LearningCheck_Verdict.LEARNED_LITTLE: return "learned_little";
    case LearningCheck_Verdict.DID_NOT_LEARN: return "did_not_learn";
    case LearningCheck_Verdict.GOT_WORSE: return "got_worse";
    default: return "unknown";
  }
}

/** Fits, fits but tight, or does not fit (the daemon refuses a run that does not). */
export function memoryVerdict(run: Pick<RunEstimate, "memoryFits" | "memoryTight">): MemoryVerdict {
  return run.memoryFits ? (run.memoryTight ? "tight" : "fits") : "no";
}

/** "+12%" / "-3%": the estimate's error relative to the actual. */
export function signedPercent(x: number): string {
  if (!Number.isFinite(x)) return "–";
  const p = Math.round(x * 100);
  return `${p > 0 ? "+" : p < 0 ? "-" : "±"}${Math.abs(p)}%`;
}

/** "123 (45%)": a part of a whole, as the data report's findings and trained-on tokens show it. */
export function share(part: number | bigint, whole: number | bigint): string {
  const p = Number(part);
  const w = Number(whole);
  return w ? `${p} (${Math.round((100 * p) / w)}%)` : String(p);
}

/** Is an estimate check's quantity a duration (seconds) rather than a size (bytes)? */
export function isSeconds(quantity: string): boolean {
  return quantity.endsWith("_seconds");
}
