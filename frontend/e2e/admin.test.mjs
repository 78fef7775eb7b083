// The operator dashboard end to end: Debian's chromium (playwright-core) against the
// real taskwire-server (with ADMIN_TOKEN), taskwire-worker and redis-server.
//
// Proves: the page at /admin/, opened with the operator credential, lists a running
// task and the worker that runs it (pushed over the operator namespace); Cancel on the
// page reaches the worker (the running task ends cancelled, as its worker reports);
// Retry of a failed task runs it again (a new attempt, failed again, on screen); a user
// token gets 403 on every operator route, and the page refuses it; the operator
// namespace refuses user tokens.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { io } from 'socket.io-client';

import { killAll } from '../../e2e/lib/proc.mjs';
import { describePage, trackProblems } from './app.mjs';
import { launchBrowser, screenshot, startStack } from './stack.mjs';

const ADMIN_TOKEN = 'e2e-operator-token-0123456789abcdef-0123';

/** Every route of the operator API (:id is a real task's). */
const ROUTES = [
  ['GET', 'queue'], ['GET', 'workers'], ['GET', 'servers'], ['GET', 'tasks'], ['GET', 'tasks/:id'], ['GET', 'failures'],
  ['POST', 'tasks/:id/cancel'], ['POST', 'tasks/:id/retry'], ['POST', 'purge'],
];

