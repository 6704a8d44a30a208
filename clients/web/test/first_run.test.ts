import { test } from "node:test";
import assert from "node:assert/strict";
import { binLabel, histogramBars, isSeconds, memoryVerdict, share, signedPercent, sourceName, verdictName } from "../src/first_run";
import { LearningCheck_Verdict, ResolvedSetting_Source } from "../src/gen/modx/v1/training_pb";

test("histogram bins: closed ranges, the open last one, bars relative to the tallest", () => {
  assert.equal(binLabel({ lowTokens: 10n, highTokens: 20n }), "10-19");
  assert.equal(binLabel({ lowTokens: 512n, highTokens: 0n }), ">= 512");
  const bars = histogramBars([{ lowTokens: 0n, highTokens: 8n, count: 1n }, { lowTokens: 8n, highTokens: 16n, count: 200n },
                              { lowTokens: 16n, highTokens: 0n, count: 0n }]);
  assert.deepEqual(bars.map((b) => [b.label, b.count]), [["0-7", 1], ["8-15", 200], [">= 16", 0]]);
  assert.equal(bars[1].share, 1);
  assert.equal(bars[0].share, 0.02);  // one example still shows a bar
  assert.equal(bars[2].share, 0);
  assert.deepEqual(histogramBars([]), []);
  assert.equal(histogramBars([{ lowTokens: 0n, highTokens: 8n, count: 0n }])[0].share, 0);
});

test("sources, verdicts and the memory verdict by name", () => {
  assert.equal(sourceName(ResolvedSetting_Source.AUTO), "auto");
  assert.equal(sourceName(ResolvedSetting_Source.EXPLICIT), "explicit");
  assert.equal(sourceName(ResolvedSetting_Source.UNSPECIFIED), "unknown");
  assert.equal(verdictName(LearningCheck_Verdict.LEARNED), "learned");
  assert.equal(verdictName(LearningCheck_Verdict.GOT_WORSE), "got_worse");
  assert.equal(verdictName(LearningCheck_Verdict.UNSPECIFIED), "unknown");
  assert.equal(memoryVerdict({ memoryFits: true, memoryTight: false }), "fits");
  assert.equal(memoryVerdict({ memoryFits: true, memoryTight: true }), "tight");
  assert.equal(memoryVerdict({ memoryFits: false, memoryTight: false }), "no");
});

test("relative errors and shares", () => {
  assert.equal(signedPercent(0.123), "+12%");
  assert.equal(signedPercent(-0.034), "-3%");
  assert.equal(signedPercent(0.001), "±0%");
  assert.equal(signedPercent(Number.NaN), "–");
  assert.equal(share(45, 300), "45 (15%)");
  assert.equal(share(3n, 0n), "3");
  assert.ok(isSeconds("training_seconds"));
  assert.ok(!isSeconds("peak_memory_bytes"));
});
