// The whole path (issue 2), through real processes: a session from the HTTP API,
// the real socket.io-client connected to taskwire-server, POST /api/v1/tasks with
// the socket's id, the export run by taskwire-worker in another process, every
// event back to the client through Redis, and the CSV downloaded from the server.
// Over websocket, over polling, and polling upgraded to websocket; then with two
// servers and two workers (client on one server, POST to the other); then bad
// input through the real server.
//
// "Every event" is checked exactly: seq increases by one with every event the
// system publishes for a task, so the client must hold seq 1..record.seq, each
// once, in order.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { closeAllAndWait, connect } from './lib/client.mjs';
import { withTimeout } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';
import { startTcpProxy } from './lib/tcpproxy.mjs';
import {
  Api, ack, checkCsv, checkProgress, startServer, startWorker, stopSystem, taskEvents, waitFinal,
} from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAllAndWait());

/** ROW_DELAY makes a 3,000-row export last about a second: ten progress events or so. */
const ROW_DELAY = '300us';

/**
 * followExport runs one export for api's identity from socket and checks everything
 * the client sees: ordered events ending with one task:completed, every seq from 1
 * to the record's, the record, and the CSV. Returns the events.
 */
async function followExport({ api, socket, rows, postApi = api, label }) {
  const id = await postApi.createExport(rows, { socketId: socket.id });
  const done = await waitFinal(socket.recorder, id, 30_000, label);
  assert.equal(done.event, 'task:completed', `${label}: final event ${JSON.stringify(done.args)}`);
  const rec = await api.record(id);
  assert.equal(rec.state, 'completed');
  // The barrier: an ack on the same connection comes after every event the server
  // wrote to it before, so nothing of this task can still be on its way.
  await ack(socket, 'task:subscribe', { taskId: id });
  const evs = checkProgress(taskEvents(socket.recorder, id), id);
  const seqs = evs.map((e) => e.payload.seq);
  assert.deepEqual(seqs, Array.from({ length: rec.seq }, (_, i) => i + 1),
    `${label}: the client must receive every event of the task (seq 1..${rec.seq}) once`);
  assert.equal(evs.filter((e) => e.event === 'task:completed').length, 1);
  const progress = evs.filter((e) => e.event === 'task:progress');
  assert.ok(progress.length >= 3, `${label}: only ${progress.length} progress events`);
  assert.equal(progress.at(-1).payload.percent, 100);
  assert.equal(progress.at(-1).payload.done, rows);
  for (const p of progress) assert.equal(p.payload.total, rows);

  const c = done.args[0];
  assert.equal(c.rows, rows);
  assert.equal(c.resultUrl, `/api/v1/tasks/${id}/result`);
  assert.deepEqual(rec.result && { url: rec.result.url, rows: rec.result.rows, bytes: rec.result.bytes },
    { url: c.resultUrl, rows: c.rows, bytes: c.bytes });

  const res = await api.request('GET', c.resultUrl, { timeoutMs: 30_000 });
  assert.equal(res.status, 200, `download: ${res.status} ${res.text.slice(0, 200)}`);
  assert.match(res.headers.get('content-type'), /^text\/csv/);
  assert.match(res.headers.get('content-disposition'), /^attachment; filename=/);
  assert.equal(Buffer.byteLength(res.text), c.bytes, 'downloaded bytes = task:completed bytes');
  checkCsv(res.text, rows);
  return { id, evs, rec };
}

