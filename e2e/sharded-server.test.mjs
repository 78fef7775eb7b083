// taskwire-server with SOCKETIO_ADAPTER=sharded (Redis 7 SPUBLISH/SSUBSCRIBE) in
// one cluster with a Node socket.io 4.8 server on @socket.io/redis-adapter 8.3's
// createShardedAdapter: our sharded emitter reaches the sockets of both binaries
// (identity room, socket id, a task room joined through the HTTP API on another
// replica), and the Node server's broadcasts and socketsJoin reach ours.
// (The full emitter matrix against our server in sharded mode, rooms and
// namespaces included, is in interop-emitter.test.mjs.)

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';

import { createClient } from 'redis';

import { buildBinaries } from './lib/build.mjs';
import { closeAll, connect } from './lib/client.mjs';
import { startEmitterDriver, startNodeServer } from './lib/nodeio.mjs';
import { startRedis } from './lib/redis.mjs';
import { Api, startServer, stopSystem } from './lib/taskwire.mjs';

const env = {};
const SHARDED = { SOCKETIO_ADAPTER: 'sharded' }; // subscription mode: dynamic, as Node's default

before(async () => {
  env.redis = await startRedis();
  const bins = await buildBinaries({ names: ['twemit'] });
  if (!bins.paths.twemit) throw new Error(`twemit not available: ${bins.missing.twemit}`);
  [env.G1, env.G2, env.N] = await Promise.all([
    startServer({ redis: env.redis, name: 'server-G1', env: SHARDED }),
    startServer({ redis: env.redis, name: 'server-G2', env: SHARDED }),
    startNodeServer({ redisUrl: env.redis.url, name: 'N', adapter: 'sharded' }),
  ]);
  env.emitter = startEmitterDriver('go', { redisUrl: env.redis.url, twemitPath: bins.paths.twemit });
  env.rdb = createClient({ url: env.redis.url });
  await env.rdb.connect();
});

after(async () => {
  await env.rdb?.quit().catch(() => {});
  await stopSystem();
});
afterEach(() => closeAll());

const identityOf = (token) => token.split('.')[1];
const sharded = (spec) => ({ sharded: true, ...spec });

let sentinels = 0;

/** settle sends a sentinel to everyone and waits until each client has it. */
async function settle(clients) {
  const tag = `sentinel-${++sentinels}`;
  await env.emitter.perform(sharded({ call: 'emit', args: ['sentinel', tag] }));
  await Promise.all(Object.entries(clients).map(([name, c]) =>
    c.recorder.waitFor('sentinel', (t) => t === tag, 5_000, { label: name })));
}

/**
 * waitShardSubscribers waits until n servers subscribe to channel (PUBSUB
 * SHARDNUMSUB): in the dynamic mode a server subscribes to a room's channel on a
 * goroutine (or tick) of its own after the room appears, and nothing announces
 * when Redis has it.
 */
async function waitShardSubscribers(channel, n, timeoutMs = 5_000) {
  for (const deadline = Date.now() + timeoutMs; ;) {
    const [, count] = await env.rdb.sendCommand(['PUBSUB', 'SHARDNUMSUB', channel]);
    if (Number(count) >= n) return;
    assert.ok(Date.now() < deadline, `${channel}: ${count} subscribers after ${timeoutMs} ms, want ${n}`);
    await new Promise((r) => setTimeout(r, 10)); // no event tells when Redis has the subscription
  }
}

function got(c, event) {
  return c.recorder.all(event).map((e) => e.args);
}

