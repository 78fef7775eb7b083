// Issue 8, garbage on the wire: random bytes, truncated msgpack, well-formed
// messages of the wrong shape and messages over the adapter's size limit,
// published on every channel taskwire-server reads (asked of Redis: PUBSUB
// CHANNELS / NUMPAT for the classic adapter, PUBSUB SHARDCHANNELS for the sharded
// one), and on the workers' cancel channel. Then:
// - the server and the worker run on (same pids, /healthz);
// - /metrics counted every one: decode errors exactly the garbage the adapter
//   decodes, oversized exactly the huge ones, no handler panic;
// - the log says so at a limited rate (a handful of lines for hundreds of
//   messages, then one that reports how many it left out);
// - later good messages arrive: an emitter's event to a connected JS client, a
//   whole task to task:completed, and a cancel through the cancel channel.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, describe, it } from 'node:test';

import { encode } from 'notepack.io';
import { createClient } from 'redis';

import { buildBinaries, repoRoot } from './lib/build.mjs';
import { closeAll, connect } from './lib/client.mjs';
import { scrape, value } from './lib/metrics.mjs';
import { startEmitterDriver } from './lib/nodeio.mjs';
import { startRedis } from './lib/redis.mjs';
import { Api, logEntries, startServer, startWorker, stopSystem, until, waitFinal } from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAll());

