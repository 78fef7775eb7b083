// Deploy order does not matter (issue 12): servers and workers of the previous
// release (built from its commit) next to this one's, on one Redis, with the real
// socket.io-client.
//
// - an old server with new workers: the old server queues on its one stream, a
//   new worker moves the entry to its kind's queue and runs it; the old server
//   relays every event;
// - a new server with old workers only: the server knows no kind (old workers do
//   not register any), so it refuses with a clear unknown_kind and accepts
//   nothing it cannot run; once a new worker is up, tasks run, on it;
// - a rolling update: old server and old worker busy with tasks; a new worker
//   joins, the old worker drains (handing its tasks back), a new server takes
//   over from the old one: every task completes, each exactly once.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { closeAllAndWait, connect } from './lib/client.mjs';
import { buildPrevious } from './lib/previous.mjs';
import { startRedis } from './lib/redis.mjs';
import { Api, ack, checkCsv, startServer, startWorker, stopSystem, waitFinal, waitLog } from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAllAndWait());

let old;
before(() => {
  old = buildPrevious();
});

describe('servers and workers of two releases on one Redis', () => {
  it('an old server with new workers: its tasks run on them and every event reaches the browser', async (t) => {
    t.after(() => stopSystem());
    const redis = await startRedis();
    const server = await startServer({ redis, bin: old.server, name: 'old-server' });
    const worker = await startWorker({ redis });
    const api = await Api.session(server.url);
    const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await api.createExport(2000, { socketId: socket.id }));
    for (const id of ids) {
      const done = await waitFinal(socket.recorder, id, 30_000);
      assert.equal(done.event, 'task:completed', JSON.stringify(done.args));
      const res = await api.request('GET', `/api/v1/tasks/${id}/result`, { timeoutMs: 20_000 });
      assert.equal(res.status, 200);
      checkCsv(res.text, 2000);
    }
    assert.deepEqual(worker.started().sort(), [...ids].sort(), 'the new worker ran each task once');
  });

  it('a new server with old workers only: a clear unknown_kind, then tasks run once a new worker is up', async (t) => {
    t.after(() => stopSystem());
    const redis = await startRedis();
    const oldWorker = await startWorker({ redis, bin: old.worker, name: 'old-worker' });
    const server = await startServer({ redis, knownKinds: false });
    const api = await Api.session(server.url);
    let res = await api.request('POST', '/api/v1/tasks', { body: { kind: 'export', params: { rows: 10 } } });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error.code, 'unknown_kind');

    await startWorker({ redis, name: 'new-worker' });
    const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });
    const id = await api.createExport(500, { socketId: socket.id });
    const done = await waitFinal(socket.recorder, id, 30_000);
    assert.equal(done.event, 'task:completed');
    assert.deepEqual(oldWorker.started(), [], 'the old worker never takes a task of a new server');
  });

  it('a rolling update of both loses no task and runs none twice', async (t) => {
    t.after(() => stopSystem());
    const redis = await startRedis();
    const oldServer = await startServer({ redis, bin: old.server, name: 'old-server' });
    const oldWorker = await startWorker({
      redis, bin: old.worker, name: 'old-worker',
      env: { EXPORT_ROW_DELAY: '2ms', WORKER_CONCURRENCY: '2', WORKER_SHUTDOWN_TIMEOUT: '0' },
    });
    const api = await Api.session(oldServer.url);
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await api.createExport(1500));
    await waitLog(oldWorker.proc, 'task started');

    // New workers join; the old one drains: its running tasks go back to the queue.
    const newWorker = await startWorker({ redis, name: 'new-worker', env: { EXPORT_ROW_DELAY: '1ms', WORKER_CONCURRENCY: '4' } });
    await oldWorker.proc.kill('SIGTERM');
    // A new server comes up and the old one goes.
    const newServer = await startServer({ redis });
    await oldServer.proc.kill('SIGTERM');
    const follower = await connect(newServer.url, { token: api.token, transports: ['polling'] });
    const newApi = api.at(newServer.url);
    for (let i = 0; i < 2; i++) ids.push(await newApi.createExport(800, { socketId: follower.id }));

    for (const id of ids) {
      // The snapshot first, then the live events of the room: nothing in between.
      const snap = await ack(follower, 'task:subscribe', { taskId: id });
      const final = snap.state === 'completed' || snap.state === 'failed' || snap.state === 'cancelled'
        ? snap.state
        : (await waitFinal(follower.recorder, id, 60_000)).event.replace('task:', '');
      assert.equal(final, 'completed', `task ${id}: ${JSON.stringify(snap)}`);
    }
    const ranNew = newWorker.started();
    const ranOld = oldWorker.started();
    for (const id of ids) {
      const runs = ranNew.filter((x) => x === id).length + ranOld.filter((x) => x === id).length;
      const rec = await newApi.record(id);
      // A task the old worker handed back runs again: as many runs as attempts.
      assert.equal(runs, rec.attempts, `task ${id}: ${runs} runs, ${rec.attempts} attempts`);
      assert.ok(ranNew.filter((x) => x === id).length <= 1, `task ${id} ran twice on the new worker`);
    }
  });
});
