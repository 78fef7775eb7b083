// Interop: emitters -> Redis -> two Socket.IO servers -> real socket.io-client
// sockets, over websocket and polling, for every kind of cluster an emitter may
// face. Each cluster runs the same matrix (everyone, rooms, except, a socket id,
// another namespace, binary and every argument type, Go structs, volatile,
// socketsJoin then emit, socketsLeave, disconnectSockets(false/true),
// serverSideEmit received by a server-side handler):
//
//   node-classic      two Node socket.io 4.8 servers, @socket.io/redis-adapter 8.3
//                     createAdapter: taskwire's Go emitter, and Node's own
//                     @socket.io/redis-emitter 5.1 as a control, so a pass proves
//                     that ours behaves like Node's wherever the reference stack can
//                     observe it;
//   node-sharded      two Node servers with createShardedAdapter (Redis 7,
//                     subscriptionMode dynamic, Node's default): our emitter in
//                     sharded mode, publishing everything to the main channel
//                     (static, its default) or one-room broadcasts to the room's
//                     channel (dynamic). Node has no sharded emitter to compare with;
//   taskwire-classic  two of taskwire's servers (twsio: our realtime package with
//                     the classic adapter; server-side events go to Go handlers):
//                     our emitter and Node's;
//   taskwire-sharded  one of our servers in sharded mode and one Node server with
//                     createShardedAdapter in one cluster: our sharded emitter.
//
// How "did not receive" is proven without sleeping: after each action the driver
// emits a sentinel to every socket of "/" and "/admin". Messages from one publisher
// reach each server over one subscription connection, in order, and each server
// writes to each client in order; so once a client has its sentinel, it has
// everything sent before it.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { createClient } from 'redis';

import { buildBinaries } from './lib/build.mjs';
import { closeAll, connect, connectNamespace } from './lib/client.mjs';
import { startGoServer } from './lib/goio.mjs';
import { startEmitterDriver, startNodeServer } from './lib/nodeio.mjs';
import { killAll } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';
import { asClientSees, toSpecValue } from './lib/spec.mjs';

const SERVER_EVENT = 'srv:hello';

// Each cluster has its own channel prefix, so all share one Redis. A driver is
// an emitter process ("go": twemit, "node": nodemit) and the options its specs
// carry.
const CLUSTERS = [
  { name: 'node-classic', title: 'two Node servers, classic createAdapter', key: 'socket.io',
    servers: [['node', 'A'], ['node', 'B']],
    drivers: { go: { proc: 'go' }, node: { proc: 'node' } } },
  { name: 'node-sharded', title: 'two Node servers, createShardedAdapter (dynamic)', key: 'sh-node', adapter: 'sharded',
    servers: [['node', 'A'], ['node', 'B']],
    drivers: {
      'go-sharded': { proc: 'go', extra: { sharded: true } },
      'go-sharded-dynamic': { proc: 'go', extra: { sharded: true, subscriptionMode: 'dynamic' } },
    } },
  { name: 'taskwire-classic', title: "two of taskwire's servers, classic adapter", key: 'tw-classic', adapter: 'classic',
    servers: [['go', 'A'], ['go', 'B']],
    drivers: { go: { proc: 'go' }, node: { proc: 'node' } } },
  { name: 'taskwire-sharded', title: "taskwire's server and a Node server, sharded (dynamic)", key: 'tw-sharded', adapter: 'sharded',
    servers: [['go', 'A'], ['node', 'B']],
    drivers: {
      'go-sharded': { proc: 'go', extra: { sharded: true } },
      'go-sharded-dynamic': { proc: 'go', extra: { sharded: true, subscriptionMode: 'dynamic' } },
    } },
];

const env = {};

before(async () => {
  env.redis = await startRedis();
  const bins = await buildBinaries({ names: ['twemit'] });
  if (!bins.paths.twemit) throw new Error(`twemit not available: ${bins.missing.twemit}`);
  env.procs = {
    go: startEmitterDriver('go', { redisUrl: env.redis.url, twemitPath: bins.paths.twemit }),
    node: startEmitterDriver('node', { redisUrl: env.redis.url }),
  };
  env.rdb = createClient({ url: env.redis.url });
  await env.rdb.connect();
  env.clusters = {};
  await Promise.all(CLUSTERS.map(async (c) => {
    const servers = await Promise.all(c.servers.map(([kind, name]) => {
      const opts = { redisUrl: env.redis.url, name: `${c.name}-${name}`, key: c.key, serverEvents: [SERVER_EVENT],
        adapter: c.adapter };
      return kind === 'go' ? startGoServer(opts) : startNodeServer(opts);
    }));
    env.clusters[c.name] = Object.fromEntries(servers.map((s, i) => [c.servers[i][1], Object.assign(s, { kind: c.servers[i][0] })]));
  }));
});

