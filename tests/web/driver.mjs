// Drives one headless Chromium page for tests/web/studio.py: one JSON command per stdin line, one
// JSON answer per stdout line. playwright-core (from clients/web/node_modules) talks to Debian's
// Chromium; no browser is downloaded. Confirm dialogs are accepted, as a person clicking OK would.
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.NODE_PATH || process.cwd(), "noop.js"));
const { chromium } = require("playwright-core");

let context = null;
let page = null;
const problems = [];

async function open({ url, width, height, locale, timeout }) {
  context = await chromium.launchPersistentContext(process.env.MODX_CHROMIUM_PROFILE, {
    executablePath: process.env.MODX_CHROMIUM, headless: true, args: JSON.parse(process.env.MODX_CHROMIUM_FLAGS),
    viewport: { width, height }, locale, acceptDownloads: true, timeout,
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeout);
  page.on("dialog", (d) => d.accept());
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  await page.goto(url, { waitUntil: "load" });
}

const ops = {
  open,
  goto: ({ url }) => page.goto(url, { waitUntil: "load" }).then(() => null),
  reload: () => page.reload({ waitUntil: "load" }).then(() => null),
  click: ({ selector }) => page.locator(selector).first().click(),
  fill: ({ selector, value }) => page.locator(selector).first().fill(value),
  select: ({ selector, value }) => page.locator(selector).first().selectOption(value).then(() => null),
  check: ({ selector, checked }) => page.locator(selector).first().setChecked(checked !== false),
  press: ({ selector, key }) => page.locator(selector).first().press(key),
  text: ({ selector }) => page.locator(selector).first().innerText(),
  count: ({ selector }) => page.locator(selector).count(),
  texts: ({ selector }) => page.locator(selector).allInnerTexts(),
  wait: ({ selector, state, timeout }) => page.locator(selector).first().waitFor({ state, timeout }).then(() => null),
  // Polls page.evaluate (the DevTools protocol, which the studio's CSP allows) rather than
  // waitForFunction, whose string predicates the CSP (no 'unsafe-eval') refuses.
  waitFunction: async ({ expression, timeout }) => {
    const deadline = Date.now() + timeout;
    for (;;) {
      const value = await page.evaluate(expression);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${expression} (last: ${value})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  },
  eval: ({ expression }) => page.evaluate(expression),
  screenshot: ({ path, fullPage }) => page.screenshot({ path, fullPage, animations: "disabled" }).then(() => null),
  download: async ({ selector, path }) => {
    const [dl] = await Promise.all([page.waitForEvent("download"), page.locator(selector).first().click()]);
    await dl.saveAs(path);
    return dl.suggestedFilename();
  },
  problems: () => problems.splice(0),
  close: async () => { await context?.close(); context = null; },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  let reply;
  try {
    const value = await ops[cmd.op](cmd);
    reply = { ok: true, value: value === undefined ? null : value };
  } catch (err) {
    // What the page showed when the operation failed (a wait that timed out says why, next time).
    let shown = "";
    try {
      shown = await page.evaluate(() => `${location.href}\n${document.body.innerText.slice(0, 1500)}`);
    } catch {}
    reply = { ok: false, error: `${String(err && err.stack || err)}\n--- the page showed: ${shown}\n` +
                                `--- console problems: ${problems.slice(-10).join(" | ")}` };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
  if (cmd.op === "close") break;
}
process.exit(0);
