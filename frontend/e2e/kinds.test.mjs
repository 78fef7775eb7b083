// The web app for any kind, end to end: Debian's chromium against the real
// taskwire-server, taskwire-worker (with its three kinds: export, report, train) and
// redis-server.
//
// Proves: the start form is built from each kind's schema (bounds, defaults, help);
// an out-of-bounds value is refused at its field, by the page's own check and by the
// server's validator; train's loss chart and log tail grow live, a reload mid-task
// brings the whole stream back, and the model shows as JSON; report walks its stages
// with messages and metadata and gives a PDF; export's card says its params; the
// page fits 360 px; finished cards can be cleared, one or all, and stay cleared
// after a reload.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { killAll } from '../../e2e/lib/proc.mjs';
import { card, fillParams, readFill, startTask, taskIds, trackProblems, until, waitConn, waitKinds, waitState, watchFill } from './app.mjs';
import { launchBrowser, screenshot, startStack } from './stack.mjs';

/**
 * Delays of the worker's kinds, so a task lasts long enough to reload while it
 * runs, however slow the machine: train's 40 epochs last about 8 s, report's pages
 * a few seconds, an export of 20,000 rows 20 s.
 */
const WORKER_ENV = { TRAIN_EPOCH_DELAY: '200ms', REPORT_PAGE_DELAY: '300ms' };
const EPOCHS = 40;

/** record reads a task's record over the page's session. */
async function record(page, base, id) {
  const res = await page.request.get(`${base}/api/v1/tasks/${id}`);
  assert.equal(res.status(), 200, `GET task ${id}: ${res.status()}`);
  return res.json();
}

/** chartPoints returns how many items a card's chart of stream draws (-1: no chart). */
function chartPoints(page, id, stream) {
  return page.evaluate(([i, s]) => {
    const svg = document.querySelector(`li.task[data-task-id="${i}"] .stream[data-stream="${s}"] svg.chart`);
    return svg ? Number(svg.getAttribute('data-points')) : -1;
  }, [id, stream]);
}

/** waitPoints waits until a card's chart of stream draws at least min items. */
function waitPoints(page, id, stream, min, timeoutMs, extra) {
  return until(page, `task ${id}'s ${stream} chart to draw ${min} points`, ([i, s, m]) => {
    const svg = document.querySelector(`li.task[data-task-id="${i}"] .stream[data-stream="${s}"] svg.chart`);
    return svg && Number(svg.getAttribute('data-points')) >= m;
  }, [id, stream, min], timeoutMs, extra);
}

