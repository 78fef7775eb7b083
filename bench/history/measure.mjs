// What the task history and the inbox (issue 14) cost in Redis: bytes per event
// and per task of `export` and `train`, and the memory of 1,000 concurrent tasks.
//
//   node bench/history/measure.mjs [--exports N] [--trains N] [--concurrent N]
//
// It starts its own redis-server, one taskwire-server and taskwire-workers (the
// binaries of TASKWIRE_BIN_DIR, else built), runs the tasks through the HTTP API
// and reads, for every task, MEMORY USAGE (SAMPLES 0: exact) of its record, its
// history stream (task:<id>:events), its streams' lists and its result, XLEN of
// the history, and the inbox and undelivered sets; for the concurrent tasks also
// INFO memory (used_memory) before and after. It prints a Markdown table.
// Needs `npm ci` in e2e/ (it uses the end-to-end harness). Not part of CI.

import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

import { startRedis } from '../../e2e/lib/redis.mjs';
import { Api, startServer, startWorker, stopSystem } from '../../e2e/lib/taskwire.mjs';

const require = createRequire(new URL('../../e2e/package.json', import.meta.url));
const { createClient } = require('redis');

const { values: opts } = parseArgs({
  options: {
    exports: { type: 'string', default: '20' },
    rows: { type: 'string', default: '10000' },
    trains: { type: 'string', default: '10' },
    concurrent: { type: 'string', default: '1000' },
    'concurrent-rows': { type: 'string', default: '2000' },
  },
});

const PREFIX = 'taskwire';

async function main() {
  const redis = await startRedis();
  const rdb = createClient({ url: redis.url });
  await rdb.connect();
  const server = await startServer({ redis, env: { MAX_ACTIVE_TASKS: '0', TASK_CREATE_RATE: '0' } });
  await Promise.all([0, 1].map((i) => startWorker({
    // Paced as a user sees them: an export of 10,000 rows lasts 10 s, a training
    // 6 s, so their events are what PROGRESS_MAX_RATE (10/s) lets through.
    redis, name: `worker-${i}`, env: { WORKER_CONCURRENCY: '128', EXPORT_ROW_DELAY: '1ms', TRAIN_EPOCH_DELAY: '100ms' },
  })));
  const api = await Api.session(server.url);
  header();

  const exports = await runAll(api, Number(opts.exports), () => ({ kind: 'export', params: { rows: Number(opts.rows) } }), 4);
  line(await costOf(rdb, `export, ${opts.rows} rows`, exports));
  const trains = await runAll(api, Number(opts.trains), () => ({ kind: 'train', params: {} }), 2);
  line(await costOf(rdb, 'train, defaults (60 epochs)', trains));

  const n = Number(opts.concurrent);
  await rdb.sendCommand(['MEMORY', 'PURGE']);
  const before = await usedMemory(rdb);
  const many = await runAll(api, n, () => ({ kind: 'export', params: { rows: Number(opts['concurrent-rows']) } }), n);
  const after = await usedMemory(rdb);
  const row = await costOf(rdb, `${n} concurrent exports, ${opts['concurrent-rows']} rows`, many);
  row.usedMemory = after - before;
  line(row);
  await rdb.quit();
}

/**
 * runAll runs count tasks and returns their final records: with parallel <
 * count, at most parallel at once; else all of them started first (50 requests
 * at a time), then awaited, so that they all run (or wait) together.
 */
async function runAll(api, count, body, parallel) {
  const create = async () => {
    const res = await api.request('POST', '/api/v1/tasks', { body: body(), timeoutMs: 60_000 });
    if (res.status !== 202) throw new Error(`POST /api/v1/tasks: ${res.status} ${res.text}`);
    return res.json.id;
  };
  const done = [];
  if (parallel < count) {
    let next = 0;
    const lane = async () => {
      while (next++ < count) done.push(await waitDone(api, await create()));
    };
    await Promise.all(Array.from({ length: parallel }, lane));
    return done;
  }
  const ids = [];
  while (ids.length < count) {
    ids.push(...await Promise.all(Array.from({ length: Math.min(50, count - ids.length) }, create)));
  }
  for (const id of ids) done.push(await waitDone(api, id));
  return done;
}

function waitDone(api, id) {
  return api.waitRecord(id, (r) => r.state === 'completed' || r.state === 'failed', { timeoutMs: 600_000, intervalMs: 100, what: 'the end' });
}

async function memory(rdb, key) {
  return Number(await rdb.sendCommand(['MEMORY', 'USAGE', key, 'SAMPLES', '0'])) || 0;
}

async function usedMemory(rdb) {
  const info = await rdb.sendCommand(['INFO', 'memory']);
  return Number(/used_memory:(\d+)/.exec(info)[1]);
}

/** costOf measures the keys of the finished tasks recs. */
async function costOf(rdb, name, recs) {
  const sum = { tasks: recs.length, events: 0, history: 0, record: 0, streams: 0, result: 0, failed: 0 };
  for (const r of recs) {
    if (r.state !== 'completed') sum.failed++;
    const k = `${PREFIX}:task:${r.taskId}`;
    sum.events += Number(await rdb.sendCommand(['XLEN', `${k}:events`]));
    sum.history += await memory(rdb, `${k}:events`);
    sum.record += await memory(rdb, k);
    for (const s of Object.keys(r.streams ?? {})) sum.streams += await memory(rdb, `${k}:stream:${s}`);
    sum.result += await memory(rdb, `${PREFIX}:result:${r.taskId}`);
  }
  const owners = await rdb.keys(`${PREFIX}:user:*:inbox`);
  let inbox = 0;
  let items = 0;
  for (const key of owners) {
    inbox += await memory(rdb, key);
    items += await rdb.zCard(key);
  }
  const undelivered = await memory(rdb, `${PREFIX}:undelivered`);
  const pending = await rdb.zCard(`${PREFIX}:undelivered`);
  return { name, ...sum, inboxPerItem: inbox / Math.max(items, 1), undeliveredPerItem: undelivered / Math.max(pending, 1) };
}

function header() {
  console.log('| tasks | events per task | history bytes per event | history bytes per task | record bytes per task | stream lists per task | result per task | inbox + undelivered bytes per task | used_memory delta per task |');
  console.log('|---|---|---|---|---|---|---|---|---|');
}

function line(r) {
  const f = (x) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));
  const per = (x) => f(x / r.tasks);
  console.log(`| ${r.name}${r.failed ? ` (${r.failed} failed)` : ''} | ${per(r.events)} | ${f(r.history / Math.max(r.events, 1))} | ${per(r.history)} | ` +
    `${per(r.record)} | ${per(r.streams)} | ${per(r.result)} | ${f(r.inboxPerItem + r.undeliveredPerItem)} | ${r.usedMemory ? per(r.usedMemory) : ''} |`);
}

main().then(() => stopSystem(), async (err) => {
  console.error(err);
  await stopSystem();
  process.exit(1);
});
