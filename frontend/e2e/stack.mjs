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
 * mid-task; resultMaxBytes (RESULT_MAX_BYTES) makes larger exports fail.
 *
 * @param {{t?: {after: (fn: () => any) => void}, rowDelay?: string, concurrency?: number, resultMaxBytes?: number}} opts
 */
export async function startStack({ t, rowDelay = '1ms', concurrency = 4, resultMaxBytes } = {}) {
  const bins = await buildBinaries({ names: ['server', 'worker'] });
  for (const name of ['server', 'worker']) {
    if (!bins.paths[name]) throw new Error(`cannot run the web e2e tests: ${bins.missing[name]}`);
  }
  const redis = await startRedis({ t });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const secret = 'e2e-secret-e2e-secret-e2e-secret-0123456789';

  const stack = {
    base,
    redis,
    server: null,
    worker: null,
    async startServer() {
      const p = spawnProcess(bins.paths.server, [], {
        name: 'taskwire-server',
        env: {
          HTTP_ADDR: `127.0.0.1:${port}`,
          REDIS_URL: redis.url,
          TASKWIRE_SECRET: secret, // the same across restarts: sessions survive them
          STATIC_DIR: undefined,
          LOG_LEVEL: 'info',
          SHUTDOWN_TIMEOUT: '2s',
        },
        t,
      });
      stack.server = p;
      await waitForHttp(`${base}/readyz`, 30_000, { process: p });
      return p;
    },
    async killServer() {
      const p = stack.server;
      stack.server = null;
      if (p) await p.kill('SIGKILL');
    },
    tails() {
      return [stack.server?.tail(20), stack.worker?.tail(20)].filter(Boolean).join('\n');
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
    },
    t,
  });
  await stack.startServer();
  return stack;
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
