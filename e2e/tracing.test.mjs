// OpenTelemetry traces of a task, through real processes: a taskwire-server and a
// taskwire-worker on a redis-server of their own, exporting to an OTLP/HTTP
// receiver in this process (lib/otlp.mjs), and the real socket.io-client
// following the task.
//
// - one trace per task: POST /api/v1/tasks → taskwire.enqueue → the worker's
//   taskwire.attempt (each event it emits an event of that span, the final one a
//   taskwire.emit span of its own) → one taskwire.relay span per event the server
//   handed to the client's socket; parents consistent, the task id on every span,
//   the relay spans' seq the seq of the event the client received;
// - a second task gets a trace of its own;
// - off: with no OTEL_* variable set, with OTEL_TRACES_EXPORTER=none and with
//   OTEL_SDK_DISABLED=true (both with an endpoint), nothing reaches the receiver,
//   and neither the queue message nor the record carries a trace context.

import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';

import { createClient } from 'redis';

import { closeAllAndWait, connect } from './lib/client.mjs';
import { SPAN_KIND, startReceiver } from './lib/otlp.mjs';
import { startRedis } from './lib/redis.mjs';
import {
  Api, FINAL_EVENTS, ack, logEntries, startServer, startWorker, stopSystem, taskEvents, until, waitFinal, waitLog,
} from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAllAndWait());

/**
 * otel returns the environment of a binary with every OTEL_* variable of this
 * process removed, then vars set: what a test sets is all the binary sees.
 *
 * @param {Record<string, string>} vars
 */
function otel(vars) {
  const env = {};
  for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_')) env[k] = undefined;
  return { ...env, ...vars };
}

/** tracedEnv is the environment of a traced binary: export to receiver, 100 ms batches. */
function tracedEnv(receiver, service, more = {}) {
  return otel({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: service, OTEL_BSP_SCHEDULE_DELAY: '100', ...more });
}

/**
 * redisClient connects a client of the redis package to the test's redis-server;
 * it is closed (without waiting for Redis, which may be stopped already) when
 * the test ends.
 */
async function redisClient(t, redis) {
  const c = createClient({ url: redis.url });
  c.on('error', () => {}); // a failing command rejects
  await c.connect();
  t.after(() => c.disconnect());
  return c;
}

/** runTask runs one export of rows rows followed by socket and returns its id and events. */
async function runTask(api, socket, rows) {
  const id = await api.createExport(rows, { socketId: socket.id });
  const done = await waitFinal(socket.recorder, id, 30_000);
  assert.equal(done.event, 'task:completed');
  await ack(socket, 'task:subscribe', { taskId: id }); // barrier: every event of the task has arrived
  const evs = taskEvents(socket.recorder, id);
  const rec = await api.record(id);
  assert.deepEqual(evs.map((e) => e.payload.seq), Array.from({ length: rec.seq }, (_, i) => i + 1),
    'the client received every event of the task');
  return { id, evs, rec };
}

/** taskSpans returns the spans that name task id, waiting until want(spans) holds. */
function taskSpans(receiver, id, want, what) {
  const of = () => receiver.spans().filter((s) => s.attributes['taskwire.task_id'] === id);
  return until(() => (want(of()) ? of() : null), {
    timeoutMs: 15_000,
    what: `the spans of task ${id}: ${what}`,
    detail: () => receiver.dump(),
  });
}