test('the sharded emitter reaches sockets of both taskwire replicas and of the Node server', async () => {
  const X = await Api.session(env.G1.url);
  const cs = {
    x1: await connect(env.G1.url, { token: X.token, transports: ['websocket'] }),
    x2: await connect(env.G2.url, { token: X.token, transports: ['polling'] }),
    n1: await connect(env.N.url, { transports: ['websocket'], auth: { rooms: [`user:${identityOf(X.token)}`] } }),
  };
  const user = `user:${identityOf(X.token)}`;
  // A dynamic emit to the user's room goes to the room's channel only.
  await waitShardSubscribers(`socket.io#/#${user}#`, 3);
  for (const mode of [undefined, 'dynamic']) {
    const m = mode ? { subscriptionMode: mode } : {};
    await env.emitter.perform(sharded({ ...m, ops: [{ to: user }], call: 'emit', args: ['to-user', mode ?? 'static', { bin: { $bin: 'AQI=' } }] }));
    await env.emitter.perform(sharded({ ...m, ops: [{ to: cs.x2.id }], call: 'emit', args: ['to-socket', mode ?? 'static'] }));
    await env.emitter.perform(sharded({ ...m, ops: [{ to: cs.n1.id }], call: 'emit', args: ['to-socket', mode ?? 'static'] }));
  }
  await settle(cs);
  for (const c of Object.values(cs)) {
    const evs = got(c, 'to-user');
    assert.deepEqual(evs.map((a) => a[0]), ['static', 'dynamic']);
    assert.ok(Buffer.isBuffer(evs[0][1].bin) || evs[0][1].bin instanceof ArrayBuffer, 'binary arrives as binary');
  }
  assert.deepEqual(got(cs.x1, 'to-socket'), []);
  assert.deepEqual(got(cs.x2, 'to-socket'), [['static'], ['dynamic']]);
  assert.deepEqual(got(cs.n1, 'to-socket'), [['static'], ['dynamic']]);
});

test('a task room joined through one replica (sharded SOCKETS_JOIN) gets the emitter\'s events on another', async () => {
  const X = await Api.session(env.G1.url);
  const x1 = await connect(env.G1.url, { token: X.token, transports: ['websocket'] });
  // The POST goes to G2; x1 lives on G1.
  const id = await X.at(env.G2.url).createExport(10, { socketId: x1.id });
  await env.emitter.perform(sharded({ ops: [{ to: `task:${id}` }], call: 'emit', args: ['task:progress', { taskId: id, seq: 1 }] }));
  const e = await x1.recorder.waitFor('task:progress', (p) => p.taskId === id && p.seq === 1, 5_000, { label: 'x1' });
  assert.deepEqual(e.args, [{ taskId: id, seq: 1 }]);
});

test("the Node sharded server's broadcasts and socketsJoin reach taskwire's sockets", async () => {
  const X = await Api.session(env.G1.url);
  const cs = {
    x1: await connect(env.G1.url, { token: X.token, transports: ['websocket'] }),
    x2: await connect(env.G2.url, { token: X.token, transports: ['websocket'] }),
  };
  const user = `user:${identityOf(X.token)}`;
  await env.N.command({ op: 'emit', to: user, args: ['from-node', 1, { $bin: 'AQID' }] });
  await env.N.command({ op: 'socketsJoin', in: cs.x2.id, rooms: 'from-node-room' });
  // x2's server subscribes to the new room's channel, where Node (dynamic) sends;
  // nothing announces when Redis has that subscription, so ask Redis.
  await waitShardSubscribers('socket.io#/#from-node-room#', 1);
  await env.N.command({ op: 'emit', to: 'from-node-room', args: ['in-room', 2] });
  await cs.x2.recorder.waitFor('in-room', (n) => n === 2, 5_000, { label: 'x2' });
  await settle(cs);
  for (const c of Object.values(cs)) {
    const [args] = got(c, 'from-node');
    assert.equal(args[0], 1);
    assert.ok(Buffer.isBuffer(args[1]) || args[1] instanceof ArrayBuffer, 'binary arrives as binary');
  }
  assert.deepEqual(got(cs.x1, 'in-room'), []);
});

test("fetchSockets on the Node sharded server returns taskwire's sockets (their answers on its response channel)", async () => {
  const X = await Api.session(env.G1.url);
  const x1 = await connect(env.G1.url, { token: X.token, transports: ['websocket'] });
  const x2 = await connect(env.G2.url, { token: X.token, transports: ['polling'] });
  const user = `user:${identityOf(X.token)}`;
  const res = await env.N.command({ op: 'fetchSockets', in: user });
  const ids = res.sockets.map((s) => s.id).sort();
  assert.deepEqual(ids, [x1.id, x2.id].sort());
  for (const s of res.sockets) {
    assert.ok(s.rooms.includes(user), `rooms of ${s.id}: ${s.rooms}`);
    assert.deepEqual(s.data, { identity: identityOf(X.token) });
  }
  // Every server answered: no wait for the request timeout (5 s).
  assert.ok(res.ms < 4_000, `fetchSockets took ${res.ms} ms`);
});