after(async () => {
  closeAll();
  await env.rdb?.quit().catch(() => {});
  await killAll();
});

// Each test has rooms of its own. Reusing a name is not safe with Node's
// sharded adapter in the dynamic mode: a room deleted (the last socket of the
// previous test leaves) and created again at once can leave the Node server not
// subscribed to its channel (seen: 1 of 2 servers for seconds), so one-room
// emits never reach it.
let testNo = 0;
afterEach(() => {
  testNo++;
  closeAll();
});

let seq = 0;

/**
 * open connects the clients described by defs ({name: {server: 'A'|'B',
 * transport: 'websocket'|'polling', nsp?: '/admin', rooms?: [...], via?: name}})
 * (via: another namespace over that client's connection) and returns them by name,
 * each with .name, .socket and .rec (its Recorder).
 */
async function openIn(servers, defs) {
  const out = {};
  for (const [name, d] of Object.entries(defs)) {
    if (d.via) continue;
    const url = servers[d.server].url + (d.nsp && d.nsp !== '/' ? d.nsp : '');
    // taskwire's server wants a session token on "/" (twsio takes any).
    const socket = await connect(url, { transports: [d.transport], auth: { rooms: d.rooms ?? [], token: 'e2e' } });
    out[name] = { name, socket, rec: socket.recorder, server: d.server };
  }
  for (const [name, d] of Object.entries(defs)) {
    if (!d.via) continue;
    const socket = await connectNamespace(out[d.via].socket, d.nsp, { auth: { rooms: d.rooms ?? [] } });
    out[name] = { name, socket, rec: socket.recorder, server: out[d.via].server };
  }
  return out;
}

/**
 * waitRoomChannel waits until n servers subscribe to the sharded channel of room
 * (PUBSUB SHARDNUMSUB): in the dynamic modes a server subscribes when a socket
 * joins a room it did not have, and an emitter in dynamic mode publishes a
 * one-room broadcast on that channel only.
 */
async function waitRoomChannel(key, room, n, timeoutMs = 5_000, nsp = '/') {
  const channel = `${key}#${nsp}#${room}#`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [, count] = await env.rdb.sendCommand(['PUBSUB', 'SHARDNUMSUB', channel]);
    if (Number(count) >= n) return;
    if (Date.now() > deadline) throw new Error(`${channel}: ${count} subscribers after ${timeoutMs} ms, want ${n}`);
    await new Promise((r) => setTimeout(r, 10)); // no event tells when Redis has the subscription
  }
}

/**
 * waitRoomChannels waits until, for every room the clients of defs are in, each
 * server holding one of them subscribes to the room's sharded channel (servers in
 * the dynamic modes subscribe when a room appears, after the join).
 */
async function waitRoomChannels(key, defs) {
  const servers = new Map(); // "nsp room" -> servers with a member
  for (const d of Object.values(defs)) {
    const server = d.via ? defs[d.via].server : d.server;
    for (const r of d.rooms ?? []) {
      const k = `${d.nsp ?? '/'} ${r}`;
      if (!servers.has(k)) servers.set(k, new Set());
      servers.get(k).add(server);
    }
  }
  await Promise.all([...servers].map(([k, set]) => {
    const [nsp, room] = k.split(' ');
    return waitRoomChannel(key, room, set.size, 5_000, nsp);
  }));
}

/** settle emits a sentinel to everyone and waits until every connected client has it. */
async function settle(drv, clients) {
  const tag = `sentinel-${++seq}`;
  await drv.perform({ call: 'emit', args: ['sentinel', tag] });
  await drv.perform({ nsp: '/admin', call: 'emit', args: ['sentinel', tag] });
  await Promise.all(Object.values(clients)
    .filter((c) => c.socket.connected)
    .map((c) => c.rec.waitFor('sentinel', (t) => t === tag, 5_000, { label: `${drv.kind}: client ${c.name}` })));
}

