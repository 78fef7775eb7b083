// The scenarios of the benchmark. Each runs one stack from scratch (its own
// redis-server, server, feed and client processes) and returns flat metrics.

import fs from 'node:fs';
import path from 'node:path';

import { startRedis } from '../../e2e/lib/redis.mjs';
import { ClientPool, percentile, sortedNumbers } from './pool.mjs';
import { cpuSeconds, rssBytes } from './sys.mjs';
import { startStack, startWorkers } from './stacks.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * SIZES are the scenario sizes of a full run and of the smoke run.
 * rate: events per second the feed sends (all rooms together).
 */
export const SIZES = {
  full: {
    latency: { clients: 1, events: 2000, rate: 500 },
    fanout: { clients: 1000, events: 200, rate: 20 },
    targeted: { clients: 1000, events: 20, rate: 2000 },
    idle: { clients: 5000 },
    polling: { clients: 200, events: 100, rate: 20 },
    tasks: { clients: 50, tasksPerClient: 10, rows: 100, rowDelay: '500us', workers: 2, concurrency: 4 },
    scale: { steps: [1000, 5000, 10000], events: 10, rate: 2 },
  },
  smoke: {
    latency: { clients: 1, events: 50, rate: 200 },
    fanout: { clients: 20, events: 10, rate: 50 },
    targeted: { clients: 20, events: 3, rate: 200 },
    idle: { clients: 50 },
    polling: { clients: 10, events: 10, rate: 20 },
    tasks: { clients: 5, tasksPerClient: 2, rows: 100, rowDelay: '500us', workers: 2, concurrency: 2 },
    scale: { steps: [30], events: 3, rate: 10 },
  },
};

/** Run-wide settings: binaries, pprof. */
let settings = { binDir: '', pprofAddr: '', profileDir: '', taskwireEnv: {}, settleMs: 5_000, idleCpuMs: 5_000 };

/**
 * profile fetches a profile of a taskwire server started with --pprof into
 * settings.profileDir (nothing otherwise): kind "profile" (CPU, for seconds) or
 * "heap". It resolves once the file is written, and never rejects.
 */
async function profile(stack, what, name, seconds = 0) {
  if (stack.kind !== 'taskwire' || !settings.pprofAddr || !settings.profileDir) return;
  const q = what === 'profile' ? `?seconds=${seconds}` : '?gc=1';
  try {
    const res = await fetch(`http://${settings.pprofAddr}/debug/pprof/${what}${q}`);
    const buf = Buffer.from(await res.arrayBuffer());
    fs.mkdirSync(settings.profileDir, { recursive: true });
    fs.writeFileSync(path.join(settings.profileDir, `${name}.${what}.pb.gz`), buf);
  } catch (err) {
    console.error(`[bench] profile ${name}: ${err.message}`);
  }
}

export function configure(s) {
  settings = { ...settings, ...s };
}

async function withStack(kind, fn, { workers } = {}) {
  const redis = await startRedis();
  let stack;
  let procs = [];
  try {
    stack = await startStack(kind, {
      redisUrl: redis.url, binDir: settings.binDir, pprofAddr: settings.pprofAddr,
      env: kind === 'taskwire' ? settings.taskwireEnv : {},
    });
    if (workers) {
      procs = startWorkers(workers.n, {
        redisUrl: redis.url, binDir: settings.binDir, concurrency: workers.concurrency, rowDelay: workers.rowDelay,
      });
    }
    return await fn(stack);
  } finally {
    await Promise.allSettled([stack?.stop(), ...procs.map((p) => p.kill())]);
    await redis.stop();
  }
}

/**
 * connectClients starts the client processes, prepares the handshake of n
 * clients (taskwire: a session token each, from its HTTP API), then calls
 * beforeConnect (to take a baseline) and connects them all.
 */
