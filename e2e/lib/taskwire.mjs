// The taskwire system as separate processes, for system-level tests: servers
// (taskwire-server) and workers (taskwire-worker) on a test's own redis-server, an
// HTTP client of the API with one identity, and checks on the events a real
// socket.io-client receives for a task.
//
// Every wait is bounded and says what it waited for; every process is stopped by
// stopSystem() (call it from an after hook of the test or file), or by the test
// (pass t), or at the latest when the test file's process exits.

import assert from 'node:assert/strict';

import { Emitter } from '@socket.io/redis-emitter';
import { createClient } from 'redis';

import { buildBinaries } from './build.mjs';
import { closeAllAndWait } from './client.mjs';
import { freePort, killAll, spawnProcess, waitForHttp, withTimeout } from './proc.mjs';

/** SECRET is the TASKWIRE_SECRET every server of a test shares (tokens work on all). */
export const SECRET = 'e2e-shared-secret-of-the-taskwire-cluster-0123456789';

/** TASK_EVENTS are the events the system sends about a task. */
export const TASK_EVENTS = ['task:progress', 'task:stage', 'task:metadata', 'task:stream', 'task:completed', 'task:failed', 'task:cancelled'];

/** FINAL_EVENTS end a task. */
export const FINAL_EVENTS = ['task:completed', 'task:failed', 'task:cancelled'];

/** CSV_HEADER is the first line of every export. */
export const CSV_HEADER = 'id,customer,country,amount,currency,created_at';

/** Servers and workers started here and not yet stopped by stopSystem. */
const started = new Set();

/**
 * stopSystem closes every socket.io-client socket, stops (SIGTERM, SIGKILL after 5 s)
 * every server and worker started here, and then every other process the harness
 * started (redis-server last, so the binaries shut down against a live Redis).
 * Use it in the after hook of a file, or of a test that started its own system.
 */
export async function stopSystem() {
  await closeAllAndWait();
  const procs = [...started];
  started.clear();
  await Promise.all(procs.map((p) => p.kill()));
  await killAll();
}

/**
 * binaries returns the paths of taskwire-server and taskwire-worker, built from the
 * repository (or taken from $TASKWIRE_BIN_DIR). It throws when either is missing.
 *
 * @returns {Promise<{server: string, worker: string}>}
 */
export async function binaries() {
  const names = ['server', 'worker', 'primes'];
  const bins = await buildBinaries({ names });
  for (const name of names) {
    if (!bins.paths[name]) throw new Error(`cannot run the system tests: ${name}: ${bins.missing[name]}`);
  }
  return { server: bins.paths.server, worker: bins.paths.worker, primes: bins.paths.primes };
}

/**
 * logEntries returns the JSON log entries of a process (both streams) whose msg is
 * msg (every entry when omitted), from output position since.
 *
 * @param {import('./proc.mjs').ProcessHandle} proc
 * @param {string} [msg]
 * @param {{since?: number}} [opts]
 * @returns {object[]}
 */
export function logEntries(proc, msg, { since = 0 } = {}) {
  const out = [];
  for (const l of proc.lines) {
    if (l.seq < since || !l.text.startsWith('{')) continue;
    try {
      const e = JSON.parse(l.text);
      if (msg === undefined || e.msg === msg) out.push(e);
    } catch {
      // not a log entry
    }
  }
  return out;
}

/**
 * waitLog resolves with the first JSON log entry of proc whose msg is msg and that
 * satisfies pred, past or future (from position since).
 *
 * @param {import('./proc.mjs').ProcessHandle} proc
 * @param {string} msg
 * @param {{pred?: (e: object) => boolean, timeoutMs?: number, since?: number}} [opts]
 * @returns {Promise<object>}
 */
export function waitLog(proc, msg, { pred = () => true, timeoutMs = 10_000, since = 0 } = {}) {
  return proc.waitForLine((text) => {
    if (!text.startsWith('{')) return null;
    try {
      const e = JSON.parse(text);
      return e.msg === msg && pred(e) ? e : null;
    } catch {
      return null;
    }
  }, timeoutMs, { since, what: `the log entry "${msg}"` });
}

/**
 * @typedef {object} ServerHandle
 * @property {string} name
 * @property {number} port
 * @property {string} url  http://127.0.0.1:<port>
 * @property {import('./proc.mjs').ProcessHandle} proc
 * @property {number} pid
 */

