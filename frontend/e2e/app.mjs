// Driving the web app in a page: every wait is bounded and, when it fails, says
// what it waited for and what the page showed.

/**
 * describePage returns what the page shows, for failure messages.
 *
 * @param {import('playwright-core').Page} page
 */
export async function describePage(page) {
  try {
    return await page.evaluate(() => {
      const conn = document.querySelector('#conn');
      const cards = [...document.querySelectorAll('li.task')].map((li) => {
        const bar = li.querySelector('[role="progressbar"]');
        return `  ${li.dataset.taskId} state=${li.dataset.state} value=${bar?.getAttribute('aria-valuenow')} ` +
          `"${li.innerText.replace(/\s+/g, ' ').trim()}"`;
      });
      return `connection: ${conn?.dataset.status} "${conn?.innerText.trim()}"\ntasks:\n${cards.join('\n') || '  (none)'}`;
    });
  } catch (err) {
    return `(page not readable: ${err.message})`;
  }
}

/**
 * until waits for fn(arg) to be truthy in the page, and fails with what and the
 * page's state after timeoutMs.
 */
export async function until(page, what, fn, arg, timeoutMs = 15_000, extra = () => '') {
  try {
    return await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 50 });
  } catch (err) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${await describePage(page)}\n${extra()}`,
      { cause: err });
  }
}

/** connStatus returns the connection indicator's status. */
export function connStatus(page) {
  return page.locator('#conn').getAttribute('data-status');
}

/** waitConn waits for the indicator to show status. */
export function waitConn(page, status, timeoutMs = 15_000, extra) {
  return until(page, `the connection indicator to say ${status}`,
    (s) => document.querySelector('#conn')?.dataset.status === s, status, timeoutMs, extra);
}

/** taskIds returns the ids of the task cards, in page order. */
export function taskIds(page) {
  return page.evaluate(() => [...document.querySelectorAll('li.task')].map((li) => li.dataset.taskId));
}

/**
 * fillParams picks kind in the start form and types params into its generated
 * fields (a number or string into its input, a boolean into its checkbox, an enum
 * value by its label).
 */
export async function fillParams(page, kind, params = {}) {
  await page.locator(`input[name="kind"][value="${kind}"]`).check();
  const form = page.locator(`.kind-form[data-kind="${kind}"]`);
  await form.waitFor({ state: 'visible', timeout: 10_000 });
  for (const [name, value] of Object.entries(params)) {
    const field = form.locator(`.field[data-field="${name}"]`);
    if (typeof value === 'boolean') await field.locator('input[type="checkbox"]').setChecked(value);
    else if (await field.locator('input[type="radio"]').count()) await field.getByLabel(String(value), { exact: true }).check();
    else if (await field.locator('select').count()) await field.locator('select').selectOption({ label: String(value) });
    else await field.locator('input, textarea').fill(String(value));
  }
}

/**
 * startTask fills the start form of kind with params, presses Start and returns
 * the id of the task card that appears.
 */
export async function startTask(page, kind, params = {}) {
  const before = await taskIds(page);
  await fillParams(page, kind, params);
  await page.locator('#start').click();
  const handle = await until(page, `a new task card after starting ${kind} ${JSON.stringify(params)}`, (known) => {
    const li = [...document.querySelectorAll('li.task')].find((l) => !known.includes(l.dataset.taskId));
    return li?.dataset.taskId;
  }, before);
  return handle.jsonValue();
}

/** startExport starts an export of rows rows from the form and returns its task id. */
export function startExport(page, rows) {
  return startTask(page, 'export', { rows });
}

/** waitKinds waits until the start form lists the kinds names. */
export function waitKinds(page, names, timeoutMs = 20_000, extra) {
  return until(page, `the kinds ${names.join(', ')} in the start form`, (want) => {
    const have = [...document.querySelectorAll('input[name="kind"]')].map((i) => i.value);
    return want.every((n) => have.includes(n));
  }, names, timeoutMs, extra);
}

/**
 * watchFill records, on every change of a task's percent label, the label and the
 * bar's fill as a percentage of the bar's width, read at once; readFill returns them.
 */
export async function watchFill(page, id) {
  await page.evaluate((i) => {
    const li = document.querySelector(`li.task[data-task-id="${i}"]`);
    const label = li?.querySelector('.task-percent');
    const bar = li?.querySelector('[role="progressbar"]');
    const fill = bar?.querySelector('.bar-fill');
    if (!label || !bar || !fill) throw new Error('no bar for ' + i);
    window.__fills ??= {};
    const seen = (window.__fills[i] = []);
    const read = () => {
      const w = parseFloat(getComputedStyle(fill).width);
      const total = bar.clientWidth;
      seen.push({ label: label.textContent, fill: total > 0 ? (w / total) * 100 : NaN });
    };
    read();
    new MutationObserver(read).observe(label, { childList: true, characterData: true, subtree: true });
  }, id);
}

export function readFill(page, id) {
  return page.evaluate((i) => window.__fills?.[i] ?? [], id);
}

/** card returns the locator of a task's card. */
export function card(page, id) {
  return page.locator(`li.task[data-task-id="${id}"]`);
}

/** barValue returns a task's aria-valuenow as a number. */
export async function barValue(page, id) {
  return Number(await card(page, id).getByRole('progressbar').getAttribute('aria-valuenow'));
}

/** waitState waits for a task's card to show state. */
export function waitState(page, id, state, timeoutMs = 30_000, extra) {
  return until(page, `task ${id} to be ${state}`,
    ([i, s]) => document.querySelector(`li.task[data-task-id="${i}"]`)?.dataset.state === s, [id, state], timeoutMs, extra);
}

/** waitValue waits until a task's bar value is at least min. */
export function waitValue(page, id, min, timeoutMs = 30_000, extra) {
  return until(page, `task ${id}'s bar to reach ${min}%`, ([i, m]) => {
    const bar = document.querySelector(`li.task[data-task-id="${i}"] [role="progressbar"]`);
    return bar && Number(bar.getAttribute('aria-valuenow')) >= m;
  }, [id, min], timeoutMs, extra);
}

/**
 * watchBar records every aria-valuenow the task's bar takes from now on (until the
 * page reloads); readBar returns them.
 */
export async function watchBar(page, id) {
  await page.evaluate((i) => {
    const bar = document.querySelector(`li.task[data-task-id="${i}"] [role="progressbar"]`);
    if (!bar) throw new Error('no progress bar for ' + i);
    window.__bars ??= {};
    const seen = (window.__bars[i] = [Number(bar.getAttribute('aria-valuenow'))]);
    new MutationObserver(() => seen.push(Number(bar.getAttribute('aria-valuenow'))))
      .observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
  }, id);
}

export function readBar(page, id) {
  return page.evaluate((i) => window.__bars?.[i] ?? [], id);
}

/** nonDecreasing reports whether xs never goes down. */
export function nonDecreasing(xs) {
  return xs.every((x, i) => i === 0 || x >= xs[i - 1]);
}

/**
 * trackProblems collects page errors and Content-Security-Policy violations, which
 * must never happen.
 */
export function trackProblems(page) {
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/.test(msg.text())) {
      problems.push(`console: ${msg.text()}`);
    }
  });
  return problems;
}
