// Interop with our server in the middle (issue 2): Node's @socket.io/redis-emitter
// 5.1 -> taskwire-server -> real socket.io-client sockets; and a Node socket.io 4.8
// server with @socket.io/redis-adapter 8.3 sharing one Redis with two
// taskwire-servers: broadcasts from either side reach the clients of both,
// socketsJoin / socketsLeave / disconnectSockets issued on the Node server act on
// sockets that live on ours, and fetchSockets on the Node server returns ours too.
// (Our Go emitter -> Node servers is interop-emitter.test.mjs.)
//
// "Did not receive" is proven with a sentinel: after an action, the same publisher
// sends a sentinel to everyone; each server reads one subscription in order and
// writes to each client in order, so a client that has its sentinel has everything
// published before it.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { closeAllAndWait, connect, toBuffer } from './lib/client.mjs';
import { startEmitterDriver, startNodeServer } from './lib/nodeio.mjs';
import { startRedis } from './lib/redis.mjs';
import { Api, ack, logEntries, startServer, startWorker, stopSystem, taskEvents, waitFinal } from './lib/taskwire.mjs';

const env = {};

before(async () => {
  env.redis = await startRedis();
  [env.G1, env.G2, env.N] = await Promise.all([
    startServer({ redis: env.redis, name: 'server-G1' }),
    startServer({ redis: env.redis, name: 'server-G2' }),
    startNodeServer({ redisUrl: env.redis.url, name: 'N' }),
  ]);
  env.emitter = startEmitterDriver('node', { redisUrl: env.redis.url });
});

after(() => stopSystem());
afterEach(() => closeAllAndWait());

/** identityOf returns the identity a session token carries (its middle part). */
const identityOf = (token) => token.split('.')[1];

let sentinels = 0;

/**
 * openClients connects: x1 (identity X, server G1, websocket), x2 (X, G2, polling),
 * y1 (identity Y, G1, websocket), n1 (Node server, websocket, rooms) and n2 (Node,
 * polling). Returns them by name, plus X and Y (Api of each identity).
 */
async function openClients({ nodeRooms = [] } = {}) {
  const X = await Api.session(env.G1.url);
  const Y = await Api.session(env.G1.url);
  const cs = {
    x1: await connect(env.G1.url, { token: X.token, transports: ['websocket'] }),
    x2: await connect(env.G2.url, { token: X.token, transports: ['polling'] }),
    y1: await connect(env.G1.url, { token: Y.token, transports: ['websocket'] }),
    n1: await connect(env.N.url, { transports: ['websocket'], auth: { rooms: nodeRooms } }),
    n2: await connect(env.N.url, { transports: ['polling'] }),
  };
  return { cs, X, Y };
}

/** settle sends a sentinel through send(tag) and waits until every client has it. */
async function settle(cs, send) {
  const tag = `sentinel-${++sentinels}`;
  await send(tag);
  await Promise.all(Object.entries(cs).filter(([, s]) => s.connected).map(([name, s]) =>
    s.recorder.waitFor('sentinel', (t) => t === tag, 5_000, { label: `client ${name}` })));
}

const viaEmitter = (tag) => env.emitter.perform({ call: 'emit', args: ['sentinel', tag] });
const viaNode = (tag) => env.N.command({ op: 'emit', args: ['sentinel', tag] });

/** expectOnly asserts which clients received event, each exactly once with args. */
function expectOnly(cs, event, receivers, args) {
  for (const [name, s] of Object.entries(cs)) {
    const got = s.recorder.all(event).map((e) => e.args);
    assert.deepEqual(got, receivers.includes(name) ? [args] : [],
      `client ${name}: ${event} ${receivers.includes(name) ? 'should arrive exactly once' : 'should not arrive'}`);
  }
}

