// Fails when the committed build (server/internal/web/dist) is not what the sources
// build to today: it builds into a temporary directory and compares every file.
// Run `npm run build` and commit dist/ to fix it.

import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";

const root = fileURLToPath(new URL("..", import.meta.url));
const committed = fileURLToPath(new URL("../../server/internal/web/dist", import.meta.url));

async function files(dir) {
  const out = new Map();
  async function walk(d) {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      if (err.code === "ENOENT") return;
      throw err;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(relative(dir, p).split("\\").join("/"), await readFile(p));
    }
  }
  await walk(dir);
  return out;
}

const tmp = await mkdtemp(join(tmpdir(), "taskwire-dist-"));
try {
  await build({ root, logLevel: "warn", build: { outDir: tmp, emptyOutDir: true } });
  const want = await files(tmp);
  const have = await files(committed);
  const problems = [];
  for (const [name, data] of want) {
    const h = have.get(name);
    if (!h) problems.push(`missing: ${name}`);
    else if (!h.equals(data)) problems.push(`differs: ${name}`);
  }
  for (const name of have.keys()) if (!want.has(name)) problems.push(`not built from the sources: ${name}`);
  if (problems.length > 0) {
    console.error(`server/internal/web/dist is stale (run npm run build in frontend/):\n  ${problems.join("\n  ")}`);
    process.exitCode = 1;
  } else {
    console.log(`server/internal/web/dist is up to date (${want.size} files)`);
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
