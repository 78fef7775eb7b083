// Tasks you can trust (issue 3), when workers die or leave: each test starts its own
// redis-server, taskwire-server and taskwire-workers as processes, and follows the
// tasks with the real socket.io-client as their owner, and with the HTTP API.
//
// - kill -9 of a worker in the middle of an export while another runs: the task
//   completes, its client gets task:completed once, attempts = 2, the CSV is whole;
// - 50 queued tasks (of 5 owners), 3 workers, one killed mid-run: all 50 complete,
//   none twice, each owner sees exactly its own;
// - SIGTERM of a worker with 2 running and more queued: every task completes once,
//   the worker starts nothing new, finishes its two and exits 0;
// - malformed entries put straight on the queue stream: dropped, and the worker
//   goes on with the next task.
//
// Workers use a 2 s lease (WORKER_LEASE_TIMEOUT) and EXPORT_ROW_DELAY=1ms (1,000
// rows a second), so a kill lands in the middle of a small export.

import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';

import { closeAllAndWait, connect } from './lib/client.mjs';
import { withTimeout } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';
import {
  Api, FINAL_EVENTS, TASK_EVENTS, ack, checkCsv, checkProgress, logEntries, startServer, startWorker, stopSystem,
  taskEvents, until, waitFinal, waitLog, whenever,
} from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAllAndWait());

const SLOW = { EXPORT_ROW_DELAY: '1ms' };

/** system starts Redis, one server and an owner connected over websocket. */
async function system(t, { serverEnv } = {}) {
  // Stops this test's processes, workers and servers before Redis.
  t.after(() => stopSystem());
  const redis = await startRedis();
  const server = await startServer({ redis, env: serverEnv });
  const api = await Api.session(server.url);
  const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });
  return { redis, server, api, socket, rec: socket.recorder };
}

/** progressAt resolves once the client saw task id's progress reach done rows. */
function progressAt(rec, id, done, timeoutMs = 20_000) {
  return rec.waitFor('task:progress', (p) => p.taskId === id && p.done >= done, timeoutMs,
    { label: `progress of ${id} to ${done} rows` });
}

/**
 * eventsOf returns the task events the client got for id, after an ack round trip:
 * an ack on the same connection comes after every event written to it before.
 */
async function eventsOf(socket, id) {
  await ack(socket, 'task:subscribe', { taskId: id });
  return taskEvents(socket.recorder, id);
}

