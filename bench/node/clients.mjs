// clients: one process of benchmark clients, the real socket.io-client 4.8. The
// orchestrator (bench/main.mjs) starts a few of these so that no single Node
// process has to drive thousands of sockets, and talks to each through a line
// protocol: one JSON command a line on stdin, one JSON answer a line on stdout.
//
//   {"cmd":"connect","url":..,"auths":[{..},..],"transports":["websocket"],
//    "concurrency":50,"rate":200,"timeoutMs":10000}   rate: connections per second (0: unpaced)
//     -> {"type":"connected","ok":n,"stalls":n,"errors":n,"errorSample":[..],"ms":..}
//   {"cmd":"arm","perSocket":200}   reset counters; each socket expects seqs 0..perSocket-1
//     -> {"type":"armed"}
//   {"cmd":"status"}  -> {"type":"status","received":n,"dups":n,"disconnects":n}
//   {"cmd":"report"}  -> {"type":"report","received":n,"dups":n,"disconnects":n,
//                         "unexpected":n,"lat":[ms,..]}
//   {"cmd":"tasks","url":..,"perSocket":n,"rows":n,"timeoutMs":..}
//     -> {"type":"tasks","started":n,"completed":n,"failed":n,"firstProgress":[ms..],"completion":[ms..],"errorSample":[..]}
//   {"cmd":"close"}   -> {"type":"closed"} and exits
//
// A socket "stalls" when its engine.io connection opened but the server never
// answered its Socket.IO CONNECT (no connect, no connect_error within timeoutMs
// plus 2 s); a connection that does not even open is a connect_error. Every event "bench" carries
// {seq, t}: t is the sender's wall-clock time in ms, so the latency of a delivery
// is the receiver's wall-clock time minus t (both processes read the same clock).

import http from 'node:http';
import readline from 'node:readline';

import { io } from 'socket.io-client';

const nowMs = () => performance.timeOrigin + performance.now();

// Browsers keep HTTP connections alive between long-polling requests; the Node
// client opens a connection per request unless it is given an agent. The
// polling scenario measures the servers' polling, not TCP connection churn.
const keepAlive = new http.Agent({ keepAlive: true });
const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

/** @type {{socket: import('socket.io-client').Socket, seen: Uint8Array | null, token?: string}[]} */
let sockets = [];
let perSocket = 0;
let received = 0;
let dups = 0;
let unexpected = 0;
let disconnects = 0;
let lat = [];

function onBench(entry, payload) {
  const t = nowMs();
  const seq = payload?.seq;
  if (!entry.seen || !Number.isInteger(seq) || seq < 0 || seq >= perSocket) {
    unexpected++;
    return;
  }
  if (entry.seen[seq]) {
    dups++;
    return;
  }
  entry.seen[seq] = 1;
  received++;
  lat.push(t - payload.t);
}

function connectOne(url, auth, transports, timeoutMs) {
  return new Promise((resolve) => {
    // The Manager's timeout covers the engine.io handshake (a connect_error); the
    // stall timer, later, catches a socket whose CONNECT was never answered.
    const socket = io(url, { forceNew: true, reconnection: false, transports, auth, timeout: timeoutMs, agent: keepAlive });
    const entry = { socket, seen: null, token: auth?.token };
    let settled = false;
    const timer = setTimeout(() => finish('stall'), timeoutMs + 2_000);
    function finish(how, err) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (how !== 'ok') socket.close();
      resolve({ how, entry, err });
    }
    socket.on('connect', () => finish('ok'));
    socket.on('connect_error', (err) => finish('error', err));
    socket.on('bench', (p) => onBench(entry, p));
    socket.on('disconnect', () => {
      if (settled) disconnects++;
    });
  });
}

