// Tests of the e2e harness itself (lib/): if these fail, no other e2e result can be
// trusted.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, describe, it } from 'node:test';

import { buildBinaries, requireBinary } from './lib/build.mjs';
import { closeAll, connect, connectNamespace, toBuffer } from './lib/client.mjs';
import { startEmitterDriver, startNodeServer } from './lib/nodeio.mjs';
import { SPAN_KIND, startReceiver } from './lib/otlp.mjs';
import { freePort, killAll, spawnProcess, waitForHttp, withTimeout } from './lib/proc.mjs';
import { redisCommand, startRedis } from './lib/redis.mjs';
import { startTcpProxy } from './lib/tcpproxy.mjs';

after(async () => {
  closeAll();
  await killAll();
});

const node = process.execPath;

describe('proc', () => {
  it('freePort gives a port that can be bound', async () => {
    const port = await freePort();
    const srv = net.createServer();
    await new Promise((resolve, reject) => srv.once('error', reject).listen(port, '127.0.0.1', resolve));
    await new Promise((resolve) => srv.close(resolve));
  });

  it('spawnProcess collects lines, answers on stdin, and waits for past and future lines', async (t) => {
    const p = spawnProcess(node, ['-e', `
      console.log('ready 42');
      console.error('on stderr');
      process.stdin.on('data', (d) => console.log('echo ' + d.toString().trim()));
    `], { name: 'echoer', stdin: true, t });
    const m = await p.waitForLine(/^ready (\d+)$/, 5_000);
    assert.equal(m[1], '42');
    await p.waitForLine(/on stderr/, 5_000, { stream: 'stderr' });
    const since = p.mark();
    p.write('hello\n');
    const got = await p.waitForLine((text) => text.startsWith('echo ') && text.slice(5), 5_000, { since });
    assert.equal(got, 'hello');
    assert.deepEqual(p.stdoutLines, ['ready 42', 'echo hello']);
    assert.deepEqual(p.stderrLines, ['on stderr']);
    const info = await p.kill();
    assert.equal(info.signal, 'SIGTERM');
    assert.equal(p.running, false);
  });

  it('waitForLine fails clearly on timeout and when the process exits first', async (t) => {
    const p = spawnProcess(node, ['-e', 'console.log("one"); setTimeout(() => {}, 60000)'], { name: 'sleeper', t });
    await p.waitForLine(/one/);
    await assert.rejects(p.waitForLine(/two/, 200), (err) => {
      assert.match(err.message, /sleeper did not print a line matching \/two\/ within 200 ms/);
      assert.match(err.message, /\[sleeper stdout\] one/);
      return true;
    });
    const q = spawnProcess(node, ['-e', 'console.log("bye"); process.exit(3)'], { name: 'quitter', t });
    await assert.rejects(q.waitForLine(/never/, 5_000), /quitter exited \(code 3, signal null\) before printing/);
    assert.deepEqual(await q.exited, { code: 3, signal: null });
  });

  it('kill escalates to SIGKILL when SIGTERM is ignored', async (t) => {
    const p = spawnProcess(node, ['-e', `
      process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
      console.log('up'); setInterval(() => {}, 1000);
    `], { name: 'stubborn', t });
    await p.waitForLine(/up/);
    const info = await p.kill('SIGTERM', { timeoutMs: 300 });
    assert.equal(info.signal, 'SIGKILL');
  });

  it('spawnProcess fails at once for a missing command', () => {
    assert.throws(() => spawnProcess('/nonexistent/taskwire-nothing'), /could not start/);
  });

  it('waitForHttp waits for a 200 and reports the last status on timeout', async () => {
    let calls = 0;
    const srv = http.createServer((req, res) => {
      calls++;
      res.statusCode = calls < 3 ? 503 : 200;
      res.end();
    });
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${srv.address().port}/readyz`;
    try {
      const res = await waitForHttp(url, 5_000, { intervalMs: 10 });
      assert.equal(res.status, 200);
      assert.equal(calls, 3);
      const port = await freePort();
      await assert.rejects(waitForHttp(`http://127.0.0.1:${port}/`, 200), /no 200 within 200 ms \(last: ECONNREFUSED\)/);
    } finally {
      srv.close();
    }
  });

  it('withTimeout rejects with the message after the deadline', async () => {
    await assert.rejects(withTimeout(new Promise(() => {}), 50, () => 'too slow'), /too slow/);
    assert.equal(await withTimeout(Promise.resolve(7), 1_000, 'x'), 7);
  });
});

