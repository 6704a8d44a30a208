import { test } from "node:test";
import assert from "node:assert/strict";
import { csvText } from "../src/csv";
import { bytes, duration, metric, paramCount } from "../src/format";
import { parseRoute, routeHash } from "../src/router";

test("CSV quotes what needs quoting", () => {
  assert.equal(csvText(["a", "b"], [[1, 'say "hi", then\ngo'], [null, true]]), 'a,b\n1,"say ""hi"", then\ngo"\n,true\n');
});

test("people-readable numbers", () => {
  assert.equal(bytes(512), "512 B");
  assert.equal(bytes(1536), "1.50 KB");
  assert.equal(duration(3725), "1:02:05");
  assert.equal(duration(65), "1:05");
  assert.equal(duration(null), "–");
  assert.equal(metric(0.000123), "1.23e-4");
  assert.equal(metric(2.345678), "2.346");
});

test("routes survive a reload", () => {
  assert.deepEqual({ ...parseRoute("#/monitor/t-1?x=1"), query: undefined }, { page: "monitor", taskId: "t-1", query: undefined });
  assert.equal(parseRoute("#/nope").page, "prepare");
  assert.equal(parseRoute("").page, "prepare");
  assert.equal(routeHash("test", "a b", { a: "checkpoint:c1" }), "#/test/a%20b?a=checkpoint%3Ac1");
  assert.equal(parseRoute(routeHash("test", "a b", { a: "checkpoint:c1" })).query.get("a"), "checkpoint:c1");
});

test("parameter counts read like the CLI's", () => {
  assert.equal(paramCount(1.2358), "1.24B");
  assert.equal(paramCount(0.1345), "135M");
  assert.equal(paramCount(0.0000983), "98.3K");
});