describe("Node's @socket.io/redis-emitter -> taskwire-server -> socket.io-client", () => {
  it('to a room (the user room of one identity, on both of our servers)', async () => {
    const { cs, X } = await openClients();
    await env.emitter.perform({ ops: [{ to: `user:${identityOf(X.token)}` }], call: 'emit', args: ['ev', 'to X', { n: 1 }] });
    await settle(cs, viaEmitter);
    expectOnly(cs, 'ev', ['x1', 'x2'], ['to X', { n: 1 }]);
  });

  it('to everyone: our clients and the Node server\'s', async () => {
    const { cs } = await openClients();
    await env.emitter.perform({ call: 'emit', args: ['ev', 'all', [1, 2, 3], null, true] });
    await settle(cs, viaEmitter);
    expectOnly(cs, 'ev', ['x1', 'x2', 'y1', 'n1', 'n2'], ['all', [1, 2, 3], null, true]);
  });

  it('with except, alone and after a room', async () => {
    const { cs, X, Y } = await openClients();
    const userX = `user:${identityOf(X.token)}`;
    await env.emitter.perform({ ops: [{ except: userX }], call: 'emit', args: ['ev1', 'all but X'] });
    await env.emitter.perform({
      ops: [{ to: [userX, `user:${identityOf(Y.token)}`] }, { except: cs.x2.id }],
      call: 'emit', args: ['ev2', 'X and Y but not x2'],
    });
    await settle(cs, viaEmitter);
    expectOnly(cs, 'ev1', ['y1', 'n1', 'n2'], ['all but X']);
    expectOnly(cs, 'ev2', ['x1', 'y1'], ['X and Y but not x2']);
  });

  it('to one socket by its id (the emit(..., room=sid) pattern)', async () => {
    const { cs } = await openClients();
    await env.emitter.perform({ ops: [{ to: cs.x2.id }], call: 'emit', args: ['ev', 'just x2'] });
    await env.emitter.perform({ ops: [{ to: cs.y1.id }], call: 'emit', args: ['ev', 'just y1'] });
    await settle(cs, viaEmitter);
    assert.deepEqual(cs.x2.recorder.all('ev').map((e) => e.args), [['just x2']]);
    assert.deepEqual(cs.y1.recorder.all('ev').map((e) => e.args), [['just y1']]);
    assert.deepEqual(cs.x1.recorder.all('ev'), []);
  });

  it('binary arrives as binary, over websocket and polling, alone and nested', async () => {
    const { cs, X } = await openClients();
    const blob = { $binpat: 70_000 };
    await env.emitter.perform({
      ops: [{ to: `user:${identityOf(X.token)}` }], call: 'emit',
      args: ['bin', { $bin: 'AAEC/f7/' }, { name: 'f.bin', data: { $bin: 'aGVsbG8=' }, parts: [{ $bin: '' }, blob] }],
    });
    await settle(cs, viaEmitter);
    const want = Buffer.alloc(70_000);
    for (let i = 0; i < want.length; i++) want[i] = i & 0xff;
    for (const name of ['x1', 'x2']) {
      const [e] = cs[name].recorder.all('bin');
      assert.ok(e, `${name}: no 'bin' event`);
      const [top, obj] = e.args;
      assert.ok(toBuffer(top), `${name}: first argument arrived as ${Object.prototype.toString.call(top)}`);
      assert.equal(toBuffer(top).toString('base64'), 'AAEC/f7/');
      assert.equal(obj.name, 'f.bin');
      assert.equal(toBuffer(obj.data).toString(), 'hello');
      assert.equal(toBuffer(obj.parts[0]).length, 0);
      assert.ok(toBuffer(obj.parts[1]).equals(want), `${name}: 70,000 bytes intact`);
    }
    assert.deepEqual(cs.y1.recorder.all('bin'), []);
  });

  it('another namespace: our server has only "/", refuses others, and ignores their messages', async () => {
    const { cs, X } = await openClients();
    // A client cannot open /admin on our server...
    await assert.rejects(connect(`${env.G1.url}/admin`, { token: X.token, transports: ['websocket'] }),
      /Invalid namespace/);
    // ...so a broadcast to /admin (everyone, or a room) reaches nobody of ours, and
    // the Node server's /admin clients get it.
    const adm = await connect(`${env.N.url}/admin`, { transports: ['websocket'] });
    await env.emitter.perform({ nsp: '/admin', call: 'emit', args: ['ev', 'admins'] });
    await env.emitter.perform({ nsp: '/admin', ops: [{ to: `user:${identityOf(X.token)}` }], call: 'emit', args: ['ev', 'admin X'] });
    await settle(cs, viaEmitter);
    await env.emitter.perform({ nsp: '/admin', call: 'emit', args: ['sentinel', 'admin-done'] });
    await adm.recorder.waitFor('sentinel', (t) => t === 'admin-done', 5_000, { label: 'Node /admin client' });
    expectOnly({ ...cs, adm }, 'ev', ['adm'], ['admins']);
  });

});

