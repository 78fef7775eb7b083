// The official Socket.IO Admin UI (@socket.io/admin-ui 0.5.1, its built page from
// the package) in Debian's chromium, against two real taskwire-servers sharing a
// redis-server, with ADMIN_TOKEN set. The page is served on a loopback port of its
// own (another origin, listed in ALLOWED_ORIGINS) and connects to the first server
// only.
//
// Proves: with any user name and the token as password, the UI lists both
// servers (from the second through Redis), the socket of a user connected to the
// second server, with its task room, and shows nothing of the user's token; a
// reload reconnects with the session id alone. A wrong password, no credential,
// and the user's own token are refused with the UI's "Invalid credentials".

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { io } from 'socket.io-client';

import { buildBinaries } from '../../e2e/lib/build.mjs';
import { freePort, killAll, spawnProcess, waitForHttp } from '../../e2e/lib/proc.mjs';
import { redisCommand, startRedis } from '../../e2e/lib/redis.mjs';
import { launchBrowser, screenshot } from './stack.mjs';

const ADMIN_TOKEN = 'e2e-operator-token-e2e-operator-token-0123';
const SECRET = 'e2e-secret-e2e-secret-e2e-secret-0123456789';

/** uiDir is the built Admin UI in the package. */
const uiDir = path.join(path.dirname(createRequire(import.meta.url).resolve('@socket.io/admin-ui/package.json')), 'ui', 'dist');

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml' };

/** serveUI serves uiDir on a loopback port and returns its origin and server. */
async function serveUI() {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path.join(uiDir, rel === '/' ? 'index.html' : rel);
    if (!file.startsWith(uiDir + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${server.address().port}`, server };
}

/** startServer starts a taskwire-server with the Admin UI namespace on. */
async function startServer(bin, redis, name, origin) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const proc = spawnProcess(bin, [], {
      name,
      env: {
        HTTP_ADDR: `127.0.0.1:${port}`,
        REDIS_URL: redis.url,
        TASKWIRE_SECRET: SECRET,
        ADMIN_TOKEN,
        ALLOWED_ORIGINS: origin,
        STATIC_DIR: undefined,
        LOG_LEVEL: 'info',
        SHUTDOWN_TIMEOUT: '2s',
      },
    });
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${base}/readyz`, 30_000, { process: proc });
      return { base, proc };
    } catch (err) {
      await proc.kill('SIGKILL');
      if (attempt >= 3 || !/address already in use/.test(proc.tail(50))) throw err;
    }
  }
}

/** text is what the page shows. */
const text = (page) => page.evaluate(() => document.body.innerText);

