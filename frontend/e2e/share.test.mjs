// "Share progress": the owner's card creates a viewer link (POST
// /api/v1/tasks/<id>/viewers) and shows it with a Copy button; the link, opened in
// another browser context (no session of the owner), shows that one task live and
// read-only: no start form, no Cancel, no Clear, no Share, no download.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { killAll } from '../../e2e/lib/proc.mjs';
import { card, startExport, taskIds, trackProblems, until, waitConn, waitKinds, waitState, waitValue } from './app.mjs';
import { launchBrowser, screenshot, startStack } from './stack.mjs';

describe('share progress', { timeout: 180_000 }, () => {
  let stack;
  let browser;
  let owner;
  let page;
  let problems;
  const tails = () => stack?.tails() ?? '';

  before(async () => {
    stack = await startStack({ rowDelay: '2ms' });
    browser = await launchBrowser();
    owner = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    await owner.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.base });
    page = await owner.newPage();
    problems = trackProblems(page);
    await page.goto(stack.base + '/');
    await waitConn(page, 'connected', 20_000, tails);
    await waitKinds(page, ['export'], 20_000, tails);
  });

  after(async () => {
    await browser?.close();
    await killAll();
  });

  it('creates a viewer link that shows the one task live, read-only', async () => {
    const other = await startExport(page, 10);
    const id = await startExport(page, 3000); // about 6 s
    const probe = await page.request.post(`${stack.base}/api/v1/tasks/${id}/viewers`, { data: {} });
    assert.equal(probe.status(), 201, await probe.text());

    const c = card(page, id);
    await c.getByRole('button', { name: /^Share the progress of/ }).click();
    const input = c.locator('input.task-share-url');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    const link = new URL(await input.inputValue());
    assert.equal(link.origin, stack.base);
    assert.equal(link.pathname, '/');
    assert.equal(link.searchParams.get('task'), id);
    assert.ok(link.searchParams.get('view'), `no token in ${link}`);
    await c.getByRole('button', { name: 'Copy link' }).click();
    await until(page, 'the Copy button to say Copied', (i) =>
      document.querySelector(`li.task[data-task-id="${i}"] .task-share button`)?.textContent === 'Copied', id, 5_000, tails);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link.toString());

    // Someone else, with nothing but the link.
    const guest = await browser.newContext({ viewport: { width: 800, height: 800 } });
    const view = await guest.newPage();
    const guestProblems = trackProblems(view);
    await view.goto(link.toString());
    await waitConn(view, 'connected', 20_000, tails);
    await until(view, `the shared task ${id}`, (i) => !!document.querySelector(`li.task[data-task-id="${i}"]`), id, 15_000, tails);
    assert.deepEqual(await taskIds(view), [id], 'the viewer sees another task');
    assert.ok(!(await taskIds(view)).includes(other));
    assert.equal(await view.locator('#new-task').isVisible(), false, 'the viewer has a start form');
    const vc = card(view, id);
    await waitValue(view, id, 1, 30_000, tails);
    for (const name of [/^Cancel/, /^Share/, /^Clear/]) {
      assert.equal(await vc.getByRole('button', { name }).count(), 0, `the viewer has a ${name} button`);
    }
    await waitState(view, id, 'completed', 60_000, tails);
    assert.equal(await vc.locator('a.download').isVisible(), false, 'the viewer has a download link');
    await screenshot(view, 'share-viewer.png');
    // The owner's task ran to its end: the viewer never stopped it.
    await waitState(page, id, 'completed', 30_000, tails);
    assert.deepEqual(problems, []);
    assert.deepEqual(guestProblems, []);
    await guest.close();
  });
});
