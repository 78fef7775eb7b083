// The web app end to end: Debian's chromium (playwright-core) against the real
// taskwire-server, taskwire-worker and redis-server, each its own process.
//
// Proves: an export started from the form built from its schema moves a bar from 0
// to 100% and gives a download link whose CSV has
// the right rows; several tasks run at once; a reload and a second tab pick up a
// running task, which keeps moving; Cancel (from the keyboard) stops a task; a
// failed task shows its error; killing the server shows "reconnecting", and after
// its restart the task finishes on screen; the page works at 360 px, with
// accessible progress bars.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { killAll } from '../../e2e/lib/proc.mjs';
import {
  barValue, card, connStatus, describePage, nonDecreasing, readBar, readFill, startExport, taskIds, trackProblems,
  until, waitConn, waitKinds, waitState, waitValue, watchBar, watchFill,
} from './app.mjs';
import { launchBrowser, screenshot, startStack } from './stack.mjs';

/** cancelButton is a task's Cancel button, shown or not. */
const cancelButton = (page, id) => card(page, id).getByRole('button', { name: /^Cancel/, includeHidden: true });

/** The worker's result limit: an export of 10,000 rows (about 600 kB) exceeds it. */
const RESULT_MAX_BYTES = 400_000;
/**
 * The worker's delay per row: an export of 6,000 rows (the most that fits under the
 * limit, with room to spare) lasts about 12 s, which is what a reload and a second tab
 * have to pick it up while it runs, however slow the machine. The other tests size
 * their exports from it.
 */
const ROW_DELAY = '2ms';

