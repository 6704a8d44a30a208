// Bundle the studio into daemon/modxd/web/static/: index.html and assets/studio-<hash>.{js,css}
// (content-hashed names: the daemon serves assets/ as immutable, index.html revalidates).
// Deterministic: the same sources and lockfile give byte-identical files (no timestamps, no
// absolute paths, no source maps), so tests/web/test_studio_bundle.py can check the committed
// bundle is fresh. `node build.mjs --out DIR` writes elsewhere; `--tests` bundles test/*.test.ts
// into .test-build/ for `node --test`.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIndex = args.indexOf("--out");
const out = outIndex >= 0 ? resolve(args[outIndex + 1]) : resolve(here, "../../daemon/modxd/web/static");

const common = { bundle: true, absWorkingDir: here, logLevel: "warning", legalComments: "none", charset: "utf8" };

if (args.includes("--tests")) {
  const dir = join(here, ".test-build");
  rmSync(dir, { recursive: true, force: true });
  const entries = readdirSync(join(here, "test")).filter((f) => f.endsWith(".test.ts")).map((f) => `test/${f}`);
  await esbuild.build({ ...common, entryPoints: entries, outdir: dir, platform: "node", format: "esm",
                        outExtension: { ".js": ".mjs" } });
  process.exit(0);
}

const result = await esbuild.build({
  ...common, entryPoints: ["src/main.ts"], outdir: "out", entryNames: "studio", write: false,
  format: "esm", target: ["es2022", "chrome110", "firefox115", "safari16"], minify: true, treeShaking: true,
});
const files = Object.fromEntries(result.outputFiles.map((f) => [f.path.split("/").pop(), f.contents]));
const hash = (data) => createHash("sha256").update(data).digest("hex").slice(0, 12);
const js = `assets/studio-${hash(files["studio.js"])}.js`;
const css = `assets/studio-${hash(files["studio.css"])}.css`;
const html = readFileSync(join(here, "src/index.html"), "utf8").replace("%JS%", js).replace("%CSS%", css);
// Replace the previous bundle only (never a directory that is not one).
for (const name of ["index.html", "assets"]) rmSync(join(out, name), { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });
writeFileSync(join(out, js), files["studio.js"]);
writeFileSync(join(out, css), files["studio.css"]);
writeFileSync(join(out, "index.html"), html);
console.log(`studio bundle -> ${out}: ${js} ${files["studio.js"].length} B, ${css} ${files["studio.css"].length} B`);