async function connectClients(stack, n, { shared = false, transports = ['websocket'], beforeConnect } = {}) {
  const pool = new ClientPool(ClientPool.processesFor(n));
  await pool.ready();
  const { auths, rooms } = await stack.clients(n, shared);
  const baseline = beforeConnect ? await beforeConnect() : undefined;
  const cpu0 = cpuSeconds(stack.pid);
  const conn = await pool.connect(stack.url, auths, { transports });
  const connectCpu = cpuSeconds(stack.pid) - cpu0;
  return { pool, rooms, conn, connectCpu, baseline };
}

/** settledRss waits a second and returns the server's RSS (the baseline of a memory measure). */
async function settledRss(stack) {
  await sleep(1_000);
  return rssBytes(stack.pid);
}

/**
 * deliver arms the clients, has the feed send perRoom events to each of targets at
 * rate, and waits until every connected client got every event, or nothing
 * arrived for 5 s. It returns the server CPU spent from the first event to the
 * last delivery, and what the clients saw.
 */
async function deliver(stack, pool, { targets, perRoom, rate, expected, name }) {
  await pool.arm(perRoom);
  const sendMs = (targets.length * perRoom / Math.max(rate, 1)) * 1000;
  const prof = profile(stack, 'profile', name, Math.ceil(sendMs / 1000) + 1);
  const cpu0 = cpuSeconds(stack.pid);
  const t0 = performance.now();
  const feed = stack.feed.call({ cmd: 'emit', id: 1, rooms: targets, perRoom, rate }, 'done', sendMs + 60_000);
  let fed = null;
  feed.then((r) => { fed = r; }, () => {});
  let last = -1;
  let lastChange = performance.now();
  let cpu = 0;
  for (;;) {
    await sleep(50);
    const st = await pool.status();
    if (st.received >= expected && fed) {
      cpu = cpuSeconds(stack.pid) - cpu0;
      break;
    }
    if (st.received !== last) {
      last = st.received;
      lastChange = performance.now();
    } else if (fed && performance.now() - lastChange > 5_000) {
      cpu = cpuSeconds(stack.pid) - cpu0;
      break;
    }
    if (performance.now() - t0 > sendMs + 120_000) throw new Error('deliver: no end in sight');
  }
  const feedAnswer = await feed;
  await prof;
  const rep = await pool.report();
  const lat = sortedNumbers(rep.lat);
  return {
    cpu,
    received: rep.received,
    lost: expected - rep.received,
    dups: rep.dups + rep.unexpected,
    disconnects: rep.disconnects,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    max: lat.length ? lat[lat.length - 1] : NaN,
    feedMs: feedAnswer.ms,
    feedLagMs: feedAnswer.maxLagMs ?? 0,
  };
}

function deliveryMetrics(conn, d, expected) {
  return {
    stalls: conn.stalls,
    connectErrors: conn.errors,
    lost: d.lost,
    dups: d.dups,
    disconnects: d.disconnects,
    deliveries: expected,
    cpuS: d.cpu,
    cpuUsPerDelivery: (d.cpu * 1e6) / Math.max(d.received, 1),
    p50Ms: d.p50,
    p99Ms: d.p99,
    maxMs: d.max,
    feedLagMs: d.feedLagMs,
  };
}

/** roomScenario: clients in their own rooms (or one shared room) receive events. */
async function roomScenario(kind, { name, clients, events, rate, shared = false, transports = ['websocket'] }) {
  return withStack(kind, async (stack) => {
    const { pool, rooms, conn } = await connectClients(stack, clients, { shared, transports });
    try {
      const targets = [...new Set(rooms)];
      const expected = conn.ok * events;
      const d = await deliver(stack, pool, { targets, perRoom: events, rate, expected, name });
      return { ...deliveryMetrics(conn, d, expected), connectErrorSample: conn.errorSample };
    } finally {
      await pool.close();
    }
  });
}

