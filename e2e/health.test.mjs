// Health (issue 6) of the real binaries: /healthz says the process is alive and
// never depends on Redis; /readyz says Redis answers and the process is not
// draining. Checked for taskwire-server and taskwire-worker with Redis stopped and
// started again, and while each drains after SIGTERM (the server with clients to
// disconnect, the worker with a task to finish). Also: both log JSON lines at the
// level LOG_LEVEL names, and refuse a bad LOG_LEVEL.

import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';

import { closeAll, connect } from './lib/client.mjs';
import { freePort, spawnProcess, waitForHttp, withTimeout } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';
import { Api, binaries, startServer, startWorker, stopSystem, until, waitLog } from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAll());

/** probe GETs url and returns {status, body}. */
async function probe(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

/** waitStatus polls url until it answers status; returns the last answer. */
function waitStatus(url, status, what, timeoutMs = 10_000) {
  let last;
  return until(async () => {
    try {
      last = await probe(url);
    } catch (err) {
      last = { error: err.cause?.code ?? err.message };
    }
    return last.status === status ? last : null;
  }, { timeoutMs, intervalMs: 25, what, detail: () => `last answer: ${JSON.stringify(last)}` });
}

/**
 * startWorkerWithProbes starts a worker whose probes listen on a port of its own
 * choosing (METRICS_ADDR 127.0.0.1:0), read from its "worker started" line.
 */
async function startWorkerWithProbes(redis, env = {}) {
  const worker = await startWorker({ redis, env: { METRICS_ADDR: '127.0.0.1:0', ...env } });
  const { metricsAddr } = await waitLog(worker.proc, 'worker started');
  worker.url = `http://${metricsAddr}`;
  await waitForHttp(`${worker.url}/readyz`, 10_000, { process: worker.proc });
  return worker;
}

describe('health', () => {
  it('readyz follows Redis on both binaries, healthz does not', async () => {
    const redis = await startRedis();
    const server = await startServer({ redis });
    const worker = await startWorkerWithProbes(redis);
    for (const base of [server.url, worker.url]) {
      assert.deepEqual(await probe(`${base}/healthz`), { status: 200, body: { status: 'ok' } });
      assert.equal((await probe(`${base}/readyz`)).status, 200);
    }

    await redis.stop();
    const s = await waitStatus(`${server.url}/readyz`, 503, 'server /readyz to fail without Redis');
    assert.equal(s.body.error.code, 'not_ready');
    assert.match(s.body.error.message, /redis/);
    const w = await waitStatus(`${worker.url}/readyz`, 503, 'worker /readyz to fail without Redis');
    assert.match(w.body.reason, /redis/);
    for (const base of [server.url, worker.url]) {
      assert.deepEqual(await probe(`${base}/healthz`), { status: 200, body: { status: 'ok' } },
        `${base}/healthz without Redis`);
    }

    await redis.restart();
    await waitStatus(`${server.url}/readyz`, 200, 'server /readyz once Redis is back', 20_000);
    await waitStatus(`${worker.url}/readyz`, 200, 'worker /readyz once Redis is back', 20_000);
    assert.ok(server.proc.running && worker.proc.running, 'a Redis outage stops neither binary');
  });

  it('the server is not ready while it drains after SIGTERM, and still alive', async () => {
    const redis = await startRedis();
    // Four clients are disconnected over 80% of SHUTDOWN_TIMEOUT: the last one
    // about 6 s after SIGTERM.
    const server = await startServer({ redis, env: { SHUTDOWN_TIMEOUT: '10s' } });
    const api = await Api.session(server.url);
    const sockets = [];
    for (let i = 0; i < 4; i++) {
      sockets.push(await connect(server.url, { token: api.token, transports: ['websocket'] }));
    }
    const mark = server.proc.mark();
    server.proc.signal('SIGTERM');
    await waitLog(server.proc, 'shutting down', { since: mark });
    const r = await waitStatus(`${server.url}/readyz`, 503, 'server /readyz to fail while draining');
    assert.match(r.body.error.message, /shutting down/);
    assert.deepEqual(await probe(`${server.url}/healthz`), { status: 200, body: { status: 'ok' } });
    // New clients are sent away while the old ones are let go.
    await assert.rejects(connect(server.url, { token: api.token, transports: ['polling'], timeoutMs: 3_000 }));
    const exit = await withTimeout(server.proc.exited, 15_000, () => `server did not exit:\n${server.proc.tail()}`);
    assert.deepEqual(exit, { code: 0, signal: null });
    // Every client was let go (they would reconnect elsewhere).
    await Promise.all(sockets.map((s) => s.recorder.waitFor('disconnect', () => true, 5_000)));
  });

  it('the worker is not ready while it finishes its task after SIGTERM, and still alive', async () => {
    const redis = await startRedis();
    const server = await startServer({ redis });
    const worker = await startWorkerWithProbes(redis, { EXPORT_ROW_DELAY: '1ms', WORKER_SHUTDOWN_TIMEOUT: '20s' });
    const api = await Api.session(server.url);
    const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });
    const id = await api.createExport(3000, { socketId: socket.id }); // about 3 s
    await socket.recorder.waitFor('task:progress', (p) => p.taskId === id && p.done > 0, 10_000);

    worker.proc.signal('SIGTERM');
    const r = await waitStatus(`${worker.url}/readyz`, 503, 'worker /readyz to fail while draining');
    assert.match(r.body.reason, /not taking tasks/);
    assert.deepEqual(await probe(`${worker.url}/healthz`), { status: 200, body: { status: 'ok' } });
    const done = await socket.recorder.waitFor('task:completed', (p) => p.taskId === id, 20_000);
    assert.equal(done.args[0].rows, 3000, 'the running task was finished, not handed back');
    const exit = await withTimeout(worker.proc.exited, 15_000, () => `worker did not exit:\n${worker.proc.tail()}`);
    assert.deepEqual(exit, { code: 0, signal: null });
  });
});

