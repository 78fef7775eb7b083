// Measures the operator dashboard with 10,000 tasks in Redis: how long the page
// takes in Chromium (navigation to every section rendered) and each of its API
// calls, against the real server, worker and redis-server. A measurement, not a
// test: it prints the numbers (written down in ../README.md, "Operator dashboard
// load") and asserts nothing about them.
//
//   npm run build:client && TASKWIRE_BIN_DIR=../bin node e2e/admin-load.mjs [tasks]

import { performance } from 'node:perf_hooks';

import { killAll } from '../../e2e/lib/proc.mjs';
import { redisCommand } from '../../e2e/lib/redis.mjs';
import { launchBrowser, startStack } from './stack.mjs';

const TASKS = Number(process.argv[2] ?? 10_000);
const RUNS = 7;
const ADMIN_TOKEN = 'load-operator-token-0123456789abcdef-0123';

// fill writes n task records and their index entries in one script: mostly
// finished tasks of three kinds and 200 owners over the last 20 hours, a fifth
// of them failed with one of three codes, some running or queued.
const fill = `
local n, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local kinds = {'export', 'report', 'train'}
local codes = {'result_too_large', 'worker_lost', 'handler_error'}
for i = 1, n do
  local id = string.format('load%018d', i)
  local created = now - (n - i) * 7200
  local r = i % 20
  local state = 'completed'
  if r < 4 then state = 'failed' elseif r < 6 then state = 'cancelled' elseif r == 6 then state = 'running' elseif r == 7 then state = 'queued' end
  local key = 'taskwire:task:' .. id
  redis.call('HSET', key, 'id', id, 'kind', kinds[i % 3 + 1], 'state', state, 'owner', 'u-' .. (i % 200),
    'seq', 12, 'percent', '100', 'done', 5000, 'total', 5000, 'attempts', 1, 'maxAttempts', 3,
    'params', '{"rows":5000,"format":"csv","delimiter":","}', 'createdAt', created,
    'startedAt', created + 50, 'stage', 'writing')
  if state == 'failed' then
    redis.call('HSET', key, 'errorCode', codes[i % 3 + 1], 'errorMessage', 'the task failed in a way the operator should see', 'finishedAt', created + 900)
  elseif state ~= 'running' and state ~= 'queued' then
    redis.call('HSET', key, 'finishedAt', created + 900)
  end
  redis.call('PEXPIRE', key, 86400000)
  redis.call('ZADD', 'taskwire:tasks', created, id)
end
return n
`;

const stack = await startStack({ serverEnv: { ADMIN_TOKEN } });
const port = Number(new URL(stack.redis.url).port);
try {
  const t0 = performance.now();
  await redisCommand(port, ['EVAL', fill, '0', String(TASKS), String(Date.now())], { timeoutMs: 60_000 });
  console.log(`filled ${TASKS} tasks in ${(performance.now() - t0).toFixed(0)} ms`);

  const get = async (path) => {
    const start = performance.now();
    const res = await fetch(stack.base + '/api/v1/admin/' + path, { headers: { Authorization: 'Bearer ' + ADMIN_TOKEN } });
    const body = await res.json();
    if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - start, body, bytes: JSON.stringify(body).length };
  };
  const first = await get('tasks?limit=50');
  const calls = [
    'queue', 'workers', 'servers', 'failures', 'tasks?limit=50', `tasks?limit=50&cursor=${first.body.next}`,
    'tasks?state=failed&limit=50', 'tasks?kind=train&state=running&limit=50', 'tasks?owner=u-7&limit=50',
    'tasks?olderThan=10h&limit=50', 'tasks?owner=nobody&limit=50', 'tasks?limit=500',
  ];
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows = [];
  for (const c of calls) {
    const ms = [];
    let last;
    for (let i = 0; i < RUNS; i++) {
      last = await get(c);
      ms.push(last.ms);
    }
    const note = last.body.tasks ? `${last.body.tasks.length} tasks, ${last.body.scanned} scanned`
      : last.body.groups ? `${last.body.groups.length} groups, ${last.body.scanned} scanned` : "";
    rows.push([c.replace(/cursor=[^&]+/, 'cursor=…'), median(ms).toFixed(1), Math.max(...ms).toFixed(1), (last.bytes / 1024).toFixed(1), note]);
  }

  // The page: from navigation to queue, workers, failures and the first page of
  // tasks rendered (the token already in sessionStorage, as after the first visit).
  const browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  await context.addInitScript((tok) => sessionStorage.setItem('taskwire.operatorToken', tok), ADMIN_TOKEN);
  const page = await context.newPage();
  const loads = [];
  for (let i = 0; i < RUNS; i++) {
    await page.goto(stack.base + '/admin/', { waitUntil: 'commit' });
    await page.waitForFunction(() => document.querySelectorAll('tr.ops-task').length >= 50 &&
      document.querySelectorAll('tr.ops-failure').length > 0 && document.querySelectorAll('tr.ops-worker').length > 0 &&
      document.querySelectorAll('#queue tbody tr').length > 0, null, { timeout: 30_000, polling: 'raf' });
    loads.push(await page.evaluate(() => performance.now()));
    if (process.env.PROBE) console.log(await page.evaluate(() => JSON.stringify(performance.getEntriesByType('resource').map((e) => [e.name.replace(location.origin, ''), Math.round(e.startTime), Math.round(e.responseEnd)]))));
  }
  await browser.close();

  console.log(`\n${TASKS} tasks in Redis, median of ${RUNS} (ms):\n`);
  console.log('| call | median ms | max ms | KiB | answer |');
  console.log('|---|---:|---:|---:|---|');
  for (const r of rows) console.log(`| \`GET /api/v1/admin/${r[0]}\` | ${r[1]} | ${r[2]} | ${r[3]} | ${r[4]} |`);
  console.log(`| the page /admin/, navigation to everything rendered | ${median(loads).toFixed(0)} | ${Math.max(...loads).toFixed(0)} | | |`);
} finally {
  await killAll();
}
