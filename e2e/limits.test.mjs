// Issue 8, limits, through the real binaries and the real socket.io-client: the
// connection bound of a server (MAX_CONNECTIONS) refuses cleanly and the client's
// reconnection gets in once there is room; a Socket.IO message over
// SOCKETIO_MAX_MESSAGE_BYTES closes its connection (websocket and polling) and
// nothing else; task creation is limited per identity across replicas, by rate
// (429 + Retry-After) and by the number of active tasks (429
// too_many_active_tasks), and a slot comes back when a task completes, is
// cancelled (HTTP or socket) or its record expires.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { io } from 'socket.io-client';

import { closeAll, closeAllAndWait, connect } from './lib/client.mjs';
import { sum, waitMetrics } from './lib/metrics.mjs';
import { redisCommand, startRedis } from './lib/redis.mjs';
import { Api, ack, startServer, startWorker, stopSystem, until, waitFinal } from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAllAndWait());

/** refusal opens a client that must be refused and resolves with its connect_error. */
function refusal(url, token, transports) {
  const s = io(url, { forceNew: true, reconnection: false, auth: { token }, transports });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connect_error over ${transports} within 5 s`)), 5_000);
    s.on('connect', () => reject(new Error(`connected over ${transports} to a full server`)));
    s.on('connect_error', (err) => {
      clearTimeout(timer);
      s.close();
      resolve(err);
    });
  });
}

/** disconnected resolves with the reason of the socket's next disconnect. */
function disconnected(socket, timeoutMs = 5_000) {
  return socket.recorder.waitFor('disconnect', () => true, timeoutMs, { label: 'disconnect' }).then((e) => e.args[0]);
}

describe('connections and messages', () => {
  const env = {};
  before(async () => {
    env.redis = await startRedis();
    env.server = await startServer({
      redis: env.redis, name: 'server-limits',
      env: { MAX_CONNECTIONS: '3', SOCKETIO_MAX_MESSAGE_BYTES: '10000' },
    });
    env.api = await Api.session(env.server.url);
  });

  it('MAX_CONNECTIONS: 503 on the handshake, readable by the client over websocket and polling; a retrying client gets in once one leaves', async () => {
    const { url } = env.server;
    const clients = [];
    for (const transports of [['websocket'], ['polling'], ['websocket']]) {
      clients.push(await connect(url, { token: env.api.token, transports }));
    }
    const ws = await refusal(url, env.api.token, ['websocket']);
    assert.equal(ws.message, 'websocket error');
    assert.match(ws.description?.message ?? '', /503/, `websocket refusal: ${ws.description?.message}`);
    const polling = await refusal(url, env.api.token, ['polling']);
    assert.equal(polling.message, 'xhr poll error');
    assert.equal(polling.description, 503, 'polling refusal: status 503');

    // The connected clients are untouched and answered.
    for (const c of clients) {
      assert.ok(c.connected);
      assert.equal((await ack(c, 'task:subscribe', { taskId: 'AAAAAAAAAAAAAAAAAAAAAA' })).error.code, 'not_found');
    }

    // A client with reconnection on keeps trying and connects once a place is free.
    const retrying = io(url, {
      forceNew: true, auth: { token: env.api.token }, transports: ['websocket'],
      reconnectionDelay: 100, reconnectionDelayMax: 200, randomizationFactor: 0,
    });
    const errors = [];
    retrying.on('connect_error', (e) => errors.push(e.message));
    const connected = new Promise((resolve) => retrying.on('connect', resolve));
    await until(() => errors.length >= 2, { what: 'the retrying client to be refused twice' });
    clients[0].close();
    await withDeadline(connected, 10_000, 'the retrying client to connect after one left');
    assert.ok(retrying.connected);
    retrying.close();

    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200);
    assert.ok(env.server.proc.running, 'the server is running');
  });

  for (const transports of [['websocket'], ['polling']]) {
    it(`a message over SOCKETIO_MAX_MESSAGE_BYTES closes its connection (${transports}); the server and other clients go on`, async () => {
      const { url } = env.server;
      // The previous test's connections count until the server has seen them go.
      await waitMetrics(`${url}/metrics`, (m) => (sum(m, 'taskwire_socketio_connections') === 0 ? [] : ['connections left']),
        { timeoutMs: 15_000, what: 'no connection left on the server' });
      const other = await connect(url, { token: env.api.token, transports: ['websocket'] });
      const c = await connect(url, { token: env.api.token, transports });
      // Within the bound: answered.
      const small = await ack(c, 'task:subscribe', { taskId: 'x'.repeat(5_000) });
      assert.equal(small.error.code, 'not_found');
      // Over it: the connection goes, no answer comes.
      let answered = false;
      c.emit('task:subscribe', { taskId: 'x'.repeat(20_000) }, () => { answered = true; });
      const reason = await disconnected(c);
      assert.match(reason, /^transport (close|error)$/, `disconnect reason ${reason}`);
      assert.equal(answered, false);
      // The server goes on.
      assert.equal((await ack(other, 'task:subscribe', { taskId: 'AAAAAAAAAAAAAAAAAAAAAA' })).error.code, 'not_found');
      const again = await connect(url, { token: env.api.token, transports });
      assert.equal((await ack(again, 'task:subscribe', { taskId: 'AAAAAAAAAAAAAAAAAAAAAA' })).error.code, 'not_found');
      assert.ok(env.server.proc.running, 'the server is running');
    });
  }
});

function withDeadline(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

describe('task creation limits, per identity, across replicas', () => {
  it('TASK_CREATE_RATE / TASK_CREATE_BURST: 429 rate_limited with Retry-After, shared by two servers', async (t) => {
    t.after(() => stopSystem());
    const redis = await startRedis();
    // One token every 2 s: the four requests fall within one.
    const env = { TASK_CREATE_RATE: '0.5', TASK_CREATE_BURST: '3', MAX_ACTIVE_TASKS: '0' };
    const [A, B] = await Promise.all([
      startServer({ redis, name: 'server-A', env }), startServer({ redis, name: 'server-B', env }),
    ]);
    const me = await Api.session(A.url);
    for (let i = 0; i < 3; i++) await (i % 2 ? me.at(B.url) : me).createExport(10);
    const res = await me.at(B.url).request('POST', '/api/v1/tasks', { body: { kind: 'export', params: { rows: 10 } } });
    assert.equal(res.status, 429, res.text);
    assert.equal(res.json.error.code, 'rate_limited');
    assert.match(res.json.error.message, /0\.5 per second/);
    const retryAfter = Number(res.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 2, `Retry-After ${res.headers.get('retry-after')}`);
    // Someone else is not limited by my bucket.
    await (await Api.session(B.url)).createExport(10);
    // After Retry-After, I may again (the wait is the limiter's own time).
    await new Promise((r) => setTimeout(r, retryAfter * 1000));
    await me.createExport(10);
  });

  it('MAX_ACTIVE_TASKS: 429 too_many_active_tasks; completion and cancel (HTTP and socket) free a slot', async (t) => {
    t.after(() => stopSystem());
    const redis = await startRedis();
    const env = { TASK_CREATE_RATE: '0', MAX_ACTIVE_TASKS: '3' };
    const [A, B] = await Promise.all([
      startServer({ redis, name: 'server-A', env }), startServer({ redis, name: 'server-B', env }),
    ]);
    const me = await Api.session(A.url);
    const socket = await connect(B.url, { token: me.token, transports: ['websocket'] });
    // No worker yet: the tasks stay queued.
    const ids = [await me.createExport(50), await me.at(B.url).createExport(50), await me.createExport(50)];
    const full = async (what) => {
      const res = await me.at(B.url).request('POST', '/api/v1/tasks', { body: { kind: 'export', params: { rows: 10 } } });
      assert.equal(res.status, 429, `${what}: ${res.text}`);
      assert.equal(res.json.error.code, 'too_many_active_tasks');
      assert.match(res.json.error.message, /3 of your tasks are queued or running, the most allowed at once is 3/);
    };
    await full('three queued');
    // Another identity is not affected.
    await (await Api.session(A.url)).createExport(10);

    assert.equal((await me.cancel(ids[0])).status, 200);
    ids[0] = await me.createExport(50);
    await full('after an HTTP cancel and a new task');
    assert.equal((await ack(socket, 'task:cancel', { taskId: ids[1] })).state, 'cancelled');
    ids[1] = await me.at(B.url).createExport(50, { socketId: socket.id });
    await full('after a socket cancel and a new task');

    // A worker completes them: every slot comes back.
    await startWorker({ redis, name: 'worker' });
    for (const id of ids) await me.waitRecord(id, (r) => r.state === 'completed', { what: 'completed' });
    const next = [];
    for (let i = 0; i < 3; i++) next.push(await me.createExport(10, { socketId: socket.id }));
    for (const id of next) assert.equal((await waitFinal(socket.recorder, id)).event, 'task:completed');
  });

  it('MAX_ACTIVE_TASKS: a task whose record expired no longer counts', async (t) => {
    t.after(() => stopSystem());
    const redis = await startRedis();
    const server = await startServer({ redis, env: { TASK_CREATE_RATE: '0', MAX_ACTIVE_TASKS: '2' } });
    const me = await Api.session(server.url);
    const ids = [await me.createExport(10), await me.createExport(10)];
    const res = await me.request('POST', '/api/v1/tasks', { body: { kind: 'export', params: { rows: 10 } } });
    assert.equal(res.status, 429, res.text);
    // No worker: they stay queued until their records expire (TASK_TTL is at
    // least a minute: their expiry is brought forward).
    for (const id of ids) assert.equal(await redisCommand(redis.port, ['PEXPIRE', `taskwire:task:${id}`, '1']), ':1');
    for (const id of ids) await until(async () => (await me.get(id)).status === 404, { what: `record ${id} to expire` });
    await me.createExport(10);
    await me.createExport(10);
  });
});