describe('tracing', () => {
  it('one trace per task: POST → enqueue → attempt → each emit → relay, the task id on every span', async (t) => {
    t.after(() => stopSystem());
    const receiver = await startReceiver(t);
    const redis = await startRedis(); // stopped last, by stopSystem
    const [server, worker] = await Promise.all([
      startServer({ redis, env: tracedEnv(receiver, 'e2e-server') }),
      // 1 ms a row: a 400-row export emits several progress events besides started and completed.
      startWorker({ redis, env: { ...tracedEnv(receiver, 'e2e-worker'), EXPORT_ROW_DELAY: '1ms', WORKER_CONCURRENCY: '1' } }),
    ]);
    for (const p of [server.proc, worker.proc]) {
      assert.equal((await waitLog(p, 'tracing on')).endpoint, `${receiver.url}/v1/traces`);
    }
    const rdb = await redisClient(t, redis);
    const api = await Api.session(server.url);
    const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });

    const { id, evs } = await runTask(api, socket, 400);
    const finalEvent = evs.at(-1);
    assert.ok(FINAL_EVENTS.includes(finalEvent.event));
    const nonFinal = evs.slice(0, -1);
    assert.ok(nonFinal.length >= 2, `events besides the final one: ${nonFinal.length}`);

    // Every span the task should have: the request, the enqueue, one attempt with its
    // final emit, and a relay span per event the client received.
    const spans = await taskSpans(receiver, id, (ss) => {
      const relays = new Set(ss.filter((s) => s.name.startsWith('taskwire.relay ')).map((s) => s.attributes['taskwire.seq']));
      return ['POST /api/v1/tasks', 'taskwire.enqueue', 'taskwire.attempt', `taskwire.emit ${finalEvent.event}`]
        .every((n) => ss.some((s) => s.name === n)) && evs.every((e) => relays.has(e.payload.seq));
    }, 'request, enqueue, attempt, emit and a relay span per event');

    // One trace, and nothing else in it.
    const traceIds = new Set(spans.map((s) => s.traceId));
    assert.equal(traceIds.size, 1, `trace ids of task ${id}: ${[...traceIds]}`);
    const [traceId] = traceIds;
    assert.match(traceId, /^[0-9a-f]{32}$/);
    const inTrace = receiver.spans().filter((s) => s.traceId === traceId);
    assert.deepEqual(inTrace.filter((s) => s.attributes['taskwire.task_id'] !== id).map((s) => s.name), [],
      'every span of the trace has the task id');
    const ids = new Set(inTrace.map((s) => s.spanId));
    assert.equal(ids.size, inTrace.length, 'span ids are unique');

    const one = (name) => {
      const got = spans.filter((s) => s.name === name);
      assert.equal(got.length, 1, `spans named ${name}: ${got.length}\n${receiver.dump()}`);
      return got[0];
    };
    const post = one('POST /api/v1/tasks');
    assert.equal(post.service, 'e2e-server');
    assert.equal(post.kind, SPAN_KIND.SERVER);
    assert.equal(post.parentSpanId, '', 'the request starts the trace (the client sent no traceparent)');
    assert.equal(post.attributes['http.route'], '/api/v1/tasks');
    assert.equal(post.attributes['http.request.method'], 'POST');
    assert.equal(post.attributes['http.response.status_code'], 202);

    const enqueue = one('taskwire.enqueue');
    assert.equal(enqueue.service, 'e2e-server');
    assert.equal(enqueue.kind, SPAN_KIND.PRODUCER);
    assert.equal(enqueue.parentSpanId, post.spanId, 'the enqueue is a child of the request');
    assert.equal(enqueue.attributes['taskwire.kind'], 'export');

    const attempt = one('taskwire.attempt');
    assert.equal(attempt.service, 'e2e-worker');
    assert.equal(attempt.kind, SPAN_KIND.CONSUMER);
    assert.equal(attempt.parentSpanId, enqueue.spanId, 'the attempt continues the trace of the queue message');
    assert.equal(attempt.attributes['taskwire.kind'], 'export');
    assert.equal(attempt.attributes['taskwire.attempt'], 1);
    assert.equal(attempt.attributes['taskwire.outcome'], 'completed');
    // Each event the worker emitted before the final one is an event of the attempt's span.
    assert.deepEqual(attempt.events.map((e) => [e.name, e.attributes['taskwire.event'], e.attributes['taskwire.seq']]),
      nonFinal.map((e) => [e.event, e.event, e.payload.seq]), 'the attempt span has an event per emitted event');

    const emit = one(`taskwire.emit ${finalEvent.event}`);
    assert.equal(emit.service, 'e2e-worker');
    assert.equal(emit.kind, SPAN_KIND.PRODUCER);
    assert.equal(emit.parentSpanId, attempt.spanId, 'the final emit is a child of the attempt');
    assert.equal(emit.attributes['taskwire.event'], finalEvent.event);
    assert.equal(emit.attributes['taskwire.seq'], finalEvent.payload.seq);
    assert.equal(emit.attributes['taskwire.attempt'], 1);

    // The relay: one span per event the server handed to the socket, with that
    // event's seq (never 0), a child of the task's creation (the record's trace
    // context, which is the request's span).
    const relays = spans.filter((s) => s.name.startsWith('taskwire.relay '));
    assert.deepEqual(relays.map((s) => s.attributes['taskwire.seq']).sort((a, b) => a - b), evs.map((e) => e.payload.seq),
      'one relay span per event, with its seq');
    for (const r of relays) {
      const e = evs.find((x) => x.payload.seq === r.attributes['taskwire.seq']);
      assert.equal(r.name, `taskwire.relay ${e.event}`);
      assert.equal(r.attributes['taskwire.event'], e.event);
      assert.ok(r.attributes['taskwire.seq'] > 0);
      assert.equal(r.attributes['taskwire.recipients'], 1, 'one socket in the task room');
      assert.equal(r.attributes['taskwire.attempt'], e.payload.attempt ?? undefined);
      assert.equal(r.service, 'e2e-server');
      assert.equal(r.kind, SPAN_KIND.CONSUMER);
      assert.equal(r.parentSpanId, post.spanId, `${r.name} seq ${r.attributes['taskwire.seq']}: parent`);
    }
    assert.equal(await rdb.hGet(`taskwire:task:${id}`, 'traceparent'), `00-${traceId}-${post.spanId}-01`,
      'the record carries the trace context of the request');

    // Every export was OTLP/JSON at /v1/traces, from both processes.
    assert.deepEqual([...new Set(receiver.requests.map((r) => `${r.method} ${r.path} ${r.contentType}`))],
      ['POST /v1/traces application/json']);
    assert.deepEqual([...new Set(receiver.spans().map((s) => s.service))].sort(), ['e2e-server', 'e2e-worker']);

    // A second task: a trace of its own, with the same shape.
    const second = await runTask(api, socket, 20);
    const spans2 = await taskSpans(receiver, second.id, (ss) => ss.some((s) => s.name === 'taskwire.attempt') &&
      second.evs.every((e) => ss.some((s) => s.name === `taskwire.relay ${e.event}` && s.attributes['taskwire.seq'] === e.payload.seq)),
    'the attempt and a relay span per event');
    const traceIds2 = new Set(spans2.map((s) => s.traceId));
    assert.equal(traceIds2.size, 1, `trace ids of task ${second.id}: ${[...traceIds2]}`);
    assert.notEqual([...traceIds2][0], traceId, 'the second task has a trace of its own');
    const post2 = spans2.find((s) => s.name === 'POST /api/v1/tasks');
    assert.equal(post2?.parentSpanId, '', 'the second request starts its own trace');

    process.stdout.write(`# tracing: task of ${evs.length} events: ${spans.length} spans in one trace ` +
      `(${relays.length} relay spans, ${attempt.events.length} attempt events); ` +
      `${receiver.requests.length} exports so far\n`);
  });

  for (const [name, vars] of [
    ['no OTEL_* variable set', null],
    ['OTEL_TRACES_EXPORTER=none', { OTEL_TRACES_EXPORTER: 'none' }],
    ['OTEL_SDK_DISABLED=true', { OTEL_SDK_DISABLED: 'true' }],
  ]) {
    it(`off with ${name}: nothing is exported, no trace context in the queue or the record`, async (t) => {
      t.after(() => stopSystem());
      const receiver = await startReceiver(t);
      const redis = await startRedis(); // stopped last, by stopSystem
      const env = vars ? tracedEnv(receiver, 'e2e-off', vars) : otel({});
      const server = await startServer({ redis, env });
      const rdb = await redisClient(t, redis);
      const api = await Api.session(server.url);
      const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });
      // No worker yet: the queue message is still there to read.
      const id = await api.createExport(20, { socketId: socket.id });
      const entries = await rdb.xRange('taskwire:queue:export', '-', '+');
      assert.equal(entries.length, 1);
      const fields = entries[0].message;
      assert.ok(fields.task, `queue entry: ${JSON.stringify(fields)}`);
      assert.equal(JSON.parse(fields.task).id, id);
      assert.equal(JSON.parse(fields.task).traceparent, undefined, `queue message: ${fields.task}`);
      assert.equal(fields.traceparent, undefined, `queue entry: ${JSON.stringify(fields)}`);

      const worker = await startWorker({ redis, env });
      const done = await waitFinal(socket.recorder, id, 30_000);
      assert.equal(done.event, 'task:completed');
      assert.equal(await rdb.hGet(`taskwire:task:${id}`, 'traceparent'), null, 'the record has no trace context');
      // Stopped with SIGTERM, the binaries flush whatever spans they hold: none.
      await closeAllAndWait();
      for (const p of [server.proc, worker.proc]) {
        await p.kill();
        assert.equal(p.exitInfo.code, 0, `${p.name} exit: ${p.tail(20)}`);
        assert.deepEqual(logEntries(p, 'tracing on'), [], `${p.name} says tracing is on`);
      }
      assert.deepEqual(receiver.requests, [], 'the receiver got nothing');
    });
  }
});