/** got returns the args (as spec values) of every event named event that c received. */
function got(c, event) {
  return c.rec.all(event).map((e) => toSpecValue(e.args));
}

/** expectOnly asserts which clients received event (each exactly once, with args). */
function expectOnly(clients, event, receivers, args) {
  for (const c of Object.values(clients)) {
    const want = receivers.includes(c.name) ? [args] : [];
    assert.deepEqual(got(c, event), want,
      `client ${c.name} (server ${c.server}, ${c.socket.nsp}): ${event} ` +
      `${receivers.includes(c.name) ? 'should arrive exactly once' : 'should not arrive'}`);
  }
}

for (const cluster of CLUSTERS) {
  for (const [kind, driver] of Object.entries(cluster.drivers)) {
    describe(`emitter interop, ${cluster.title}: ${kind === 'node' ? "Node's @socket.io/redis-emitter (control)" : `taskwire's Go emitter (${kind})`}`, () => {
      // drv performs specs in this cluster (its key) with this driver's options.
      const drv = () => ({
        kind,
        perform: (spec, opts) => env.procs[driver.proc].perform({ ...spec, key: cluster.key, ...driver.extra }, opts),
      });
      const room = (r) => `${cluster.name}.${kind}.${testNo}.${r}`;
      const dynamic = driver.extra?.subscriptionMode === 'dynamic';
      const servers = () => env.clusters[cluster.name];
      // In the sharded clusters (every server in the dynamic mode), a client's
      // rooms receive one-room emits only once its server subscribed to them.
      const open = async (defs) => {
        const cs = await openIn(servers(), defs);
        if (cluster.adapter === 'sharded') await waitRoomChannels(cluster.key, defs);
        return cs;
      };

      it('emits to every socket of the namespace, on both servers, over websocket and polling', async () => {
        const cs = await open({
          a1: { server: 'A', transport: 'websocket' },
          a2: { server: 'A', transport: 'polling' },
          b1: { server: 'B', transport: 'websocket' },
          b2: { server: 'B', transport: 'polling' },
          adm: { server: 'B', transport: 'websocket', nsp: '/admin' },
        });
        await drv().perform({ call: 'emit', args: ['ev', 'to all', 1] });
        await settle(drv(), cs);
        expectOnly(cs, 'ev', ['a1', 'a2', 'b1', 'b2'], ['to all', 1]);
      });

      it('emits to one room', async () => {
        const cs = await open({
          a1: { server: 'A', transport: 'websocket', rooms: [room('r1')] },
          a2: { server: 'A', transport: 'polling', rooms: [room('r2')] },
          b1: { server: 'B', transport: 'polling', rooms: [room('r1')] },
          b2: { server: 'B', transport: 'websocket' },
        });
        await drv().perform({ ops: [{ to: room('r1') }], call: 'emit', args: ['ev', 'r1'] });
        await settle(drv(), cs);
        expectOnly(cs, 'ev', ['a1', 'b1'], ['r1']);
      });

      it('emits to several rooms, once per socket', async () => {
        const cs = await open({
          a1: { server: 'A', transport: 'websocket', rooms: [room('r1')] },
          a2: { server: 'A', transport: 'polling', rooms: [room('r1'), room('r2')] },
          b1: { server: 'B', transport: 'websocket', rooms: [room('r2')] },
          b2: { server: 'B', transport: 'polling', rooms: [room('r3')] },
        });
        await drv().perform({ ops: [{ to: [room('r1'), room('r2')] }], call: 'emit', args: ['ev', 'r1+r2'] });
        await settle(drv(), cs);
        expectOnly(cs, 'ev', ['a1', 'a2', 'b1'], ['r1+r2']);
      });

      it('leaves out the except rooms, alone and with a room', async () => {
        const cs = await open({
          a1: { server: 'A', transport: 'websocket', rooms: [room('r1')] },
          a2: { server: 'A', transport: 'polling', rooms: [room('r2')] },
          b1: { server: 'B', transport: 'websocket', rooms: [room('r1'), room('r2')] },
          b2: { server: 'B', transport: 'polling' },
        });
        await drv().perform({ ops: [{ except: room('r2') }], call: 'emit', args: ['ev1', 'except r2'] });
        await drv().perform({ ops: [{ to: room('r1') }, { except: room('r2') }], call: 'emit', args: ['ev2', 'r1 except r2'] });
        await settle(drv(), cs);
        expectOnly(cs, 'ev1', ['a1', 'b2'], ['except r2']);
        expectOnly(cs, 'ev2', ['a1'], ['r1 except r2']);
      });

      it('emits to one socket by its id', async () => {
        const cs = await open({
          a1: { server: 'A', transport: 'websocket' },
          b1: { server: 'B', transport: 'websocket' },
          b2: { server: 'B', transport: 'polling' },
        });
        await drv().perform({ ops: [{ to: cs.b2.socket.id }], call: 'emit', args: ['ev', 'just b2'] });
        await drv().perform({ ops: [{ to: cs.a1.socket.id }], call: 'emit', args: ['ev', 'just a1'] });
        await settle(drv(), cs);
        assert.deepEqual(got(cs.b2, 'ev'), [['just b2']]);
        assert.deepEqual(got(cs.a1, 'ev'), [['just a1']]);
        assert.deepEqual(got(cs.b1, 'ev'), []);
      });

      it('emits to another namespace (with and without the leading slash)', async () => {
        const cs = await open({
          root: { server: 'A', transport: 'websocket', rooms: [room('r1')] },
          adm1: { server: 'A', transport: 'websocket', nsp: '/admin', rooms: [room('r1')] },
          adm2: { server: 'B', transport: 'polling', nsp: '/admin' },
        });
        await drv().perform({ nsp: '/admin', call: 'emit', args: ['ev1', 'admins'] });
        await drv().perform({ nsp: 'admin', ops: [{ to: room('r1') }], call: 'emit', args: ['ev2', 'admins in r1'] });
        await drv().perform({ ops: [{ to: room('r1') }], call: 'emit', args: ['ev3', 'root r1'] });
        await settle(drv(), cs);
        expectOnly(cs, 'ev1', ['adm1', 'adm2'], ['admins']);
        expectOnly(cs, 'ev2', ['adm1'], ['admins in r1']);
        expectOnly(cs, 'ev3', ['root'], ['root r1']);
      });

      it('delivers binary as binary, and every other argument type intact', async () => {
        const cs = await open({
          ws: { server: 'A', transport: 'websocket', rooms: [room('bin')] },
          poll: { server: 'B', transport: 'polling', rooms: [room('bin')] },
        });
        const binArgs = ['bin', { $bin: 'AAEC/f7/' }, { data: { $bin: 'aGVsbG8=' }, name: 'f.bin' },
          [{ $bin: '' }, 'x', { $binpat: 300 }], { $binpat: 70000 }];
        const typeArgs = ['types', '', 'héllo 日本 🎉', { $repeat: 'ab', times: 40000 }, 0, -1, 127, 128, -129,
          4294967296, -9007199254740991, 1.5, -0.1, { $float: 3 }, true, false, null,
          [1, [2, [3]]], { a: { b: { c: [1, 'x', null] } }, z: 1 }, { $date: 1700000000123 }];
        await drv().perform({ ops: [{ to: room('bin') }], call: 'emit', args: binArgs });
        await drv().perform({ ops: [{ to: room('bin') }], call: 'emit', args: typeArgs });
        await settle(drv(), cs);
        for (const c of Object.values(cs)) {
          const [bin] = c.rec.all('bin');
          assert.ok(bin, `${c.name}: no 'bin' event`);
          assert.ok(Buffer.isBuffer(bin.args[0]) || bin.args[0] instanceof ArrayBuffer,
            `${c.name}: binary arrived as ${Object.prototype.toString.call(bin.args[0])}, not binary`);
          expectOnly({ [c.name]: c }, 'bin', [c.name], asClientSees(binArgs.slice(1)));
          expectOnly({ [c.name]: c }, 'types', [c.name], asClientSees(typeArgs.slice(1)));
        }
      });

      it('delivers a Go struct as the JavaScript object with the same keys', async () => {
        const cs = await open({ a: { server: 'A', transport: 'websocket', rooms: [room('t')] } });
        // On the Go side goArgs replaces args[1:] by spec.Progress{TaskID: "t-1", ...}.
        const spec = { ops: [{ to: room('t') }], call: 'emit', goArgs: 'progress',
          args: ['task:progress', { taskId: 't-1', seq: 3, percent: 42.5, done: 425, total: 1000 }] };
        await drv().perform(spec);
        await settle(drv(), cs);
        const [e] = cs.a.rec.all('task:progress');
        assert.ok(e, 'no task:progress event');
        // Node keeps the struct's field order, and so does our classic adapter
        // (it writes the client's JSON straight from msgpack); our sharded adapter
        // decodes into Go maps, whose JSON has sorted keys.
        const keys = ['taskId', 'seq', 'percent', 'done', 'total'];
        const sorted = servers().A.kind === 'go' && cluster.adapter === 'sharded';
        assert.deepEqual(Object.keys(e.args[0]), sorted ? [...keys].sort() : keys);
        assert.deepEqual(e.args, [spec.args[1]]);
      });

      it('delivers volatile (and compress(false)) events to ready websocket clients', async () => {
        const cs = await open({
          a1: { server: 'A', transport: 'websocket', rooms: [room('v')] },
          b1: { server: 'B', transport: 'websocket', rooms: [room('v')] },
          b2: { server: 'B', transport: 'websocket' },
        });
        // A volatile packet is dropped while the transport is busy writing, so two in a
        // row may legitimately lose the second: settle in between.
        await drv().perform({ ops: [{ to: room('v') }, { volatile: true }], call: 'emit', args: ['ev1', 'volatile'] });
        await settle(drv(), cs);
        await drv().perform({ ops: [{ compress: false }, { volatile: true }, { to: room('v') }], call: 'emit', args: ['ev2', 'both'] });
        await settle(drv(), cs);
        expectOnly(cs, 'ev1', ['a1', 'b1'], ['volatile']);
        expectOnly(cs, 'ev2', ['a1', 'b1'], ['both']);
      });

      it('socketsJoin makes sockets on any server join, then emits reach them', async () => {
        const { A, B } = servers();
        const cs = await open({
          a1: { server: 'A', transport: 'websocket', rooms: [room('r1')] },
          a2: { server: 'A', transport: 'polling', rooms: [room('r1'), room('r2')] },
          b1: { server: 'B', transport: 'websocket' },
        });
        const [sinceA, sinceB] = [A.mark(), B.mark()];
        const J = room('joined');
        const K = room('also');
        await drv().perform({ ops: [{ in: room('r1') }, { except: room('r2') }], call: 'socketsJoin', args: [J] });
        await drv().perform({ ops: [{ to: cs.b1.socket.id }], call: 'socketsJoin', args: [[J, K]] });
        await A.waitEvent((e) => e.type === 'join-room' && e.room === J && e.id === cs.a1.socket.id,
          { since: sinceA, what: `a1 joins ${J}` });
        await B.waitEvent((e) => e.type === 'join-room' && e.room === K && e.id === cs.b1.socket.id,
          { since: sinceB, what: `b1 joins ${K}` });
        if (dynamic) {
          await waitRoomChannel(cluster.key, J, 2);
          await waitRoomChannel(cluster.key, K, 1);
        }
        await drv().perform({ ops: [{ to: J }], call: 'emit', args: ['ev1', 'J'] });
        await drv().perform({ ops: [{ to: K }], call: 'emit', args: ['ev2', 'K'] });
        await settle(drv(), cs);
        expectOnly(cs, 'ev1', ['a1', 'b1'], ['J']);
        expectOnly(cs, 'ev2', ['b1'], ['K']);
        assert.ok(!A.proc.stdoutLines.slice(sinceA).some((l) => l.includes(`"room":"${J}"`) && l.includes(cs.a2.socket.id)),
          'a2 (in r2, excepted) joined');
      });

      it('socketsLeave makes sockets leave, then emits no longer reach them', async () => {
        const { A, B } = servers();
        const L = room('L');
        const cs = await open({
          a1: { server: 'A', transport: 'websocket', rooms: [room('r1'), L] },
          a2: { server: 'A', transport: 'polling', rooms: [L] },
          b1: { server: 'B', transport: 'websocket', rooms: [L] },
        });
        let [sinceA, sinceB] = [A.mark(), B.mark()];
        await drv().perform({ ops: [{ to: room('r1') }], call: 'socketsLeave', args: [L] });
        await A.waitEvent((e) => e.type === 'leave-room' && e.room === L && e.id === cs.a1.socket.id,
          { since: sinceA, what: `a1 leaves ${L}` });
        await drv().perform({ ops: [{ to: L }], call: 'emit', args: ['ev1', 'L'] });
        await settle(drv(), cs);
        expectOnly(cs, 'ev1', ['a2', 'b1'], ['L']);

        [sinceA, sinceB] = [A.mark(), B.mark()];
        await drv().perform({ call: 'socketsLeave', args: [[L]] });
        await A.waitEvent((e) => e.type === 'leave-room' && e.room === L && e.id === cs.a2.socket.id,
          { since: sinceA, what: `a2 leaves ${L}` });
        await B.waitEvent((e) => e.type === 'leave-room' && e.room === L && e.id === cs.b1.socket.id,
          { since: sinceB, what: `b1 leaves ${L}` });
        await drv().perform({ ops: [{ to: L }], call: 'emit', args: ['ev2', 'L again'] });
        await settle(drv(), cs);
        expectOnly(cs, 'ev2', [], ['L again']);
      });

      it('disconnectSockets(false) disconnects the socket but keeps its connection', async () => {
        const cs = await open({
          a1: { server: 'A', transport: 'websocket', rooms: [room('d')] },
          a1adm: { via: 'a1', nsp: '/admin' },
          b1: { server: 'B', transport: 'polling' },
        });
        const engineId = cs.a1.socket.io.engine.id;
        await drv().perform({ ops: [{ to: room('d') }], call: 'disconnectSockets', args: [false] });
        const e = await cs.a1.rec.waitFor('disconnect', () => true, 5_000, { label: 'a1' });
        assert.equal(e.args[0], 'io server disconnect', `a1 events: ${JSON.stringify(cs.a1.rec.events.map((x) => [x.event, x.args]))} adm: ${JSON.stringify(cs.a1adm.rec.events.map((x) => [x.event, x.args]))} servers: ${servers().A.proc.tail(10)}`);
        await settle(drv(), cs); // a1adm and b1 still get their sentinels
        assert.equal(cs.a1adm.socket.connected, true, 'the /admin socket on the same connection was disconnected');
        assert.equal(cs.a1.socket.io.engine.readyState, 'open');
        assert.equal(cs.a1.socket.io.engine.id, engineId, 'the connection was replaced');
        assert.equal(cs.a1.rec.count('io:close'), 0, 'the connection was closed');
        assert.equal(cs.b1.socket.connected, true);
      });

      it('disconnectSockets(true) also closes the connection', async () => {
        const cs = await open({
          a2: { server: 'A', transport: 'polling' },
          a2adm: { via: 'a2', nsp: '/admin' },
          b1: { server: 'B', transport: 'websocket' },
        });
        await drv().perform({ ops: [{ to: cs.a2.socket.id }], call: 'disconnectSockets', args: [true] });
        await Promise.all([
          cs.a2.rec.waitFor('disconnect', () => true, 5_000, { label: 'a2' }),
          cs.a2adm.rec.waitFor('disconnect', () => true, 5_000, { label: 'a2adm' }),
          cs.a2.rec.waitFor('io:close', () => true, 5_000, { label: 'a2 (its connection)' }),
        ]);
        await settle(drv(), cs);
        assert.equal(cs.b1.socket.connected, true);
        assert.equal(cs.a2.socket.io.engine.readyState, 'closed');
      });

      it('serverSideEmit reaches the handlers of every server', async () => {
        const { A, B } = servers();
        const [sinceA, sinceB] = [A.mark(), B.mark()];
        const args = [`${kind}-x`, 1, 1.5, { a: true, b: [null, 'é'] }];
        await drv().perform({ call: 'serverSideEmit', args: [SERVER_EVENT, ...args] });
        await drv().perform({ nsp: 'admin', call: 'serverSideEmit', args: [SERVER_EVENT, `${kind}-admin`] });
        for (const S of [A, B]) {
          const since = S === A ? sinceA : sinceB;
          const root = await S.waitEvent((e) => e.type === 'server-side' && e.nsp === '/', { since, what: `${SERVER_EVENT} on /` });
          assert.deepEqual(root.args, args, `server ${S.name}`);
          const adm = await S.waitEvent((e) => e.type === 'server-side' && e.nsp === '/admin', { since, what: `${SERVER_EVENT} on /admin` });
          assert.deepEqual(adm.args, [`${kind}-admin`], `server ${S.name}`);
        }
      });
    });
  }
}
