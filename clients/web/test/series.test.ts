import { test } from "node:test";
import assert from "node:assert/strict";
import { loadCache, MAX_LOG_LINES, saveCache, TaskSeries } from "../src/series";

class MemoryStorage implements Storage {
  private data = new Map<string, string>();
  constructor(private limit = Infinity) {}
  get length() { return this.data.size; }
  clear() { this.data.clear(); }
  getItem(k: string) { return this.data.get(k) ?? null; }
  key(i: number) { return [...this.data.keys()][i] ?? null; }
  removeItem(k: string) { this.data.delete(k); }
  setItem(k: string, v: string) {
    if (v.length > this.limit) throw new Error("QuotaExceededError");
    this.data.set(k, v);
  }
}

test("seqs are accepted once, in order", () => {
  const s = new TaskSeries("t1");
  assert.equal(s.accept(1), true);
  assert.equal(s.accept(2), true);
  assert.equal(s.accept(2), false);
  assert.equal(s.accept(1), false);
  assert.equal(s.lastSeq, 2);
});

test("an eval point joins the train point of its step; a resumed run replaces the later steps", () => {
  const s = new TaskSeries("t1");
  for (let step = 1; step <= 5; step++) s.addPoint({ step, loss: 10 - step });
  s.addPoint({ step: 5, eval_loss: 4.5 });
  assert.deepEqual(s.cols.step, [1, 2, 3, 4, 5]);
  assert.equal(s.cols.loss[4], 5);
  assert.equal(s.cols.eval_loss[4], 4.5);
  s.addPoint({ step: 3, loss: 6.5 });
  assert.deepEqual(s.cols.step, [1, 2, 3]);
  assert.deepEqual(s.cols.loss, [9, 8, 6.5]);
  assert.equal(s.cols.eval_loss.length, 3);
  assert.equal(s.last("loss"), 6.5);
  assert.equal(s.last("eval_loss"), null);
});

test("logs keep the newest lines", () => {
  const s = new TaskSeries("t1");
  for (let i = 1; i <= MAX_LOG_LINES + 10; i++) s.addLog({ seq: i, time: i, level: "info", message: `m${i}` });
  assert.equal(s.logs.length, MAX_LOG_LINES);
  assert.equal(s.logs[0].seq, 11);
});

test("the cache round-trips and keeps one task; a full store falls back to a replay", () => {
  const store = new MemoryStorage();
  const a = new TaskSeries("a");
  a.accept(7);
  a.addPoint({ step: 1, loss: 2, time: 1000 });
  assert.equal(saveCache(store, a), true);
  const back = loadCache(store, "a")!;
  assert.equal(back.lastSeq, 7);
  assert.deepEqual(back.cols.loss, [2]);
  assert.equal(loadCache(store, "b"), null);
  const b = new TaskSeries("b");
  saveCache(store, b);
  assert.equal(loadCache(store, "a"), null, "only the watched task stays cached");
  const tiny = new MemoryStorage(10);
  assert.equal(saveCache(tiny, a), false);
  assert.equal(loadCache(tiny, "a"), null);
  store.setItem("modx.watch.c", "{not json");
  assert.equal(loadCache(store, "c"), null);
});