const identityOf = (token) => token.split('.')[1];

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(rand, n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/**
 * garbage returns messages no taskwire-server can use, each named: random bytes
 * of several lengths, valid messages (Node's own bytes, from the golden vectors)
 * cut short, and well-formed msgpack and JSON of the wrong shape.
 */
function garbage(seed) {
  const rand = prng(seed);
  const out = [];
  for (const n of [0, 1, 2, 7, 33, 512, 4096, 200_000]) {
    // Random bytes that start like msgpack arrays/maps, and fully random ones.
    const b = randomBytes(rand, n);
    if (n > 1) b[0] = [0x93, 0x94, 0x83, 0xde, 0xdc][n % 5];
    out.push({ name: `random ${n} bytes`, buf: b });
  }
  out.push({ name: 'msgpack nil', buf: Buffer.from([0xc0]) });
  out.push({ name: 'reserved byte', buf: Buffer.from([0xc1]) });
  const golden = JSON.parse(readFileSync(`${repoRoot}/emitter/wire/testdata/golden.json`, 'utf8'));
  for (const g of golden.filter((x) => !x.spec.sharded).slice(0, 12)) {
    const b = Buffer.from(g.payloadHex, 'hex');
    out.push({ name: `truncated ${g.name}`, buf: b.subarray(0, Math.max(1, Math.floor(b.length * rand()))) });
  }
  const shapes = {
    'uid is a number': [1, { type: 2, data: ['ev'], nsp: '/' }, { rooms: [], except: [] }],
    'packet is a string': ['uid', 'packet', {}],
    'opts.rooms is a map': ['uid', { type: 2, data: ['ev'], nsp: '/' }, { rooms: { a: 1 } }],
    'data is a map': ['uid', { type: 2, data: { a: 1 }, nsp: '/' }, {}],
    'packet type 99': ['uid', { type: 99, data: ['ev'], nsp: '/' }, {}],
    'two elements': ['uid', { type: 2 }],
    'a map, not an array': { uid: 'x', packet: {}, opts: {} },
    'deep nesting': JSON.parse('['.repeat(300) + ']'.repeat(300)),
  };
  for (const [name, v] of Object.entries(shapes)) out.push({ name: `msgpack: ${name}`, buf: encode(v) });
  for (const s of [
    '{"type":', '{"uid":"x","type":"2","opts":{}}', '{"uid":"x","requestId":"r","type":0,"rooms":"all"}',
    '{"uid":[1],"type":0}', '{"requestId":{"a":1},"sockets":[]}', '{"type":3,"nsp":1}',
    '{"type":"3","uid":"x","nsp":"/","data":{}}', '{"type":3,"uid":"x","nsp":"/","data":{"packet":"x","opts":{}}}',
    '{"type":8,"uid":"x","nsp":"/","data":{"sockets":"none"}}', '{"type":99,"nsp":"/"}', 'null', '[]', '"str"', '12',
  ]) out.push({ name: `json: ${s}`, buf: Buffer.from(s) });
  return out;
}

/** HUGE is over the adapter's 16 MiB limit. */
const HUGE = 16 * 1024 * 1024 + 1024;

async function metricsOf(server) {
  const m = await scrape(`${server.url}/metrics`);
  const v = (name) => value(m, name) ?? 0;
  return {
    received: v('taskwire_adapter_messages_received_total'),
    malformed: v('taskwire_adapter_decode_errors_total'),
    oversized: v('taskwire_adapter_messages_oversized_total'),
    panics: v('taskwire_adapter_handler_panics_total'),
    ignored: v('taskwire_adapter_messages_ignored_total'),
  };
}

for (const mode of ['classic', 'sharded']) {
  describe(`garbage on every channel of a taskwire-server (${mode} adapter)`, () => {
    it('is counted, logged at a limited rate, never crashes anything, never stops later messages', async (t) => {
      t.after(() => stopSystem());
      const redis = await startRedis();
      const env = { SOCKETIO_ADAPTER: mode, LOG_LEVEL: 'info' };
      const server = await startServer({ redis, name: `server-${mode}`, env });
      const worker = await startWorker({ redis, name: `worker-${mode}`, env: { ...env, EXPORT_ROW_DELAY: '1ms' } });
      const serverPid = server.pid;
      const workerPid = worker.pid;
      const X = await Api.session(server.url);
      const x1 = await connect(server.url, { token: X.token, transports: ['websocket'] });
      const x2 = await connect(server.url, { token: X.token, transports: ['polling'] });
      const user = `user:${identityOf(X.token)}`;

      const bins = await buildBinaries({ names: ['twemit'] });
      const emitter = mode === 'classic'
        ? startEmitterDriver('node', { redisUrl: redis.url, t })
        : startEmitterDriver('go', { redisUrl: redis.url, twemitPath: bins.paths.twemit, t });
      const emit = (tag) => emitter.perform({ ...(mode === 'sharded' ? { sharded: true } : {}), ops: [{ to: user }], call: 'emit', args: ['good', tag] });
      // Everything works before the garbage.
      await emit('before');
      await x1.recorder.waitFor('good', (tag) => tag === 'before', 5_000, { label: 'x1' });

      const rdb = createClient({ url: redis.url });
      rdb.on('error', () => {}); // a failed command rejects; Redis goes away at the end
      await rdb.connect();

      // The channels the server reads, as Redis knows them.
      let decoded; // channels whose messages the server decodes
      let unread = []; // read, but dropped before decoding (a room the server lacks)
      let publish;
      if (mode === 'classic') {
        const channels = (await rdb.sendCommand(['PUBSUB', 'CHANNELS'])).filter((c) => c.startsWith('socket.io'));
        assert.deepEqual(channels.filter((c) => !/^socket\.io-(request|response)#\/#/.test(c)), [],
          `unexpected channels ${channels}`);
        assert.ok(channels.includes('socket.io-request#/#') && channels.includes('socket.io-response#/#'), `${channels}`);
        assert.ok(channels.some((c) => /^socket\.io-response#\/#.+#$/.test(c)), `no specific response channel in ${channels}`);
        assert.equal(Number(await rdb.sendCommand(['PUBSUB', 'NUMPAT'])), 1, 'the server reads one pattern (socket.io#/#*)');
        decoded = ['socket.io#/#', `socket.io#/#${user}#`, `socket.io#/#${x1.id}#`, ...channels];
        unread = ['socket.io#/#no-such-room#'];
        publish = (ch, buf) => rdb.publish(ch, buf);
      } else {
        decoded = (await rdb.sendCommand(['PUBSUB', 'SHARDCHANNELS'])).filter((c) => c.startsWith('socket.io#'));
        assert.ok(decoded.includes('socket.io#/#') && decoded.includes(`socket.io#/#${user}#`), `${decoded}`);
        publish = (ch, buf) => rdb.sPublish(ch, buf);
      }
      const cancelChannel = 'taskwire:cancel';
      assert.ok((await rdb.sendCommand(['PUBSUB', 'CHANNELS'])).includes(cancelChannel), 'the worker reads the cancel channel');

      const items = garbage(8);
      const before = await metricsOf(server);
      const started = Date.now();
      let published = 0;
      for (const ch of [...decoded, ...unread]) {
        for (const g of items) {
          await publish(ch, g.buf);
          published++;
        }
      }
      // The worker's cancel channel: ids that are no ids.
      for (const g of items.slice(0, 20)) await rdb.publish(cancelChannel, g.buf);

      // A good message after all that: the server reads in order, so once x1 and
      // x2 have it, every message above was handled.
      await emit('after');
      await x1.recorder.waitFor('good', (tag) => tag === 'after', 10_000, { label: 'x1' });
      await x2.recorder.waitFor('good', (tag) => tag === 'after', 10_000, { label: 'x2' });
      const elapsed = (Date.now() - started) / 1000;
      t.diagnostic(`${items.length} bad messages x ${decoded.length} channels read (+ ${unread.length} unread, + the cancel channel) in ${elapsed.toFixed(1)} s`);

      const after = await metricsOf(server);
      const expectMalformed = decoded.length * items.length;
      assert.equal(after.malformed - before.malformed, expectMalformed,
        `decode errors: ${after.malformed - before.malformed}, want ${expectMalformed} (${decoded.length} channels x ${items.length} messages)`);
      assert.equal(after.panics, 0, 'handler panics');
      assert.ok(after.received - before.received >= published + 1, 'received');
      assert.ok(after.ignored - before.ignored >= unread.length * items.length, 'messages of rooms the server lacks are dropped unread');

      // Logged, at a limited rate: one line per kind and second.
      const malformedLines = logEntries(server.proc, 'redisadapter: malformed message dropped');
      assert.ok(malformedLines.length >= 1, 'the malformed messages are logged');
      assert.ok(malformedLines.length <= Math.ceil(elapsed) + 2,
        `${malformedLines.length} log lines for ${expectMalformed} bad messages in ${elapsed.toFixed(1)} s`);
      assert.ok(malformedLines.every((e) => typeof e.head === 'string' && e.head.length <= 67 && e.error),
        'each line names the error and shows at most 32 bytes');

      // Huge messages, over the adapter's 16 MiB limit, on two channels: dropped
      // unread. One at a time: Redis itself disconnects a subscriber that has
      // more than 32 MB of pub/sub output waiting (client-output-buffer-limit),
      // which the adapter would survive (it subscribes again) but which would
      // lose the messages in between.
      const huge = Buffer.alloc(HUGE, 0x93);
      const hugeOn = [decoded[0], decoded[decoded.length - 1]];
      for (const [i, ch] of hugeOn.entries()) {
        await publish(ch, huge);
        await until(async () => (await metricsOf(server)).oversized - before.oversized >= i + 1,
          { timeoutMs: 10_000, what: `the huge message on ${ch} to be counted` });
      }
      assert.equal((await metricsOf(server)).oversized - before.oversized, hugeOn.length, 'oversized');
      assert.ok(logEntries(server.proc, 'redisadapter: message too large, dropped').length >= 1, 'oversized logged');
      await emit('after huge');
      await x1.recorder.waitFor('good', (tag) => tag === 'after huge', 10_000, { label: 'x1' });
      // The next line after the interval reports what was left out.
      const mark = server.proc.mark();
      await until(async () => {
        await publish(decoded[0], Buffer.from([0xc1]));
        return logEntries(server.proc, 'redisadapter: malformed message dropped', { since: mark }).some((e) => e.suppressed > 0);
      }, { timeoutMs: 5_000, intervalMs: 200, what: 'a log line reporting the messages it left out' });

      // Everything still runs, and works.
      assert.ok(server.proc.running && worker.proc.running, 'server and worker running');
      assert.equal(server.proc.pid, serverPid);
      assert.equal(worker.proc.pid, workerPid);
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
      const id = await X.createExport(200, { socketId: x1.id });
      assert.equal((await waitFinal(x1.recorder, id)).event, 'task:completed');
      const long = await X.createExport(20_000, { socketId: x1.id });
      await x1.recorder.waitFor('task:progress', (p) => p.taskId === long && p.done > 0, 10_000, { label: 'progress' });
      assert.equal((await X.cancel(long)).status, 202);
      assert.equal((await waitFinal(x1.recorder, long, 5_000)).event, 'task:cancelled');
      await emitter.stop();
      await rdb.quit();
    });
  });
}
