// The inbox of finished tasks and the delivery receipts (issue 14), through real
// processes and the real socket.io-client: two taskwire-servers, a taskwire-worker,
// one redis-server.
//
// - a task that finishes while its owner has no socket is in GET /api/v1/inbox (on
//   either server), newest first; one that finishes while the owner has tabs on
//   both servers reaches every one of them as inbox:item, and nobody else;
// - POST /api/v1/inbox/ack and inbox:ack set seenAt once and take the items out;
// - task:received sets deliveredAt once (the first confirmation of any tab of the
//   owner), and taskwire_tasks_delivery_seconds counts it on the server that got it;
// - bad input, on both ways in: clear errors, and nothing changed;
// - /metrics of both servers has the delivery histogram and the undelivered counter.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { connect } from './lib/client.mjs';
import { scrape, value } from './lib/metrics.mjs';
import { startRedis } from './lib/redis.mjs';
import { Api, ack, startServer, startWorker, stopSystem, waitFinal } from './lib/taskwire.mjs';

/** UNKNOWN is a well-formed task id that names no task. */
const UNKNOWN = 'AAAAAAAAAAAAAAAAAAAAAA';

let s;

before(async () => {
  const redis = await startRedis();
  const [A, B] = await Promise.all([
    startServer({ redis, name: 'server-A' }),
    startServer({ redis, name: 'server-B' }),
    startWorker({ redis, env: { EXPORT_ROW_DELAY: '100us', WORKER_CONCURRENCY: '2' } }),
  ]);
  const owner = await Api.session(A.url);
  const stranger = await Api.session(A.url);
  s = { redis, A, B, owner, stranger };
});
after(() => stopSystem());

/** finished starts an export of api's and waits until its record is final. */
async function finished(api, rows = 50) {
  const id = await api.createExport(rows);
  return api.waitRecord(id, (r) => r.state === 'completed', { what: 'completed' });
}

/** inbox reads api's inbox and asserts 200 {"items": [...]}. */
async function inbox(api) {
  const res = await api.request('GET', '/api/v1/inbox');
  assert.equal(res.status, 200, `GET /api/v1/inbox: ${res.status} ${res.text}`);
  assert.ok(Array.isArray(res.json.items), `GET /api/v1/inbox: ${res.text}`);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  return res.json.items;
}

