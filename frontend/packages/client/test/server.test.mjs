// @taskwire/client (its build, as an app imports it) against the real
// taskwire-server, taskwire-worker and redis-server, each its own process.
//
// The identity is an anonymous session token (GET /api/v1/session), passed as a
// token function, as an app passes its JWT. Proves: start -> live progress in seq
// order -> completed -> download of the CSV; a task followed across a server
// restart; and a viewer token that follows one task read-only (it cannot cancel
// it, nor see another task of the owner).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ApiError, createClient } from '@taskwire/client';

import { killAll } from '../../../../e2e/lib/proc.mjs';
import { startStack } from '../../../e2e/stack.mjs';

const CSV_HEADER = 'id,customer,country,amount,currency,created_at';

/** sessionToken returns a function that fetches a new anonymous identity of server base. */
function sessionToken(base) {
  return async () => {
    const res = await fetch(base + '/api/v1/session');
    assert.equal(res.status, 200, `GET /api/v1/session: ${res.status}`);
    return (await res.json()).token;
  };
}

/** until resolves with the first state of h that satisfies pred, within timeoutMs. */
function until(h, pred, what, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    let off;
    let last;
    const timer = setTimeout(() => {
      off?.();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last state: ${JSON.stringify(last)}`));
    }, timeoutMs);
    off = h.subscribe(
      (t) => {
        last = { state: t.state, seq: t.seq, percent: t.percent };
        if (!pred(t)) return;
        clearTimeout(timer);
        queueMicrotask(() => off?.());
        resolve(t);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

describe('@taskwire/client against a real server', { timeout: 180_000 }, () => {
  let stack;
  const clients = [];
  const client = (opts) => {
    const c = createClient(opts);
    clients.push(c);
    return c;
  };

  before(async () => {
    stack = await startStack({ rowDelay: '2ms' });
  });

  after(async () => {
    for (const c of clients) c.close();
    await killAll();
  });

  it('starts an export, follows it in seq order to completed, and downloads the CSV', async () => {
    const c = client({ url: stack.base, token: sessionToken(stack.base) });
    const kinds = await c.kinds();
    assert.ok(kinds.some((k) => k.name === 'export'), `kinds: ${kinds.map((k) => k.name)}`);

    const rows = 1500; // about 3 s
    const task = await c.start('export', { rows });
    const seen = [];
    const off = task.subscribe((t) => seen.push({ seq: t.seq, state: t.state, percent: t.percent }));
    const result = await task.result({ timeoutMs: 60_000 });
    off();

    const seqs = seen.map((s) => s.seq);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] >= seqs[i - 1], `seq went back: ${seqs}`);
    assert.ok(seen.some((s) => s.state === 'running' && s.percent > 0 && s.percent < 100), `no progress seen: ${JSON.stringify(seen)}`);
    assert.equal(seen.at(-1).state, 'completed');
    assert.equal(result.rows, rows);

    const res = await result.download();
    assert.equal(res.status, 200);
    const lines = (await res.text()).trimEnd().split('\n');
    assert.equal(lines[0], CSV_HEADER);
    assert.equal(lines.length, rows + 1);

    // The identity's list has it.
    const list = await c.tasks();
    assert.ok(list.some((t) => t.id === task.id && t.state === 'completed'));
  });

  it('keeps following a task across a server restart: a snapshot on resubscribe, seq never back', async () => {
    const c = client({ url: stack.base, token: sessionToken(stack.base), transports: ['websocket'] });
    const task = await c.start('export', { rows: 3000 }); // about 6 s
    const seen = [];
    const off = task.subscribe((t) => seen.push({ seq: t.seq, state: t.state, percent: t.percent }));
    await until(task, (t) => t.state === 'running' && t.percent > 0, 'progress before the restart');
    const statuses = [];
    const offConn = c.onConnection((s) => statuses.push(s.socketConnected));
    await stack.killServer();
    await stack.startServer();
    const result = await task.result({ timeoutMs: 60_000 });
    off();
    offConn();
    assert.ok(statuses.includes(false), 'the client never saw the server go');
    assert.equal(statuses.at(-1), true, 'the client did not reconnect');
    const seqs = seen.map((s) => s.seq);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] >= seqs[i - 1], `seq went back: ${seqs}`);
    assert.equal(seen.at(-1).state, 'completed');
    assert.equal(result.rows, 3000);
  });

  it('follows one task with a viewer token, read-only', async () => {
    const owner = client({ url: stack.base, token: sessionToken(stack.base) });
    const task = await owner.start('export', { rows: 2500 }); // about 5 s
    const other = await owner.start('export', { rows: 10 });

    const vt = await task.viewer({ ttlSeconds: 600, allowResult: true });
    assert.equal(vt.taskId, task.id);
    assert.ok(Date.parse(vt.expiresAt) > Date.now());

    const viewer = client({ url: stack.base, token: vt.token, transports: ['polling'] });
    const h = viewer.task(task.id);
    await until(h, (s) => s.state === 'running' && s.percent > 0, 'the viewer to see progress');

    await assert.rejects(h.cancel(), (err) => err instanceof ApiError && err.code === 'forbidden', 'a viewer cannot cancel');
    await assert.rejects(until(viewer.task(other.id), () => true, 'the other task', 15_000),
      (err) => err instanceof ApiError && err.code === 'not_found', 'a viewer sees no other task');
    const list = await viewer.tasks();
    assert.deepEqual(list.map((x) => x.id), [task.id]);
    await assert.rejects(viewer.start('export', { rows: 10 }), (err) => err instanceof ApiError && err.code === 'forbidden');

    const result = await h.result({ timeoutMs: 60_000 });
    const res = await result.download();
    assert.equal((await res.text()).split('\n')[0], CSV_HEADER);
    // The owner's task was never cancelled by the viewer.
    await until(owner.task(task.id), (s) => s.state === 'completed', 'the owner to see it completed');
  });
});