/**
 * startServer starts a taskwire-server on a free loopback port against redis and
 * resolves once /readyz answers 200. env adds to (or overrides, or with undefined
 * removes) its defaults: REDIS_URL, HTTP_ADDR, TASKWIRE_SECRET (SECRET, shared by
 * all servers), LOG_LEVEL=info, SHUTDOWN_TIMEOUT=5s.
 *
 * bin runs another build of the server (a previous release). Unless knownKinds
 * is false, the export kind is registered first (registerExport).
 *
 * @param {{redis: {url: string}, name?: string, env?: Record<string, string | undefined>,
 *   t?: {after: (fn: () => any) => void}, timeoutMs?: number, bin?: string}} opts
 * @returns {Promise<ServerHandle>}
 */
export async function startServer({ redis, name = 'server', env = {}, t, timeoutMs = 30_000, bin, knownKinds = true }) {
  const bins = bin ? { server: bin } : await binaries();
  if (knownKinds) await registerExport(redis, env.TASKWIRE_PREFIX ?? 'taskwire');
  let lastErr;
  // freePort can race with another process taking the port: try a few.
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const proc = spawnProcess(bins.server, [], {
      name,
      env: {
        HTTP_ADDR: `127.0.0.1:${port}`,
        REDIS_URL: redis.url,
        TASKWIRE_SECRET: SECRET,
        LOG_LEVEL: 'info',
        SHUTDOWN_TIMEOUT: '5s',
        STATIC_DIR: undefined,
        ...env,
      },
      t,
    });
    started.add(proc);
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${url}/readyz`, timeoutMs, { process: proc });
      return { name, port, url, proc, pid: proc.pid };
    } catch (err) {
      lastErr = err;
      await proc.kill('SIGKILL');
      if (!/address already in use/.test(proc.tail(50))) break;
    }
  }
  throw lastErr;
}

/** EXPORT_KIND is the descriptor of the export kind, as taskwire-worker publishes it. */
export const EXPORT_KIND = Object.freeze({
  name: 'export',
  title: 'CSV export',
  paramsSchema: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    additionalProperties: false,
    properties: { rows: { default: 200000, maximum: 1000000, minimum: 1, title: 'Rows', type: 'integer' } },
    type: 'object',
  },
  totalParam: 'rows',
});

/**
 * registerExport makes the kind export known to the servers on redis, as a
 * worker that ran before would have (with no live worker), so that tests of the
 * API need no worker. A Redis that refuses the commands (one that needs a
 * password) is left alone: its tests start a worker.
 *
 * @param {{command: (...args: string[]) => Promise<string>}} redis
 * @param {string} prefix
 */
export async function registerExport(redis, prefix = 'taskwire') {
  const hash = 'e2e-registered';
  const desc = JSON.stringify({ ...EXPORT_KIND, schemaHash: hash, registeredAt: Date.now() });
  try {
    await redis.command('HSET', `${prefix}:kind:export`, hash, desc);
    await redis.command('ZADD', `${prefix}:kinds`, String(Date.now()), 'export');
  } catch {
    // a Redis with a password: the test's worker registers the kind
  }
}

/**
 * @typedef {object} WorkerHandle
 * @property {string} name
 * @property {import('./proc.mjs').ProcessHandle} proc
 * @property {number} pid
 * @property {() => string[]} started  ids of the tasks it started (log "task started")
 */

/**
 * startWorker starts a taskwire-worker against redis and resolves once it logged
 * "worker started". Defaults: WORKER_CONCURRENCY=2, WORKER_LEASE_TIMEOUT=2s,
 * METRICS_ADDR=off, LOG_LEVEL=info, EXPORT_ROW_DELAY=0; env adds or overrides.
 * bin runs another build of the worker (a previous release).
 *
 * @param {{redis: {url: string}, name?: string, env?: Record<string, string | undefined>,
 *   t?: {after: (fn: () => any) => void}, timeoutMs?: number, bin?: string}} opts
 * @returns {Promise<WorkerHandle>}
 */
export async function startWorker({ redis, name = 'worker', env = {}, t, timeoutMs = 15_000, bin }) {
  const bins = bin ? { worker: bin } : await binaries();
  const proc = spawnProcess(bins.worker, [], {
    name,
    env: {
      REDIS_URL: redis.url,
      WORKER_CONCURRENCY: '2',
      WORKER_LEASE_TIMEOUT: '2s',
      METRICS_ADDR: 'off',
      LOG_LEVEL: 'info',
      ...env,
    },
    t,
  });
  started.add(proc);
  await waitLog(proc, 'consuming', { timeoutMs });
  return {
    name,
    proc,
    pid: proc.pid,
    started: () => logEntries(proc, 'task started').map((e) => e.task),
  };
}

/**
 * startExampleWorker starts the example worker of a kind of its own (the primes
 * program of worker/examples, on the public SDK) and resolves once it consumes.
 * Defaults as startWorker; env adds or overrides.
 *
 * @param {{redis: {url: string}, name?: string, env?: Record<string, string | undefined>,
 *   t?: {after: (fn: () => any) => void}, timeoutMs?: number}} opts
 * @returns {Promise<WorkerHandle>}
 */
export async function startExampleWorker({ redis, name = 'primes', env = {}, t, timeoutMs = 15_000 }) {
  const bins = await binaries();
  const proc = spawnProcess(bins.primes, [], {
    name,
    env: { REDIS_URL: redis.url, WORKER_LEASE_TIMEOUT: '2s', METRICS_ADDR: 'off', LOG_LEVEL: 'info', ...env },
    t,
  });
  started.add(proc);
  await waitLog(proc, 'consuming', { timeoutMs });
  return { name, proc, pid: proc.pid, started: () => logEntries(proc, 'task started').map((e) => e.task) };
}

/**
 * @typedef {object} ApiResponse
 * @property {number} status
 * @property {Headers} headers
 * @property {string} text  the body
 * @property {any} json     the body parsed as JSON, or undefined
 */

/**
 * Api is an HTTP client of taskwire's API for one identity (a bearer token).
 */
export class Api {
  /**
   * @param {string} base  http://host:port of a server
   * @param {string} token
   */
  constructor(base, token) {
    this.base = base;
    this.token = token;
  }

  /**
   * session asks base for a new anonymous identity and returns an Api for it.
   *
   * @param {string} base
   * @returns {Promise<Api>}
   */
  static async session(base) {
    const res = await fetch(`${base}/api/v1/session`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200, `GET ${base}/api/v1/session: status ${res.status}`);
    const { token } = await res.json();
    assert.match(token, /^v1\./, 'session token');
    return new Api(base, token);
  }

  /** at returns an Api of the same identity on another server. */
  at(base) {
    return new Api(base, this.token);
  }

  /**
   * request sends one request; body (an object) is sent as JSON, rawBody as is.
   *
   * @param {string} method
   * @param {string} path
   * @param {{body?: any, rawBody?: string, headers?: Record<string, string>, timeoutMs?: number}} [opts]
   * @returns {Promise<ApiResponse>}
   */
  async request(method, path, { body, rawBody, headers = {}, timeoutMs = 10_000 } = {}) {
    const h = { Authorization: `Bearer ${this.token}`, ...headers };
    let payload;
    if (rawBody !== undefined) payload = rawBody;
    else if (body !== undefined) payload = JSON.stringify(body);
    if (payload !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) {
      h['Content-Type'] = 'application/json';
    }
    const res = await fetch(this.base + path, { method, headers: h, body: payload, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /**
   * createExport starts an export of rows rows (following it from socketId when
   * given), asserts 202 and returns its id.
   *
   * @param {number} rows
   * @param {{socketId?: string}} [opts]
   * @returns {Promise<string>}
   */
  async createExport(rows, { socketId } = {}) {
    const body = { kind: 'export', params: { rows } };
    if (socketId) body.socketId = socketId;
    const res = await this.request('POST', '/api/v1/tasks', { body });
    assert.equal(res.status, 202, `POST /api/v1/tasks: status ${res.status}: ${res.text}`);
    assert.equal(res.json.state, 'queued');
    assert.equal(res.headers.get('location'), `/api/v1/tasks/${res.json.id}`);
    return res.json.id;
  }

  /** get reads a task: GET /api/v1/tasks/<id>. */
  get(id) {
    return this.request('GET', `/api/v1/tasks/${id}`);
  }

  /** record reads a task and asserts 200; returns the record. */
  async record(id) {
    const res = await this.get(id);
    assert.equal(res.status, 200, `GET /api/v1/tasks/${id}: status ${res.status}: ${res.text}`);
    return res.json;
  }

  /** list returns the caller's tasks (GET /api/v1/tasks), asserting 200. */
  async list() {
    const res = await this.request('GET', '/api/v1/tasks');
    assert.equal(res.status, 200, `GET /api/v1/tasks: status ${res.status}: ${res.text}`);
    return res.json.tasks;
  }

  /** cancel: DELETE /api/v1/tasks/<id>. */
  cancel(id) {
    return this.request('DELETE', `/api/v1/tasks/${id}`);
  }

  /** result: GET /api/v1/tasks/<id>/result. */
  result(id) {
    return this.request('GET', `/api/v1/tasks/${id}/result`, { timeoutMs: 30_000 });
  }

  /**
   * waitRecord polls the task's record until pred holds (every intervalMs, default
   * 50), and returns it; it fails after timeoutMs with the last record seen. For
   * the cases where the record, not an event, is the truth (Redis outages).
   *
   * @param {string} id
   * @param {(rec: object) => boolean} pred
   * @param {{timeoutMs?: number, intervalMs?: number, what?: string}} [opts]
   */
  async waitRecord(id, pred, { timeoutMs = 30_000, intervalMs = 50, what = 'the awaited state' } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    for (;;) {
      try {
        const res = await this.get(id);
        if (res.status === 200 && pred(res.json)) return res.json;
        last = `${res.status} ${res.text.slice(0, 400)}`;
      } catch (err) {
        last = err.cause?.code ?? err.message;
      }
      if (Date.now() > deadline) {
        throw new Error(`task ${id}: ${what} not reached within ${timeoutMs} ms; last GET: ${last}`);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

/**
 * taskEvents returns the task events (TASK_EVENTS) a recorder holds for task id,
 * in arrival order, as {event, payload, at}.
 *
 * @param {import('./client.mjs').Recorder} rec
 * @param {string} id
 * @returns {{event: string, payload: any, at: number}[]}
 */
export function taskEvents(rec, id) {
  return rec.events
    .filter((e) => TASK_EVENTS.includes(e.event) && e.args[0]?.taskId === id)
    .map((e) => ({ event: e.event, payload: e.args[0], at: e.at }));
}

/**
 * waitFinal waits until the recorder has a final event of task id and returns it.
 *
 * @param {import('./client.mjs').Recorder} rec
 * @param {string} id
 * @param {number} [timeoutMs]
 * @param {string} [label]
 */
export function waitFinal(rec, id, timeoutMs = 30_000, label) {
  return rec.waitFor(FINAL_EVENTS, (p) => p?.taskId === id, timeoutMs,
    { label: `${label ?? 'client'} (final event of task ${id})` });
}

/**
 * checkProgress asserts the events of one task as a client received them: seq
 * strictly increasing (stage, metadata and stream events included); within each
 * run (a progress event with stage "started",
 * "requeued" or "retrying..." starts a new one) percent never decreases; every
 * progress payload has the contract's fields; at most one final event, and
 * nothing after it. It returns the events.
 *
 * @param {{event: string, payload: any}[]} evs
 * @param {string} id
 */
export function checkProgress(evs, id) {
  const dump = () => evs.map((e) => `${e.event} ${JSON.stringify(e.payload)}`).join('\n  ');
  let lastSeq = -Infinity;
  let lastPercent = -Infinity;
  let finals = 0;
  for (const [i, e] of evs.entries()) {
    const p = e.payload;
    assert.equal(p.taskId, id, `event ${i}: taskId`);
    assert.ok(Number.isInteger(p.seq) && p.seq > lastSeq, `seq not strictly increasing at event ${i}:\n  ${dump()}`);
    lastSeq = p.seq;
    assert.equal(finals, 0, `an event after the final one:\n  ${dump()}`);
    if (e.event === 'task:progress') {
      for (const f of ['percent', 'done', 'total']) assert.equal(typeof p[f], 'number', `progress.${f}: ${dump()}`);
      assert.equal(typeof p.stage, 'string', `progress.stage: ${dump()}`);
      assert.ok(p.percent >= 0 && p.percent <= 100, `percent out of range:\n  ${dump()}`);
      const newRun = p.stage === 'started' || p.stage === 'requeued' || p.stage.startsWith('retrying');
      if (newRun) lastPercent = -Infinity;
      assert.ok(p.percent >= lastPercent, `percent decreased at event ${i}:\n  ${dump()}`);
      lastPercent = p.percent;
    } else if (FINAL_EVENTS.includes(e.event)) {
      finals++;
    }
  }
  return evs;
}

/**
 * checkCsv asserts that text is an export of rows rows: the header, then rows lines
 * of six fields, ids unique.
 *
 * @param {string} text
 * @param {number} rows
 */
export function checkCsv(text, rows) {
  assert.ok(text.endsWith('\n'), 'the CSV ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  assert.equal(lines[0], CSV_HEADER, 'CSV header');
  assert.equal(lines.length - 1, rows, `CSV data rows (got ${lines.length - 1}, want ${rows})`);
  const ids = new Set();
  for (const [i, line] of lines.slice(1).entries()) {
    const f = line.split(',');
    assert.equal(f.length, 6, `CSV row ${i + 1} has ${f.length} fields: ${line}`);
    assert.match(f[0], /^ORD-\d+$/, `CSV row ${i + 1} id: ${line}`);
    assert.match(f[3], /^\d+(\.\d+)?$/, `CSV row ${i + 1} amount: ${line}`);
    assert.match(f[5], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, `CSV row ${i + 1} created_at: ${line}`);
    ids.add(f[0]);
  }
  assert.equal(ids.size, rows, 'CSV order ids are unique');
}

/**
 * ack emits event with payload on socket and resolves with the acknowledgement's
 * first argument, or rejects after timeoutMs.
 *
 * @param {import('socket.io-client').Socket} socket
 * @param {string} event
 * @param {any} payload
 * @param {number} [timeoutMs]
 */
export function ack(socket, event, payload, timeoutMs = 5_000) {
  return withTimeout(socket.timeout(timeoutMs).emitWithAck(event, payload), timeoutMs + 1_000,
    `no ack to ${event} ${JSON.stringify(payload)} within ${timeoutMs} ms`)
    .catch((err) => {
      throw new Error(`${event} ${JSON.stringify(payload)}: ${err.message}`);
    });
}

/**
 * whenever resolves once cond() holds, checking it now and after every event any of
 * sockets receives (their recorders have it by then); it rejects after timeoutMs
 * with what and, when given, detail().
 *
 * @param {import('socket.io-client').Socket[]} sockets
 * @param {() => boolean} cond
 * @param {{timeoutMs?: number, what?: string, detail?: () => string}} [opts]
 * @returns {Promise<void>}
 */
export function whenever(sockets, cond, { timeoutMs = 30_000, what = 'the condition', detail } = {}) {
  return new Promise((resolve, reject) => {
    let timer;
    const stop = () => {
      clearTimeout(timer);
      for (const s of sockets) s.offAny(check);
    };
    const check = () => {
      if (!cond()) return;
      stop();
      resolve();
    };
    timer = setTimeout(() => {
      stop();
      reject(new Error(`${what}: not reached within ${timeoutMs} ms${detail ? `\n${detail()}` : ''}`));
    }, timeoutMs);
    for (const s of sockets) s.onAny(check);
    check();
  });
}

/**
 * until polls cond (sync or async) every intervalMs until it returns a truthy value,
 * which it returns; fails after timeoutMs with what and, when given, detail().
 * Only for state that has no event to wait on (a process's exit is awaited with
 * its promise, an event with a Recorder).
 *
 * @template T
 * @param {() => T | Promise<T>} cond
 * @param {{timeoutMs?: number, intervalMs?: number, what?: string, detail?: () => string}} [opts]
 * @returns {Promise<T>}
 */
export async function until(cond, { timeoutMs = 10_000, intervalMs = 50, what = 'the condition', detail } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) {
      throw new Error(`${what}: not true within ${timeoutMs} ms${detail ? `\n${detail()}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * waitDelivered waits until a server delivers what is published in Redis to
 * socket: it emits a "probe" event to the socket's own room with Node's
 * @socket.io/redis-emitter every intervalMs until the socket receives one. After a
 * Redis outage this is how a test knows the server's adapter has subscribed again
 * (nothing else tells). Resolves with the time it took.
 *
 * @param {string} redisUrl
 * @param {import('socket.io-client').Socket & {recorder: import('./client.mjs').Recorder}} socket
 * @param {{timeoutMs?: number, intervalMs?: number}} [opts]
 * @returns {Promise<number>}
 */
export async function waitDelivered(redisUrl, socket, { timeoutMs = 15_000, intervalMs = 50 } = {}) {
  const start = Date.now();
  const client = createClient({ url: redisUrl, socket: { reconnectStrategy: 50 } });
  client.on('error', () => {}); // retried by the loop below
  try {
    await withTimeout(client.connect(), timeoutMs, `waitDelivered: cannot connect to ${redisUrl}`);
    const emitter = new Emitter(client);
    const mark = socket.recorder.mark();
    let n = 0;
    for (;;) {
      emitter.to(socket.id).emit('probe', ++n);
      try {
        await socket.recorder.waitFor('probe', () => true, intervalMs, { since: mark });
        return Date.now() - start;
      } catch {
        if (Date.now() - start > timeoutMs) {
          throw new Error(`waitDelivered: ${n} probes published to socket ${socket.id} in ${timeoutMs} ms, none delivered ` +
            '(is the server subscribed to Redis again?)');
        }
      }
    }
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}
