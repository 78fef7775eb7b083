// A kind of the user's own in the browser: the example worker of the SDK
// (worker/examples/primes, kind "primes") next to taskwire-worker. Its start form
// is built from the schema the worker registered; started from it, the task shows
// live progress, its "counts" stream as a chart that grows, its metadata, and ends
// completed with its JSON result.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { killAll } from '../../e2e/lib/proc.mjs';
import { card, startTask, trackProblems, until, waitConn, waitKinds, waitState, waitValue } from './app.mjs';
import { launchBrowser, screenshot, startStack } from './stack.mjs';

/** The example's pace: 40 segments of 50 ms, about 2 s of sieving. */
const SEGMENTS = 40;
const PRIMES_ENV = { PRIMES_SEGMENT_DELAY: '50ms' };

describe('the example kind primes, from the browser', { timeout: 180_000 }, () => {
  let stack;
  let browser;
  let page;
  let problems;
  const tails = () => stack?.tails() ?? '';

  before(async () => {
    stack = await startStack({ primesEnv: PRIMES_ENV });
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    page = await context.newPage();
    problems = trackProblems(page);
    await page.goto(stack.base + '/');
    await waitConn(page, 'connected', 20_000, tails);
    await waitKinds(page, ['export', 'primes'], 30_000, tails);
  });

  after(async () => {
    await browser?.close();
    await killAll();
  });

  it('starts from its generated form, streams live, and completes with its JSON result', async () => {
    const id = await startTask(page, 'primes', { limit: 1000000, segments: SEGMENTS });
    const c = card(page, id);
    // Live: the bar moves while the task runs, and the chart grows under it.
    await waitValue(page, id, 1, 30_000, tails);
    await until(page, `task ${id}'s counts chart while it runs`, (i) => {
      const li = document.querySelector(`li.task[data-task-id="${i}"]`);
      const svg = li?.querySelector('.stream[data-stream="counts"] svg.chart');
      return li?.dataset.state === 'running' && Number(svg?.getAttribute('data-points') ?? 0) > 0;
    }, id, 30_000, tails);
    await waitState(page, id, 'completed', 60_000, tails);

    assert.equal(await c.locator('[role="progressbar"]').getAttribute('aria-valuenow'), '100');
    await until(page, `all ${SEGMENTS} items of the counts stream`, ([i, n]) =>
      Number(document.querySelector(`li.task[data-task-id="${i}"] .stream[data-stream="counts"]`)?.getAttribute('data-count')) === n,
    [id, SEGMENTS], 15_000, tails);
    const details = c.locator('details.result-json');
    await details.locator('summary').click();
    assert.deepEqual(JSON.parse(await details.locator('pre').innerText()), { limit: 1000000, count: 78498, largest: 999983 });
    await screenshot(page, 'primes.png');
    assert.deepEqual(problems, [], 'the page logged errors');
  });
});