describe('web app: kinds from the workers', { timeout: 300_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startStack>>} */
  let stack;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('playwright-core').BrowserContext} */
  let context;
  /** @type {import('playwright-core').Page} */
  let page;
  let problems;
  const tails = () => stack?.tails() ?? '';

  before(async () => {
    stack = await startStack({ rowDelay: '1ms', workerEnv: WORKER_ENV });
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1100, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    problems = trackProblems(page);
    await page.goto(stack.base + '/');
    await waitConn(page, 'connected', 20_000, tails);
    await waitKinds(page, ['export'], 20_000, tails);
  });

  /** need fails the test at once, saying so, when the workers do not serve kind. */
  async function need(...kinds) {
    try {
      await waitKinds(page, kinds, 10_000, tails);
    } catch {
      assert.fail(`the worker does not serve ${kinds.join(', ')}: GET /api/v1/kinds lists only ` +
        (await page.evaluate(() => [...document.querySelectorAll('input[name="kind"]')].map((i) => i.value).join(', '))));
    }
  }

  after(async () => {
    await browser?.close();
    await killAll();
  });

  it('builds each start form from the kind\'s schema', async () => {
    await need('export', 'report', 'train');
    const kinds = (await (await page.request.get(`${stack.base}/api/v1/kinds`)).json()).kinds;
    for (const name of ['export', 'report', 'train']) {
      const k = kinds.find((x) => x.name === name);
      assert.ok(k, `GET /api/v1/kinds has no ${name}`);
      await page.locator(`input[name="kind"][value="${name}"]`).check();
      const form = page.locator(`.kind-form[data-kind="${name}"]`);
      await form.waitFor({ state: 'visible', timeout: 5_000 });
      for (const [prop, s] of Object.entries(k.paramsSchema.properties)) {
        const field = form.locator(`.field[data-field="${prop}"]`);
        assert.equal(await field.count(), 1, `${name}: no field for ${prop}`);
        if (s.type === 'integer' || s.type === 'number') {
          const input = field.locator('input[type="number"]');
          if (s.minimum !== undefined) assert.equal(Number(await input.getAttribute('min')), s.minimum, `${name}.${prop} min`);
          if (s.maximum !== undefined) assert.equal(Number(await input.getAttribute('max')), s.maximum, `${name}.${prop} max`);
          if (s.default !== undefined) assert.equal(Number(await input.inputValue()), s.default, `${name}.${prop} default`);
          assert.equal(await input.getAttribute('step'), s.type === 'integer' ? '1' : 'any');
        } else if (s.type === 'string' && !s.enum) {
          const input = field.locator('input[type="text"]');
          if (s.maxLength !== undefined) assert.equal(Number(await input.getAttribute('maxlength')), s.maxLength);
          if (s.default !== undefined) assert.equal(await input.inputValue(), s.default);
        }
        if (s.description) assert.match(await field.locator('.hint').innerText(), new RegExp(s.description.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      }
      assert.match(await page.locator('#start').innerText(), /^Start /);
    }
  });

  it('refuses an out-of-bounds value at its field: the page\'s check, then the server\'s', async () => {
    await need('report');
    const before = await taskIds(page);
    await fillParams(page, 'report', { countries: 99 });
    await page.locator('#start').click();
    const error = page.locator('.kind-form[data-kind="report"] [data-field-error="countries"]');
    await until(page, 'the field error of countries', () =>
      !!document.querySelector('.kind-form[data-kind="report"] [data-field-error="countries"]')?.textContent, undefined, 5_000, tails);
    assert.match(await error.innerText(), /1 to 50/);
    assert.equal(await page.locator('.kind-form[data-kind="report"] .field[data-field="countries"] input').getAttribute('aria-invalid'), 'true');
    assert.deepEqual(await taskIds(page), before, 'a task was started with a value out of bounds');

    // A page whose copy of the schema is looser lets the value through: the server's
    // validator refuses it, and its detail lands at the same field.
    const tab = await context.newPage();
    await tab.route('**/api/v1/kinds', async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      for (const k of body.kinds) if (k.name === 'report') k.paramsSchema.properties.countries.maximum = 1000;
      await route.fulfill({ response: res, json: body });
    });
    await tab.goto(stack.base + '/');
    await waitKinds(tab, ['report'], 20_000, tails);
    const posts = [];
    tab.on('response', (r) => { if (r.url().endsWith('/api/v1/tasks') && r.request().method() === 'POST') posts.push(r.status()); });
    await fillParams(tab, 'report', { countries: 99 });
    await tab.locator('#start').click();
    await until(tab, 'the server\'s field error of countries', () =>
      !!document.querySelector('.kind-form[data-kind="report"] [data-field-error="countries"]')?.textContent, undefined, 10_000, tails);
    assert.deepEqual(posts, [400], 'the page did not ask the server');
    const text = await tab.locator('.kind-form[data-kind="report"] [data-field-error="countries"]').innerText();
    assert.ok(text.length > 0 && !/1 to 1,000/.test(text), `the field shows ${JSON.stringify(text)}, not the server's detail`);
    await tab.close();
  });

  it('train: the loss chart grows live, a reload mid-task brings the whole stream back, the model shows as JSON', async () => {
    await need('train');
    const id = await startTask(page, 'train', { epochs: EPOCHS, samples: 500 });
    await waitPoints(page, id, 'metrics', 3, 30_000, tails);
    const early = await chartPoints(page, id, 'metrics');
    await waitPoints(page, id, 'metrics', early + 2, 15_000, tails);
    const c = card(page, id);
    const series = await c.locator('.stream[data-stream="metrics"] polyline').evaluateAll((ls) => ls.map((l) => l.getAttribute('data-series')));
    assert.ok(series.includes('loss'), `the chart draws ${series}, not loss`);
    assert.ok(await c.locator('.stream[data-stream="log"] pre.stream-tail').isVisible(), 'no tail of the log stream');

    // Reload while it runs: the chart comes back with every item so far, then goes on.
    const mid = await record(page, stack.base, id);
    assert.equal(mid.state, 'running', `train finished before the reload (${mid.state})`);
    await page.reload();
    await waitConn(page, 'connected', 20_000, tails);
    await until(page, 'the train card after the reload', (i) => !!document.querySelector(`li.task[data-task-id="${i}"]`), id, 10_000, tails);
    await waitPoints(page, id, 'metrics', mid.streams.metrics, 15_000, tails);
    await waitState(page, id, 'completed', 60_000, tails);
    await waitPoints(page, id, 'metrics', EPOCHS, 10_000, tails);
    assert.equal(await chartPoints(page, id, 'metrics'), EPOCHS, 'the chart has more points than epochs');
    const done = await record(page, stack.base, id);
    assert.equal(done.streams.metrics, EPOCHS);
    assert.equal(Number(await c.locator('.stream[data-stream="metrics"]').getAttribute('data-count')), EPOCHS);
    const logCount = Number(await c.locator('.stream[data-stream="log"]').getAttribute('data-count'));
    assert.equal(logCount, done.streams.log, 'the log tail is not complete');

    // The model: a collapsible, pretty-printed JSON view of the result's value.
    const details = c.locator('details.result-json');
    assert.equal(await details.getAttribute('open'), null, 'the JSON view starts open');
    await details.locator('summary').click();
    const shown = JSON.parse(await details.locator('pre').innerText());
    assert.deepEqual(shown, done.result.value);
    assert.match(await details.locator('pre').innerText(), /\n {2}"/, 'not pretty-printed');
  });

  it('report: walks query, render and store with messages and metadata, and gives a PDF', async () => {
    await need('report');
    const id = await startTask(page, 'report', { countries: 6, rowsPerCountry: 500, title: 'E2E orders' });
    await page.evaluate((i) => {
      const li = document.querySelector(`li.task[data-task-id="${i}"]`);
      const stage = li.querySelector('.task-stage');
      window.__stages = [];
      const note = () => {
        const s = stage.getAttribute('data-stage');
        if (s && window.__stages.at(-1)?.id !== s) window.__stages.push({ id: s, text: stage.textContent });
      };
      note();
      new MutationObserver(note).observe(stage, { attributes: true, childList: true, characterData: true, subtree: true });
    }, id);
    await watchFill(page, id);
    await waitState(page, id, 'completed', 60_000, tails);
    const stages = await page.evaluate(() => window.__stages);
    const ids = stages.map((s) => s.id);
    // The store stage can last less than a frame before task:completed; the page
    // then shows query and render, and the record says the last stage was store.
    const seen = ids.filter((s) => ['query', 'render', 'store'].includes(s));
    assert.deepEqual(seen.slice(0, 2), ['query', 'render'], `stages ${JSON.stringify(stages)}`);
    assert.ok(seen.length <= 3 && (seen.length === 2 || seen[2] === 'store'), `stages ${JSON.stringify(stages)}`);
    for (const s of stages) assert.ok(s.text && s.text.toLowerCase() !== s.id, `stage ${s.id} shows no message: ${s.text}`);
    for (const f of await readFill(page, id)) {
      assert.ok(Math.abs(f.fill - parseFloat(f.label)) < 0.6, `the bar is filled to ${f.fill.toFixed(2)}% under the label ${f.label}`);
    }

    const c = card(page, id);
    const rec = await record(page, stack.base, id);
    assert.equal(rec.stage, 'store', 'the last stage of a report is store');
    for (const key of ['pages', 'rows']) {
      const dd = c.locator(`.task-metadata .md-row[data-key="${key}"] dd`);
      assert.equal((await dd.innerText()).replace(/[^\d]/g, ''), String(rec.metadata[key]), `metadata ${key}`);
    }
    assert.match(await c.locator('.task-sub').innerText(), /countries 6 · (rows|orders) per country 500 · title “E2E orders”/);
    assert.match(await c.locator('.result-info').innerText(), /^PDF · [\d.]+ kB/);
    const link = c.getByRole('link', { name: /^Download .*\.pdf/ });
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), link.click()]);
    const pdf = fs.readFileSync(await download.path());
    assert.equal(pdf.subarray(0, 5).toString(), '%PDF-');
    assert.equal(pdf.length, rec.result.bytes);
    assert.match(download.suggestedFilename(), /\.pdf$/);
  });

  it('export: its card says its params, and the CSV downloads', async () => {
    const id = await startTask(page, 'export', { rows: 2500 });
    await waitState(page, id, 'completed', 60_000, tails);
    const c = card(page, id);
    assert.match(await c.locator('.task-sub').innerText(), /^Started \d\d:\d\d:\d\d · rows 2,500$/);
    assert.match(await c.innerText(), /2,500 of 2,500 rows/);
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }),
      c.getByRole('link', { name: /^Download .*\.csv/ }).click()]);
    const lines = fs.readFileSync(await download.path(), 'utf8').split('\n').filter(Boolean);
    assert.equal(lines.length, 2501);
  });

  it('fits 360 px, charts and JSON included', async () => {
    await need('train');
    const small = await context.newPage();
    const problems2 = trackProblems(small);
    await small.setViewportSize({ width: 360, height: 780 });
    await small.goto(stack.base + '/');
    await waitConn(small, 'connected', 15_000, tails);
    await waitKinds(small, ['train'], 15_000, tails);
    await until(small, 'a chart', () => !!document.querySelector('svg.chart[data-points]'), undefined, 15_000, tails);
    await small.locator('details.result-json summary').first().click();
    for (const kind of ['export', 'report', 'train']) {
      await small.locator(`input[name="kind"][value="${kind}"]`).check();
      const overflow = await small.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `with the ${kind} form the page is ${overflow} px wider than the 360 px screen`);
    }
    const widths = await small.evaluate(() => [...document.querySelectorAll('li.task')].map((li) => li.getBoundingClientRect().right));
    assert.ok(widths.every((r) => r <= 360), `cards end at ${widths}`);
    await screenshot(small, 'kinds-360.png');
    assert.deepEqual(problems2, []);
    await small.close();
  });

  it('clears finished cards, one and all, and a reload does not bring them back', async () => {
    for (const rows of [300, 400]) await waitState(page, await startTask(page, 'export', { rows }), 'completed', 30_000, tails);
    const running = await startTask(page, 'export', { rows: 60_000 }); // a minute at 1 ms a row
    await waitState(page, running, 'running', 30_000, tails);
    const finished = await page.evaluate(() => [...document.querySelectorAll('li.task')]
      .filter((li) => ['completed', 'failed', 'cancelled'].includes(li.dataset.state)).map((li) => li.dataset.taskId));
    assert.ok(finished.length >= 2, `only ${finished.length} finished cards`);

    const [one, ...rest] = finished;
    await card(page, one).getByRole('button', { name: /^Clear/ }).click();
    await until(page, `card ${one} to go`, (i) => !document.querySelector(`li.task[data-task-id="${i}"]`), one, 5_000, tails);
    await page.reload();
    await waitConn(page, 'connected', 20_000, tails);
    await until(page, 'the cards after the reload', (i) => !!document.querySelector(`li.task[data-task-id="${i}"]`), running, 10_000, tails);
    assert.ok(!(await taskIds(page)).includes(one), 'the cleared card came back after a reload');
    const afterReload = await taskIds(page);
    assert.ok(rest.every((i) => afterReload.includes(i)), 'a card that was not cleared is gone');

    await page.getByRole('button', { name: /^Clear finished/ }).click();
    await until(page, 'only the running card', (i) => {
      const ids = [...document.querySelectorAll('li.task')].map((li) => li.dataset.taskId);
      return ids.length === 1 && ids[0] === i;
    }, running, 5_000, tails);
    assert.ok(await page.getByRole('button', { name: /^Clear finished/ }).isHidden());
    await page.reload();
    await waitConn(page, 'connected', 20_000, tails);
    await until(page, 'the running card after the reload', (i) => !!document.querySelector(`li.task[data-task-id="${i}"]`), running, 10_000, tails);
    assert.deepEqual(await taskIds(page), [running], 'cleared cards came back after a reload');

    await card(page, running).getByRole('button', { name: /^Cancel/ }).click();
    await waitState(page, running, 'cancelled', 15_000, tails);
    assert.deepEqual(problems, [], 'page errors or blocked requests');
  });
});