describe('the whole path, one server and one worker', () => {
  const env = {};

  before(async () => {
    env.redis = await startRedis();
    [env.server] = await Promise.all([
      startServer({ redis: env.redis }),
      startWorker({ redis: env.redis, env: { EXPORT_ROW_DELAY: ROW_DELAY } }),
    ]);
  });

  it('over websocket', async () => {
    const api = await Api.session(env.server.url);
    const socket = await connect(env.server.url, { token: api.token, transports: ['websocket'] });
    assert.equal(socket.io.engine.transport.name, 'websocket');
    await followExport({ api, socket, rows: 3000, label: 'websocket' });
    assert.equal(socket.io.engine.transport.name, 'websocket');
  });

  it('over polling', async () => {
    const api = await Api.session(env.server.url);
    const socket = await connect(env.server.url, { token: api.token, transports: ['polling'] });
    await followExport({ api, socket, rows: 3000, label: 'polling' });
    assert.equal(socket.io.engine.transport.name, 'polling');
  });

  it('over polling upgraded to websocket, with events before and after the upgrade', async (t) => {
    // The websocket of the upgrade is held back on its way to the server, as a slow
    // network would, until the client has had two events of its task over polling;
    // the rest of the task (about a second, an event every 100 ms) goes over
    // websocket. Nothing may be lost or reordered across the switch.
    const proxy = await startTcpProxy({ backends: [env.server.port], holdWebsockets: true, t });
    const api = await Api.session(env.server.url);
    const socket = await connect(proxy.url, { token: api.token, transports: ['polling', 'websocket'] });
    const engine = socket.io.engine;
    assert.equal(engine.transport.name, 'polling');
    const upgraded = new Promise((resolve) => engine.once('upgrade', () => resolve()));
    // Which transport carried each event.
    const carriedBy = [];
    socket.onAny((event) => {
      carriedBy.push(engine.transport.name);
      if (carriedBy.length === 2) proxy.releaseWebsockets();
    });
    const { evs } = await followExport({ api, socket, rows: 3000, label: 'polling+upgrade' });
    await withTimeout(upgraded, 5_000, () => `no upgrade to websocket (transport ${engine.transport.name})`);
    assert.equal(engine.transport.name, 'websocket');
    assert.ok(proxy.connections.some((c) => c.websocket), 'the upgrade went through the proxy');
    const polled = carriedBy.filter((s) => s === 'polling').length;
    assert.ok(polled >= 2 && polled < carriedBy.length, `events on both transports: ${carriedBy.join(' ')}`);
    process.stdout.write(`# polling+upgrade: ${evs.length} task events, ${polled} of them before the upgrade\n`);
  });

  it('several exports at once reach the one socket that started each', async () => {
    const api = await Api.session(env.server.url);
    const s1 = await connect(env.server.url, { token: api.token, transports: ['websocket'] });
    const s2 = await connect(env.server.url, { token: api.token, transports: ['polling'] });
    const runs = await Promise.all([
      followExport({ api, socket: s1, rows: 1000, label: 's1 a' }),
      followExport({ api, socket: s2, rows: 2000, label: 's2 a' }),
      followExport({ api, socket: s1, rows: 1500, label: 's1 b' }),
    ]);
    // Each socket got only the tasks it named: the other socket of the same
    // identity is not in their rooms.
    assert.deepEqual(taskEvents(s2.recorder, runs[0].id), []);
    assert.deepEqual(taskEvents(s2.recorder, runs[2].id), []);
    assert.deepEqual(taskEvents(s1.recorder, runs[1].id), []);
  });
});

describe('the whole path, two servers and two workers', () => {
  const env = {};

  before(async () => {
    env.redis = await startRedis();
    const workerEnv = { EXPORT_ROW_DELAY: ROW_DELAY, WORKER_CONCURRENCY: '1' };
    [env.A, env.B, env.w1, env.w2] = await Promise.all([
      startServer({ redis: env.redis, name: 'server-A' }),
      startServer({ redis: env.redis, name: 'server-B' }),
      startWorker({ redis: env.redis, name: 'worker-1', env: workerEnv }),
      startWorker({ redis: env.redis, name: 'worker-2', env: workerEnv }),
    ]);
  });

  it('the client on server A gets every event of tasks POSTed to server B, run by both workers', async () => {
    const apiA = await Api.session(env.A.url);
    const apiB = apiA.at(env.B.url);
    const ws = await connect(env.A.url, { token: apiA.token, transports: ['websocket'] });
    const poll = await connect(env.A.url, { token: apiA.token, transports: ['polling'] });
    // Two tasks at once with one slot per worker: each worker runs one.
    const runs = await Promise.all([
      followExport({ api: apiA, postApi: apiB, socket: ws, rows: 3000, label: 'A/websocket, POST to B' }),
      followExport({ api: apiA, postApi: apiB, socket: poll, rows: 3000, label: 'A/polling, POST to B' }),
    ]);
    const ran = [env.w1, env.w2].map((w) => w.started());
    for (const r of runs) {
      assert.equal(ran.flat().filter((x) => x === r.id).length, 1, `task ${r.id} ran once: ${JSON.stringify(ran)}`);
    }
    assert.ok(ran.every((list) => list.length > 0), `both workers ran a task: ${JSON.stringify(ran)}`);
  });

  it('and the other way round: client on B, POST to A', async () => {
    const apiB = await Api.session(env.B.url);
    const socket = await connect(env.B.url, { token: apiB.token, transports: ['websocket'] });
    await followExport({ api: apiB, postApi: apiB.at(env.A.url), socket, rows: 2000, label: 'B, POST to A' });
  });
});