describe('web app', { timeout: 300_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startStack>>} */
  let stack;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('playwright-core').BrowserContext} */
  let context;
  /** @type {import('playwright-core').Page} */
  let page;
  let problems;
  /** URLs of the websockets the page opened. */
  const websockets = [];
  const tails = () => stack?.tails() ?? '';

  before(async () => {
    // Exports of up to ~6,500 rows fit under the limit; 10,000 rows fail.
    stack = await startStack({ resultMaxBytes: RESULT_MAX_BYTES, rowDelay: ROW_DELAY });
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1100, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    problems = trackProblems(page);
    page.on('websocket', (ws) => websockets.push(ws.url()));
    await page.goto(stack.base + '/');
    await waitConn(page, 'connected', 20_000, tails);
    await waitKinds(page, ['export'], 20_000, tails);
  });

  after(async () => {
    await browser?.close();
    await killAll();
  });

  it('exports: the bar goes from 0 to 100% and the link downloads the CSV with every row', async () => {
    const rows = 1500; // 3 s
    const id = await startExport(page, rows);
    await watchBar(page, id);
    await watchFill(page, id);
    await waitState(page, id, 'completed', 60_000, tails);

    // The fill is where its label says, at every change of the label (read in the
    // same task as the change, so a lagging fill shows).
    const fills = await readFill(page, id);
    assert.ok(fills.length >= 3, `the label changed only ${fills.length} times`);
    for (const f of fills) {
      assert.ok(Math.abs(f.fill - parseFloat(f.label)) < 0.6, `the bar is filled to ${f.fill.toFixed(2)}% under the label ${f.label}`);
    }
    assert.equal(fills.at(-1).label, '100%');

    const seen = await readBar(page, id);
    assert.ok(nonDecreasing(seen), `the bar went backwards: ${seen}`);
    assert.equal(seen.at(-1), 100, `the bar ended at ${seen.at(-1)}`);
    assert.ok(seen.some((v) => v > 0 && v < 100), `the bar never showed progress between 0 and 100: ${seen}`);

    // The events came over a websocket (the polling transport upgraded, and the
    // page's Content-Security-Policy allowed it).
    assert.ok(websockets.some((u) => u.includes('/socket.io/') && u.includes('transport=websocket')),
      `no Socket.IO websocket was opened: ${websockets}`);

    const c = card(page, id);
    const bar = c.getByRole('progressbar');
    assert.equal(await bar.getAttribute('aria-valuemin'), '0');
    assert.equal(await bar.getAttribute('aria-valuemax'), '100');
    assert.match(await c.innerText(), /1,500 of 1,500 rows/);

    const link = c.getByRole('link', { name: /^Download .*\.csv/ });
    const text = await c.locator('.result-info').innerText();
    assert.match(text, /^CSV · \d+(\.\d)? kB · 1,500 rows$/, `result info ${JSON.stringify(text)}`);
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), link.click()]);
    const file = await download.path();
    const csv = fs.readFileSync(file, 'utf8');
    const lines = csv.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, rows + 1, `the CSV has ${lines.length} lines, want a header and ${rows} rows`);
    assert.match(lines[0], /^[a-z_]+(,[a-z_]+)+$/, `header ${lines[0]}`);
    assert.match(download.suggestedFilename(), /\.csv$/);

    // The size on the link is the size of the file.
    const rec = await (await page.request.get(`${stack.base}/api/v1/tasks/${id}`)).json();
    assert.equal(rec.result.bytes, Buffer.byteLength(csv));
    const kB = rec.result.bytes / 1000;
    assert.ok(text.includes(kB < 10 ? kB.toFixed(1) : String(Math.round(kB))), `link ${text} vs ${rec.result.bytes} bytes`);
  });

  it('runs several exports at once; a reload and a second tab pick them up and they keep moving', async () => {
    // Task a (6,000 rows) lasts about 12 s, and both pick-ups must happen while it
    // runs: the second tab is made before the exports start, so that only its
    // navigation is on the clock, and it loads while the first tab reloads.
    const tab2 = await context.newPage();
    const problems2 = trackProblems(tab2);
    const a = await startExport(page, 6000);
    const b = await startExport(page, 5000);
    await waitValue(page, a, 5, 30_000, tails);
    await until(page, 'both tasks running at once', ([x, y]) =>
      [x, y].every((i) => document.querySelector(`li.task[data-task-id="${i}"]`)?.dataset.state === 'running'), [a, b], 10_000, tails);

    const before = await barValue(page, a);
    assert.ok(before > 0 && before < 100, `task a at ${before}% before the reload`);
    const pickUp = async (p, what, load) => {
      await load();
      await until(p, `task ${a} in the ${what}`, (i) => !!document.querySelector(`li.task[data-task-id="${i}"]`), a, 10_000, tails);
      await watchBar(p, a);
    };
    await Promise.all([
      pickUp(page, 'reloaded tab', () => page.reload()),
      pickUp(tab2, 'second tab', () => tab2.goto(stack.base + '/')),
    ]);
    const [first] = await readBar(page, a); // the bar when the card reappeared
    assert.ok(first >= before, `after the reload the bar starts lower (${first}%) than it was (${before}%)`);
    assert.deepEqual((await taskIds(page)).slice(0, 2), [b, a], 'newest first');

    await Promise.all([waitState(page, a, 'completed', 60_000, tails), waitState(tab2, a, 'completed', 60_000, tails)]);
    await waitState(page, b, 'completed', 60_000, tails);
    for (const [name, p] of [['reloaded tab', page], ['second tab', tab2]]) {
      const seen = await readBar(p, a);
      assert.ok(nonDecreasing(seen), `${name}: the bar went backwards: ${seen}`);
      assert.ok(seen.some((v) => v > before && v < 100), `${name}: no live progress after it opened: ${seen}`);
      assert.equal(seen.at(-1), 100);
    }
    assert.deepEqual(problems2, []);
    await tab2.close();
  });

  it('cancels a running export from the keyboard', async () => {
    const id = await startExport(page, 100_000);
    await waitValue(page, id, 1, 30_000, tails);

    // Tab through the page to this task's Cancel button, as a keyboard user would.
    await page.evaluate(() => (document.activeElement instanceof HTMLElement ? document.activeElement.blur() : undefined));
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate((t) => {
        const el = document.activeElement;
        return el?.tagName === 'BUTTON' && el.closest('li.task')?.dataset.taskId === t;
      }, id);
    }
    assert.ok(reached, `Tab never reached the Cancel button of ${id}\n${await describePage(page)}`);
    await page.keyboard.press('Enter');

    await waitState(page, id, 'cancelled', 10_000, tails);
    assert.match(await card(page, id).innerText(), /Cancelled/);
    assert.ok(await cancelButton(page, id).isHidden(), 'Cancel is still offered');
    const rec = await (await page.request.get(`${stack.base}/api/v1/tasks/${id}`)).json();
    assert.equal(rec.state, 'cancelled');
    assert.ok(rec.done < rec.total, `it ran to the end (${rec.done}/${rec.total}) instead of stopping`);
    // Keyboard focus stays on the card rather than falling back to the page.
    assert.equal(await page.evaluate(() => document.activeElement?.closest('li.task')?.dataset.taskId), id);
  });

  it('shows why an export failed', async () => {
    const id = await startExport(page, 10_000); // over the worker's limit
    await waitState(page, id, 'failed', 60_000, tails);
    const c = card(page, id);
    const alert = c.getByRole('alert');
    assert.match(await alert.innerText(), /larger than the (result size )?limit/);
    assert.equal(await c.locator('.badge').innerText(), 'Failed');
    assert.equal(await c.getByRole('link', { name: /Download/ }).count(), 0, 'a failed export offers a download');
    assert.ok(await cancelButton(page, id).isHidden(), 'a failed export can still be cancelled');
    const rec = await (await page.request.get(`${stack.base}/api/v1/tasks/${id}`)).json();
    assert.equal(rec.error.code, 'result_too_large');
  });

  it('shows reconnecting while the server is down, then the task finishes on screen', async () => {
    const id = await startExport(page, 3000); // 6 s
    await waitValue(page, id, 10, 30_000, tails);
    await stack.killServer();
    await waitConn(page, 'reconnecting', 15_000, tails);
    assert.ok(await page.locator('#paused').isVisible(), 'no "live updates paused" note while disconnected');
    const during = await barValue(page, id);

    await stack.startServer();
    await waitConn(page, 'connected', 30_000, tails);
    await waitState(page, id, 'completed', 60_000, tails);
    assert.equal(await barValue(page, id), 100);
    assert.ok(during < 100, 'the task was already done when the server went away');
    assert.ok(await card(page, id).getByRole('link', { name: /^Download .*\.csv/ }).isVisible());
    assert.equal(await connStatus(page), 'connected');
    assert.ok(!(await page.locator('#paused').isVisible()));
    await screenshot(page, 'finished.png');
  });

  it('is readable at 360 px and its progress bars are accessible', async () => {
    const small = await context.newPage();
    const problems3 = trackProblems(small);
    await small.setViewportSize({ width: 360, height: 780 });
    await small.goto(stack.base + '/');
    await waitConn(small, 'connected', 15_000, tails);
    await until(small, 'the task list', () => document.querySelectorAll('li.task').length >= 6, undefined, 10_000, tails);
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the 360 px screen`);
    const bars = await small.evaluate(() => [...document.querySelectorAll('[role="progressbar"]')].map((b) => ({
      now: b.getAttribute('aria-valuenow'),
      min: b.getAttribute('aria-valuemin'),
      max: b.getAttribute('aria-valuemax'),
      name: (b.getAttribute('aria-labelledby') ?? '').split(' ').map((i) => document.getElementById(i)?.textContent ?? '').join(' '),
    })));
    assert.ok(bars.length >= 6);
    for (const b of bars) {
      assert.ok(/^\d+$/.test(b.now ?? '') && b.min === '0' && b.max === '100', `bar ${JSON.stringify(b)}`);
      // The kind's title, then what tells the cards apart: start time and params.
      assert.match(b.name, /^\S.* Started \d\d:\d\d:\d\d · rows [\d,]+$/);
    }
    await screenshot(small, 'finished-360.png');
    assert.deepEqual(problems3, []);
    await small.close();
    assert.deepEqual(problems, [], 'page errors or blocked requests');
  });
});