describe('bad messages on the adapter channels', () => {
  // A Redis of its own, without the Node server: Node's @socket.io/redis-adapter
  // 8.3 throws on such a message inside its subscriber callback and the whole Node
  // process exits (notepack "trailing bytes"), which would take the reference
  // server down for the other tests.
  it('are dropped and logged by our servers, and delivery goes on', async (t) => {
    const redis = await startRedis();
    const [G1, G2] = await Promise.all([
      startServer({ redis, name: 'server-G1b' }),
      startServer({ redis, name: 'server-G2b' }),
    ]);
    const emitter = startEmitterDriver('node', { redisUrl: redis.url });
    t.after(async () => {
      await closeAllAndWait();
      await Promise.all([G1.proc.kill(), G2.proc.kill(), emitter.stop()]);
      await redis.stop();
    });
    const X = await Api.session(G1.url);
    const cs = {
      x1: await connect(G1.url, { token: X.token, transports: ['websocket'] }),
      x2: await connect(G2.url, { token: X.token, transports: ['polling'] }),
    };
    const userX = `user:${identityOf(X.token)}`;
    for (const payload of ['not msgpack', '\x93\xa3uid', '\xc1', '']) {
      await redis.command('PUBLISH', 'socket.io#/#', payload);
      await redis.command('PUBLISH', `socket.io#/#${userX}#`, payload);
      await redis.command('PUBLISH', 'socket.io-request#/#', payload);
      await redis.command('PUBLISH', 'socket.io-response#/#', payload);
    }
    await emitter.perform({ ops: [{ to: userX }], call: 'emit', args: ['ev', 'after garbage'] });
    await settle(cs, (tag) => emitter.perform({ call: 'emit', args: ['sentinel', tag] }));
    expectOnly(cs, 'ev', ['x1', 'x2'], ['after garbage']);
    for (const g of [G1, G2]) {
      assert.ok(g.proc.running, `${g.name} is running`);
      const warned = logEntries(g.proc).filter((e) => /malformed/.test(e.msg ?? ''));
      assert.ok(warned.length > 0, `${g.name} logged the malformed messages:\n${g.proc.tail(10)}`);
    }
  });
});