/** waitText waits until the page shows every string of wanted. */
async function waitText(page, what, wanted, timeoutMs = 20_000) {
  try {
    await page.waitForFunction((ws) => ws.every((w) => document.body.innerText.includes(w)), wanted,
      { timeout: timeoutMs, polling: 100 });
  } catch (err) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${wanted.join(', ')}); the page shows:\n` +
      (await text(page)).slice(0, 3000), { cause: err });
  }
}

/** login fills the UI's connection form and submits it. */
async function login(page, serverUrl, username, password) {
  await page.getByLabel('Server URL').fill(serverUrl);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Connect' }).click();
}

/** go shows a page of the UI (its router uses the hash). */
async function go(page, route) {
  await page.evaluate((r) => { window.location.hash = r; }, route);
}

describe('Socket.IO Admin UI', { timeout: 180_000 }, () => {
  let ui;
  let servers;
  let browser;
  let user;
  let userToken;
  let taskId;

  before(async () => {
    const bins = await buildBinaries({ names: ['server'] });
    if (!bins.paths.server) throw new Error(`cannot run the Admin UI test: ${bins.missing.server}`);
    assert.ok(fs.existsSync(path.join(uiDir, 'index.html')), `no built Admin UI at ${uiDir}`);
    const redis = await startRedis();
    // The export kind, as a worker would have registered it: tasks can be created.
    await redisCommand(redis.port, ['HSET', 'taskwire:kind:export', 'e2e', JSON.stringify({
      name: 'export', title: 'CSV export', schemaHash: 'e2e', registeredAt: Date.now(), totalParam: 'rows',
      paramsSchema: { type: 'object', properties: { rows: { type: 'integer', minimum: 1 } }, additionalProperties: false },
    })]);
    await redisCommand(redis.port, ['ZADD', 'taskwire:kinds', String(Date.now()), 'export']);
    ui = await serveUI();
    servers = [];
    for (const name of ['server-a', 'server-b']) servers.push(await startServer(bins.paths.server, redis, name, ui.origin));

    // A user connected to the second server, following a task it started.
    const b = servers[1].base;
    const res = await fetch(`${b}/api/v1/session`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    userToken = (await res.json()).token;
    user = io(b, { auth: { token: userToken }, transports: ['websocket'], reconnection: false });
    await new Promise((resolve, reject) => {
      user.once('connect', resolve);
      user.once('connect_error', reject);
    });
    const created = await fetch(`${b}/api/v1/tasks`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${userToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'export', params: { rows: 10 }, socketId: user.id }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(created.status, 202, await created.clone().text());
    taskId = (await created.json()).id;
    assert.ok(taskId);

    browser = await launchBrowser();
  });

  after(async () => {
    user?.close();
    await browser?.close();
    ui?.server.close();
    await killAll();
  });

  it('shows both servers, the user socket on the other server and its task room; a reload keeps the session', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${ui.origin}/`);
      await login(page, servers[0].base, 'operator', ADMIN_TOKEN);

      // Servers: both, each by "<hostname>#<pid>".
      await go(page, '#/servers/');
      await waitText(page, 'both servers', servers.map((s) => `#${s.proc.pid}`));

      // Sockets: the user's, connected to the other server.
      await go(page, '#/sockets/');
      await waitText(page, "the user's socket", [user.id]);

      // Its details: the task room among its rooms, and no token anywhere.
      await go(page, `#/n/${encodeURIComponent('/')}/sockets/${user.id}`);
      await waitText(page, "the user's task room", [`task:${taskId}`]);
      const html = await page.content();
      assert.ok(!html.includes(userToken), 'the page shows the user token');
      assert.ok(!html.includes(ADMIN_TOKEN), 'the page shows the operator token');

      // Rooms: the task room is listed.
      await go(page, '#/rooms/');
      await waitText(page, 'the task room', [`task:${taskId}`]);
      await screenshot(page, 'adminui-rooms.png');

      // A reload connects again with the session id the server gave (the
      // password is not kept by the page).
      const stored = await page.evaluate(() => ({ session: localStorage.getItem('session_id'), all: JSON.stringify(localStorage) }));
      assert.match(stored.session ?? '', /^s1\./, 'no session id stored');
      assert.ok(!stored.all.includes(ADMIN_TOKEN), 'the page stored the operator token');
      await page.reload();
      await go(page, '#/servers/');
      await waitText(page, 'both servers after a reload', servers.map((s) => `#${s.proc.pid}`));
      assert.ok(!(await text(page)).includes('Invalid credentials'));
    } catch (err) {
      await screenshot(page, 'adminui-failed.png').catch(() => {});
      throw err;
    } finally {
      await context.close();
    }
  });

  for (const [name, username, password] of [
    ['a wrong password', 'operator', `${ADMIN_TOKEN}-wrong`],
    ['no credential', '', ''],
    ["the user's token", 'operator', null],
  ]) {
    it(`refuses ${name}`, async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      try {
        await page.goto(`${ui.origin}/`);
        await login(page, servers[0].base, username, password ?? userToken);
        await waitText(page, 'the refusal', ['Invalid credentials']);
        await go(page, '#/servers/');
        const shown = await text(page);
        assert.ok(!servers.some((s) => shown.includes(`#${s.proc.pid}`)), `a refused UI shows servers:\n${shown}`);
      } finally {
        await context.close();
      }
    });
  }
});
