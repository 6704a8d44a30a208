/** What the page measures about itself, readable by the end-to-end tests and bench/studio.py
 * through `window.__studio` (the same numbers a person would see with the dev tools). */
export interface DrawRecord { step: number; latencyMs: number }

export const stats = {
  monitor: { taskId: "", lastSeq: 0, points: 0, resumedFrom: 0, draws: [] as DrawRecord[] },
  chat: { streams: 0 },
};

(globalThis as unknown as { __studio: typeof stats }).__studio = stats;
