/** What the page measures about itself, readable by the end-to-end tests and bench/studio.py
 * through `window.__studio` (the same numbers a person would see with the dev tools). */
import type { Point } from "./series";

export interface DrawRecord { step: number; latencyMs: number }

export const stats = {
  monitor: {
    taskId: "", lastSeq: 0, points: 0,
    /** The seq the stream resumed after when the view opened (0: replayed from the start). */
    resumedFrom: 0,
    /** Per new point: drawn time minus MetricsPoint.time (the worker's clock, same host). */
    draws: [] as DrawRecord[],
    /** Per redraw: ms from handing the four charts new data to all four drawn. */
    redrawMs: [] as number[],
    /** bench/studio.py's chart load: points through the same series a stream feeds. */
    addPoints: (_points: Point[]): void => {},
  },
  /** performance.now() when each page first showed its data (the page is usable from then). */
  ready: {} as Record<string, number>,
};

(globalThis as unknown as { __studio: typeof stats }).__studio = stats;
