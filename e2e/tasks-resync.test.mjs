// A server that loses Redis for a while (issue 3: "never stuck"): events the
// workers publish while the server's adapter is not subscribed never reach it,
// and pub/sub keeps nothing for later. When the adapter has subscribed again,
// the server sends every task room it holds a task:state snapshot read from the
// record, so a browser that saw nothing of a task's end still shows it, without
// reconnecting or asking.
//
// The server reaches Redis through a TCP proxy (lib/tcpproxy.mjs) that the test
// partitions; the worker talks to Redis directly and finishes the task during
// the partition.

import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';

import { closeAllAndWait, connect } from './lib/client.mjs';
import { startRedis } from './lib/redis.mjs';
import { startTcpProxy } from './lib/tcpproxy.mjs';
import { Api, registerExport, startServer, startWorker, stopSystem, until, waitLog } from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAllAndWait());

for (const adapter of ['classic', 'sharded']) {
  describe(`a partition between the server and Redis (${adapter} adapter)`, () => {
    it('sends the owner the final state it missed once the subscription is back', async (t) => {
      t.after(() => stopSystem());
      const redis = await startRedis({ t });
      const proxy = await startTcpProxy({ backends: [redis.port], t });
      const env = { SOCKETIO_ADAPTER: adapter };
      await registerExport(redis);
      const server = await startServer({ redis: { url: `redis://127.0.0.1:${proxy.port}/0` }, env, t });
      const api = await Api.session(server.url);
      const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });
      const rec = socket.recorder;

      // No worker yet: the task stays queued, and its owner's socket is in its room.
      const id = await api.createExport(500, { socketId: socket.id });

      proxy.setBackends([]);
      proxy.cut();
      await until(async () => {
        const res = await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(5_000) });
        return res.status === 503;
      }, { what: 'the server to see Redis gone' });

      const worker = await startWorker({ redis, env, t });
      await waitLog(worker.proc, 'task completed', { pred: (e) => e.task === id, timeoutMs: 20_000 });
      assert.equal(rec.all('task:completed').length, 0,
        'task:completed crossed a partitioned server: the test does not test what it says');

      const since = server.proc.mark();
      proxy.setBackends([redis.port]);
      const snap = await rec.waitFor('task:state', (st) => st.taskId === id && st.state === 'completed',
        20_000, { label: 'the task:state snapshot after the partition' });
      const state = snap.args[0];
      assert.equal(state.done, 500);
      assert.equal(state.percent, 100);
      assert.ok(state.result?.bytes > 0, 'the snapshot carries the result');
      const restored = await waitLog(server.proc, 'redis subscription restored: task snapshots sent', { since });
      assert.ok(restored.tasks >= 1, `snapshots sent: ${restored.tasks}`);

      // The system goes on: a new task's live events arrive again.
      const next = await api.createExport(100, { socketId: socket.id });
      await rec.waitFor('task:completed', (ev) => ev.taskId === next, 20_000, { label: 'the next task' });
    });
  });
}
