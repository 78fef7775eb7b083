// A kind of the user's own (issue 12): the example worker of worker/examples (a
// separate Go module on the public SDK, kind "primes") next to an unchanged
// taskwire-server, driven with HTTP as curl would and with the real
// socket.io-client. The server learns the kind from the worker: its listing, the
// validation of parameters against its schema, every event the SDK's calls
// produce, the stream kept for late readers, and the JSON result.

import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';

import { closeAllAndWait, connect } from './lib/client.mjs';
import { startRedis } from './lib/redis.mjs';
import { Api, ack, startExampleWorker, startServer, stopSystem, waitFinal } from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAllAndWait());

/** kinds reads GET /api/v1/kinds. */
async function kinds(api) {
  const res = await api.request('GET', '/api/v1/kinds');
  assert.equal(res.status, 200, `GET /api/v1/kinds: ${res.status} ${res.text}`);
  return res.json.kinds;
}

describe('a kind written against the public SDK, in a module of its own', () => {
  it('is listed, validated by its schema, runs with live stage/progress/metadata/stream events, and completes', async (t) => {
    t.after(() => stopSystem());
    const redis = await startRedis();
    const server = await startServer({ redis, knownKinds: false });
    const api = await Api.session(server.url);
    // No worker yet: the kind is unknown.
    let res = await api.request('POST', '/api/v1/tasks', { body: { kind: 'primes', params: { limit: 1000 } } });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error.code, 'unknown_kind');

    await startExampleWorker({ redis, env: { PRIMES_SEGMENT_DELAY: '20ms' } });
    const listed = (await kinds(api)).find((k) => k.name === 'primes');
    assert.ok(listed, 'GET /api/v1/kinds lists the kind of the new worker');
    assert.equal(listed.title, 'Prime count');
    assert.equal(listed.workers, 1);
    assert.equal(listed.paramsSchema.type, 'object');
    assert.equal(listed.paramsSchema.properties.limit.maximum, 200000000);
    assert.equal(listed.paramsSchema.additionalProperties, false);

    // Bad parameters: every offending field, by name.
    res = await api.request('POST', '/api/v1/tasks', {
      body: { kind: 'primes', params: { limit: 5, segments: 'many', colour: 'red' } },
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error.code, 'invalid_params');
    const fields = res.json.error.details.map((d) => d.field).sort();
    assert.deepEqual(fields, ['params.colour', 'params.limit', 'params.segments'], res.text);

    // A real run, followed over the socket from its first event.
    const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });
    res = await api.request('POST', '/api/v1/tasks', {
      body: { kind: 'primes', params: { limit: 1000000, segments: 40 }, socketId: socket.id },
    });
    assert.equal(res.status, 202, res.text);
    const id = res.json.id;
    const done = await waitFinal(socket.recorder, id, 60_000);
    assert.equal(done.event, 'task:completed', JSON.stringify(done.args));
    const completed = done.args[0];
    assert.deepEqual(completed.result.value, { limit: 1000000, count: 78498, largest: 999983 });
    assert.equal(completed.result.contentType, 'application/json');

    const evs = socket.recorder.events
      .filter((e) => e.event.startsWith('task:') && e.args[0]?.taskId === id)
      .map((e) => ({ event: e.event, p: e.args[0] }));
    // One seq across every event, increasing; the attempt on each.
    for (let i = 1; i < evs.length; i++) {
      assert.ok(evs[i].p.seq > evs[i - 1].p.seq, `seq ${evs[i].p.seq} after ${evs[i - 1].p.seq}`);
    }
    assert.ok(evs.every((e) => e.p.attempt === 1), 'every event says attempt 1');
    const stages = evs.filter((e) => e.event === 'task:stage').map((e) => e.p.stage);
    assert.deepEqual(stages, ['base', 'sieve']);
    assert.ok(evs.some((e) => e.event === 'task:progress' && e.p.stage === 'sieve' && e.p.percent > 0));
    const meta = evs.filter((e) => e.event === 'task:metadata').at(-1);
    assert.deepEqual(meta.p.metadata, { count: 78498, largest: 999983 });
    // The stream: chunks in order, each at the offset where the last ended.
    const chunks = evs.filter((e) => e.event === 'task:stream');
    let held = 0;
    for (const c of chunks) {
      assert.equal(c.p.stream, 'counts');
      assert.equal(c.p.offset, held, 'a chunk starts where the last one ended');
      held += c.p.items.length;
    }
    assert.equal(held, 40);
    assert.equal(chunks.flatMap((c) => c.p.items).reduce((n, it) => n + it.primes, 0), 78498);

    // What a late reader gets: the record, the kept stream, the result.
    const rec = await api.record(id);
    assert.equal(rec.state, 'completed');
    assert.equal(rec.kind, 'primes');
    assert.equal(rec.streams.counts, 40);
    assert.equal(rec.stage, 'sieve');
    const stream = await api.request('GET', `/api/v1/tasks/${id}/streams/counts?from=38`);
    assert.equal(stream.status, 200, stream.text);
    assert.equal(stream.json.from, 38);
    assert.deepEqual(stream.json.items.map((it) => it.segment), [39, 40]);
    const result = await api.request('GET', `/api/v1/tasks/${id}/result`);
    assert.equal(result.status, 200);
    assert.match(result.headers.get('content-type'), /^application\/json/);
    assert.deepEqual(result.json, { limit: 1000000, count: 78498, largest: 999983 });

    // task:subscribe from a second connection gets the same snapshot.
    const again = await connect(server.url, { token: api.token, transports: ['polling'] });
    const snap = await ack(again, 'task:subscribe', { taskId: id });
    assert.equal(snap.state, 'completed');
    assert.deepEqual(snap.result.value, result.json);
  });
});