export const scenarios = {
  latency: (kind, size) => roomScenario(kind, { ...size, name: 'latency' }),
  fanout: (kind, size) => roomScenario(kind, { ...size, name: 'fanout', shared: true }),
  targeted: (kind, size) => roomScenario(kind, { ...size, name: 'targeted' }),
  polling: (kind, size) => roomScenario(kind, { ...size, name: 'polling', shared: true, transports: ['polling'] }),

  idle: (kind, { clients }) => withStack(kind, async (stack) => {
    const { pool, conn, connectCpu, baseline: rss0 } = await connectClients(stack, clients,
      { beforeConnect: () => settledRss(stack) });
    try {
      await sleep(settings.settleMs);
      const rss1 = rssBytes(stack.pid);
      const cpu0 = cpuSeconds(stack.pid);
      await sleep(settings.idleCpuMs);
      const idleCpu = cpuSeconds(stack.pid) - cpu0;
      await profile(stack, 'heap', 'idle');
      return {
        stalls: conn.stalls,
        connectErrors: conn.errors,
        connections: conn.ok,
        rssBeforeMB: rss0 / 2 ** 20,
        rssAfterMB: rss1 / 2 ** 20,
        rssKBPerConn: (rss1 - rss0) / 1024 / Math.max(conn.ok, 1),
        connectCpuUsPerConn: (connectCpu * 1e6) / Math.max(conn.ok, 1),
        idleCpuPct: (idleCpu / (settings.idleCpuMs / 1000)) * 100,
        connectErrorSample: conn.errorSample,
      };
    } finally {
      await pool.close();
    }
  }),

  tasks: (kind, { clients, tasksPerClient, rows, rowDelay, workers, concurrency }) => {
    if (kind !== 'taskwire') return null;
    return withStack(kind, async (stack) => {
      const { pool, conn } = await connectClients(stack, clients);
      try {
        const cpu0 = cpuSeconds(stack.pid);
        const t0 = performance.now();
        const r = await pool.tasks({ url: stack.url, perSocket: tasksPerClient, rows, timeoutMs: 30_000 },
          tasksPerClient * 35_000);
        const wall = (performance.now() - t0) / 1000;
        const cpu = cpuSeconds(stack.pid) - cpu0;
        const first = sortedNumbers(r.firstProgress);
        const done = sortedNumbers(r.completion);
        return {
          stalls: conn.stalls,
          connectErrors: conn.errors,
          tasks: conn.ok * tasksPerClient,
          completed: r.completed,
          lost: conn.ok * tasksPerClient - r.completed,
          tasksPerS: r.completed / wall,
          firstProgressP50Ms: percentile(first, 50),
          firstProgressP99Ms: percentile(first, 99),
          completionP50Ms: percentile(done, 50),
          completionP99Ms: percentile(done, 99),
          serverCpuMsPerTask: (cpu * 1e3) / Math.max(r.completed, 1),
          errorSample: r.errorSample,
        };
      } finally {
        await pool.close();
      }
    }, { workers: { n: workers, concurrency, rowDelay } });
  },

  scale: async (kind, { steps, events, rate }) => {
    const out = {};
    for (const n of steps) {
      out[n] = await withStack(kind, async (stack) => {
        const { pool, conn, connectCpu, baseline: rss0 } = await connectClients(stack, n,
          { beforeConnect: () => settledRss(stack) });
        try {
          await sleep(settings.settleMs);
          const rss1 = rssBytes(stack.pid);
          const expected = conn.ok * events;
          const d = await deliver(stack, pool, { targets: [''], perRoom: events, rate, expected, name: `scale-${n}` });
          return {
            stalls: conn.stalls,
            connectErrors: conn.errors,
            connections: conn.ok,
            rssMB: rss1 / 2 ** 20,
            rssKBPerConn: (rss1 - rss0) / 1024 / Math.max(conn.ok, 1),
            connectCpuUsPerConn: (connectCpu * 1e6) / Math.max(conn.ok, 1),
            ...Object.fromEntries(Object.entries(deliveryMetrics(conn, d, expected)).filter(([k]) => k !== 'stalls' && k !== 'connectErrors')),
          };
        } finally {
          await pool.close();
        }
      });
    }
    return out;
  },
};