describe('bad input through the real server', () => {
  const env = {};

  before(async () => {
    env.redis = await startRedis();
    [env.server] = await Promise.all([
      startServer({ redis: env.redis }),
      startWorker({ redis: env.redis, env: { EXPORT_ROW_DELAY: ROW_DELAY } }),
    ]);
  });

  const cases = [
    ['unknown kind', '{"kind":"nope","params":{"rows":3}}', 'unknown_kind', /kind: unknown kind "nope"; known kinds: "export"/],
    ['missing kind', '{"params":{"rows":3}}', 'unknown_kind', /kind: is required/],
    ['missing params', '{"kind":"export"}', 'invalid_params', /params: is required/],
    ['unknown parameter', '{"kind":"export","params":{"rowz":3}}', 'invalid_params', /params\.rowz: unknown field "rowz"/],
    ['params not an object', '{"kind":"export","params":[3]}', 'invalid_params', /params: must be a JSON object/],
    ['rows 0', '{"kind":"export","params":{"rows":0}}', 'invalid_params', /params\.rows: must be between 1 and 1000000, got 0/],
    ['rows -5', '{"kind":"export","params":{"rows":-5}}', 'invalid_params', /params\.rows: must be between 1 and 1000000, got -5/],
    ['rows 1,000,001', '{"kind":"export","params":{"rows":1000001}}', 'invalid_params', /params\.rows: must be between 1 and 1000000, got 1000001/],
    ['rows not whole', '{"kind":"export","params":{"rows":2.5}}', 'invalid_params', /params\.rows: must be an integer/],
    ['rows a string', '{"kind":"export","params":{"rows":"3"}}', 'invalid_params', /params\.rows: must be an integer, got string/],
    ['kind a number', '{"kind":5,"params":{"rows":3}}', 'invalid_params', /kind: must be a string, got number/],
    ['socketId a number', '{"kind":"export","params":{"rows":3},"socketId":7}', 'invalid_params', /socketId: must be a string/],
    ['socketId not an id', '{"kind":"export","params":{"rows":3},"socketId":"a b"}', 'invalid_params', /socketId: must be a Socket\.IO socket id/],
    ['unknown field', '{"kind":"export","params":{"rows":3},"priority":1}', 'invalid_params', /body: unknown field "priority"/],
    ['truncated JSON', '{"kind":"export","params":{"rows":3}', 'invalid_params', /body: truncated JSON/],
    ['malformed JSON', '{kind: export}', 'invalid_params', /body: malformed JSON/],
    ['trailing data', '{"kind":"export","params":{"rows":3}}{}', 'invalid_params', /body: unexpected data after the JSON object/],
    ['an array', '[{"kind":"export"}]', 'invalid_params', /body: must be a JSON object/],
    ['empty body', '', 'invalid_params', /body: is required/],
    ['null', 'null', 'invalid_params', /body: is required/],
  ];

  it('answers 400 with a code and a message that says what is wrong, and accepts nothing', async () => {
    const api = await Api.session(env.server.url);
    for (const [what, body, code, message] of cases) {
      const res = await api.request('POST', '/api/v1/tasks', { rawBody: body, headers: { 'Content-Type': 'application/json' } });
      assert.equal(res.status, 400, `${what}: status ${res.status} ${res.text}`);
      assert.equal(res.headers.get('location'), null, `${what}: no Location`);
      assert.deepEqual(Object.keys(res.json ?? {}), ['error'], `${what}: body ${res.text}`);
      assert.equal(res.json.error.code, code, `${what}: ${res.text}`);
      assert.match(res.json.error.message, message, `${what}: ${res.text}`);
    }
    // Neither a 400 nor anything else created a task, and the server still works.
    assert.deepEqual(await api.list(), []);
    const id = await api.createExport(5);
    const rec = await api.waitRecord(id, (r) => r.state === 'completed', { what: 'completion after the bad requests' });
    assert.equal(rec.result.rows, 5);
    assert.deepEqual((await api.list()).map((r) => r.taskId), [id]);
  });

  it('refuses other media types, oversized bodies and missing or forged tokens', async () => {
    const api = await Api.session(env.server.url);
    const good = '{"kind":"export","params":{"rows":3}}';
    let res = await api.request('POST', '/api/v1/tasks', { rawBody: good, headers: { 'Content-Type': 'text/plain' } });
    assert.equal(res.status, 415, res.text);
    assert.equal(res.json.error.code, 'unsupported_media_type');
    res = await api.request('POST', '/api/v1/tasks', { rawBody: `{"kind":"export","params":{"rows":3},"socketId":"${'x'.repeat(70_000)}"}` });
    assert.equal(res.status, 413, res.text);
    assert.equal(res.json.error.code, 'body_too_large');
    for (const token of ['', 'v1.not-a-token', api.token.slice(0, -2) + (api.token.endsWith('AA') ? 'BB' : 'AA')]) {
      res = await new Api(env.server.url, token).request('POST', '/api/v1/tasks', { rawBody: good });
      assert.equal(res.status, 401, `token ${JSON.stringify(token)}: ${res.text}`);
      assert.equal(res.json.error.code, 'unauthorized');
    }
    await assert.rejects(connect(env.server.url, { token: 'v1.forged', transports: ['websocket'] }), /unauthorized/);
    assert.deepEqual(await api.list(), []);
  });

  it('a second identity gets 404 on the task of another, the same as for an unknown id', async () => {
    const owner = await Api.session(env.server.url);
    const other = await Api.session(env.server.url);
    const id = await owner.createExport(50);
    await owner.waitRecord(id, (r) => r.state === 'completed', { what: 'completion' });
    const unknown = 'AAAAAAAAAAAAAAAAAAAAAA';
    for (const [method, path] of [['GET', '/result'], ['GET', ''], ['DELETE', '']]) {
      const theirs = await other.request(method, `/api/v1/tasks/${id}${path}`);
      const none = await other.request(method, `/api/v1/tasks/${unknown}${path}`);
      assert.equal(theirs.status, 404, `${method} ${path}: ${theirs.text}`);
      assert.deepEqual(theirs.json, none.json, `${method} ${path}: the same answer as for an unknown task`);
      assert.deepEqual(theirs.json, { error: { code: 'not_found', message: 'no such task' } });
    }
    assert.deepEqual(await other.list(), []);
    const mine = await owner.result(id);
    assert.equal(mine.status, 200);
    checkCsv(mine.text, 50);
  });

  it('a socketId of another identity does not let that socket follow the task', async () => {
    const owner = await Api.session(env.server.url);
    const other = await Api.session(env.server.url);
    const mySocket = await connect(env.server.url, { token: owner.token, transports: ['websocket'] });
    const theirSocket = await connect(env.server.url, { token: other.token, transports: ['websocket'] });
    // The owner names the other identity's socket: it must not join the room.
    // mySocket (same server) follows the task too, so that once it has the last
    // event, the server has handled every event of the task.
    const id = await owner.createExport(10_000, { socketId: theirSocket.id }); // about 3 s
    const snap = await ack(mySocket, 'task:subscribe', { taskId: id });
    assert.ok(['queued', 'running'].includes(snap.state), `snapshot ${JSON.stringify(snap)}`);
    const done = await waitFinal(mySocket.recorder, id, 30_000, 'owner socket');
    assert.equal(done.event, 'task:completed');
    // Barrier on their connection: everything written to it before is here.
    const refused = await ack(theirSocket, 'task:subscribe', { taskId: id });
    assert.deepEqual(refused, { error: { code: 'not_found', message: 'no such task' } });
    assert.deepEqual(taskEvents(theirSocket.recorder, id), [], 'the other identity received events of the task');
  });
});
