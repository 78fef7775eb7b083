// The end-to-end export through `make run-cluster` (issue 6): scripts/run-cluster.sh
// with its redis-server, 2 taskwire-servers, 3 taskwire-workers and the sticky
// taskwire-proxy in front. A real socket.io-client (with a cookie jar, as a
// browser has, so the proxy's affinity cookie keeps long-polling on one server)
// gets a session, connects, POSTs an export with its socket id and receives every
// event, then downloads the CSV, all through the proxy: over polling, over
// websocket, and over polling upgraded to websocket.
//
// Then the failure a cluster exists for: kill -9 of the server a client is
// connected to, in the middle of its export. The client reconnects through the
// proxy (to the surviving server), subscribes to its task again, and sees it
// finish: the snapshot from task:subscribe, then every later event, the last one
// task:completed; the download works.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { closeAll, connect } from './lib/client.mjs';
import { killMember, startCluster } from './lib/cluster.mjs';
import { scrape, value } from './lib/metrics.mjs';
import { withTimeout } from './lib/proc.mjs';
import { Api, ack, checkCsv, checkProgress, taskEvents, until, waitFinal } from './lib/taskwire.mjs';

afterEach(() => closeAll());

const TRANSPORTS = [
  { name: 'polling', transports: ['polling'] },
  { name: 'websocket', transports: ['websocket'] },
  { name: 'polling upgraded to websocket', transports: ['polling', 'websocket'], upgrade: true },
];

/** waitUpgrade resolves once socket's connection runs over websocket. */
function waitUpgrade(socket, timeoutMs = 5_000) {
  const engine = socket.io.engine;
  if (engine.transport.name === 'websocket') return Promise.resolve();
  return withTimeout(new Promise((resolve) => engine.once('upgrade', resolve)), timeoutMs,
    `no upgrade to websocket within ${timeoutMs} ms`);
}

describe('export through the sticky proxy of run-cluster', () => {
  let cluster;
  before(async () => {
    // 300 µs a row: a 3,000-row export takes about a second, ten or so events.
    cluster = await startCluster({ env: { EXPORT_ROW_DELAY: '300us' } });
    assert.equal(cluster.servers.length, 2);
    assert.equal(cluster.workers.length, 3);
  });
  after(() => cluster?.stop());

  for (const { name, transports, upgrade } of TRANSPORTS) {
    it(`over ${name}: session, connect, POST with socketId, every event, download`, async () => {
      const api = await Api.session(cluster.url);
      const socket = await connect(cluster.url, { token: api.token, transports, withCredentials: true });
      if (upgrade) await waitUpgrade(socket);
      assert.equal(socket.io.engine.transport.name, transports.at(-1));

      const rows = 3000;
      const id = await api.createExport(rows, { socketId: socket.id });
      const done = await waitFinal(socket.recorder, id, 30_000, name);
      assert.equal(done.event, 'task:completed', `${name}: ${JSON.stringify(done.args)}`);
      const rec = await api.record(id);
      assert.equal(rec.state, 'completed');
      await ack(socket, 'task:subscribe', { taskId: id }); // barrier: nothing of the task is still on its way
      const evs = checkProgress(taskEvents(socket.recorder, id), id);
      assert.deepEqual(evs.map((e) => e.payload.seq), Array.from({ length: rec.seq }, (_, i) => i + 1),
        `${name}: the client must receive every event of the task (seq 1..${rec.seq}) once`);
      assert.equal(evs.at(-1).payload.rows, rows);
      // One connection the whole time: the proxy kept it on one server.
      assert.equal(socket.recorder.count('disconnect'), 0, `${name}: the client was disconnected`);
      assert.equal(socket.connected, true);

      const res = await api.result(id);
      assert.equal(res.status, 200, res.text.slice(0, 200));
      assert.match(res.headers.get('content-type'), /^text\/csv/);
      checkCsv(res.text, rows);
    });
  }

  it('spread the work over the cluster (seen in the servers\' and workers\' /metrics)', async () => {
    let enqueued = 0;
    for (const s of cluster.servers) enqueued += value(await scrape(`${s.url}/metrics`), 'taskwire_tasks_enqueued_total', { kind: 'export' }) ?? 0;
    assert.equal(enqueued, TRANSPORTS.length, 'tasks enqueued over both servers');
    // Workers report an entry just after its final event: wait for the last one.
    await until(async () => {
      let completed = 0;
      for (const w of cluster.workers) completed += value(await scrape(`${w.url}/metrics`), 'taskwire_worker_tasks_completed_total', { kind: 'export' }) ?? 0;
      return completed === TRANSPORTS.length;
    }, { what: `${TRANSPORTS.length} exports completed over the workers' metrics` });
  });
});