describe('a Node socket.io server and taskwire-servers on one Redis', () => {
  it('a broadcast of the Node server reaches its clients and ours', async () => {
    const { cs, X } = await openClients();
    await env.N.command({ op: 'emit', args: ['ev', 'from node', { $bin: 'AQID' }] });
    await env.N.command({ op: 'emit', to: `user:${identityOf(X.token)}`, args: ['ev2', 'node to X'] });
    await env.N.command({ op: 'emit', except: `user:${identityOf(X.token)}`, args: ['ev3', 'node to all but X'] });
    await settle(cs, viaNode);
    for (const name of Object.keys(cs)) {
      const [e, ...more] = cs[name].recorder.all('ev');
      assert.ok(e && more.length === 0, `${name}: 'ev' exactly once`);
      assert.equal(e.args[0], 'from node');
      assert.equal(toBuffer(e.args[1]).toString('base64'), 'AQID', `${name}: binary`);
    }
    expectOnly(cs, 'ev2', ['x1', 'x2'], ['node to X']);
    expectOnly(cs, 'ev3', ['y1', 'n1', 'n2'], ['node to all but X']);
  });

  it('a broadcast of our server (task:cancelled of a queued task) reaches Node\'s clients in the room', async () => {
    // No worker runs in this file's cluster: the task stays queued until cancelled,
    // and the server that cancels it publishes task:cancelled to its room.
    const X = await Api.session(env.G1.url);
    const id = await X.createExport(10);
    const mine = await connect(env.G2.url, { token: X.token, transports: ['websocket'] });
    const snap = await ack(mine, 'task:subscribe', { taskId: id });
    assert.equal(snap.state, 'queued');
    const n1 = await connect(env.N.url, { transports: ['websocket'], auth: { rooms: [`task:${id}`] } });
    const n2 = await connect(env.N.url, { transports: ['polling'] });
    const res = await X.cancel(id);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.state, 'cancelled');
    for (const [name, s] of [['ours', mine], ['node n1', n1]]) {
      const e = await waitFinal(s.recorder, id, 5_000, name);
      assert.equal(e.event, 'task:cancelled');
      assert.equal(e.args.length, 1);
      assert.deepEqual({ taskId: e.args[0].taskId, seq: e.args[0].seq }, { taskId: id, seq: res.json.seq });
    }
    await settle({ n2 }, viaNode);
    assert.deepEqual(taskEvents(n2.recorder, id), []);
  });

  it('task events of our worker reach a Node server\'s client in the task room', async (t) => {
    const X = await Api.session(env.G1.url);
    const mine = await connect(env.G1.url, { token: X.token, transports: ['websocket'] });
    const id = await X.createExport(1000, { socketId: mine.id });
    // A Node application can follow the task too, from its own server. The task
    // waits in the queue until the worker starts, after both follow it.
    const n1 = await connect(env.N.url, { transports: ['websocket'], auth: { rooms: [`task:${id}`] } });
    await startWorker({ redis: env.redis, name: 'worker', t, env: { EXPORT_ROW_DELAY: '300us' } });
    const [a, b] = await Promise.all([waitFinal(mine.recorder, id, 20_000, 'ours'), waitFinal(n1.recorder, id, 20_000, 'node')]);
    assert.equal(a.event, 'task:completed');
    assert.deepEqual(b.args, a.args);
    const evs = taskEvents(n1.recorder, id);
    assert.deepEqual(evs.map((e) => e.payload.seq), Array.from({ length: a.args[0].seq }, (_, i) => i + 1),
      'the Node client got every event of the task, in order');
    assert.deepEqual(evs.map((e) => e.payload), taskEvents(mine.recorder, id).map((e) => e.payload));
  });

  it('socketsJoin / socketsLeave from the Node server move a socket that lives on ours', async () => {
    const { cs } = await openClients();
    await env.N.command({ op: 'socketsJoin', in: cs.y1.id, rooms: ['vip', 'vip2'] });
    // The join is a request on the cluster; the Node server's fetchSockets shows it
    // applied on our server before anything is sent to the room.
    let found = await env.N.command({ op: 'fetchSockets', in: 'vip' });
    assert.deepEqual(found.sockets.map((s) => s.id), [cs.y1.id]);
    await env.N.command({ op: 'emit', to: 'vip', args: ['ev', 'vip only'] });
    await env.emitter.perform({ ops: [{ to: 'vip2' }], call: 'emit', args: ['ev2', 'vip2 by emitter'] });
    await settle(cs, viaNode);
    expectOnly(cs, 'ev', ['y1'], ['vip only']);
    await settle(cs, viaEmitter);
    expectOnly(cs, 'ev2', ['y1'], ['vip2 by emitter']);

    await env.N.command({ op: 'socketsLeave', in: cs.y1.id, rooms: 'vip' });
    found = await env.N.command({ op: 'fetchSockets', in: 'vip' });
    assert.deepEqual(found.sockets, []);
    await env.N.command({ op: 'emit', to: 'vip', args: ['ev3', 'nobody'] });
    await settle(cs, viaNode);
    expectOnly(cs, 'ev3', [], null);
  });

  it('fetchSockets on the Node server returns the sockets of our servers too, without a timeout', async () => {
    const { cs, X, Y } = await openClients();
    const all = await env.N.command({ op: 'fetchSockets' });
    const byId = new Map(all.sockets.map((s) => [s.id, s]));
    for (const name of Object.keys(cs)) assert.ok(byId.has(cs[name].id), `fetchSockets has ${name}`);
    const ix = identityOf(X.token);
    for (const name of ['x1', 'x2']) {
      const s = byId.get(cs[name].id);
      assert.deepEqual(s.data, { identity: ix }, `${name}: data`);
      assert.deepEqual(s.rooms, [cs[name].id, `user:${ix}`, `user:${ix}:socket:${cs[name].id}`].sort());
    }
    assert.deepEqual(byId.get(cs.y1.id).data, { identity: identityOf(Y.token) });
    // In a room, across servers.
    const inX = await env.N.command({ op: 'fetchSockets', in: `user:${ix}` });
    assert.deepEqual(inX.sockets.map((s) => s.id).sort(), [cs.x1.id, cs.x2.id].sort());
    // A namespace our servers do not have: only the Node servers are asked, so it
    // does not wait for answers that never come.
    const adm = await connect(`${env.N.url}/admin`, { transports: ['websocket'] });
    const admins = await env.N.command({ op: 'fetchSockets', nsp: '/admin' });
    assert.deepEqual(admins.sockets.map((s) => s.id), [adm.id]);
    process.stdout.write(`# fetchSockets across 1 Node + 2 taskwire servers: ${all.ms} ms, ${inX.ms} ms; ` +
      `/admin ${admins.ms} ms\n`);
  });

  it('disconnectSockets from the Node server disconnects a socket on ours', async () => {
    const { cs } = await openClients();
    await env.N.command({ op: 'disconnectSockets', in: cs.x2.id, close: false });
    const e = await cs.x2.recorder.waitFor('disconnect', () => true, 5_000, { label: 'x2' });
    assert.equal(e.args[0], 'io server disconnect');
    await settle(cs, viaNode);
    assert.equal(cs.x1.connected && cs.y1.connected, true);
  });
});
