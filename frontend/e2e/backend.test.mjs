// The example app backend (server/examples/backend) end to end: Redis, a
// server that accepts only the app's JWTs and its API key (no anonymous
// sessions), a worker and the backend, as separate processes, and Debian's
// chromium. A user logs in through the page, starts an export (the backend
// starts it with its API key for the user's subject), and the page, on
// @taskwire/client with the user's JWT from /token, shows it live up to
// completed. The task is the user's: listed for that subject, not for another.
//
// Needs the client package built (npm run build:client, which npm run e2e does).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { buildBinaries } from '../../e2e/lib/build.mjs';
import { freePort, killAll, spawnProcess, waitForHttp } from '../../e2e/lib/proc.mjs';
import { startRedis } from '../../e2e/lib/redis.mjs';
import { trackProblems } from './app.mjs';
import { launchBrowser, screenshot } from './stack.mjs';

const frontendDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('example app backend', { timeout: 240_000 }, () => {
  let browser;
  let base;
  let taskwire;
  let apiKey;
  const procs = [];
  const tails = () => procs.map((p) => p.tail(20)).join('\n');

  before(async () => {
    const dist = path.join(frontendDir, 'packages', 'client', 'dist', 'index.js');
    if (!fs.existsSync(dist)) throw new Error(`${dist} is missing: run npm run build:client first`);
    const bins = await buildBinaries({ names: ['server', 'worker', 'backend'] });
    for (const name of ['server', 'worker', 'backend']) {
      if (!bins.paths[name]) throw new Error(`cannot run the backend e2e test: ${bins.missing[name]}`);
    }
    const out = execFileSync(bins.paths.server, ['apikey', 'new', 'example-backend'], { encoding: 'utf8' });
    apiKey = out.match(/^key [^:]*: (\S+)$/m)?.[1];
    const entry = out.match(/^TASKWIRE_API_KEYS entry [^:]*: (\S+)$/m)?.[1];
    assert.ok(apiKey && entry, `apikey new printed ${out}`);
    const jwtSecret = 'the-app-and-taskwire-share-this-secret-0123';

    const redis = await startRedis();
    const serverPort = await freePort();
    taskwire = `http://127.0.0.1:${serverPort}`;
    procs.push(spawnProcess(bins.paths.server, [], {
      name: 'taskwire-server',
      env: {
        HTTP_ADDR: `127.0.0.1:${serverPort}`, REDIS_URL: redis.url, LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT: '2s',
        TASKWIRE_SECRET: 'server-secret-server-secret-0123456789abcdef',
        TASKWIRE_JWT_SECRET: jwtSecret, TASKWIRE_API_KEYS: entry, ANONYMOUS_SESSIONS: 'false',
        STATIC_DIR: undefined,
      },
    }));
    procs.push(spawnProcess(bins.paths.worker, [], {
      name: 'taskwire-worker',
      env: { REDIS_URL: redis.url, METRICS_ADDR: 'off', LOG_LEVEL: 'info', EXPORT_ROW_DELAY: '2ms' },
    }));
    await waitForHttp(`${taskwire}/readyz`, 30_000, { process: procs[0] });
    const backendPort = await freePort();
    base = `http://127.0.0.1:${backendPort}`;
    procs.push(spawnProcess(bins.paths.backend, [], {
      name: 'backend',
      env: {
        ADDR: `127.0.0.1:${backendPort}`, TASKWIRE_URL: taskwire, TASKWIRE_API_KEY: apiKey,
        TASKWIRE_JWT_SECRET: jwtSecret, FRONTEND_DIR: frontendDir,
      },
    }));
    await waitForHttp(`${base}/`, 30_000, { process: procs[2] });
    // The worker has registered export once the kinds say so.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const kinds = await (await fetch(`${taskwire}/api/v1/kinds`)).json();
      if (kinds.kinds.some((k) => k.name === 'export')) break;
      if (Date.now() > deadline) throw new Error(`the worker registered no export kind:\n${tails()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    // SIGTERM: the backend shuts down gracefully (and says so).
    const backend = procs[2];
    if (backend?.running) {
      await backend.kill('SIGTERM');
    }
    await killAll();
  });

  it('logs a user in, starts a task for them and shows it live to completion', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const problems = trackProblems(page);
    await page.goto(`${base}/`);
    await page.locator('#login input[name=name]').fill('Alice Example');
    await page.locator('#login button[type=submit]').click();
    await page.locator('#user-id').waitFor({ timeout: 10_000 });
    const subject = await page.locator('#user-id').textContent();
    assert.equal(subject, 'u-alice-example');
    await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'connected', null, { timeout: 20_000 })
      .catch((err) => { throw new Error(`${err.message}\n${tails()}`); });

    // The page's token is the user's JWT: taskwire lists their (no) tasks with it.
    const jwt = await page.evaluate(() => fetch('/token').then((r) => r.text()));
    assert.equal(JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()).sub, subject);

    await page.locator('#rows').fill('2500'); // about 5 s at 2 ms a row
    await page.locator('#start button[type=submit]').click();
    const li = page.locator('li.task').first();
    await li.waitFor({ timeout: 10_000 });
    const id = await li.getAttribute('data-task-id');
    assert.match(id, /^[A-Za-z0-9_-]{16,}$/);

    // Seen live: running with a percent strictly between 0 and 100, then completed.
    await page.waitForFunction((i) => {
      const el = document.querySelector(`li.task[data-task-id="${i}"]`);
      const p = Number(el?.querySelector('.task-percent')?.textContent);
      return el?.dataset.state === 'running' && p > 0 && p < 100;
    }, id, { timeout: 30_000 }).catch((err) => { throw new Error(`${err.message}\n${tails()}`); });
    await page.waitForFunction((i) => document.querySelector(`li.task[data-task-id="${i}"]`)?.dataset.state === 'completed',
      id, { timeout: 60_000 }).catch((err) => { throw new Error(`${err.message}\n${tails()}`); });
    assert.equal(await li.locator('.task-percent').textContent(), '100');
    assert.equal(await li.locator('.task-rows').textContent(), '2500 rows');
    await screenshot(page, 'backend-completed.png');

    // The task is the subject's: the API key lists it for them, not for another.
    const list = async (s) => {
      const r = await fetch(`${taskwire}/api/v1/tasks?subject=${encodeURIComponent(s)}`, {
        headers: { Authorization: `Bearer ${apiKey}` },
      });
      assert.equal(r.status, 200, await r.clone().text());
      return (await r.json()).tasks.map((t) => t.taskId);
    };
    assert.deepEqual(await list(subject), [id]);
    assert.deepEqual(await list('u-someone-else'), []);
    // And the user's JWT reads it.
    const rec = await fetch(`${taskwire}/api/v1/tasks/${id}`, { headers: { Authorization: `Bearer ${jwt}` } });
    assert.equal(rec.status, 200);
    assert.equal((await rec.json()).state, 'completed');

    // A reload shows the user's task again (listed through the proxy with the JWT).
    await page.reload();
    await page.waitForFunction((i) => document.querySelector(`li.task[data-task-id="${i}"]`)?.dataset.state === 'completed',
      id, { timeout: 20_000 });
    assert.deepEqual(problems, []);
    await ctx.close();
  });

  it('does not give a token to a visitor who is not logged in', async () => {
    const r = await fetch(`${base}/token`);
    assert.equal(r.status, 401);
    const s = await fetch(`${base}/start`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"rows":1}' });
    assert.equal(s.status, 401);
  });
});