describe('inbox and delivery receipts', () => {
  it('a task finished with no socket open is in the inbox, on either server, newest first', async () => {
    const first = await finished(s.owner);
    const second = await finished(s.owner);
    for (const api of [s.owner, s.owner.at(s.B.url)]) {
      const items = await inbox(api);
      assert.deepEqual(items.map((i) => i.taskId), [second.taskId, first.taskId], 'newest first');
      assert.deepEqual(items[0], {
        taskId: second.taskId, kind: 'export', state: 'completed', seq: second.seq, finishedAt: second.finishedAt,
      });
    }
    assert.deepEqual(await inbox(s.stranger), [], "another identity's inbox");
    const rec = await s.owner.record(first.taskId);
    assert.equal(rec.deliveredAt, undefined, 'no socket confirmed it');
    assert.equal(rec.seenAt, undefined, 'nobody marked it seen');
  });

  it('inbox:item reaches every tab of the owner, on both servers, and nobody else', async () => {
    const tabA = await connect(s.A.url, { token: s.owner.token, transports: ['websocket'] });
    const tabB = await connect(s.B.url, { token: s.owner.token, transports: ['polling'] });
    const other = await connect(s.A.url, { token: s.stranger.token, transports: ['websocket'] });
    const rec = await finished(s.owner);
    const want = { taskId: rec.taskId, kind: 'export', state: 'completed', seq: rec.seq, finishedAt: rec.finishedAt };
    for (const tab of [tabA, tabB]) {
      const e = await tab.recorder.waitFor('inbox:item', (p) => p.taskId === rec.taskId, 10_000, { label: 'inbox:item' });
      assert.deepEqual(e.args[0], want);
    }
    // The stranger's own task's item comes after any of the owner's would have.
    const own = await finished(s.stranger);
    await other.recorder.waitFor('inbox:item', (p) => p.taskId === own.taskId, 10_000, { label: "the stranger's own item" });
    assert.deepEqual(other.recorder.all('inbox:item').map((e) => e.args[0].taskId), [own.taskId],
      "the stranger got only its own task's item");
    assert.equal(tabA.recorder.all('inbox:item').filter((e) => e.args[0].taskId === own.taskId).length, 0,
      "the owner got nothing of the stranger's task");
  });

  it('an ack over HTTP and over the socket sets seenAt once and takes the items out', async () => {
    const items = await inbox(s.owner);
    assert.ok(items.length >= 3, `inbox ${JSON.stringify(items)}`);
    const [viaSocket, viaHttp, ...rest] = items.map((i) => i.taskId);

    const res = await s.owner.at(s.B.url).request('POST', '/api/v1/inbox/ack', { body: { taskIds: [viaHttp, viaHttp] } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { taskIds: [viaHttp] });
    const tab = await connect(s.A.url, { token: s.owner.token });
    assert.deepEqual(await ack(tab, 'inbox:ack', { taskIds: [viaSocket] }), { taskIds: [viaSocket] });

    const seen = {};
    for (const id of [viaHttp, viaSocket]) {
      seen[id] = (await s.owner.record(id)).seenAt;
      assert.ok(Date.parse(seen[id]) > 0, `seenAt of ${id}: ${seen[id]}`);
    }
    assert.deepEqual((await inbox(s.owner)).map((i) => i.taskId), rest, 'the acked items are gone');
    // Again, both ways: accepted, and the first time stays.
    assert.deepEqual(await ack(tab, 'inbox:ack', { taskIds: [viaHttp, viaSocket] }), { taskIds: [viaHttp, viaSocket] });
    for (const id of [viaHttp, viaSocket]) assert.equal((await s.owner.record(id)).seenAt, seen[id], `seenAt of ${id} moved`);
    assert.equal((await s.owner.request('POST', '/api/v1/inbox/ack', { body: { taskIds: rest } })).status, 200);
    assert.deepEqual(await inbox(s.owner), []);
  });

  it('task:received sets deliveredAt once, from any tab of the owner; the server that got it counts it', async () => {
    const count = async () => {
      let n = 0;
      for (const srv of [s.A, s.B]) n += value(await scrape(`${srv.url}/metrics`), 'taskwire_tasks_delivery_seconds_count') ?? 0;
      return n;
    };
    const before = await count();
    const tabA = await connect(s.A.url, { token: s.owner.token, transports: ['websocket'] });
    const tabB = await connect(s.B.url, { token: s.owner.token, transports: ['polling'] });
    const id = await s.owner.createExport(200, { socketId: tabA.id });
    const final = await waitFinal(tabA.recorder, id, 20_000);
    assert.equal(final.event, 'task:completed');
    const seq = final.args[0].seq;

    const first = await ack(tabB, 'task:received', { taskId: id, seq });
    assert.equal(first.taskId, id);
    assert.ok(Date.parse(first.deliveredAt) > 0, `deliveredAt ${first.deliveredAt}`);
    const again = await ack(tabA, 'task:received', { taskId: id, seq });
    assert.deepEqual(again, first, 'a second confirmation keeps the first time');
    const rec = await s.owner.record(id);
    assert.equal(rec.deliveredAt, first.deliveredAt);
    assert.ok(Date.parse(rec.deliveredAt) >= Date.parse(rec.finishedAt), 'delivered after the finish');
    assert.equal(rec.seenAt, undefined, 'delivered is not seen');
    assert.equal(await count(), before + 1, 'one delivery observed, by one server');
    assert.equal(value(await scrape(`${s.B.url}/metrics`), 'taskwire_tasks_delivery_seconds_count') >= 1, true,
      'server B, which got the first confirmation, observed it');
  });

  it('bad input: clear errors, nothing changed', async () => {
    const mine = await finished(s.owner);
    const theirs = await finished(s.stranger);
    const tab = await connect(s.B.url, { token: s.owner.token });
    const many = Array.from({ length: 101 }, () => UNKNOWN);
    const http = [
      ['not JSON', '{"taskIds":', 400, 'bad_request'],
      ['not an object', JSON.stringify([mine.taskId]), 400, 'bad_request'],
      ['no list', '{}', 400, 'bad_request'],
      ['not a list', JSON.stringify({ taskIds: mine.taskId }), 400, 'bad_request'],
      ['not strings', JSON.stringify({ taskIds: [1, 2] }), 400, 'bad_request'],
      ['empty', JSON.stringify({ taskIds: [] }), 400, 'bad_request'],
      ['too many', JSON.stringify({ taskIds: many }), 400, 'bad_request'],
      ['bad shape', JSON.stringify({ taskIds: [mine.taskId, '../etc'] }), 400, 'bad_request'],
      ['foreign', JSON.stringify({ taskIds: [mine.taskId, theirs.taskId] }), 404, 'not_found'],
      ['unknown', JSON.stringify({ taskIds: [mine.taskId, UNKNOWN] }), 404, 'not_found'],
    ];
    for (const [name, rawBody, status, code] of http) {
      const res = await s.owner.request('POST', '/api/v1/inbox/ack', { rawBody });
      assert.equal(res.status, status, `${name}: ${res.status} ${res.text}`);
      assert.equal(res.json?.error?.code, code, `${name}: ${res.text}`);
      assert.ok(res.json.error.message.length > 10, `${name}: message ${res.text}`);
      // The same on the socket (JSON that is not an object, or not parsed, is not sent).
      let payload;
      try {
        payload = JSON.parse(rawBody);
      } catch {
        continue;
      }
      const reply = await ack(tab, 'inbox:ack', payload);
      assert.equal(reply.error?.code, code, `inbox:ack ${name}: ${JSON.stringify(reply)}`);
    }
    const received = [
      ['no seq', { taskId: mine.taskId }, 'bad_request'],
      ['seq a string', { taskId: mine.taskId, seq: String(mine.seq) }, 'bad_request'],
      ['seq negative', { taskId: mine.taskId, seq: -1 }, 'bad_request'],
      ['seq a fraction', { taskId: mine.taskId, seq: 1.5 }, 'bad_request'],
      ['seq huge', { taskId: mine.taskId, seq: 1e300 }, 'bad_request'],
      ['seq not the final one', { taskId: mine.taskId, seq: mine.seq - 1 }, 'bad_request'],
      ['seq past the final one', { taskId: mine.taskId, seq: mine.seq + 1 }, 'bad_request'],
      ['no task id', { seq: mine.seq }, 'bad_request'],
      ['foreign task', { taskId: theirs.taskId, seq: theirs.seq }, 'not_found'],
      ['unknown task', { taskId: UNKNOWN, seq: 1 }, 'not_found'],
    ];
    for (const [name, payload, code] of received) {
      const reply = await ack(tab, 'task:received', payload);
      assert.equal(reply.error?.code, code, `task:received ${name}: ${JSON.stringify(reply)}`);
    }
    // A viewer of the task is not its owner.
    const v = await s.owner.request('POST', `/api/v1/tasks/${mine.taskId}/viewers`, { body: {} });
    assert.equal(v.status, 201, v.text);
    const viewer = await connect(s.A.url, { token: v.json.token });
    assert.equal((await ack(viewer, 'inbox:ack', { taskIds: [mine.taskId] })).error?.code, 'forbidden');
    assert.equal((await ack(viewer, 'task:received', { taskId: mine.taskId, seq: mine.seq })).error?.code, 'forbidden');
    const viewerApi = new Api(s.A.url, v.json.token);
    assert.equal((await viewerApi.request('GET', '/api/v1/inbox')).status, 403);

    const rec = await s.owner.record(mine.taskId);
    assert.equal(rec.seenAt, undefined, 'seenAt after refused acks');
    assert.equal(rec.deliveredAt, undefined, 'deliveredAt after refused confirmations');
    assert.equal((await s.stranger.record(theirs.taskId)).seenAt, undefined, "the stranger's task");
    assert.ok((await inbox(s.owner)).some((i) => i.taskId === mine.taskId), 'still in the inbox');
  });

  it('/metrics of both servers has the delivery histogram and the undelivered counter', async () => {
    for (const srv of [s.A, s.B]) {
      const m = await scrape(`${srv.url}/metrics`);
      assert.notEqual(value(m, 'taskwire_tasks_delivery_seconds_count'), undefined, `${srv.name}: delivery histogram`);
      assert.notEqual(value(m, 'taskwire_tasks_delivery_seconds_bucket', { le: '+Inf' }), undefined, `${srv.name}: buckets`);
      assert.equal(value(m, 'taskwire_tasks_undelivered_total'), 0, `${srv.name}: undelivered (none older than TASK_TTL)`);
    }
  });
});
