// Builds keep-latest.js into a component with componentize-js.
// Usage: node build.mjs OUT.wasm [WIT_DIR]   (run where componentize-js is installed,
// e.g. with NODE_PATH pointing at its node_modules)
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const [out, witDir = join(here, "..", "..", "wit")] = process.argv.slice(2);
// componentize-js is ESM-only: import its entry point from where it is installed.
const home = resolve(process.env.COMPONENTIZE_JS_HOME ?? here);
const entry = join(home, "node_modules", "@bytecodealliance", "componentize-js", "src", "componentize.js");
const { componentize } = await import(pathToFileURL(entry).href);
const source = await readFile(join(here, "keep-latest.js"), "utf8");
const { component } = await componentize(source, {
  witPath: witDir,
  worldName: "tag-filter-plugin",
  // The sandbox gives no clocks, randomness, stdio or HTTP: import none of them.
  disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