describe('a worker dies or leaves', () => {
  it('kill -9 in the middle of an export: another worker completes it, the client gets task:completed once, attempts = 2', async (t) => {
    const { redis, api, socket, rec } = await system(t);
    const a = await startWorker({ redis, name: 'worker-A', env: SLOW });
    const id = await api.createExport(2000, { socketId: socket.id }); // about 2 s
    await progressAt(rec, id, 500);
    // Started only now, so the task is surely worker-A's.
    const b = await startWorker({ redis, name: 'worker-B', env: SLOW });
    const killedAt = Date.now();
    const exit = await a.proc.kill('SIGKILL');
    assert.equal(exit.signal, 'SIGKILL');
    assert.deepEqual(a.started(), [id]);

    const done = await waitFinal(rec, id, 40_000, 'owner');
    assert.equal(done.event, 'task:completed', `final event ${JSON.stringify(done.args)}`);
    const recd = await api.record(id);
    assert.equal(recd.state, 'completed');
    assert.equal(recd.attempts, 2);
    assert.deepEqual(b.started(), [id]);
    const evs = checkProgress(await eventsOf(socket, id), id);
    assert.equal(evs.filter((e) => e.event === 'task:completed').length, 1, 'task:completed exactly once');
    assert.equal(evs.filter((e) => e.payload.stage === 'started').length, 2, 'two attempts started');
    // Every event of both attempts reached the client.
    assert.deepEqual(evs.map((e) => e.payload.seq), Array.from({ length: recd.seq }, (_, i) => i + 1));
    const res = await api.result(id);
    assert.equal(res.status, 200);
    checkCsv(res.text, 2000);
    const takeover = logEntries(b.proc, 'took over a task whose worker stopped renewing its lease');
    assert.equal(takeover.length, 1, `worker-B took the task over:\n${b.proc.tail(10)}`);
    process.stdout.write(`# kill -9: completed ${done.at - killedAt} ms after the kill (lease 2 s)\n`);
  });

  it('50 queued tasks, 3 workers, one killed mid-run: all 50 complete, none twice', async (t) => {
    const { redis, server } = await system(t);
    const env = { ...SLOW, WORKER_CONCURRENCY: '2' };
    const [w1, w2, w3] = await Promise.all([1, 2, 3].map((k) =>
      startWorker({ redis, name: `worker-${k}`, env })));
    // Five owners with ten tasks each (the server bounds what one identity may have
    // queued at once), each following its own from its socket.
    const owners = [];
    for (let k = 0; k < 5; k++) {
      const api = await Api.session(server.url);
      const socket = await connect(server.url, { token: api.token, transports: [k % 2 ? 'polling' : 'websocket'] });
      owners.push({ api, socket, rec: socket.recorder, ids: [] });
    }
    const n = 50;
    const rows = (i) => 300 + 50 * (i % 5); // 0.3 to 0.5 s each
    const started = Date.now();
    const ownerOf = new Map();
    for (let i = 0; i < n; i++) {
      const o = owners[i % owners.length];
      const id = await o.api.createExport(rows(i), { socketId: o.socket.id });
      o.ids.push(id);
      ownerOf.set(id, o);
    }
    const ids = [...ownerOf.keys()];
    const sockets = owners.map((o) => o.socket);
    const finalsOf = (id) => taskEvents(ownerOf.get(id).rec, id).filter((e) => FINAL_EVENTS.includes(e.event));
    const completed = () => ids.filter((id) => finalsOf(id).some((e) => e.event === 'task:completed'));
    // worker-1's tasks that are past their first progress step and not finished.
    const midTask = () => w1.started().filter((id) => finalsOf(id).length === 0 &&
      taskEvents(ownerOf.get(id).rec, id).some((e) => e.event === 'task:progress' && e.payload.done >= 256));
    // Wait, event by event, for a moment when 10 tasks are done and worker-1 is in
    // the middle of one. What the owners saw lags behind: the task may be over
    // already, its task:completed on the way. So worker-1 is frozen (SIGSTOP)
    // and the record decides: a task still running with rows left cannot
    // complete without worker-1's next write. Otherwise it runs on, and the test
    // waits for another such moment.
    let interrupted = [];
    for (let tries = 0; interrupted.length === 0; tries++) {
      assert.ok(tries < 20, 'worker-1 caught in the middle of a task');
      await whenever(sockets, () => completed().length >= 10 && midTask().length > 0,
        { timeoutMs: 60_000, what: 'worker-1 in the middle of a task after 10 completions' });
      w1.proc.signal('SIGSTOP');
      for (const id of midTask()) {
        const r = await ownerOf.get(id).api.record(id);
        if (r.state === 'running' && r.done < r.total) interrupted.push(id);
      }
      if (interrupted.length === 0) w1.proc.signal('SIGCONT');
    }
    await w1.proc.kill('SIGKILL');

    await whenever(sockets, () => completed().length === n,
      { timeoutMs: 90_000, what: `all ${n} tasks completed`, detail: () => `${completed().length} completed` });
    const elapsed = Date.now() - started;
    for (const o of owners) await ack(o.socket, 'task:subscribe', { taskId: o.ids[0] }); // barriers
    for (const id of ids) {
      assert.deepEqual(finalsOf(id).map((e) => e.event), ['task:completed'], `task ${id}: one task:completed and nothing else`);
    }
    // Each owner got the events of its own tasks only, and its list says the same.
    const byId = new Map();
    for (const o of owners) {
      const theirs = new Set(o.rec.events.filter((e) => TASK_EVENTS.includes(e.event)).map((e) => e.args[0].taskId));
      assert.deepEqual([...theirs].sort(), [...o.ids].sort(), 'an owner received events of its own tasks only');
      const list = await o.api.list();
      assert.deepEqual(list.map((r) => r.taskId).sort(), [...o.ids].sort());
      for (const r of list) {
        assert.equal(r.state, 'completed', `task ${r.taskId} in GET /api/v1/tasks`);
        byId.set(r.taskId, r);
      }
    }
    // The task(s) caught mid-run ran twice. A second run happened only to tasks
    // that worker-1 held when it died: those it logged as started, or one it had
    // just counted as started and died before logging (its other slot). The live
    // workers never ran a task twice, and never one that another live worker ran.
    for (const id of interrupted) assert.equal(byId.get(id).attempts, 2, `interrupted task ${id}`);
    const live = [w2, w3].flatMap((w) => w.started());
    for (const id of ids) {
      const { attempts } = byId.get(id);
      const liveRuns = live.filter((x) => x === id).length;
      const w1Runs = w1.started().filter((x) => x === id).length;
      assert.ok(liveRuns <= 1, `task ${id}: the live workers ran it ${liveRuns} times`);
      assert.ok(attempts === 1 || attempts === 2, `task ${id}: ${attempts} attempts`);
      assert.ok(attempts === w1Runs + liveRuns || (attempts === 2 && w1Runs === 0 && liveRuns === 1),
        `task ${id}: ${attempts} attempts, ${w1Runs} runs logged by worker-1, ${liveRuns} by the others`);
    }
    assert.ok(ids.filter((id) => byId.get(id).attempts === 2).length <= 2,
      'no more tasks ran twice than worker-1 had slots');
    const twice = ids.filter((id) => byId.get(id).attempts === 2);
    for (const id of interrupted) {
      const res = await ownerOf.get(id).api.result(id);
      checkCsv(res.text, byId.get(id).params.rows);
    }
    process.stdout.write(`# 50 tasks of 5 owners, 3 workers x 2, one killed mid-task (${twice.length} ran twice): ` +
      `all completed in ${elapsed} ms\n`);
  });

  it('SIGTERM with 2 running and more queued: every task completes once, the worker exits 0', async (t) => {
    const { redis, api, socket, rec } = await system(t);
    const env = { ...SLOW, WORKER_CONCURRENCY: '2', WORKER_SHUTDOWN_TIMEOUT: '20s' };
    const a = await startWorker({ redis, name: 'worker-A', env });
    const running = [
      await api.createExport(4000, { socketId: socket.id }), // about 4 s: still running at the signal
      await api.createExport(4000, { socketId: socket.id }),
    ];
    await Promise.all(running.map((id) => progressAt(rec, id, 256)));
    const queued = [];
    for (let i = 0; i < 4; i++) queued.push(await api.createExport(300, { socketId: socket.id }));
    // worker-A has no free slot: the four wait in the queue.
    const since = a.proc.mark();
    a.proc.signal('SIGTERM');
    const signalled = Date.now();
    await waitLog(a.proc, 'shutting down: no new tasks; waiting for the running ones', { since });
    const b = await startWorker({ redis, name: 'worker-B', env });
    const exit = await withTimeout(a.proc.exited, 25_000, () => `worker-A did not exit:\n${a.proc.tail()}`);
    const exitMs = Date.now() - signalled;
    assert.deepEqual(exit, { code: 0, signal: null }, `worker-A exit:\n${a.proc.tail()}`);

    for (const id of [...running, ...queued]) {
      const e = await waitFinal(rec, id, 30_000, 'owner');
      assert.equal(e.event, 'task:completed', `task ${id}: ${JSON.stringify(e.args)}`);
    }
    for (const id of [...running, ...queued]) {
      const evs = checkProgress(await eventsOf(socket, id), id);
      assert.equal(evs.filter((e) => e.event === 'task:completed').length, 1, `task ${id} completed once`);
      const r = await api.record(id);
      assert.equal(r.attempts, 1, `task ${id} ran once`);
      assert.deepEqual(evs.map((e) => e.payload.seq), Array.from({ length: r.seq }, (_, i) => i + 1));
    }
    // worker-A finished its own two and took nothing after the signal.
    assert.deepEqual(a.started().sort(), [...running].sort());
    assert.deepEqual(b.started().sort(), [...queued].sort());
    for (const id of running) {
      const res = await api.result(id);
      checkCsv(res.text, 4000);
    }
    process.stdout.write(`# SIGTERM: worker-A finished its 2 tasks and exited 0 after ${exitMs} ms\n`);
  });

  it('malformed entries put straight on the queue stream do not stop the worker', async (t) => {
    const { redis, api, socket, rec } = await system(t);
    const w = await startWorker({ redis, name: 'worker', env: { WORKER_CONCURRENCY: '1' } });
    const first = await api.createExport(10, { socketId: socket.id });
    assert.equal((await waitFinal(rec, first, 20_000)).event, 'task:completed');
    const since = w.proc.mark();
    const bad = [
      ['task', 'not json at all'],
      ['task', '{"id":"AAAAAAAAAAAAAAAAAAAAAA","kind":"export","params":{"rows":"many"},"owner":"x"}'],
      ['task', '{"id":"AAAAAAAAAAAAAAAAAAAAAB","kind":"mine-bitcoin","params":{},"owner":"x"}'],
      ['task', '{"id":"../../etc","kind":"export","params":{"rows":1}}'],
      ['task', '[]'],
      ['task', ''],
      ['something', 'else'],
    ];
    for (const [field, value] of bad) {
      const reply = await redis.command('XADD', 'taskwire:queue:export', '*', field, value);
      assert.match(reply, /^\$/, `XADD: ${reply}`);
    }
    const next = await api.createExport(20, { socketId: socket.id });
    const e = await waitFinal(rec, next, 20_000, 'owner');
    assert.equal(e.event, 'task:completed');
    assert.equal(e.args[0].rows, 20);
    assert.ok(w.proc.running, 'the worker is still running');
    // Each bad entry is dropped and logged; the well-formed one whose params are
    // wrong reaches the runner, which drops it since no record exists for it.
    const dropped = logEntries(w.proc, 'dropping a queue entry that cannot run', { since });
    assert.equal(dropped.length, bad.length - 1, `each bad entry is dropped and logged:\n${w.proc.tail(20)}`);
    const noRecord = logEntries(w.proc, 'the task has no record (expired or never created); dropping its queue entry', { since });
    assert.equal(noRecord.length, 1, `the entry without a record:\n${w.proc.tail(20)}`);
    // The stream keeps no entry: all are acknowledged and removed (the last one
    // just after its task:completed went out).
    await until(async () => (await redis.command('XLEN', 'taskwire:queue:export')) === ':0',
      { what: 'an empty queue stream', timeoutMs: 5_000 });
    assert.equal((await api.list()).filter((r) => r.state !== 'completed').length, 0);
  });
});
