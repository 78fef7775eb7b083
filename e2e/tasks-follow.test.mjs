// Following, refusing and cancelling tasks (issue 3), through real processes and the
// real socket.io-client: two taskwire-servers, a taskwire-worker, one redis-server
// per test.
//
// - reload: a second connection of the same identity, on the other server, sends
//   task:subscribe in the middle of a task: its ack is the snapshot, then every
//   event with a greater seq arrives, none missing; subscribing twice delivers each
//   event once, task:unsubscribe stops them;
// - another identity gets, for subscribe, task:cancel, GET, DELETE and result,
//   exactly what it gets for a task that does not exist, and none of the events;
// - cancel: a running task (HTTP DELETE, and socket task:cancel) stops within about
//   a second with task:cancelled and has no result (409); queued ones (both ways)
//   never start; cancelling twice is fine; cancelling a finished task is 409.

import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';

import { closeAllAndWait, connect } from './lib/client.mjs';
import { startRedis } from './lib/redis.mjs';
import {
  Api, FINAL_EVENTS, ack, checkCsv, checkProgress, logEntries, startServer, startWorker, stopSystem, taskEvents,
  waitFinal, waitLog,
} from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAllAndWait());

/** UNKNOWN is a well-formed task id that names no task. */
const UNKNOWN = 'AAAAAAAAAAAAAAAAAAAAAA';
const NOT_FOUND = { error: { code: 'not_found', message: 'no such task' } };

/** system starts Redis, servers A and B and one worker (1 ms a row, 1 slot). */
async function system(t) {
  t.after(() => stopSystem()); // workers and servers before Redis
  const redis = await startRedis();
  const [A, B, worker] = await Promise.all([
    startServer({ redis, name: 'server-A' }),
    startServer({ redis, name: 'server-B' }),
    startWorker({ redis, env: { EXPORT_ROW_DELAY: '1ms', WORKER_CONCURRENCY: '1' } }),
  ]);
  const owner = await Api.session(A.url);
  const socket = await connect(A.url, { token: owner.token, transports: ['websocket'] });
  return { redis, A, B, worker, owner, socket, rec: socket.recorder };
}

function progressAt(rec, id, done, timeoutMs = 20_000) {
  return rec.waitFor('task:progress', (p) => p.taskId === id && p.done >= done, timeoutMs,
    { label: `progress of ${id} to ${done} rows` });
}

