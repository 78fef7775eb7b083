// The system under test for the web app's end-to-end tests: a throwaway
// redis-server, taskwire-server (serving the app embedded in it) and
// taskwire-worker, as separate processes, plus Debian's chromium driven by
// playwright-core. Process handling comes from the repository's e2e harness.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { buildBinaries } from '../../e2e/lib/build.mjs';
import { freePort, spawnProcess, waitForHttp } from '../../e2e/lib/proc.mjs';
import { startRedis } from '../../e2e/lib/redis.mjs';

/** outDir is where screenshots go. */
export const outDir = fileURLToPath(new URL('../test-results/e2e/', import.meta.url));

/** chromiumPath is the browser to drive: $CHROMIUM_PATH or Debian's package. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * startStack starts Redis, one server and one worker. rowDelay slows exports down
 * (the worker's EXPORT_ROW_DELAY) so that reloads, cancels and restarts land
 * mid-task; resultMaxBytes (RESULT_MAX_BYTES) makes larger exports fail;
 * workerEnv adds variables of the worker (REPORT_PAGE_DELAY, TRAIN_EPOCH_DELAY...);
 * primesEnv, when given, also starts the example worker of the SDK (kind "primes",
 * worker/examples/primes) with these variables (PRIMES_SEGMENT_DELAY...);
 * serverEnv adds variables of the server (ADMIN_TOKEN...).
 *
 * @param {{t?: {after: (fn: () => any) => void}, rowDelay?: string, concurrency?: number, resultMaxBytes?: number,
 *   workerEnv?: Record<string, string>, primesEnv?: Record<string, string>, serverEnv?: Record<string, string>}} opts
 */
export async function startStack({ t, rowDelay = '1ms', concurrency = 4, resultMaxBytes, workerEnv = {}, primesEnv, serverEnv = {} } = {}) {
  const names = primesEnv ? ['server', 'worker', 'primes'] : ['server', 'worker'];
  const bins = await buildBinaries({ names });
  for (const name of names) {
    if (!bins.paths[name]) throw new Error(`cannot run the web e2e tests: ${bins.missing[name]}`);
  }
  const redis = await startRedis({ t });
  let port = await freePort();
  let started = false;
  const secret = 'e2e-secret-e2e-secret-e2e-secret-0123456789';

  const stack = {
    /** The server's URL: the same across restarts, as the page has it. */
    base: `http://127.0.0.1:${port}`,
    redis,
    server: null,
    worker: null,
    /** The example worker (primesEnv), or null. */
    primes: null,
    /**
     * startServer starts the server on the stack's port. Another process may hold
     * that port (freePort cannot reserve it): the first start then moves to another
     * free port; a restart must keep it (the page reconnects to the same URL), so it
     * tries again, a bounded number of times.
     */
    async startServer() {
      for (let attempt = 1; ; attempt++) {
        const p = spawnProcess(bins.paths.server, [], {
          name: 'taskwire-server',
          env: {
            HTTP_ADDR: `127.0.0.1:${port}`,
            REDIS_URL: redis.url,
            TASKWIRE_SECRET: secret, // the same across restarts: sessions survive them
            STATIC_DIR: undefined,
            LOG_LEVEL: 'info',
            SHUTDOWN_TIMEOUT: '2s',
            ...serverEnv,
          },
          t,
        });
        stack.server = p;
        try {
          await waitForHttp(`${stack.base}/readyz`, 30_000, { process: p });
          started = true;
          return p;
        } catch (err) {
          if (p.running || attempt >= 20 || !(await printed(p, /address already in use/i))) throw err;
          if (!started) {
            port = await freePort();
            stack.base = `http://127.0.0.1:${port}`;
          } else {
            await new Promise((r) => setTimeout(r, 250)); // back off: whoever has the port may let it go
          }
        }
      }
    },
    async killServer() {
      const p = stack.server;
      stack.server = null;
      if (p) await p.kill('SIGKILL');
    },
    tails() {
      return [stack.server?.tail(20), stack.worker?.tail(20), stack.primes?.tail(20)].filter(Boolean).join('\n');
    },
  };

  stack.worker = spawnProcess(bins.paths.worker, [], {
    name: 'taskwire-worker',
    env: {
      REDIS_URL: redis.url,
      WORKER_CONCURRENCY: String(concurrency),
      EXPORT_ROW_DELAY: rowDelay,
      RESULT_MAX_BYTES: resultMaxBytes === undefined ? undefined : String(resultMaxBytes),
      METRICS_ADDR: 'off',
      LOG_LEVEL: 'info',
      ...workerEnv,
    },
    t,
  });
  if (primesEnv) {
    stack.primes = spawnProcess(bins.paths.primes, [], {
      name: 'primes',
      env: { REDIS_URL: redis.url, METRICS_ADDR: 'off', LOG_LEVEL: 'info', ...primesEnv },
      t,
    });
  }
  await stack.startServer();
  return stack;
}

/**
 * printed reports whether process p printed a line matching re, waiting up to ms for
 * the end of its output (which may come after its exit).
 */
async function printed(p, re, ms = 1_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (p.lines.some((l) => re.test(l.text))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** launchBrowser starts chromium headless, or explains how to get it. */
export async function launchBrowser() {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`no browser at ${chromiumPath}: install Debian's chromium (apt-get install -y chromium) ` +
      'or set CHROMIUM_PATH');
  }
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 60_000,
  });
}

/** screenshot saves a full-page screenshot under outDir and returns its path. */
export async function screenshot(page, name) {
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, name);
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
  return file;
}
