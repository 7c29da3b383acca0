// Builds the browser app into dist/: assets/app.js (bundled from src/main.js), assets/app.css
// (from src/styles.css) and index.html. index.html is written last, so a failed build never
// leaves a page that points at missing assets (the Makefile uses it as the build's stamp).
//
//   node build.mjs            one production build
//   node build.mjs --watch    rebuild on every change (serve with `liaison serve` meanwhile)

import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const assets = join(dist, "assets");
const watch = process.argv.includes("--watch");

// Standard web APIs only; these are the oldest browsers the client promises to work in.
const TARGETS = ["chrome111", "edge111", "firefox115", "safari16.4"];

/** Copy index.html, pointing its asset URLs at this build's content (cache busting). */
async function writeIndex() {
  let html = await readFile(join(root, "index.html"), "utf8");
  for (const name of ["app.js", "app.css"]) {
    const content = await readFile(join(assets, name));
    const version = createHash("sha256").update(content).digest("hex").slice(0, 12);
    const url = `/assets/${name}`;
    if (!html.includes(`"${url}"`)) throw new Error(`index.html does not reference ${url}`);
    html = html.replace(`"${url}"`, `"${url}?v=${version}"`);
  }
  await writeFile(join(dist, "index.html"), html);
}

/** @type {esbuild.Plugin} */
const indexPage = {
  name: "index-page",
  setup(build) {
    build.onEnd(async (result) => {
      if (result.errors.length === 0) await writeIndex();
      if (watch) console.log(`[${new Date().toLocaleTimeString()}] built (${result.errors.length} errors)`);
    });
  },
};

/** @type {esbuild.BuildOptions} */
const options = {
  absWorkingDir: root,
  entryPoints: [
    { in: "src/main.js", out: "app" },
    { in: "src/styles.css", out: "app" },
  ],
  outdir: assets,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: TARGETS,
  minify: !watch,
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
  plugins: [indexPage],
};

await rm(dist, { recursive: true, force: true });
await mkdir(assets, { recursive: true });
if (watch) {
  const context = await esbuild.context(options);
  await context.watch();
} else {
  await esbuild.build(options);
}
