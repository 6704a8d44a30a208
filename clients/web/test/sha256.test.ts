import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { Sha256 } from "../src/sha256";

test("SHA-256 fed in pieces matches node's for every padding case", () => {
  const data = new Uint8Array(3000).map((_, i) => (i * 131 + 7) & 0xff);
  for (const n of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 3000]) {
    const want = createHash("sha256").update(data.subarray(0, n)).digest("hex");
    assert.equal(new Sha256().update(data.subarray(0, n)).hex(), want, `length ${n}`);
    for (const piece of [1, 7, 63, 64, 100]) {
      const hash = new Sha256();
      for (let i = 0; i < n; i += piece) hash.update(data.subarray(i, Math.min(n, i + piece)));
      assert.equal(hash.hex(), want, `length ${n} in pieces of ${piece}`);
    }
  }
});