describe('follow a task from anywhere, and nobody else', () => {
  it('reload: a new connection of the same identity subscribes mid-task: snapshot, then every later event', async (t) => {
    const s = await system(t);
    const id = await s.owner.createExport(3000, { socketId: s.socket.id });
    await progressAt(s.rec, id, 500);
    // The "reloaded page": same identity, new connection, the other server, polling.
    const again = await connect(s.B.url, { token: s.owner.token, transports: ['polling'] });
    const snap = await ack(again, 'task:subscribe', { taskId: id });
    assert.equal(snap.taskId, id);
    assert.equal(snap.state, 'running');
    assert.equal(snap.kind, 'export');
    assert.equal(snap.total, 3000);
    assert.ok(snap.done >= 500 && snap.done < 3000, `snapshot done ${snap.done}`);
    assert.ok(snap.seq >= 2, `snapshot seq ${snap.seq}`);
    assert.equal(snap.attempts, 1);
    assert.equal('owner' in snap, false, 'the snapshot does not reveal the owner');

    const done = await waitFinal(again.recorder, id, 20_000, 'reloaded client');
    assert.equal(done.event, 'task:completed');
    await waitFinal(s.rec, id, 20_000, 'first client');
    const final = await s.owner.record(id);
    await ack(again, 'task:subscribe', { taskId: id }); // barrier
    // Events up to the snapshot's seq may arrive too (published between the join and
    // the read); the client drops them. Everything after it must be there, in order.
    const evs = checkProgress(taskEvents(again.recorder, id), id);
    const later = evs.filter((e) => e.payload.seq > snap.seq);
    assert.deepEqual(later.map((e) => e.payload.seq),
      Array.from({ length: final.seq - snap.seq }, (_, i) => snap.seq + 1 + i),
      'every event after the snapshot reaches the new connection');
    // The same events as the first connection got.
    const first = new Map(taskEvents(s.rec, id).map((e) => [e.payload.seq, e]));
    for (const e of later) assert.deepEqual(e.payload, first.get(e.payload.seq).payload);
    process.stdout.write(`# reload: snapshot seq ${snap.seq} (${snap.done}/3000 rows), then ${later.length} live events\n`);
  });

  it('subscribing twice delivers each event once; task:unsubscribe stops the events', async (t) => {
    const s = await system(t);
    const id = await s.owner.createExport(2000, { socketId: s.socket.id });
    const tab = await connect(s.A.url, { token: s.owner.token, transports: ['websocket'] });
    for (let i = 0; i < 2; i++) assert.equal((await ack(tab, 'task:subscribe', { taskId: id })).taskId, id);
    await progressAt(tab.recorder, id, 500);
    assert.deepEqual(await ack(tab, 'task:unsubscribe', { taskId: id }), { taskId: id });
    const left = tab.recorder.mark();
    const done = await waitFinal(s.rec, id, 20_000, 'owner');
    assert.equal(done.event, 'task:completed');
    await ack(tab, 'task:subscribe', { taskId: UNKNOWN }); // barrier: same server as the owner's socket
    checkProgress(taskEvents(tab.recorder, id), id); // seq strictly increasing: no event twice
    // The server acks once the socket left the room. A broadcast whose delivery
    // had already begun may still reach it just after the ack; the ones after
    // that pick their recipients without it.
    const all = tab.recorder.all().filter((e) => e.event.startsWith('task:') && e.args[0]?.taskId === id);
    const lastBefore = all.filter((e) => e.seq < left).at(-1).args[0].seq;
    const after = tab.recorder.all(undefined, { since: left }).filter((e) => e.event.startsWith('task:'));
    assert.ok(after.length === 0 || (after.length === 1 && after[0].args[0].seq === lastBefore + 1),
      `events after task:unsubscribe: ${JSON.stringify(after.map((e) => [e.event, e.args[0].seq]))}`);
  });

  it('another identity gets the answer of an unknown task for subscribe, cancel, GET, DELETE and result', async (t) => {
    const s = await system(t);
    const id = await s.owner.createExport(1500, { socketId: s.socket.id });
    await progressAt(s.rec, id, 256);
    const other = await Api.session(s.A.url);
    const theirs = await connect(s.A.url, { token: other.token, transports: ['websocket'] });
    for (const event of ['task:subscribe', 'task:cancel']) {
      const got = await ack(theirs, event, { taskId: id });
      assert.deepEqual(got, NOT_FOUND, `${event} of another's task`);
      assert.deepEqual(await ack(theirs, event, { taskId: UNKNOWN }), got, `${event}: same as an unknown task`);
      assert.deepEqual(await ack(theirs, event, { taskId: '../etc' }), got, `${event}: same as a malformed id`);
    }
    for (const [method, path] of [['GET', ''], ['DELETE', ''], ['GET', '/result']]) {
      const got = await other.request(method, `/api/v1/tasks/${id}${path}`);
      const none = await other.request(method, `/api/v1/tasks/${UNKNOWN}${path}`);
      assert.equal(got.status, 404, `${method} ${path}: ${got.text}`);
      assert.deepEqual(got.json, NOT_FOUND);
      assert.deepEqual([none.status, none.json], [got.status, got.json], `${method} ${path}: same as an unknown task`);
    }
    // Bad socket requests get an answer, not silence, and break nothing.
    for (const bad of [undefined, 'x', {}, { taskId: 5 }, { taskId: '' }]) {
      const got = await ack(theirs, 'task:subscribe', bad);
      assert.equal(got.error?.code, 'bad_request', `subscribe ${JSON.stringify(bad)}: ${JSON.stringify(got)}`);
    }
    // Nothing of it touched the task: it completes for its owner.
    const done = await waitFinal(s.rec, id, 20_000, 'owner');
    assert.equal(done.event, 'task:completed');
    await ack(theirs, 'task:subscribe', { taskId: UNKNOWN }); // barrier, same server as the owner
    assert.deepEqual(taskEvents(theirs.recorder, id), [], 'the other identity received events of the task');
    assert.ok(theirs.connected);
    // After completion still nothing for them.
    assert.deepEqual(await ack(theirs, 'task:subscribe', { taskId: id }), NOT_FOUND);
    assert.equal((await other.result(id)).status, 404);
    assert.deepEqual(await other.list(), []);
  });
});