describe('kill -9 of the server a client is on, mid-task', () => {
  for (const { name, transports } of TRANSPORTS.slice(0, 2)) {
    it(`over ${name}: the client reconnects through the proxy and sees its export finish`, async (t) => {
      // 1 ms a row: the 8,000-row export runs about 8 s, the kill comes early in it.
      const cluster = await startCluster({ env: { EXPORT_ROW_DELAY: '1ms' }, t });
      const api = await Api.session(cluster.url);
      const socket = await connect(cluster.url, {
        token: api.token, transports, withCredentials: true,
        reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500, randomizationFactor: 0,
      });
      const rows = 8000;
      const id = await api.createExport(rows, { socketId: socket.id });
      await socket.recorder.waitFor('task:progress', (p) => p.taskId === id && p.done > 0, 15_000, { label: name });

      // The server holding the socket is the one whose /metrics counts it.
      const victim = await until(async () => {
        const held = [];
        for (const s of cluster.servers) {
          if (value(await scrape(`${s.url}/metrics`), 'taskwire_socketio_sockets') === 1) held.push(s);
        }
        return held.length === 1 ? held[0] : null;
      }, { what: 'exactly one server holding the client\'s socket' });
      const oldSid = socket.id;
      const mark = socket.recorder.mark();
      await killMember(cluster, victim, 'server');

      await socket.recorder.waitFor('disconnect', () => true, 10_000, { since: mark, label: name });
      await socket.recorder.waitFor('connect', () => true, 20_000, { since: mark, label: `${name} (reconnection)` });
      assert.notEqual(socket.id, oldSid, 'a new socket after reconnecting');
      assert.ok(cluster.proc.running, 'the cluster lives on');

      // Follow the task again: its snapshot, then every later event.
      const snap = await ack(socket, 'task:subscribe', { taskId: id });
      assert.equal(snap.taskId, id);
      assert.equal(snap.state, 'running', `the export should still run after the reconnection: ${JSON.stringify(snap)}`);
      const since = socket.recorder.mark();
      const done = await waitFinal(socket.recorder, id, 30_000, name);
      assert.equal(done.event, 'task:completed', JSON.stringify(done.args));
      await ack(socket, 'task:subscribe', { taskId: id }); // barrier
      const rec = await api.record(id);
      assert.equal(rec.state, 'completed');
      const later = taskEvents(socket.recorder, id).filter((e) => e.payload.seq > snap.seq);
      assert.deepEqual(later.map((e) => e.payload.seq),
        Array.from({ length: rec.seq - snap.seq }, (_, i) => snap.seq + 1 + i),
        `${name}: every event after the snapshot (seq ${snap.seq + 1}..${rec.seq}), once, in order`);
      assert.equal(later.at(-1).event, 'task:completed');
      assert.ok(socket.recorder.all('task:completed', { since }).length === 1);

      const res = await api.result(id);
      assert.equal(res.status, 200, res.text.slice(0, 200));
      checkCsv(res.text, rows);
      await cluster.stop();
    });
  }
});