async function connect(c) {
  const start = performance.now();
  let ok = 0;
  let stalls = 0;
  let errors = 0;
  const errorSample = [];
  let next = 0;
  // Arrivals are paced at c.rate connections per second (0: as fast as the
  // concurrency allows), as a load generator ramps up users.
  const worker = async () => {
    while (next < c.auths.length) {
      const i = next++;
      const auth = c.auths[i];
      if (c.rate > 0) {
        const wait = start + (i / c.rate) * 1000 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const r = await connectOne(c.url, auth, c.transports, c.timeoutMs);
      if (r.how === 'ok') {
        ok++;
        sockets.push(r.entry);
      } else if (r.how === 'stall') {
        stalls++;
        if (errorSample.length < 5) errorSample.push('stall: no connect reply');
      } else {
        errors++;
        if (errorSample.length < 5) errorSample.push(String(r.err?.message ?? r.err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, c.concurrency) }, worker));
  return { type: 'connected', ok, stalls, errors, errorSample, ms: performance.now() - start };
}

function arm(c) {
  perSocket = c.perSocket;
  received = 0;
  dups = 0;
  unexpected = 0;
  lat = [];
  for (const s of sockets) s.seen = new Uint8Array(perSocket);
  return { type: 'armed' };
}

function report() {
  const out = lat.map((x) => Math.round(x * 1000) / 1000);
  return { type: 'report', received, dups, unexpected, disconnects, sockets: sockets.length, lat: out };
}

// tasks: every socket starts perSocket exports, one after the other, through the
// HTTP API with its socket id, and measures from the POST to the first
// task:progress and to task:completed of each.
async function tasks(c) {
  const firstProgress = [];
  const completion = [];
  const errorSample = [];
  let started = 0;
  let completed = 0;
  let failed = 0;
  const one = (entry) => new Promise((resolve) => {
    const seenEvents = new Map(); // taskId -> {progress, done}
    let taskId = null;
    let t0 = 0;
    let progressAt = 0;
    const timer = setTimeout(() => finish('timeout'), c.timeoutMs);
    function finish(how, detail) {
      clearTimeout(timer);
      entry.socket.off('task:progress', onProgress);
      entry.socket.off('task:completed', onCompleted);
      entry.socket.off('task:failed', onFailed);
      resolve({ how, detail });
    }
    const mark = (id, what) => {
      let m = seenEvents.get(id);
      if (!m) seenEvents.set(id, (m = {}));
      if (!m[what]) m[what] = nowMs();
      if (id === taskId) check();
    };
    function check() {
      const m = seenEvents.get(taskId);
      if (!m) return;
      if (m.progress && !progressAt) progressAt = m.progress;
      if (m.completed) {
        firstProgress.push((progressAt || m.completed) - t0);
        completion.push(m.completed - t0);
        finish('ok');
      } else if (m.failed) {
        finish('failed', m.failedDetail);
      }
    }
    const onProgress = (p) => mark(p?.taskId, 'progress');
    const onCompleted = (p) => mark(p?.taskId, 'completed');
    const onFailed = (p) => {
      const id = p?.taskId;
      mark(id, 'failed');
      seenEvents.get(id).failedDetail = JSON.stringify(p).slice(0, 200);
      if (id === taskId) check();
    };
    entry.socket.on('task:progress', onProgress);
    entry.socket.on('task:completed', onCompleted);
    entry.socket.on('task:failed', onFailed);
    t0 = nowMs();
    fetch(`${c.url}/api/v1/tasks`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${entry.token}` },
      body: JSON.stringify({ kind: 'export', params: { rows: c.rows }, socketId: entry.socket.id }),
    }).then(async (res) => {
      const body = await res.json().catch(() => ({}));
      if (res.status !== 202 || !body.id) {
        finish('failed', `POST /api/v1/tasks: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
        return;
      }
      started++;
      taskId = body.id;
      check();
    }, (err) => finish('failed', `POST /api/v1/tasks: ${err.message}`));
  });
  await Promise.all(sockets.map(async (entry) => {
    for (let i = 0; i < c.perSocket; i++) {
      const r = await one(entry);
      if (r.how === 'ok') completed++;
      else {
        failed++;
        if (errorSample.length < 5) errorSample.push(`${r.how}: ${r.detail ?? ''}`);
      }
    }
  }));
  const round = (a) => a.map((x) => Math.round(x * 1000) / 1000);
  return { type: 'tasks', started, completed, failed, errorSample,
    firstProgress: round(firstProgress), completion: round(completion) };
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
say({ type: 'ready' });
for await (const line of rl) {
  if (!line.trim()) continue;
  const c = JSON.parse(line);
  switch (c.cmd) {
    case 'connect':
      say(await connect(c));
      break;
    case 'arm':
      say(arm(c));
      break;
    case 'status':
      say({ type: 'status', received, dups, unexpected, disconnects });
      break;
    case 'report':
      say(report());
      break;
    case 'tasks':
      say(await tasks(c));
      break;
    case 'close':
      for (const s of sockets) s.socket.close();
      sockets = [];
      say({ type: 'closed' });
      process.exit(0);
      break;
    default:
      say({ type: 'error', error: `unknown command ${c.cmd}` });
  }
}