describe('cancel', () => {
  for (const via of ['HTTP DELETE', 'socket task:cancel']) {
    it(`a running task, with ${via}: task:cancelled within about a second, no result`, async (t) => {
      const s = await system(t);
      const id = await s.owner.createExport(20_000, { socketId: s.socket.id }); // 20 s
      await progressAt(s.rec, id, 500);
      const asked = Date.now();
      let answer;
      if (via === 'HTTP DELETE') {
        const res = await s.owner.cancel(id);
        assert.equal(res.status, 202, `DELETE: ${res.text}`);
        answer = res.json;
      } else {
        answer = await ack(s.socket, 'task:cancel', { taskId: id });
      }
      assert.equal(answer.taskId, id);
      assert.equal(answer.state, 'running', 'the worker, not the server, ends a running task');
      assert.equal(answer.cancelRequested, true);
      const e = await waitFinal(s.rec, id, 15_000, 'owner');
      const latency = e.at - asked; // reported below; about 100 ms on an idle machine
      assert.equal(e.event, 'task:cancelled');
      const rec = await s.owner.record(id);
      assert.equal(rec.state, 'cancelled');
      assert.equal(e.args.length, 1);
      assert.deepEqual({ taskId: e.args[0].taskId, seq: e.args[0].seq }, { taskId: id, seq: rec.seq });
      assert.ok(rec.done < 20_000 && rec.finishedAt, JSON.stringify(rec));
      assert.equal(rec.result, undefined);
      const res = await s.owner.result(id);
      assert.equal(res.status, 409, res.text);
      assert.equal(res.json.error.code, 'no_result');
      // Cancel twice: fine, the same final record.
      const again = await s.owner.cancel(id);
      assert.equal(again.status, 200, again.text);
      assert.equal(again.json.state, 'cancelled');
      assert.equal((await ack(s.socket, 'task:cancel', { taskId: id })).state, 'cancelled');
      // The worker stopped it (and is free for the next task).
      await waitLog(s.worker.proc, 'task cancelled by its owner', { pred: (x) => x.task === id, timeoutMs: 15_000 });
      const next = await s.owner.createExport(10, { socketId: s.socket.id });
      assert.equal((await waitFinal(s.rec, next, 20_000)).event, 'task:completed');
      // The worker has one slot: the cancelled run ended, once, before the next began.
      assert.equal(logEntries(s.worker.proc, 'task cancelled by its owner').filter((x) => x.task === id).length, 1);
      await ack(s.socket, 'task:subscribe', { taskId: id }); // barrier
      const evs = checkProgress(taskEvents(s.rec, id), id);
      assert.deepEqual(evs.filter((x) => FINAL_EVENTS.includes(x.event)).map((x) => x.event), ['task:cancelled']);
      process.stdout.write(`# cancel of a running task (${via}): task:cancelled ${latency} ms after the request, ` +
        `at ${rec.done}/20000 rows\n`);
    });
  }

  it('queued tasks (HTTP DELETE and socket) never start; twice is fine; a finished task is 409', async (t) => {
    const s = await system(t);
    // The worker's only slot is busy with a long task: the next ones wait.
    const long = await s.owner.createExport(20_000, { socketId: s.socket.id });
    await progressAt(s.rec, long, 256);
    const q1 = await s.owner.createExport(100, { socketId: s.socket.id });
    const q2 = await s.owner.createExport(100, { socketId: s.socket.id });
    assert.equal((await s.owner.record(q1)).state, 'queued');

    const r1 = await s.owner.cancel(q1);
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r1.json.state, 'cancelled');
    const r2 = await ack(s.socket, 'task:cancel', { taskId: q2 });
    assert.equal(r2.state, 'cancelled');
    for (const [id, seq] of [[q1, r1.json.seq], [q2, r2.seq]]) {
      const e = await waitFinal(s.rec, id, 5_000, 'owner');
      assert.equal(e.event, 'task:cancelled');
      assert.equal(e.args.length, 1);
      assert.deepEqual({ taskId: e.args[0].taskId, seq: e.args[0].seq }, { taskId: id, seq });
    }
    // Twice, both ways: the same cancelled record, no second event.
    assert.equal((await s.owner.cancel(q1)).json.state, 'cancelled');
    assert.equal((await ack(s.socket, 'task:cancel', { taskId: q1 })).state, 'cancelled');
    assert.equal((await s.owner.cancel(q2)).status, 200);
    const res = await s.owner.result(q1);
    assert.equal(res.status, 409);
    assert.equal(res.json.error.code, 'no_result');

    // Free the slot; a task queued after them runs, so the worker has passed their
    // queue entries.
    assert.equal((await s.owner.cancel(long)).status, 202);
    assert.equal((await waitFinal(s.rec, long, 5_000)).event, 'task:cancelled');
    const next = await s.owner.createExport(50, { socketId: s.socket.id });
    const done = await waitFinal(s.rec, next, 20_000);
    assert.equal(done.event, 'task:completed');
    for (const id of [q1, q2]) {
      const rec = await s.owner.record(id);
      assert.equal(rec.state, 'cancelled');
      assert.equal(rec.attempts, 0, `${id} never started`);
      assert.equal(rec.startedAt, undefined);
      assert.deepEqual(taskEvents(s.rec, id).map((e) => e.event), ['task:cancelled']);
    }
    assert.deepEqual(s.worker.started(), [long, next]);

    // A finished task cannot be cancelled (HTTP 409, socket error), and keeps its result.
    const fin = await s.owner.cancel(next);
    assert.equal(fin.status, 409, fin.text);
    assert.equal(fin.json.error.code, 'task_finished');
    const viaSocket = await ack(s.socket, 'task:cancel', { taskId: next });
    assert.equal(viaSocket.error?.code, 'task_finished');
    assert.equal((await s.owner.record(next)).state, 'completed');
    checkCsv((await s.owner.result(next)).text, 50);
    // The result of a task that has not finished is 409 too.
    const running = await s.owner.createExport(5_000, { socketId: s.socket.id });
    await progressAt(s.rec, running, 256);
    const early = await s.owner.result(running);
    assert.equal(early.status, 409);
    assert.equal(early.json.error.code, 'not_finished');
    assert.equal((await s.owner.cancel(running)).status, 202);
    assert.equal((await waitFinal(s.rec, running, 5_000)).event, 'task:cancelled');
  });
});
