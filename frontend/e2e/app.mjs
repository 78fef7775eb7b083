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
 * startExport picks a size (10000, 100000, 1000000 or a custom count), presses
 * Export and returns the id of the task card that appears.
 */
export async function startExport(page, rows) {
  const before = await taskIds(page);
  const preset = [10_000, 100_000, 1_000_000].includes(rows);
  await page.locator(`input[name="size"][value="${preset ? rows : 'custom'}"]`).check();
  if (!preset) await page.locator('#rows').fill(String(rows));
  await page.getByRole('button', { name: 'Export', exact: true }).click();
  const handle = await until(page, `a new task card after pressing Export (${rows} rows)`, (known) => {
    const li = [...document.querySelectorAll('li.task')].find((l) => !known.includes(l.dataset.taskId));
    return li?.dataset.taskId;
  }, before);
  return handle.jsonValue();
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
