// SIGTERM of a taskwire-server with clients on it (issue 3): it stops accepting
// (readiness and new Socket.IO sessions answer 503), disconnects its clients spread
// over a window rather than all at once, and exits 0 within its SHUTDOWN_TIMEOUT;
// the clients reconnect on their own, through the load balancer, to the other
// server, and the one following a task picks it up again (task:subscribe) and sees
// it finish.
//
// The load balancer is lib/tcpproxy.mjs: when the server gets SIGTERM it leaves the
// rotation, as a Kubernetes Service drops a terminating pod. The clients use the
// websocket transport (a round-robin TCP balancer cannot keep long-polling
// requests on one server).

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { connect } from './lib/client.mjs';
import { withTimeout } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';
import { startTcpProxy } from './lib/tcpproxy.mjs';
import {
  Api, ack, checkProgress, startServer, startWorker, stopSystem, taskEvents, waitFinal, waitLog,
} from './lib/taskwire.mjs';

after(() => stopSystem());

const SHUTDOWN_MS = 3_000;
const CLIENTS = 20;

describe('server shutdown', () => {
  it('SIGTERM: spread disconnects, clients reconnect to the other server, exit 0 within SHUTDOWN_TIMEOUT', async (t) => {
    t.after(() => stopSystem());
    const redis = await startRedis();
    const serverEnv = { SHUTDOWN_TIMEOUT: `${SHUTDOWN_MS}ms` };
    const [A, B] = await Promise.all([
      startServer({ redis, name: 'server-A', env: serverEnv }),
      startServer({ redis, name: 'server-B', env: serverEnv }),
      startWorker({ redis, env: { EXPORT_ROW_DELAY: '1ms' } }),
    ]);
    const proxy = await startTcpProxy({ backends: [A.port] });
    t.after(() => proxy.close());
    const owner = await Api.session(A.url);
    const clients = [];
    for (let i = 0; i < CLIENTS; i++) {
      clients.push(await connect(proxy.url, {
        token: owner.token,
        transports: ['websocket'],
        reconnection: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 500,
      }));
    }
    assert.ok(proxy.connections.every((c) => c.backend === A.port));

    // Client 0 follows a long task, and, like the web app, subscribes again after
    // every reconnection (its new connection is in no task room).
    const follower = clients[0];
    const id = await owner.createExport(12_000, { socketId: follower.id }); // 12 s: it outlives the drain and the reconnection
    const snapshots = [];
    follower.on('connect', () => {
      follower.timeout(5_000).emitWithAck('task:subscribe', { taskId: id })
        .then((snap) => snapshots.push(snap), (err) => snapshots.push({ error: String(err) }));
    });
    await follower.recorder.waitFor('task:progress', (p) => p.taskId === id && p.done >= 500, 20_000);

    const marks = clients.map((c) => c.recorder.mark());
    proxy.setBackends([B.port]);
    const termAt = Date.now();
    const since = A.proc.mark();
    A.proc.signal('SIGTERM');
    await waitLog(A.proc, 'shutting down', { since });

    // While it drains: not ready, and no new Socket.IO session.
    const ready = await fetch(`${A.url}/readyz`);
    assert.equal(ready.status, 503, 'readyz while draining');
    const handshake = await fetch(`${A.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(handshake.status, 503, 'a new session while draining');
    await handshake.body?.cancel();

    const disconnects = await Promise.all(clients.map((c, i) =>
      c.recorder.waitFor('disconnect', () => true, SHUTDOWN_MS + 2_000, { since: marks[i], label: `client ${i}` })));
    for (const d of disconnects) {
      assert.equal(d.args[0], 'transport close', 'a disconnect the client recovers from on its own');
    }
    const exit = await withTimeout(A.proc.exited, SHUTDOWN_MS + 2_000,
      () => `server-A did not exit within SHUTDOWN_TIMEOUT (${SHUTDOWN_MS} ms):\n${A.proc.tail()}`);
    const exitMs = Date.now() - termAt;
    assert.deepEqual(exit, { code: 0, signal: null }, `server-A exit:\n${A.proc.tail()}`);

    // Every client is back, on server B.
    await Promise.all(clients.map((c, i) =>
      c.recorder.waitFor('connect', () => true, 10_000, { since: marks[i], label: `client ${i} reconnecting` })));
    const late = proxy.connections.filter((c) => c.at >= termAt);
    assert.ok(late.length >= CLIENTS && late.every((c) => c.backend === B.port), JSON.stringify(late));
    assert.ok(clients.every((c) => c.connected));

    // Spread: the disconnections were not all at once.
    const times = disconnects.map((d) => d.at - termAt).sort((a, b) => a - b);
    const spread = times.at(-1) - times[0];
    assert.ok(spread >= SHUTDOWN_MS / 5, `disconnects spread over only ${spread} ms: ${times.join(' ')}`);

    // The follower got the snapshot on B and sees the task finish.
    const done = await waitFinal(follower.recorder, id, 40_000, 'follower');
    assert.equal(done.event, 'task:completed');
    const resub = snapshots.at(-1);
    assert.equal(resub.taskId, id, `snapshot after the reconnection: ${JSON.stringify(snapshots)}`);
    const final = await owner.at(B.url).record(id);
    assert.equal(final.state, 'completed');
    await ack(follower, 'task:subscribe', { taskId: id }); // barrier
    const evs = checkProgress(taskEvents(follower.recorder, id), id);
    const later = evs.filter((e) => e.payload.seq > resub.seq).map((e) => e.payload.seq);
    assert.deepEqual(later, Array.from({ length: final.seq - resub.seq }, (_, i) => resub.seq + 1 + i),
      'every event after the snapshot arrives on the new server');
    process.stdout.write(`# server SIGTERM: ${CLIENTS} clients disconnected from ${times[0]} to ${times.at(-1)} ms, ` +
      `exit 0 after ${exitMs} ms (SHUTDOWN_TIMEOUT ${SHUTDOWN_MS} ms); all reconnected to B\n`);
  });
});
