// The operator's view (issue 6): /metrics of taskwire-server and taskwire-worker,
// scraped before and after real work done through the real binaries, the real
// socket.io-client and a real redis-server. Every counter must have moved by what
// the test did: one export is one task enqueued, received, started and completed,
// one POST answered 202, and exactly as many events handed to the client's socket
// as the client received; a cancelled export is one cancel on both sides. The
// events carry the worker's emittedAt, and the server observes their delay.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { io } from 'socket.io-client';

import { closeAll, connect } from './lib/client.mjs';
import { expectDeltas, scrape, sum, value, waitMetrics } from './lib/metrics.mjs';
import { waitForHttp, withTimeout } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';
import {
  Api, ack, checkCsv, checkProgress, startServer, startWorker, stopSystem, taskEvents, waitFinal, waitLog,
} from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAll());

describe('metrics after end-to-end work', () => {
  let server;
  let serverMetrics;
  let workerMetrics;

  before(async () => {
    const redis = await startRedis();
    server = await startServer({ redis });
    // 300 µs a row: a 3,000-row export lasts about a second, with ten or so
    // progress events; a 100,000-row one lasts long enough to be cancelled. The
    // metrics listener takes a port of its own choosing, read from the log.
    const worker = await startWorker({ redis, env: { METRICS_ADDR: '127.0.0.1:0', EXPORT_ROW_DELAY: '300us' } });
    const { metricsAddr } = await waitLog(worker.proc, 'worker started');
    await waitForHttp(`http://${metricsAddr}/readyz`, 10_000);
    serverMetrics = `${server.url}/metrics`;
    workerMetrics = `http://${metricsAddr}/metrics`;
  });

  it('serves the Go runtime and process collectors on both binaries', async () => {
    for (const url of [serverMetrics, workerMetrics]) {
      const m = await scrape(url);
      for (const name of ['go_goroutines', 'go_memstats_heap_alloc_bytes', 'process_resident_memory_bytes',
        'process_open_fds']) {
        assert.ok(value(m, name) > 0, `${url}: ${name} = ${value(m, name)}`);
      }
      assert.ok(sum(m, 'go_build_info') >= 1, `${url}: no go_build_info`);
    }
    const w = await scrape(workerMetrics);
    for (const name of ['taskwire_queue_length', 'taskwire_queue_lag', 'taskwire_queue_pending',
      'taskwire_queue_delayed', 'taskwire_queue_consumers', 'taskwire_worker_broker_in_flight']) {
      assert.notEqual(value(w, name), undefined, `worker /metrics lacks ${name}`);
    }
  });

  it('moves every counter by what one export did', async () => {
    const api = await Api.session(server.url);
    const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });
    const s0 = await scrape(serverMetrics);
    const w0 = await scrape(workerMetrics);
    const posted = Date.now();

    const rows = 3000;
    const id = await api.createExport(rows, { socketId: socket.id });
    const done = await waitFinal(socket.recorder, id, 30_000);
    assert.equal(done.event, 'task:completed', JSON.stringify(done.args));
    // Barrier: the ack comes after every event the server wrote to this socket.
    await ack(socket, 'task:subscribe', { taskId: id });
    const evs = checkProgress(taskEvents(socket.recorder, id), id);
    const progress = evs.filter((e) => e.event === 'task:progress').length;
    assert.ok(progress >= 3, `only ${progress} progress events`);
    const res = await api.result(id);
    assert.equal(res.status, 200, res.text.slice(0, 200));
    checkCsv(res.text, rows);

    // Every task event carries the worker's clock, which is this machine's.
    for (const e of evs) {
      const at = e.payload.emittedAt;
      assert.ok(Number.isInteger(at) && at >= posted - 1000 && at <= e.at + 1000,
        `${e.event} seq ${e.payload.seq}: emittedAt ${at}, posted at ${posted}, received at ${e.at}`);
    }

    // The server counts before it writes to a socket, so its event counters are
    // final now; an HTTP request is counted once answered, which the client may
    // see a moment earlier: wait for those.
    const s1 = await waitMetrics(serverMetrics, expectDeltas(s0, [
      ['taskwire_tasks_enqueued_total', { kind: 'export' }, 1],
      ['taskwire_http_requests_total', { method: 'POST', route: '/api/v1/tasks', status: '202' }, 1],
      ['taskwire_http_requests_total', { method: 'GET', route: '/api/v1/tasks/:id/result', status: '200' }, 1],
      ['taskwire_http_request_duration_seconds_count', { method: 'POST', route: '/api/v1/tasks' }, 1],
      // The client's socket is the only one in the task's room.
      ['taskwire_socketio_events_sent_total', { event: 'task:progress' }, progress],
      ['taskwire_socketio_events_sent_total', { event: 'task:completed' }, 1],
      ['taskwire_socketio_events_sent_total', { event: 'task:failed' }, 0],
      ['taskwire_event_delay_seconds_count', { event: 'task:progress' }, progress],
      ['taskwire_event_delay_seconds_count', { event: 'task:completed' }, 1],
      ['taskwire_adapter_decode_errors_total', undefined, 0],
      ['taskwire_adapter_publish_errors_total', undefined, 0],
    ]), { what: 'server /metrics' });
    const relayed = value(s1, 'taskwire_adapter_broadcasts_relayed_total') - value(s0, 'taskwire_adapter_broadcasts_relayed_total');
    assert.ok(relayed >= progress + 1, `broadcasts relayed from Redis moved by ${relayed}, the client got ${progress + 1} events`);
    const delaySum = value(s1, 'taskwire_event_delay_seconds_sum', { event: 'task:progress' }) -
      value(s0, 'taskwire_event_delay_seconds_sum', { event: 'task:progress' });
    assert.ok(delaySum >= 0 && delaySum / progress < 1,
      `mean delay of progress events ${delaySum / progress} s on one machine`);

    // The worker reports an entry after its final event went out: wait for it.
    const w1 = await waitMetrics(workerMetrics, expectDeltas(w0, [
      ['taskwire_worker_tasks_received_total', { kind: 'export' }, 1],
      ['taskwire_worker_tasks_started_total', { kind: 'export' }, 1],
      ['taskwire_worker_tasks_completed_total', { kind: 'export' }, 1],
      ['taskwire_worker_tasks_cancelled_total', { kind: 'export' }, 0],
      ['taskwire_worker_tasks_running', { kind: 'export' }, 0],
      ['taskwire_worker_task_duration_seconds_count', { kind: 'export', outcome: 'completed' }, 1],
      ['taskwire_worker_broker_delivered_total', undefined, 1],
    ]), { what: 'worker /metrics' });
    assert.equal(sum(w1, 'taskwire_worker_tasks_failed_total') - sum(w0, 'taskwire_worker_tasks_failed_total'), 0);
    const ran = value(w1, 'taskwire_worker_task_duration_seconds_sum', { kind: 'export', outcome: 'completed' }) -
      (value(w0, 'taskwire_worker_task_duration_seconds_sum', { kind: 'export', outcome: 'completed' }) ?? 0);
    const seen = (done.at - posted) / 1000;
    assert.ok(ran > 0.3 && ran <= seen + 0.5, `the worker says the export ran ${ran} s; the client saw ${seen} s`);
  });

  it('counts a cancelled export on both sides', async () => {
    const api = await Api.session(server.url);
    const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });
    const s0 = await scrape(serverMetrics);
    const w0 = await scrape(workerMetrics);

    const id = await api.createExport(100_000, { socketId: socket.id });
    await socket.recorder.waitFor('task:progress', (p) => p.taskId === id && p.done > 0, 15_000);
    const res = await api.cancel(id);
    assert.equal(res.status, 202, res.text);
    const end = await waitFinal(socket.recorder, id, 15_000);
    assert.equal(end.event, 'task:cancelled', JSON.stringify(end.args));
    await ack(socket, 'task:subscribe', { taskId: id });
    const progress = taskEvents(socket.recorder, id).filter((e) => e.event === 'task:progress').length;

    await waitMetrics(serverMetrics, expectDeltas(s0, [
      ['taskwire_tasks_enqueued_total', { kind: 'export' }, 1],
      ['taskwire_http_requests_total', { method: 'DELETE', route: '/api/v1/tasks/:id', status: '202' }, 1],
      ['taskwire_socketio_events_sent_total', { event: 'task:progress' }, progress],
      ['taskwire_socketio_events_sent_total', { event: 'task:cancelled' }, 1],
      ['taskwire_event_delay_seconds_count', { event: 'task:cancelled' }, 1],
    ]), { what: 'server /metrics' });
    await waitMetrics(workerMetrics, expectDeltas(w0, [
      ['taskwire_worker_tasks_started_total', { kind: 'export' }, 1],
      ['taskwire_worker_tasks_cancelled_total', { kind: 'export' }, 1],
      ['taskwire_worker_tasks_completed_total', { kind: 'export' }, 0],
      ['taskwire_worker_task_duration_seconds_count', { kind: 'export', outcome: 'cancelled' }, 1],
      ['taskwire_worker_tasks_running', { kind: 'export' }, 0],
    ]), { what: 'worker /metrics' });
  });

  it('counts sockets by transport, sessions, upgrades and refused connections', async () => {
    const api = await Api.session(server.url);
    const s0 = await scrape(serverMetrics);
    const polling = await connect(server.url, { token: api.token, transports: ['polling'] });
    const upgraded = await connect(server.url, { token: api.token });
    await new Promise((resolve, reject) => {
      if (upgraded.io.engine.transport.name === 'websocket') return resolve();
      const timer = setTimeout(() => reject(new Error('no upgrade to websocket within 5 s')), 5_000);
      upgraded.io.engine.once('upgrade', () => { clearTimeout(timer); resolve(); });
    });
    // A forged token, over websocket only: one more session, refused.
    const forged = io(server.url, { auth: { token: 'v1.forged' }, transports: ['websocket'], forceNew: true, reconnection: false });
    try {
      const err = await withTimeout(new Promise((resolve) => forged.once('connect_error', resolve)), 5_000,
        'no connect_error for a forged token within 5 s');
      assert.equal(err.message, 'unauthorized');
    } finally {
      forged.close();
    }

    await waitMetrics(serverMetrics, (m) => {
      const problems = expectDeltas(s0, [
        ['taskwire_socketio_sessions_opened_total', { transport: 'polling' }, 2],
        ['taskwire_socketio_sessions_opened_total', { transport: 'websocket' }, 1],
        ['taskwire_socketio_upgrades_total', { transport: 'websocket' }, 1],
        ['taskwire_socketio_connects_total', undefined, 2],
        ['taskwire_socketio_connect_errors_total', { reason: 'unauthorized' }, 1],
      ])(m);
      // Other tests' sessions may still be closing: at least ours.
      if (value(m, 'taskwire_socketio_connections', { transport: 'polling' }) < 1) problems.push('no polling connection');
      if (value(m, 'taskwire_socketio_connections', { transport: 'websocket' }) < 1) problems.push('no websocket connection');
      if (value(m, 'taskwire_socketio_sockets') < 2) problems.push('fewer than 2 sockets');
      return problems;
    }, { what: 'server /metrics' });
  });
});