describe('operator dashboard', { timeout: 240_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startStack>>} */
  let stack;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('playwright-core').Page} */
  let page;
  let problems;
  let userToken;
  const tails = () => stack?.tails() ?? '';

  /** api calls the server as a user (token) and returns status and body. */
  async function api(method, path, token, body) {
    const res = await fetch(stack.base + path, {
      method,
      headers: { ...(token ? { Authorization: 'Bearer ' + token } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  }

  async function createTask(kind, params) {
    const r = await api('POST', '/api/v1/tasks', userToken, { kind, params });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.id;
  }

  /** until waits for fn(arg) in the page, failing with what the page shows. */
  async function until(what, fn, arg, timeoutMs = 30_000) {
    try {
      return await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 100 });
    } catch (err) {
      const rows = await page.evaluate(() => [...document.querySelectorAll('tr.ops-task, tr.ops-worker')]
        .map((r) => r.innerText.replace(/\s+/g, ' ')).join('\n')).catch(() => '');
      throw new Error(`timed out waiting for ${what}\n${rows}\n${await describePage(page)}\n${tails()}`, { cause: err });
    }
  }

  const rowState = (id) => until(`task ${id} on the page`, (i) => document.querySelector(`tr.ops-task[data-task-id="${i}"]`)?.dataset.state, id);
  const waitRowState = (id, want) => until(`task ${id} ${want} on the page`,
    ([i, w]) => document.querySelector(`tr.ops-task[data-task-id="${i}"]`)?.dataset.state === w, [id, want], 60_000);

  before(async () => {
    stack = await startStack({
      serverEnv: { ADMIN_TOKEN },
      // Exports beyond a few hundred rows fail (result_too_large); train runs
      // long enough (an epoch per 200 ms) to be seen running and cancelled.
      resultMaxBytes: 20_000,
      workerEnv: { TRAIN_EPOCH_DELAY: '200ms' },
    });
    const s = await api('GET', '/api/v1/session');
    userToken = s.body.token;
    assert.ok(userToken, 'a user session');
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    page = await context.newPage();
    problems = trackProblems(page);
  });

  after(async () => {
    if (page) await screenshot(page, 'admin.png').catch(() => {});
    await browser?.close();
    await killAll();
  });

  it('refuses a user token on every operator route, and on the operator namespace', async () => {
    const id = await createTask('export', { rows: 10 });
    for (const [method, route] of ROUTES) {
      const path = '/api/v1/admin/' + route.replace(':id', id);
      const r = await api(method, path, userToken);
      assert.equal(r.status, 403, `${method} ${path} with a user token: ${JSON.stringify(r.body)}`);
      assert.equal(r.body?.error?.code, 'forbidden');
      const cookie = await fetch(stack.base + path, { method, headers: { Cookie: 'taskwire_session=' + userToken } });
      assert.equal(cookie.status, 403, `${method} ${path} with the session cookie`);
      const none = await api(method, path, '');
      assert.equal(none.status, 401, `${method} ${path} without a credential`);
    }
    // The operator namespace: a user token is refused at its middleware.
    const sock = io(stack.base + '/operator', { auth: { token: userToken }, transports: ['websocket'], reconnection: false });
    const err = await new Promise((resolve, reject) => {
      sock.on('connect', () => reject(new Error('a user token connected to the operator namespace')));
      sock.on('connect_error', resolve);
    });
    sock.close();
    assert.equal(err.data?.code, 'unauthorized');

    // The page says so too, and keeps nothing.
    await page.goto(stack.base + '/admin/');
    await page.locator('#token').fill(userToken);
    await page.getByRole('button', { name: 'Open' }).click();
    await until('the page to refuse the user token', () => /user token/.test(document.querySelector('#login-error')?.textContent ?? ''));
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  });

  it('lists a running task and its worker, live, and a cancel from the page reaches the worker', async () => {
    await page.goto(stack.base + '/admin/');
    await page.locator('#token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Open' }).click();
    await until('the live indicator', () => document.querySelector('#conn')?.dataset.status === 'connected');
    await until('a worker on the page', () => document.querySelectorAll('tr.ops-worker').length > 0);
    const id = await createTask('train', { epochs: 500 });
    // It appears without a reload (pushed), then runs.
    await rowState(id);
    await waitRowState(id, 'running');
    await until(`the worker to list ${id} as running`,
      (i) => [...document.querySelectorAll('tr.ops-worker .running-id')].some((c) => c.textContent.trim() === i), id);
    const row = page.locator(`tr.ops-task[data-task-id="${id}"]`);
    assert.match(await row.innerText(), /train/);

    await row.locator('button[data-action="cancel"]').click();
    await waitRowState(id, 'cancelled');
    // The worker stopped it: the record says cancelled after one attempt that ran.
    const r = await api('GET', '/api/v1/tasks/' + id, userToken);
    assert.equal(r.body.state, 'cancelled');
    assert.equal(r.body.attempts, 1);
    assert.ok(r.body.startedAt, 'it had started on the worker');
    await until(`the worker to run ${id} no more`,
      (i) => ![...document.querySelectorAll('tr.ops-worker .running-id')].some((c) => c.textContent.trim() === i), id);
    // The token was asked once: a reload opens the dashboard at once.
    await page.reload();
    await until('the dashboard after a reload', () => document.querySelector('#conn')?.dataset.status === 'connected');
  });

  it('retries a failed task from the page: it runs again', async () => {
    const id = await createTask('export', { rows: 5000 });
    await rowState(id);
    await waitRowState(id, 'failed');
    let r = await api('GET', '/api/v1/tasks/' + id, userToken);
    const attempts = r.body.attempts;
    assert.equal(r.body.error?.code, 'result_too_large');
    await until('the failure group', () => !!document.querySelector('tr.ops-failure[data-code="result_too_large"]'));

    await page.locator(`tr.ops-task[data-task-id="${id}"] button[data-action="retry"]`).click();
    await until(`task ${id} to leave failed`,
      (i) => document.querySelector(`tr.ops-task[data-task-id="${i}"]`)?.dataset.state !== 'failed', id);
    await waitRowState(id, 'failed');
    r = await api('GET', '/api/v1/tasks/' + id, userToken);
    assert.equal(r.body.attempts, attempts + 1, `a new attempt ran: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error?.code, 'result_too_large');
    const row = await page.locator(`tr.ops-task[data-task-id="${id}"]`).innerText();
    assert.match(row, /1 retry/);
    await until('the failure group again', () => !!document.querySelector('tr.ops-failure[data-code="result_too_large"]'));
    assert.deepEqual(problems, []);
  });
});