describe('redis', () => {
  it('starts its own redis-server, pauses, restarts empty on the same port, and stops', async (t) => {
    const r = await startRedis({ t });
    assert.match(r.url, /^redis:\/\/127\.0\.0\.1:\d+\/0$/);
    assert.equal(await r.command('SET', 'k', 'v'), '+OK');
    assert.equal(await r.command('GET', 'k'), '$1');
    assert.equal(await r.command('CONFIG', 'GET', 'save'), '*2');

    await r.pause(1500);
    // While paused, commands get no answer (this probe gives up after 200 ms), then
    // they are answered (this one waits up to 2 s).
    await assert.rejects(redisCommand(r.port, ['PING'], { timeoutMs: 200 }), /no reply to PING/);
    assert.equal(await r.command('PING'), '+PONG');

    const pid = r.pid;
    await r.restart();
    assert.notEqual(r.pid, pid);
    assert.equal(await r.command('GET', 'k'), '$-1', 'data survived a restart');

    await r.stop();
    await assert.rejects(redisCommand(r.port, ['PING'], { timeoutMs: 1_000 }), /ECONNREFUSED/);
    assert.throws(() => process.kill(pid, 0), 'the first redis-server is still running');
  });

  it('with an append-only file, a restart (after downMs) keeps the data', async (t) => {
    const r = await startRedis({ t, extraArgs: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    assert.equal(await r.command('SET', 'k', 'v'), '+OK');
    const started = Date.now();
    await r.restart({ downMs: 300 });
    assert.ok(Date.now() - started >= 300, 'stayed down for downMs');
    assert.equal(await r.command('GET', 'k'), '$1', 'the data did not survive');
    await assert.rejects(r.command('NOSUCHCOMMAND'), /redis: ERR unknown command/);
  });
});

describe('tcpproxy', () => {
  it('spreads connections over its backends, follows setBackends, and holds websocket upgrades', async (t) => {
    const servers = [];
    for (const name of ['one', 'two']) {
      const srv = http.createServer((req, res) => res.end(name));
      srv.on('upgrade', (req, sock) => sock.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'));
      await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
      t.after(() => srv.close());
      servers.push(srv);
    }
    const [p1, p2] = servers.map((s) => s.address().port);
    const proxy = await startTcpProxy({ backends: [p1, p2], holdWebsocketMs: 300, t });
    const get = async () => (await fetch(proxy.url, { headers: { Connection: 'close' } })).text();
    assert.deepEqual([await get(), await get(), await get()], ['one', 'two', 'one']);
    proxy.setBackends([p2]);
    assert.equal(await get(), 'two');
    const started = Date.now();
    const upgraded = await new Promise((resolve, reject) => {
      const req = http.request(proxy.url, { headers: { Connection: 'Upgrade', Upgrade: 'websocket' } });
      req.on('upgrade', (res, sock) => {
        sock.destroy();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(upgraded, 101);
    assert.ok(Date.now() - started >= 300, 'the upgrade was held back');
    assert.deepEqual(proxy.connections.map((c) => [c.backend, c.websocket]),
      [[p1, false], [p2, false], [p1, false], [p2, false], [p2, true]]);
    await proxy.close();
  });
});

describe('client and Node reference processes', () => {
  it('connects over websocket and polling, multiplexes a namespace, records and waits for events', async (t) => {
    const r = await startRedis({ t });
    const srv = await startNodeServer({ redisUrl: r.url, name: 'lib', t });
    const drv = startEmitterDriver('node', { redisUrl: r.url, t });
    const ws = await connect(srv.url, { transports: ['websocket'], auth: { rooms: ['a'] } });
    const poll = await connect(srv.url, { transports: ['polling'] });
    const adm = await connectNamespace(ws, '/admin');
    assert.equal(ws.io.engine.transport.name, 'websocket');
    assert.equal(poll.io.engine.transport.name, 'polling');
    assert.equal(adm.io, ws.io, 'not multiplexed on the same Manager');

    const since = ws.recorder.mark();
    await drv.perform({ ops: [{ to: 'a' }], call: 'emit', args: ['hi', 1] });
    await drv.perform({ call: 'emit', args: ['hi', 2] });
    const e = await ws.recorder.waitFor('hi', (n) => n === 2, 5_000, { since });
    assert.deepEqual(e.args, [2]);
    await poll.recorder.waitFor('hi', (n) => n === 2);
    assert.deepEqual(ws.recorder.all('hi').map((x) => x.args), [[1], [2]]);
    assert.deepEqual(poll.recorder.all('hi').map((x) => x.args), [[2]]);
    assert.deepEqual(ws.recorder.names(), ['connect', 'hi', 'hi']);

    await assert.rejects(ws.recorder.waitFor('never', () => true, 100, { label: 'ws' }),
      /ws: no 'never' event matching within 100 ms; received since mark 0:\n {4}connect \[\]\n {4}hi \[1\]/);
    await assert.rejects(connect(`${srv.url}/nope`, { transports: ['websocket'] }), /connect to .*\/nope failed: Invalid namespace/);
    await assert.rejects(connect(`http://127.0.0.1:${await freePort()}`, { transports: ['websocket'], timeoutMs: 2_000 }),
      /connect to .* failed/);
    await assert.rejects(drv.perform({ call: 'emit', args: ['connect'] }), /reserved event name/);
    await drv.perform({ call: 'emit', args: ['still-works'] });

    // Cluster operations performed by the Node server, and waitFor with several names.
    const found = await srv.command({ op: 'fetchSockets', in: 'a' });
    assert.deepEqual(found.sockets.map((x) => x.id), [ws.id]);
    // The classic Node adapter applies a socketsJoin when its own request
    // comes back from Redis, after the command's answer: wait for the join.
    const joins = srv.mark();
    await srv.command({ op: 'socketsJoin', in: poll.id, rooms: ['b'] });
    await srv.waitEvent((e) => e.type === 'join-room' && e.room === 'b' && e.id === poll.id, { since: joins, what: 'the join of b' });
    const mark = poll.recorder.mark();
    await srv.command({ op: 'emit', to: 'b', args: ['bee', { $bin: 'AQI=' }] });
    const got = await poll.recorder.waitFor(['nope', 'bee'], () => true, 5_000, { since: mark });
    assert.equal(got.event, 'bee');
    assert.equal(toBuffer(got.args[0]).toString('base64'), 'AQI=');
    await assert.rejects(srv.command({ op: 'explode' }), /node-server lib: explode: unknown op "explode"/);
    await assert.rejects(poll.recorder.waitFor(['x', 'y'], () => true, 50), /no 'x' or 'y' event matching within 50 ms/);
  });
});

describe('otlp', () => {
  it('receives OTLP/JSON spans (plain and gzipped) at /v1/traces and refuses anything else', async (t) => {
    const r = await startReceiver(t);
    const span = (name, parent) => ({
      traceId: '0af7651916cd43dd8448eb211c80319c', spanId: parent ? '00f067aa0ba902b7' : 'b7ad6b7169203331',
      parentSpanId: parent, name, kind: 2, startTimeUnixNano: '1', endTimeUnixNano: '2',
      attributes: [
        { key: 's', value: { stringValue: 'x' } }, { key: 'i', value: { intValue: '7' } },
        { key: 'big', value: { intValue: '9007199254740993' } }, { key: 'b', value: { boolValue: true } },
        { key: 'a', value: { arrayValue: { values: [{ intValue: 1 }, { doubleValue: 1.5 }] } } },
      ],
      events: [{ timeUnixNano: '1', name: 'ev', attributes: [{ key: 'n', value: { intValue: '3' } }] }],
      status: {},
    });
    const body = (name, parent) => JSON.stringify({
      resourceSpans: [{
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
        scopeSpans: [{ scope: { name: 'scope' }, spans: [span(name, parent)] }],
      }],
    });
    const post = (p, b, headers) => fetch(r.url + p, { method: 'POST', body: b, headers, signal: AbortSignal.timeout(5_000) });
    assert.equal((await post('/v1/traces', body('root'), { 'Content-Type': 'application/json' })).status, 200);
    const gz = zlib.gzipSync(body('child', 'b7ad6b7169203331'));
    assert.equal((await post('/v1/traces', gz, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Encoding': 'gzip' })).status, 200);
    assert.equal((await post('/v1/traces', 'x', { 'Content-Type': 'application/x-protobuf' })).status, 415);
    assert.equal((await post('/v1/metrics', body('m'), { 'Content-Type': 'application/json' })).status, 404);
    assert.equal((await post('/v1/traces', '{"nope":1}', { 'Content-Type': 'application/json' })).status, 400);
    assert.deepEqual(r.requests.map((q) => [q.path, q.contentType, q.status, q.spans]), [
      ['/v1/traces', 'application/json', 200, 1], ['/v1/traces', 'application/json', 200, 1],
      ['/v1/traces', 'application/x-protobuf', 415, 0], ['/v1/metrics', 'application/json', 404, 0],
      ['/v1/traces', 'application/json', 400, 0],
    ]);
    const [root, child] = r.spans();
    assert.deepEqual({ ...root, start: String(root.start) }, {
      service: 'svc', traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', parentSpanId: '',
      name: 'root', kind: SPAN_KIND.SERVER, start: '1', end: 2n,
      attributes: { s: 'x', i: 7, big: 9007199254740993n, b: true, a: [1, 1.5] },
      events: [{ name: 'ev', attributes: { n: 3 } }], status: { code: 0, message: '' },
    });
    assert.equal(child.parentSpanId, root.spanId);
    assert.equal(child.name, 'child');
  });
});

describe('build', () => {
  it('builds what exists, reports what does not, and takes prebuilt binaries from TASKWIRE_BIN_DIR', async (t) => {
    const bins = await buildBinaries({
      binaries: { twemit: './emitter/internal/cmd/twemit', ghost: './emitter/internal/cmd/not-written-yet' },
    });
    assert.ok(fs.statSync(bins.paths.twemit).isFile());
    assert.equal(bins.paths.ghost, undefined);
    assert.match(bins.missing.ghost, /package \.\/emitter\/internal\/cmd\/not-written-yet does not exist yet/);
    const again = await buildBinaries({ names: ['twemit'] });
    assert.equal(again.paths.twemit, bins.paths.twemit);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskwire-e2e-prebuilt-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'taskwire-worker'), '#!/bin/sh\n', { mode: 0o755 });
    const old = process.env.TASKWIRE_BIN_DIR;
    process.env.TASKWIRE_BIN_DIR = dir;
    try {
      const pre = await buildBinaries({ names: ['worker'] });
      assert.equal(pre.paths.worker, path.join(dir, 'taskwire-worker'));
    } finally {
      if (old === undefined) delete process.env.TASKWIRE_BIN_DIR;
      else process.env.TASKWIRE_BIN_DIR = old;
    }
    let skipped = null;
    assert.equal(requireBinary({ skip: (m) => { skipped = m; } }, { paths: {}, missing: { server: 'why' } }, 'server'), null);
    assert.equal(skipped, 'server: why');
    await assert.rejects(buildBinaries({ names: ['nope'] }), /unknown binary "nope"/);
  });
});
