// Nothing missed, end to end: Debian's chromium against the real taskwire-server,
// taskwire-worker and redis-server, each its own process.
//
// Proves: a task that finished while its owner had no tab open shows under the bell
// on the next visit, and opening the list sets its seenAt; a tab that got a task's
// final event sets its deliveredAt, and the task shows under the bell live; a server
// restart in the middle of a training run leaves no hole in its streams: the page
// resumes from the last seq it held (task:subscribe with since) and gets the events
// it missed from the server's history, without reading the streams over HTTP.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { killAll } from '../../e2e/lib/proc.mjs';
import { card, startExport, startTask, trackProblems, until, waitConn, waitKinds, waitState } from './app.mjs';
import { launchBrowser, screenshot, startStack } from './stack.mjs';

/** train's 40 epochs last about 8 s: long enough to restart the server in the middle. */
const WORKER_ENV = { TRAIN_EPOCH_DELAY: '200ms' };
const EPOCHS = 40;

/** record reads a task's record with the identity of request (a context's or a page's). */
async function record(request, base, id) {
  const res = await request.get(`${base}/api/v1/tasks/${id}`);
  assert.equal(res.status(), 200, `GET task ${id}: ${res.status()} ${await res.text()}`);
  return res.json();
}

/** recordWhen polls a task's record until pred holds, for at most timeoutMs. */
async function recordWhen(request, base, id, pred, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await record(request, base, id);
    if (pred(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; record: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** bellCount returns the number the bell says (data-count), or -1 without a bell. */
function bellCount(page) {
  return page.evaluate(() => Number(document.querySelector('#notices-button')?.dataset.count ?? -1));
}

/** waitBell waits until the bell counts n and lists nothing hidden from it. */
function waitBell(page, n, timeoutMs, extra) {
  return until(page, `the bell to count ${n}`, (want) => {
    const b = document.querySelector('#notices-button');
    const badge = document.querySelector('#notices-count');
    if (!b || b.hidden || Number(b.dataset.count) !== want) return false;
    return want === 0 ? badge.hidden : !badge.hidden && badge.textContent === String(want);
  }, n, timeoutMs, extra);
}

describe('web app: nothing missed', { timeout: 300_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startStack>>} */
  let stack;
  /** @type {import('playwright-core').Browser} */
  let browser;
  const tails = () => stack?.tails() ?? '';

  before(async () => {
    stack = await startStack({ rowDelay: '1ms', workerEnv: WORKER_ENV });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await killAll();
  });

  it('a task that finished with no tab open shows under the bell on the next visit; opening the list sets seenAt', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    try {
      // The owner's identity, with no tab: start a task over HTTP and let it finish.
      const req = context.request;
      const session = await req.get(`${stack.base}/api/v1/session`);
      assert.equal(session.status(), 200, `GET /api/v1/session: ${session.status()}`);
      const created = await req.post(`${stack.base}/api/v1/tasks`, { data: { kind: 'export', params: { rows: 300 } } });
      assert.equal(created.status(), 202, `POST /api/v1/tasks: ${created.status()} ${await created.text()}`);
      const { id } = await created.json();
      const done = await recordWhen(req, stack.base, id, (r) => r.state === 'completed', `task ${id} to complete`);
      assert.equal(done.deliveredAt, undefined, 'deliveredAt is set, but no socket had the task');
      assert.equal(done.seenAt, undefined, 'seenAt is set, but nobody saw the task');
      const inbox = await req.get(`${stack.base}/api/v1/inbox`);
      assert.equal(inbox.status(), 200, `GET /api/v1/inbox: ${inbox.status()} ${await inbox.text()}`);

      // The next visit: the bell says 1, and nothing is marked seen until the list is opened.
      const page = await context.newPage();
      const problems = trackProblems(page);
      await page.goto(stack.base + '/');
      await waitConn(page, 'connected', 20_000, tails);
      await waitBell(page, 1, 15_000, tails);
      assert.equal((await record(req, stack.base, id)).seenAt, undefined, 'seenAt is set before the list was opened');
      await screenshot(page, 'inbox-bell.png');

      await page.locator('#notices-button').click();
      const item = page.locator(`#notices-list li.notice[data-task-id="${id}"]`);
      await item.waitFor({ state: 'visible', timeout: 5_000 });
      assert.match(await item.innerText(), /completed/i);
      assert.equal(await page.locator('#notices-button').getAttribute('aria-expanded'), 'true');
      await screenshot(page, 'inbox-list.png');
      const seen = await recordWhen(req, stack.base, id, (r) => typeof r.seenAt === 'string', `task ${id}'s seenAt`, 10_000);
      assert.ok(Date.parse(seen.seenAt) >= Date.parse(seen.finishedAt), `seenAt ${seen.seenAt} before finishedAt ${seen.finishedAt}`);
      await waitBell(page, 0, 10_000, tails);

      // The entry leads to the task's card; a reload brings nothing back under the bell.
      await item.locator('button').click();
      assert.equal(await page.locator('#notices-panel').isHidden(), true, 'the list stays open after choosing an entry');
      await page.reload();
      await waitConn(page, 'connected', 20_000, tails);
      await until(page, 'the task card after the reload', (i) => !!document.querySelector(`li.task[data-task-id="${i}"]`), id, 10_000, tails);
      assert.equal(await bellCount(page), 0, 'the bell counts a task already seen');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a tab that gets the final event sets deliveredAt, and the task shows under the bell live', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    try {
      const page = await context.newPage();
      const problems = trackProblems(page);
      await page.goto(stack.base + '/');
      await waitConn(page, 'connected', 20_000, tails);
      await waitKinds(page, ['export'], 20_000, tails);
      await waitBell(page, 0, 10_000, tails);
      const id = await startExport(page, 500);
      await waitState(page, id, 'completed', 60_000, tails);
      const r = await recordWhen(page.request, stack.base, id, (x) => typeof x.deliveredAt === 'string', `task ${id}'s deliveredAt`, 10_000);
      assert.ok(Date.parse(r.deliveredAt) >= Date.parse(r.finishedAt), `deliveredAt ${r.deliveredAt} before finishedAt ${r.finishedAt}`);
      assert.equal(r.seenAt, undefined, 'seenAt is set, but the list was not opened');

      // inbox:item: the bell counts it at once, and opening the list marks it seen.
      await waitBell(page, 1, 10_000, tails);
      await page.locator('#notices-button').click();
      await recordWhen(page.request, stack.base, id, (x) => typeof x.seenAt === 'string', `task ${id}'s seenAt`, 10_000);
      await waitBell(page, 0, 10_000, tails);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a server restart mid-task leaves no hole in the streams: the page resumes from the seq it held', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    try {
      const page = await context.newPage();
      const problems = trackProblems(page);
      // The streams may come only from the socket: a hole could not be filled over HTTP.
      const streamReads = [];
      await page.route('**/api/v1/tasks/*/streams/**', (route) => {
        streamReads.push(route.request().url());
        return route.abort();
      });
      // The task:subscribe requests the page sends, over WebSocket or HTTP long-polling
      // (Socket.IO packets 42<ack id>["task:subscribe",{...}], several a request).
      const subscribes = [];
      const note = (payload) => {
        for (const packet of String(payload ?? '').split('\x1e')) {
          const m = /^42\d*(\[.*\])$/s.exec(packet);
          if (!m) continue;
          try {
            const [name, req] = JSON.parse(m[1]);
            if (name === 'task:subscribe') subscribes.push(req);
          } catch {
            // not an event packet
          }
        }
      };
      page.on('websocket', (ws) => ws.on('framesent', (f) => note(f.payload)));
      page.on('request', (r) => {
        if (r.method() === 'POST' && r.url().includes('/socket.io/')) note(r.postData());
      });
      await page.goto(stack.base + '/');
      await waitConn(page, 'connected', 20_000, tails);
      await waitKinds(page, ['train'], 20_000, tails);
      const id = await startTask(page, 'train', { epochs: EPOCHS, samples: 500 });
      const points = () => page.evaluate((i) => {
        const svg = document.querySelector(`li.task[data-task-id="${i}"] .stream[data-stream="metrics"] svg.chart`);
        return svg ? Number(svg.getAttribute('data-points')) : -1;
      }, id);
      await until(page, 'a few epochs on the chart', (i) => {
        const svg = document.querySelector(`li.task[data-task-id="${i}"] .stream[data-stream="metrics"] svg.chart`);
        return svg && Number(svg.getAttribute('data-points')) >= 4;
      }, id, 30_000, tails);

      // The server goes away while the task runs on; the worker keeps emitting.
      await stack.killServer();
      await waitConn(page, 'reconnecting', 15_000, tails);
      const before = await points();
      await new Promise((r) => setTimeout(r, 2_000)); // about 10 epochs the page does not see
      await stack.startServer();
      await waitConn(page, 'connected', 30_000, tails);

      await waitState(page, id, 'completed', 60_000, tails);
      const done = await record(page.request, stack.base, id);
      assert.equal(done.streams.metrics, EPOCHS);
      await until(page, `${EPOCHS} points on the chart`, ([i, n]) => {
        const svg = document.querySelector(`li.task[data-task-id="${i}"] .stream[data-stream="metrics"] svg.chart`);
        return svg && Number(svg.getAttribute('data-points')) === n;
      }, [id, EPOCHS], 15_000, tails);
      const c = card(page, id);
      assert.equal(Number(await c.locator('.stream[data-stream="metrics"]').getAttribute('data-count')), EPOCHS);
      assert.equal(Number(await c.locator('.stream[data-stream="log"]').getAttribute('data-count')), done.streams.log, 'the log has a hole');
      assert.ok(before < EPOCHS, `the task had finished (${before} points) before the restart`);
      assert.deepEqual(streamReads, [], 'the page read streams over HTTP: the resume left a hole');
      const resumed = subscribes.filter((s) => s.taskId === id && typeof s.since === 'number' && s.since > 0);
      assert.ok(resumed.length >= 1, `no task:subscribe with since after the restart: ${JSON.stringify(subscribes)}`);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