describe('logs', () => {
  /** jsonLines parses every stdout line of proc as a JSON log record. */
  function jsonLines(proc) {
    return proc.stdoutLines.map((line) => {
      let rec;
      assert.doesNotThrow(() => { rec = JSON.parse(line); }, `${proc.name}: not a JSON line: ${line}`);
      assert.equal(typeof rec.time, 'string', `${proc.name}: no time: ${line}`);
      assert.match(rec.level, /^(DEBUG|INFO|WARN|ERROR)$/, `${proc.name}: level: ${line}`);
      assert.equal(typeof rec.msg, 'string', `${proc.name}: no msg: ${line}`);
      return rec;
    });
  }

  it('both binaries log JSON at the level LOG_LEVEL names', async () => {
    const redis = await startRedis();
    const debugServer = await startServer({ redis, name: 'server-debug', env: { LOG_LEVEL: 'debug' } });
    const warnServer = await startServer({ redis, name: 'server-warn', env: { LOG_LEVEL: 'warn' } });
    const debugWorker = await startWorker({ redis, name: 'worker-debug', env: { LOG_LEVEL: 'debug' } });
    // startWorker waits for an info line: this one is awaited on its probes.
    const port = await freePort();
    const warnWorker = {
      proc: spawnProcess((await binaries()).worker, [], {
        name: 'worker-warn',
        env: { REDIS_URL: redis.url, LOG_LEVEL: 'warn', METRICS_ADDR: `127.0.0.1:${port}` },
      }),
    };
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, 10_000, { process: warnWorker.proc });
    // Something to log at info level: a session and a task.
    for (const s of [debugServer, warnServer]) {
      const api = await Api.session(s.url);
      const id = await api.createExport(10);
      await api.waitRecord(id, (r) => r.state === 'completed', { what: 'the export to complete' });
    }
    await Promise.all([debugServer, warnServer, debugWorker, warnWorker].map((p) => p.proc.kill()));

    const levels = (proc) => new Set(jsonLines(proc).map((r) => r.level));
    assert.ok(levels(debugServer.proc).has('INFO'), 'the debug server logs info');
    assert.ok(levels(debugWorker.proc).has('DEBUG'), 'the debug worker logs debug');
    for (const p of [warnServer.proc, warnWorker.proc]) {
      const l = levels(p);
      assert.ok(!l.has('INFO') && !l.has('DEBUG'), `${p.name} logged below warn: ${[...l]}`);
    }
  });

  it('both binaries refuse a bad LOG_LEVEL with exit code 2', async () => {
    const bins = await binaries();
    for (const bin of [bins.server, bins.worker]) {
      const p = spawnProcess(bin, [], { env: { LOG_LEVEL: 'loud', REDIS_URL: 'redis://127.0.0.1:1/0' } });
      const exit = await withTimeout(p.exited, 10_000, () => `${bin} did not exit:\n${p.tail()}`);
      assert.equal(exit.code, 2, `${p.name}:\n${p.tail()}`);
      assert.match(p.lines.map((l) => l.text).join('\n'), /LOG_LEVEL/);
    }
  });
});
