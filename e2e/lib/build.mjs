// The Go binaries the end-to-end tests drive: built once per test run from the
// repository (which has a go.work), or taken prebuilt from $TASKWIRE_BIN_DIR.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { spawnProcess } from './proc.mjs';

/** repoRoot is the repository root (the directory with go.work). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * BINARIES maps the short name of each binary to its Go package, relative to the
 * repository root. The file name of a binary is the last element of its package.
 */
export const BINARIES = Object.freeze({
  server: './server/cmd/taskwire-server',
  worker: './worker/cmd/taskwire-worker',
  twemit: './emitter/internal/cmd/twemit',
  primes: './worker/examples/primes',
  backend: './server/examples/backend',
});

/**
 * @typedef {object} Binaries
 * @property {string} binDir  where built binaries are written
 * @property {Record<string, string>} paths  short name -> absolute path, for those available
 * @property {Record<string, string>} missing  short name -> why it is not available
 *   (its package does not exist yet, or is not in $TASKWIRE_BIN_DIR)
 */

const memo = new Map();

/**
 * buildBinaries returns the paths of the requested binaries (default: all of
 * `binaries`, which defaults to BINARIES; pass another map of name -> package to
 * build other main packages of the repository).
 *
 * When $TASKWIRE_BIN_DIR is set, a binary found there (by file name, e.g.
 * taskwire-server) is used as is. Otherwise it is built with `go build` from the
 * repository root into a cache directory under the system temporary directory (or
 * $TASKWIRE_E2E_BUILD_DIR). A binary whose package does not exist yet is reported
 * in `missing` instead of failing; a package that exists but does not compile
 * rejects, with the compiler's output.
 *
 * Builds happen once per test run: within a process the result is memoized, and
 * test files of the same `node --test` run (children of the same runner) reuse what
 * the first one built; concurrent builders wait on a lock.
 *
 * @param {{binaries?: Record<string, string>, names?: string[], timeoutMs?: number}} [opts]
 * @returns {Promise<Binaries>}
 */
export async function buildBinaries({ binaries = BINARIES, names = Object.keys(binaries), timeoutMs = 600_000 } = {}) {
  const binDir = process.env.TASKWIRE_E2E_BUILD_DIR ??
    path.join(os.tmpdir(), `taskwire-e2e-bin-${createHash('sha256').update(repoRoot).digest('hex').slice(0, 12)}`);
  fs.mkdirSync(binDir, { recursive: true });
  const out = { binDir, paths: {}, missing: {} };
  for (const name of names) {
    const pkg = binaries[name];
    if (!pkg) throw new Error(`buildBinaries: unknown binary ${JSON.stringify(name)}; known: ${Object.keys(binaries)}`);
    const file = path.basename(pkg);
    const prebuiltDir = process.env.TASKWIRE_BIN_DIR;
    if (prebuiltDir && isExecutable(path.join(prebuiltDir, file))) {
      out.paths[name] = path.resolve(prebuiltDir, file);
      continue;
    }
    if (!hasGoFiles(path.join(repoRoot, pkg))) {
      out.missing[name] = `package ${pkg} does not exist yet` +
        (prebuiltDir ? ` and ${file} is not in TASKWIRE_BIN_DIR=${prebuiltDir}` : '');
      continue;
    }
    const outPath = path.join(binDir, file);
    if (!memo.has(outPath)) memo.set(outPath, buildOne(name, pkg, outPath, timeoutMs));
    try {
      out.paths[name] = await memo.get(outPath);
    } catch (err) {
      memo.delete(outPath);
      throw err;
    }
  }
  return out;
}

/**
 * requireBinary returns the path of binary name from bins, or skips test t (a
 * node:test context) with the reason it is missing and returns null.
 *
 * @param {{skip: (msg: string) => void}} t
 * @param {Binaries} bins
 * @param {string} name
 * @returns {string | null}
 */
export function requireBinary(t, bins, name) {
  if (bins.paths[name]) return bins.paths[name];
  t.skip(`${name}: ${bins.missing[name] ?? 'not built'}`);
  return null;
}

function isExecutable(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function hasGoFiles(dir) {
  try {
    return fs.readdirSync(dir).some((f) => f.endsWith('.go') && !f.endsWith('_test.go'));
  } catch {
    return false;
  }
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

async function withLock(lockDir, timeoutMs, fn) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(path.join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let owner = NaN;
      try {
        owner = Number(fs.readFileSync(path.join(lockDir, 'pid'), 'utf8'));
      } catch {
        // being created or removed right now
      }
      if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) {
        fs.rmSync(lockDir, { recursive: true, force: true }); // stale
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(`build: lock ${lockDir} still held (pid ${owner}) after ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

async function buildOne(name, pkg, outPath, timeoutMs) {
  // Under `node --test` the runner is the parent of every test file's process: a
  // stamp with its pid says "already built during this run". Run directly, a file
  // always builds (go build is incremental, so that is quick when nothing changed).
  const stamp = `${outPath}.run`;
  const runId = process.env.NODE_TEST_CONTEXT ? `${process.ppid}` : `direct-${process.pid}`;
  return withLock(`${outPath}.lock`, timeoutMs, async () => {
    try {
      if (fs.readFileSync(stamp, 'utf8') === runId && isExecutable(outPath)) return outPath;
    } catch {
      // no stamp yet
    }
    const started = Date.now();
    const p = spawnProcess('go', ['build', '-o', outPath, pkg], { cwd: repoRoot, name: `go build ${name}` });
    let timer;
    const info = await Promise.race([
      p.exited,
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(null), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (info === null) {
      await p.kill('SIGKILL');
      throw new Error(`go build ${pkg}: not done within ${timeoutMs} ms; output:\n${p.tail(50)}`);
    }
    if (info.code !== 0) {
      throw new Error(`go build ${pkg} failed (exit ${info.code}):\n${p.tail(50)}`);
    }
    fs.writeFileSync(stamp, runId);
    if (process.env.E2E_ECHO) process.stderr.write(`built ${name} in ${Date.now() - started} ms\n`);
    return outPath;
  });
}
