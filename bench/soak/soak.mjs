// The soak test of taskwire (issue 8): a whole system under continuous load while
// things break, for a bounded time, and then the books are checked.
//
//   node soak.mjs --bin <dir> [--duration 10m] [--clients 2000] [--rate 15] [--ci]
//                 [--transports websocket,polling] [--out RESULTS.md] [--no-write]
//
// bench/soak/run builds the binaries and calls this; see README.md for what it
// does, checks and prints. It exits 0 when every check holds, 1 otherwise.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import { io } from 'socket.io-client';

const here = path.dirname(fileURLToPath(import.meta.url));
const log = (...a) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Options

function parseDuration(s) {
  const m = String(s).match(/^(\d+(?:\.\d+)?)(ms|s|m|h)?$/);
  if (!m) throw new Error(`bad duration ${s} (e.g. 60s, 10m)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'];
}

function parseArgs(argv) {
  const o = {
    durationMs: 600_000, clients: 2000, rate: 15, ci: false, bin: '', out: '', write: true, transports: ['websocket', 'polling'],
    // Misbehaving clients beside the well-behaved ones (see README): per episode,
    // flooding sockets x events each, fast connect/close cycles, sessions that
    // never authenticate.
    abuse: true, floodSockets: 4, floodEvents: 20_000, stormCycles: 2_500, holders: 250,
  };
  const set = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--duration': o.durationMs = parseDuration(val()); set.duration = true; break;
      case '--clients': o.clients = Number(val()); set.clients = true; break;
      case '--rate': o.rate = Number(val()); set.rate = true; break;
      case '--ci': o.ci = true; break;
      case '--bin': o.bin = val(); break;
      case '--out': o.out = val(); break;
      case '--no-write': o.write = false; break;
      case '--no-abuse': o.abuse = false; break;
      case '--transports': o.transports = val().split(',').filter(Boolean); break;
      case '-h': case '--help':
        console.log(fs.readFileSync(path.join(here, 'README.md'), 'utf8'));
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (o.ci) {
    // The short form for make test: 60 s on a 2-core machine that also runs
    // Redis, 2 servers, 3 workers and the clients.
    if (!set.duration) o.durationMs = 60_000;
    if (!set.clients) o.clients = Number(process.env.SOAK_CI_CLIENTS ?? 2000);
    if (!set.rate) o.rate = 10;
    Object.assign(o, { floodSockets: 2, floodEvents: 5_000, stormCycles: 400, holders: 100 });
    if (!o.out) o.write = false;
  }
  if (!o.out) o.out = path.join(here, 'RESULTS.md');
  if (!o.bin) throw new Error('--bin <dir with taskwire-server and taskwire-worker> is required (bench/soak/run passes it)');
  if (!(o.clients >= 2) || !(o.rate > 0) || !(o.durationMs >= 20_000)) throw new Error('need --clients >= 2, --rate > 0, --duration >= 20s');
  return o;
}

// ---------------------------------------------------------------------------
// Processes

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const procs = new Set();

/** Proc is a child process in its own process group, its output in a log file. */
class Proc {
  constructor(name, cmd, args, { env = {}, logDir, onJSON } = {}) {
    this.name = name;
    this.file = path.join(logDir, `${name}.log`);
    const out = fs.createWriteStream(this.file, { flags: 'a' });
    this.child = spawn(cmd, args, { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = this.child.pid;
    this.tail = [];
    procs.add(this);
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream.pipe(out, { end: false });
      readline.createInterface({ input: stream }).on('line', (line) => {
        this.tail.push(line);
        if (this.tail.length > 30) this.tail.shift();
        if (onJSON && line.startsWith('{')) {
          try {
            onJSON(JSON.parse(line));
          } catch { /* not a log entry */ }
        }
      });
    }
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => {
      procs.delete(this);
      out.end();
      resolve({ code, signal });
    }));
  }

  get running() { return procs.has(this); }

  signal(sig) {
    try {
      process.kill(-this.pid, sig);
    } catch { /* gone */ }
  }

  async stop(sig = 'SIGTERM', timeoutMs = 20_000) {
    if (!this.running) return this.exited;
    this.signal(sig);
    const t = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

function killAll() {
  for (const p of procs) p.signal('SIGKILL');
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

async function until(cond, { timeoutMs, intervalMs = 100, what }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

/** printed reports whether p printed a line matching re, waiting up to ms for the
 * end of its output (which may come after its exit). */
async function printed(p, re, ms = 1_000) {
  const deadline = Date.now() + ms;
  while (!p.tail.some((l) => re.test(l))) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

async function httpOK(url, timeoutMs = 2_000) {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await r.arrayBuffer();
    return r.status === 200;
  } catch {
    return false;
  }
}

function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const done = (v) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(1_000, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

// ---------------------------------------------------------------------------
// Metrics

async function scrape(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const text = await r.text();
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i).trim(), Number(line.slice(i + 1)));
  }
  return m;
}

async function procStats(url) {
  const m = await scrape(url);
  return {
    goroutines: m.get('go_goroutines') ?? NaN,
    rss: m.get('process_resident_memory_bytes') ?? NaN,
    sockets: m.get('taskwire_socketio_sockets') ?? NaN,
    heap: m.get('go_memstats_heap_inuse_bytes') ?? NaN,
    live: m.get('go_memstats_heap_alloc_bytes') ?? NaN,
  };
}

/** collect runs garbage collections in the server (three, so that what sync.Pools
 * keep for one cycle goes too) and waits for the runtime to return what it freed. */
async function collect(server) {
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`http://127.0.0.1:${server.pprofPort}/debug/pprof/heap?gc=1`, { signal: AbortSignal.timeout(10_000) });
    await r.arrayBuffer();
    await sleep(500);
  }
}

const MiB = 1024 * 1024;
const mib = (b) => (b / MiB).toFixed(1);

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ---------------------------------------------------------------------------
// The system

const FINAL = ['task:completed', 'task:failed', 'task:cancelled'];
const FINAL_STATES = ['completed', 'failed', 'cancelled'];
const SECRET = 'soak-test-secret-0123456789abcdef0123456789abcdef';
const LEASE = '3s';

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const bin = path.resolve(o.bin);
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskwire-soak-'));
  const D = o.durationMs;
  log(`duration ${D / 1000} s, ${o.clients} clients, ${o.rate} tasks/s, transports ${o.transports}; logs in ${logDir}`);

  // Redis, persistent: an append-only file fsynced at every write, so a kill -9
  // loses nothing that was acknowledged.
  const redisDir = path.join(logDir, 'redis');
  fs.mkdirSync(redisDir);
  let redisPort = await freePort();
  const redisBin = process.env.REDIS_SERVER_BIN || execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
  let redis;
  // freePort cannot reserve a port: when another process has it, the first start
  // takes another one; a restart keeps it (the servers know it) and tries again.
  const startRedis = async (restart = false) => {
    for (let attempt = 1; ; attempt++) {
      redis = new Proc('redis', redisBin, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
        '--appendfsync', 'always', '--dir', redisDir, '--daemonize', 'no', '--loglevel', 'warning'], { logDir });
      const p = redis;
      const ok = await Promise.race([
        until(() => redisPing(redisPort), { timeoutMs: 30_000, what: 'redis ready' }).then(() => true),
        p.exited.then(() => false),
      ]);
      if (ok) return;
      if (attempt >= 20 || !(await printed(p, /already in use/i))) throw new Error(`redis did not start: ${p.tail.join('\n')}`);
      if (restart) await sleep(250); // back off: whoever has the port may let it go
      else redisPort = await freePort();
    }
  };
  await startRedis();
  const redisUrl = `redis://127.0.0.1:${redisPort}/0`;

  // Workers: "task completed" lines, per task, across every run of every worker.
  const completedBy = new Map(); // task id -> [worker names]
  const rerun = new Set(); // tasks whose attempt 2 or later started
  const workers = [];
  const startWorker = async (n, run = 1) => {
    const name = `worker-${n}${run > 1 ? `-run${run}` : ''}`;
    // Port 0: the kernel picks a free port (no race with other processes); the
    // worker logs the address it got.
    let metricsAddr = '';
    let consuming;
    const isConsuming = new Promise((r) => { consuming = r; });
    let started;
    const isStarted = new Promise((r) => { started = r; });
    const ready = Promise.all([isConsuming, isStarted]);
    const p = new Proc(name, path.join(bin, 'taskwire-worker'), [], {
      logDir,
      env: {
        REDIS_URL: redisUrl, WORKER_CONCURRENCY: '4', WORKER_LEASE_TIMEOUT: LEASE, METRICS_ADDR: '127.0.0.1:0',
        LOG_LEVEL: 'info', EXPORT_ROW_DELAY: '1ms', WORKER_SHUTDOWN_TIMEOUT: '5s',
      },
      onJSON: (e) => {
        if (e.msg === 'worker started') {
          metricsAddr = e.metricsAddr;
          started();
        }
        if (e.msg === 'consuming') consuming();
        if (e.msg === 'task completed' && e.task) completedBy.set(e.task, [...(completedBy.get(e.task) ?? []), name]);
        if (e.msg === 'task started' && e.attempt > 1) rerun.add(e.task);
      },
    });
    await Promise.race([ready, p.exited.then((x) => { throw new Error(`${name} exited ${JSON.stringify(x)}: ${p.tail.join('\n')}`); })]);
    if (!metricsAddr) throw new Error(`${name}: no metrics address in its log`);
    workers[n - 1] = { n, name, proc: p, metrics: `http://${metricsAddr}/metrics` };
    return workers[n - 1];
  };

  // Servers.
  const servers = [];
  const startServer = async (n, port, pprofPort, run = 1) => {
    const name = `server-${n}${run > 1 ? `-run${run}` : ''}`;
    for (let attempt = 1; attempt <= 20; attempt++) {
      const p = new Proc(name, path.join(bin, 'taskwire-server'), [], {
        logDir,
        env: {
          HTTP_ADDR: `127.0.0.1:${port}`, REDIS_URL: redisUrl, TASKWIRE_SECRET: SECRET, LOG_LEVEL: 'warn', SHUTDOWN_TIMEOUT: '5s',
          // The profiler, on loopback: its heap endpoint with gc=1 runs a garbage
          // collection, so memory is measured as collected, not as not yet collected.
          PPROF_ADDR: `127.0.0.1:${pprofPort}`,
        },
      });
      const url = `http://127.0.0.1:${port}`;
      const ok = await Promise.race([
        until(() => httpOK(`${url}/readyz`), { timeoutMs: 30_000, what: `${name} ready` }).then(() => true),
        p.exited.then(() => false),
      ]);
      if (ok) {
        servers[n - 1] = { n, name, port, pprofPort, url, proc: p };
        return servers[n - 1];
      }
      if (!(await printed(p, /address already in use/))) throw new Error(`${name} did not start: ${p.tail.join('\n')}`);
      // freePort cannot reserve ports. The profiler's need not be stable; the HTTP
      // port must be on a restart, when the old process may still hold it a moment.
      pprofPort = await freePort();
      if (run === 1) port = await freePort();
      else await sleep(250);
    }
    throw new Error(`${name}: port ${port} stays in use`);
  };
  await Promise.all([startServer(1, await freePort(), await freePort()), startServer(2, await freePort(), await freePort())]);
  await Promise.all([1, 2, 3].map((n) => startWorker(n)));
  log('system up: redis, 2 servers, 3 workers');

  // ---- clients
  const tasks = new Map(); // id -> task
  const clients = [];
  const counters = { foreign: 0, seqRegressions: 0, events: 0, resubscribes: 0, resubscribeErrors: 0, connectErrors: 0 };

  const newSession = async (base) => {
    const r = await fetch(`${base}/api/v1/session`, { signal: AbortSignal.timeout(10_000) });
    if (r.status !== 200) throw new Error(`session: ${r.status}`);
    return (await r.json()).token;
  };

  const onTaskEvent = (c, event, p) => {
    counters.events++;
    const t = p && tasks.get(p.taskId);
    if (!t) {
      // Events of a task created by a POST whose answer has not arrived yet
      // would land here too; those are matched later by id.
      c.early.push({ event, p, at: Date.now() });
      return;
    }
    if (t.client !== c) {
      counters.foreign++;
      return;
    }
    applyEvent(t, event, p, Date.now());
  };

  const applyEvent = (t, event, p, at) => {
    if (typeof p.seq === 'number') {
      if (p.seq <= t.lastSeq && !FINAL.includes(event)) counters.seqRegressions++;
      t.lastSeq = Math.max(t.lastSeq, p.seq);
    }
    if (FINAL.includes(event)) {
      t.finals.push(event);
      if (t.finalAt === 0) t.finalAt = at;
    }
  };

  const openClient = async (i, base, transports) => {
    const token = await newSession(base);
    const c = { i, token, base, transports, early: [], tasks: new Set(), connects: 0, disconnects: 0 };
    c.socket = io(base, {
      auth: { token }, transports, forceNew: true,
      reconnectionDelay: 500, reconnectionDelayMax: 5_000, timeout: 20_000,
    });
    for (const ev of ['task:progress', ...FINAL]) c.socket.on(ev, (p) => onTaskEvent(c, ev, p));
    c.socket.on('connect_error', () => { counters.connectErrors++; });
    c.socket.on('disconnect', () => { c.disconnects++; });
    c.socket.on('connect', () => {
      c.connects++;
      if (c.connects > 1) resubscribe(c);
    });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client ${i}: no connect within 60 s`)), 60_000);
      c.socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return c;
  };

  // After a reconnection the client asks for the snapshot of every task it
  // follows that it has not seen end, as the web app does.
  const resubscribe = async (c) => {
    for (const id of c.tasks) {
      const t = tasks.get(id);
      if (!t || t.finals.length > 0 || t.snapshotFinal) continue;
      counters.resubscribes++;
      try {
        const snap = await c.socket.timeout(10_000).emitWithAck('task:subscribe', { taskId: id });
        if (snap?.error) {
          counters.resubscribeErrors++;
        } else if (FINAL_STATES.includes(snap?.state)) {
          t.snapshotFinal = snap.state;
          if (t.finalAt === 0) t.finalAt = Date.now();
        }
      } catch {
        counters.resubscribeErrors++;
      }
    }
  };

  const openClients = async (n, offset = 0) => {
    const list = [];
    const batch = 50;
    for (let i = 0; i < n; i += batch) {
      const part = await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, k) => {
        const idx = offset + i + k;
        const s = servers[idx % 2];
        return openClient(idx, s.url, [o.transports[Math.floor(idx / 2) % o.transports.length]]);
      }));
      list.push(...part);
    }
    return list;
  };

  // Warm-up, then the baseline: idle servers that have served some clients.
  const warm = await openClients(40, 1_000_000);
  for (const c of warm) c.socket.close();
  await until(async () => (await Promise.all(servers.map((s) => procStats(`${s.url}/metrics`)))).every((x) => x.sockets === 0),
    { timeoutMs: 30_000, what: 'warm-up clients gone' });
  await Promise.all(servers.map(collect));
  await sleep(3_000);
  const baseline = await Promise.all(servers.map((s) => procStats(`${s.url}/metrics`)));
  const workerBaseline = await Promise.all(workers.map((w) => procStats(w.metrics)));
  log(`baseline: ${servers.map((s, k) => `${s.name} ${baseline[k].goroutines} goroutines, RSS ${mib(baseline[k].rss)} MiB`).join('; ')}`);

  const t0 = Date.now();
  clients.push(...await openClients(o.clients));
  const connectSeconds = (Date.now() - t0) / 1000;
  log(`${clients.length} clients connected in ${connectSeconds.toFixed(1)} s`);

  // ---- load: tasks from random connected clients, some cancelled by their owner
  const posts = { accepted: 0, byStatus: {}, errors: 0 };
  // What the load loop did: when it ran, its ticks (one per 1/rate s), the POSTs it
  // sent, and the ticks it skipped. POSTs are split by when they were sent: during
  // a fault (from its start until the system is back) some fail by design.
  const load = {
    start: 0, stop: 0, ticks: 0, skippedDisconnected: 0, skippedBusy: 0,
    calm: { attempted: 0, accepted: 0 }, duringFaults: { attempted: 0, accepted: 0 },
  };
  let faulting = 0;
  let creating = true;
  let inflight = 0;
  const cancels = { http: 0, socket: 0 };
  const createOne = async () => {
    const c = clients[Math.floor(Math.random() * clients.length)];
    if (!c.socket.connected) {
      load.skippedDisconnected++;
      return;
    }
    const bucket = faulting > 0 ? load.duringFaults : load.calm;
    bucket.attempted++;
    inflight++;
    const rows = 20 + Math.floor(Math.random() * 480); // 20-500 rows at 1 ms: up to half a second
    const created = Date.now();
    try {
      const r = await fetch(`${c.base}/api/v1/tasks`, {
        method: 'POST', signal: AbortSignal.timeout(15_000),
        headers: { Authorization: `Bearer ${c.token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ kind: 'export', params: { rows }, socketId: c.socket.id }),
      });
      const body = await r.json().catch(() => ({}));
      posts.byStatus[r.status] = (posts.byStatus[r.status] ?? 0) + 1;
      if (r.status !== 202) return;
      posts.accepted++;
      bucket.accepted++;
      const t = { id: body.id, client: c, created, rows, finals: [], lastSeq: 0, finalAt: 0, snapshotFinal: null, recordFinal: null };
      tasks.set(t.id, t);
      c.tasks.add(t.id);
      // Events that came before the answer to the POST.
      for (const e of c.early.filter((x) => x.p.taskId === t.id)) applyEvent(t, e.event, e.p, e.at);
      c.early = c.early.filter((x) => x.p.taskId !== t.id);
      if (Math.random() < 0.05) {
        setTimeout(() => cancel(t).catch(() => {}), 20 + Math.random() * 300);
      }
    } catch {
      posts.errors++;
    } finally {
      inflight--;
    }
  };
  const cancel = async (t) => {
    if (t.finals.length) return;
    if (Math.random() < 0.5) {
      cancels.http++;
      await fetch(`${t.client.base}/api/v1/tasks/${t.id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${t.client.token}` }, signal: AbortSignal.timeout(10_000) });
    } else if (t.client.socket.connected) {
      cancels.socket++;
      await t.client.socket.timeout(10_000).emitWithAck('task:cancel', { taskId: t.id });
    }
  };
  const loadLoop = (async () => {
    const interval = 1000 / o.rate;
    load.start = Date.now();
    let next = load.start;
    while (creating) {
      load.ticks++;
      if (inflight < 100) createOne();
      else load.skippedBusy++;
      next += interval;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      else next = Date.now();
    }
    load.stop = Date.now();
    load.attempted = load.calm.attempted + load.duringFaults.attempted; // every POST sent
  })();

  // ---- samples of the servers' goroutines and memory
  const peak = servers.map(() => ({ goroutines: 0, rss: 0, live: 0 }));
  const sampler = setInterval(async () => {
    for (const [k, s] of servers.entries()) {
      try {
        const st = await procStats(`${s.url}/metrics`);
        peak[k].goroutines = Math.max(peak[k].goroutines, st.goroutines);
        peak[k].rss = Math.max(peak[k].rss, st.rss);
        peak[k].live = Math.max(peak[k].live, st.live);
      } catch { /* restarting */ }
    }
  }, 2_000);

  // ---- misbehaving clients, in episodes between the faults, each against one
  // server: sockets flooding task:subscribe (the server must close them), a storm
  // of connections closed right after their CONNECT (no socket may be left
  // behind), and engine.io sessions that never authenticate (closed after
  // SOCKETIO_CONNECT_TIMEOUT). Meanwhile a well-behaved probe of that server's
  // API is timed.
  const abuse = { episodes: [], flooders: 0, floodersClosed: 0, floodEvents: 0, stormCycles: 0, holders: 0, holdersRefused: 0, probeMs: [] };
  const flood = async (base) => {
    const token = await newSession(base);
    const s = io(base, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false, timeout: 20_000 });
    await new Promise((resolve, reject) => {
      s.once('connect', resolve);
      s.once('connect_error', reject);
    });
    abuse.flooders++;
    const closed = new Promise((resolve) => s.once('disconnect', resolve));
    // Well-formed ids of no task, so that each event costs the server a Redis
    // lookup (a malformed one is refused at once and never piles up), sent in
    // slices of 2,000, yielding between them: the well-behaved clients share
    // this process, and the server, not this loop, is what is measured.
    for (let i = 0; i < o.floodEvents; i++) {
      s.emit('task:subscribe', { taskId: Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url') });
      if (i % 2_000 === 1_999) await new Promise((resolve) => setImmediate(resolve));
    }
    abuse.floodEvents += o.floodEvents;
    const closedByServer = await Promise.race([closed.then(() => true), sleep(30_000).then(() => false)]);
    if (closedByServer) abuse.floodersClosed++;
    s.close();
  };
  const storm = async (base) => {
    const token = await newSession(base);
    let left = o.stormCycles;
    const one = () => new Promise((resolve) => {
      const s = io(base, { forceNew: true, reconnection: false, transports: ['websocket'], auth: { token }, timeout: 10_000 });
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        s.close();
        resolve();
      };
      s.io.once('open', () => s.io.engine.close());
      s.io.once('close', end);
      s.once('connect_error', end);
      s.once('connect', end);
    });
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (left > 0) {
        left--;
        await one();
        abuse.stormCycles++;
      }
    }));
  };
  const hold = async (base) => {
    const answers = await Promise.all(Array.from({ length: o.holders }, () =>
      fetch(`${base}/socket.io/?EIO=4&transport=polling`, { signal: AbortSignal.timeout(10_000) })
        .then(async (r) => { await r.arrayBuffer(); return r.status; }).catch(() => 0)));
    abuse.holders += answers.filter((x) => x === 200).length;
    abuse.holdersRefused += answers.filter((x) => x !== 200).length;
  };
  const probe = async (base, running) => {
    const token = await newSession(base);
    while (running()) {
      const start = performance.now();
      try {
        const r = await fetch(`${base}/api/v1/tasks`, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
        await r.arrayBuffer();
        if (r.status === 200) abuse.probeMs.push(performance.now() - start);
      } catch { /* counted as missing */ }
      await sleep(50);
    }
  };
  const episode = async (fraction, k) => {
    await sleep(Math.max(0, t0 + fraction * D - Date.now()));
    if (!creating) return;
    const s = servers[k];
    const e = { at: (Date.now() - t0) / 1000, server: s.name };
    let running = true;
    const probing = probe(s.url, () => running).catch(() => {});
    const started = Date.now();
    try {
      await Promise.all([
        ...Array.from({ length: o.floodSockets }, () => flood(s.url)),
        storm(s.url),
        hold(s.url),
      ]);
    } catch (err) {
      e.error = String(err.message ?? err);
    }
    running = false;
    await probing;
    e.seconds = (Date.now() - started) / 1000;
    abuse.episodes.push(e);
    log(`misbehaving clients on ${s.name} at ${e.at.toFixed(0)} s: done in ${e.seconds.toFixed(1)} s${e.error ? ` (${e.error})` : ''}`);
  };
  // Between the faults (25%, 45%, 65%); server-2 restarts at 65%, so the last
  // episode is on server-1.
  const abuseDone = o.abuse
    ? Promise.all([episode(0.12, 0), episode(0.35, 1), episode(0.55, 0), episode(0.75, 0)])
    : Promise.resolve();

  // ---- faults
  const faults = [];
  const at = (fraction) => sleep(Math.max(0, t0 + fraction * D - Date.now()));
  const connectedCount = () => clients.filter((c) => c.socket.connected).length;

  await at(0.25);
  {
    const f = { what: 'Redis killed (SIGKILL) and restarted with its append-only file', at: (Date.now() - t0) / 1000 };
    const before = posts.accepted;
    faulting++;
    await redis.stop('SIGKILL');
    const down = Date.now();
    await sleep(1_000);
    await startRedis(true);
    f.downSeconds = (Date.now() - down) / 1000;
    await until(async () => (await Promise.all(servers.map((s) => httpOK(`${s.url}/readyz`)))).every(Boolean),
      { timeoutMs: 60_000, what: 'servers ready after the Redis restart' });
    f.serversReadySeconds = (Date.now() - down) / 1000;
    await until(() => posts.accepted > before + 5, { timeoutMs: 60_000, what: 'tasks accepted after the Redis restart' });
    f.acceptingAgainSeconds = (Date.now() - down) / 1000;
    faulting--;
    faults.push(f);
    log(`${f.what}: down ${f.downSeconds}s, servers ready after ${f.serversReadySeconds}s`);
  }

  await at(0.45);
  {
    const f = { what: 'worker-2 killed (SIGKILL) mid-task, restarted 2 s later', at: (Date.now() - t0) / 1000 };
    const w = workers[1];
    // Kill it while it runs tasks (they come back after the lease, elsewhere).
    const runningNow = () => scrape(w.metrics)
      .then((m) => [...m.entries()].filter(([k]) => k.startsWith('taskwire_worker_tasks_running')).reduce((a, [, v]) => a + v, 0))
      .catch(() => 0);
    let running = 0;
    await until(async () => (running = await runningNow()) > 0, { timeoutMs: 15_000, intervalMs: 20, what: 'worker-2 running a task' }).catch(() => {});
    f.runningWhenKilled = running;
    await w.proc.stop('SIGKILL');
    await sleep(2_000);
    await startWorker(2, 2);
    faults.push(f);
    log(`${f.what} (${running} running)`);
  }

  await at(0.65);
  {
    const f = { what: 'server-2 restarted (SIGTERM, then started again on its port)', at: (Date.now() - t0) / 1000 };
    const s = servers[1];
    const onIt = clients.filter((c) => c.base === s.url);
    const stopStart = Date.now();
    faulting++;
    const exit = await s.proc.stop('SIGTERM', 30_000);
    f.exit = exit.code;
    f.stopSeconds = (Date.now() - stopStart) / 1000;
    await startServer(2, s.port, s.pprofPort, 2);
    await until(() => onIt.every((c) => c.socket.connected), { timeoutMs: 120_000, intervalMs: 200, what: 'server-2 clients reconnected' });
    f.clientsBackSeconds = (Date.now() - stopStart) / 1000;
    faulting--;
    f.clients = onIt.length;
    faults.push(f);
    log(`${f.what}: exit ${f.exit} after ${f.stopSeconds}s, ${f.clients} clients back after ${f.clientsBackSeconds}s`);
  }

  // ---- stop the load; every task must end
  await at(0.85);
  creating = false;
  await loadLoop;
  await abuseDone;
  await until(() => inflight === 0, { timeoutMs: 30_000, what: 'POSTs answered' });
  const loadSeconds = (load.stop - load.start) / 1000;
  log(`load stopped after ${loadSeconds.toFixed(1)} s: ${load.attempted} POSTs, ${posts.accepted} tasks accepted; waiting for each to end`);
  const drainStart = Date.now();
  const unseen = () => [...tasks.values()].filter((t) => t.finals.length === 0 && !t.snapshotFinal);
  const open = () => unseen().filter((t) => !t.recordFinal);
  // What the clients did not see live, the owner reads: the record is the truth
  // (pub/sub is at most once: events published while Redis restarted, or while
  // the owner's server was away, are gone).
  const readRecords = async (list) => {
    for (const t of list) {
      try {
        const r = await fetch(`${t.client.base}/api/v1/tasks/${t.id}`, { headers: { Authorization: `Bearer ${t.client.token}` }, signal: AbortSignal.timeout(10_000) });
        const rec = await r.json();
        if (FINAL_STATES.includes(rec.state)) t.recordFinal = rec.state;
        else t.recordState = `${r.status} ${rec.state ?? JSON.stringify(rec).slice(0, 80)}`;
      } catch (err) {
        t.recordState = `error ${err.message}`;
      }
    }
  };
  // First the live events (a few seconds), then the records of the rest, until
  // every task ended or the drain time is over.
  const drainDeadline = drainStart + Math.max(30_000, 0.15 * D);
  await until(() => unseen().length === 0, { timeoutMs: 5_000, intervalMs: 200, what: 'live final events' }).catch(() => {});
  while (open().length > 0 && Date.now() < drainDeadline) {
    await readRecords(open());
    if (open().length > 0) await sleep(1_000);
  }
  // The records of tasks whose final event came: the same final state.
  let mismatched = 0;
  const sample = [...tasks.values()].filter((t) => t.finals.length > 0);
  for (const t of sample.slice(0, 300)) {
    const r = await fetch(`${t.client.base}/api/v1/tasks/${t.id}`, { headers: { Authorization: `Bearer ${t.client.token}` } });
    const rec = await r.json();
    if (`task:${rec.state}` !== t.finals[0]) mismatched++;
  }
  const drainSeconds = (Date.now() - drainStart) / 1000;
  clearInterval(sampler);

  // ---- the books
  const all = [...tasks.values()];
  const lost = all.filter((t) => t.finals.length === 0 && !t.snapshotFinal && !t.recordFinal);
  const dupEvents = all.filter((t) => t.finals.length > 1);
  const dupCompletions = [...completedBy.entries()].filter(([, ws]) => ws.length > 1);
  const by = (pred) => all.filter(pred).length;
  const stateOf = (t) => (t.finals[0]?.slice(5)) ?? t.snapshotFinal ?? t.recordFinal ?? 'lost';
  const states = {};
  for (const t of all) states[stateOf(t)] = (states[stateOf(t)] ?? 0) + 1;
  const latencies = all.filter((t) => t.finals.length > 0).map((t) => t.finalAt - t.created).sort((a, b) => a - b);

  // ---- clients leave; goroutines and memory must come back
  const serverPeakConnected = await Promise.all(servers.map((s) => procStats(`${s.url}/metrics`)));
  for (const c of clients) c.socket.close();
  const leaveStart = Date.now();
  const GOROUTINE_TOLERANCE = 15;
  // A leak shows in the live heap after collection; the resident size also holds
  // what the runtime keeps for reuse and grown tables that never shrink.
  const LIVE_TOLERANCE = (k) => Math.max(8 * MiB, 0.1 * (peak[k].live - baseline[k].live));
  const RSS_TOLERANCE = (k) => Math.max(24 * MiB, 0.3 * (peak[k].rss - baseline[k].rss));
  let afterStats;
  try {
    await until(async () => {
      afterStats = await Promise.all(servers.map((s) => procStats(`${s.url}/metrics`)));
      return afterStats.every((x, k) => x.sockets === 0 && x.goroutines <= baseline[k].goroutines + GOROUTINE_TOLERANCE);
    }, { timeoutMs: 60_000, intervalMs: 1_000, what: 'servers back to their baseline goroutines' });
  } catch { /* reported below */ }
  const goroutinesBackSeconds = (Date.now() - leaveStart) / 1000;
  // What the OS sees before anything is forced: the runtime collects and returns
  // memory at its own pace (a collection every 2 minutes when idle).
  const uncollected = await Promise.all(servers.map((s) => procStats(`${s.url}/metrics`)));
  await Promise.all(servers.map(collect));
  try {
    await until(async () => {
      afterStats = await Promise.all(servers.map((s) => procStats(`${s.url}/metrics`)));
      return afterStats.every((x, k) => x.rss <= baseline[k].rss + RSS_TOLERANCE(k));
    }, { timeoutMs: 60_000, intervalMs: 2_000, what: 'servers back to their baseline RSS' });
  } catch { /* reported below */ }
  const rssBackSeconds = (Date.now() - leaveStart) / 1000;
  const workerAfter = await Promise.all(workers.map((w) => procStats(w.metrics).catch(() => ({}))));

  // What the misbehaving clients left: no socket without a connection, no
  // session waiting to authenticate (scraped once every client has left).
  const leftovers = await Promise.all(servers.map(async (s) => {
    const m = await scrape(`${s.url}/metrics`);
    return {
      orphans: m.get('taskwire_socketio_sockets_without_connection') ?? NaN,
      unauthenticated: m.get('taskwire_socketio_unauthenticated_connections') ?? NaN,
      floodDisconnects: [...m.entries()].filter(([k]) => k.startsWith('taskwire_socketio_flood_disconnects_total')).reduce((a, [, v]) => a + v, 0),
    };
  }));
  const probeSorted = abuse.probeMs.sort((a, b) => a - b);
  abuse.probe = { count: probeSorted.length, p50: percentile(probeSorted, 50), p99: percentile(probeSorted, 99), max: probeSorted.at(-1) };
  abuse.leftovers = leftovers;

  const expectedTicks = o.rate * loadSeconds;
  const abuseChecks = !o.abuse ? [] : [
    ['misbehaving clients ran (4 episodes, none failed)', abuse.episodes.length === 4 && abuse.episodes.every((e) => !e.error),
      abuse.episodes.map((e) => `${e.server} at ${e.at.toFixed(0)} s${e.error ? `: ${e.error}` : ''}`).join('; ')],
    ['every flooding socket was closed by the server', abuse.flooders > 0 && abuse.floodersClosed === abuse.flooders,
      `${abuse.floodersClosed} of ${abuse.flooders} (${abuse.floodEvents} events sent)`],
    ['fast connect/close cycles left no socket behind (sockets without a connection = 0)', leftovers.every((x) => x.orphans === 0),
      `${abuse.stormCycles} cycles; ${leftovers.map((x, k) => `${servers[k].name} ${x.orphans}`).join(', ')}`],
    ['sessions that never authenticated were closed (unauthenticated = 0)', leftovers.every((x) => x.unauthenticated === 0),
      `${abuse.holders} held (${abuse.holdersRefused} refused); ${leftovers.map((x, k) => `${servers[k].name} ${x.unauthenticated}`).join(', ')}`],
  ];
  const checks = [
    ...abuseChecks,
    ['every accepted task ended, seen by its owner live or in its record (0 lost)', lost.length === 0, `${lost.length} lost`],
    ['no task completed twice (workers\' "task completed" per task)', dupCompletions.length === 0, `${dupCompletions.length} twice`],
    ['no client got two final events for one task', dupEvents.length === 0, `${dupEvents.length} tasks`],
    ['no client got an event of a task it does not own', counters.foreign === 0, `${counters.foreign} events`],
    ['the record agrees with the final event (sample of 300)', mismatched === 0, `${mismatched} disagree`],
    // The load ran: POSTs went out at half the rate or more over the time the loop
    // ran (ticks are skipped while the chosen client is disconnected, as in a
    // restart), and those sent outside the faults were accepted.
    ['tasks were created throughout (the load ran): POSTs sent >= 50% of rate x load time',
      load.attempted >= 0.5 * expectedTicks, `${load.attempted} sent of ${Math.round(expectedTicks)} (${o.rate}/s x ${loadSeconds.toFixed(1)} s)`],
    ['POSTs sent outside the faults were accepted (>= 90%)', load.calm.accepted >= 0.9 * load.calm.attempted,
      `${load.calm.accepted} of ${load.calm.attempted} accepted (during faults: ${load.duringFaults.accepted} of ${load.duringFaults.attempted})`],
    ...servers.map((s, k) => [`${s.name}: goroutines back to baseline + ${GOROUTINE_TOLERANCE}`, afterStats[k].goroutines <= baseline[k].goroutines + GOROUTINE_TOLERANCE,
      `${baseline[k].goroutines} -> peak ${peak[k].goroutines} -> ${afterStats[k].goroutines}`]),
    ...servers.map((s, k) => [`${s.name}: live heap back to baseline + max(8 MiB, 10% of the rise)`, afterStats[k].live <= baseline[k].live + LIVE_TOLERANCE(k),
      `${mib(baseline[k].live)} -> peak ${mib(peak[k].live)} -> ${mib(afterStats[k].live)} MiB`]),
    ...servers.map((s, k) => [`${s.name}: RSS back to baseline + max(24 MiB, 30% of the rise)`, afterStats[k].rss <= baseline[k].rss + RSS_TOLERANCE(k),
      `${mib(baseline[k].rss)} -> peak ${mib(peak[k].rss)} -> ${mib(afterStats[k].rss)} MiB (${mib(uncollected[k].rss)} before collecting)`]),
  ];

  const result = {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${mib(os.totalmem())} MiB RAM, ${os.platform()} ${os.release()}, node ${process.version}`,
    options: {
      durationSeconds: D / 1000, clients: o.clients, rate: o.rate, transports: o.transports, lease: LEASE,
      floodSockets: o.floodSockets, floodEvents: o.floodEvents, stormCycles: o.stormCycles, holders: o.holders,
    },
    connectSeconds, posts, load: { ...load, seconds: loadSeconds, startedAfterSeconds: (load.start - t0) / 1000, expectedTicks }, cancels, states, counters, lost: lost.length, dupEvents: dupEvents.length, dupCompletions: dupCompletions.length,
    mismatched, drainSeconds, faults,
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), max: latencies.at(-1) },
    liveFinal: by((t) => t.finals.length > 0), snapshotFinal: by((t) => !t.finals.length && t.snapshotFinal), recordFinal: by((t) => !t.finals.length && !t.snapshotFinal && t.recordFinal),
    reconnects: clients.reduce((a, c) => a + Math.max(0, c.connects - 1), 0),
    rerun: rerun.size,
    servers: servers.map((s, k) => ({ name: s.name, baseline: baseline[k], peak: peak[k], connected: serverPeakConnected[k], uncollected: uncollected[k], after: afterStats[k] })),
    goroutinesBackSeconds, rssBackSeconds,
    workers: workers.map((w, k) => ({ name: w.name, baseline: workerBaseline[k], after: workerAfter[k] })),
    checks: checks.map(([what, ok, detail]) => ({ what, ok, detail })),
    lostSample: lost.slice(0, 10).map((t) => ({ id: t.id, state: t.recordState })),
    abuse: o.abuse ? abuse : null,
  };

  printSummary(result);
  fs.writeFileSync(path.join(logDir, 'result.json'), JSON.stringify(result, null, 2));
  if (o.write) {
    fs.writeFileSync(o.out, renderMarkdown(result));
    log(`wrote ${o.out}`);
  }

  for (const s of servers) await s.proc.stop('SIGTERM');
  for (const w of workers) await w.proc.stop('SIGTERM');
  await redis.stop('SIGTERM');
  const ok = checks.every(([, pass]) => pass);
  if (ok) fs.rmSync(logDir, { recursive: true, force: true });
  else log(`FAILED; logs kept in ${logDir}`);
  process.exit(ok ? 0 : 1);
}

function printSummary(r) {
  const lines = [];
  lines.push(`soak: ${r.options.durationSeconds} s, ${r.options.clients} clients on 2 servers, 3 workers, ${r.options.rate} tasks/s`);
  const l = r.load;
  lines.push(`  load: ran ${l.seconds.toFixed(1)} s (from ${l.startedAfterSeconds.toFixed(1)} s, once the clients were connected): ${l.ticks} ticks ` +
    `(rate x time ${Math.round(l.expectedTicks)}), ${l.attempted} POSTs sent, skipped ${l.skippedDisconnected} (client disconnected) + ${l.skippedBusy} (100 POSTs in flight); ` +
    `accepted ${l.calm.accepted}/${l.calm.attempted} outside the faults, ${l.duringFaults.accepted}/${l.duringFaults.attempted} during them`);
  lines.push(`  tasks accepted ${r.posts.accepted}; POST answers ${JSON.stringify(r.posts.byStatus)}, ${r.posts.errors} errors; cancels ${r.cancels.http} HTTP + ${r.cancels.socket} socket`);
  lines.push(`  outcomes ${JSON.stringify(r.states)}; final seen live ${r.liveFinal}, in a re-subscribe snapshot ${r.snapshotFinal}, read from the record ${r.recordFinal}; run again after a lost worker ${r.rerun}`);
  lines.push(`  create -> final event: p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`);
  lines.push(`  events ${r.counters.events}, reconnections ${r.reconnects}, re-subscribes ${r.counters.resubscribes} (${r.counters.resubscribeErrors} failed), connect errors ${r.counters.connectErrors}`);
  if (r.abuse) {
    const a = r.abuse;
    lines.push(`  misbehaving: ${a.episodes.length} episodes; flooders closed ${a.floodersClosed}/${a.flooders} (${a.floodEvents} events), ${a.stormCycles} connect/close cycles, ` +
      `${a.holders} unauthenticated sessions; probe GET p50 ${a.probe.p50?.toFixed(1)} ms, p99 ${a.probe.p99?.toFixed(1)} ms (${a.probe.count})`);
  }
  for (const f of r.faults) lines.push(`  fault at ${f.at.toFixed(0)} s: ${f.what} ${JSON.stringify(Object.fromEntries(Object.entries(f).filter(([k]) => !['what', 'at'].includes(k))))}`);
  for (const s of r.servers) {
    lines.push(`  ${s.name}: goroutines ${s.baseline.goroutines} -> peak ${s.peak.goroutines} -> ${s.after.goroutines}; live heap ${mib(s.baseline.live)} -> ` +
      `peak ${mib(s.peak.live)} -> ${mib(s.after.live)} MiB; RSS ${mib(s.baseline.rss)} -> peak ${mib(s.peak.rss)} -> ${mib(s.uncollected.rss)} (left) -> ${mib(s.after.rss)} MiB (collected)`);
  }
  for (const c of r.checks) lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${c.detail}`);
  console.log(lines.join('\n'));
}

function renderMarkdown(r) {
  const row = (...cells) => `| ${cells.join(' | ')} |`;
  const out = [];
  out.push('# Soak results');
  out.push('');
  out.push(`Written by \`bench/soak/run\` (the long form) on ${r.date.slice(0, 16).replace('T', ' ')} UTC. Machine: ${r.machine}.`);
  out.push('');
  out.push(`${r.options.durationSeconds} s, ${r.options.clients} socket.io-client connections (${r.options.transports.join(' and ')}, alternating) on 2 taskwire-servers, ` +
    `3 taskwire-workers (concurrency 4, lease ${r.options.lease}), tasks started at ${r.options.rate}/s by random clients (exports of 20-500 rows at 1 ms a row, ` +
    `5% cancelled by their owner), Redis with an append-only file fsynced at every write.`);
  out.push('');
  out.push('## Checks');
  out.push('');
  out.push(row('check', 'result', ''));
  out.push(row('---', '---', '---'));
  for (const c of r.checks) out.push(row(c.what, c.ok ? 'ok' : '**FAILED**', c.detail));
  out.push('');
  out.push('## Tasks');
  out.push('');
  out.push(row('what', 'number'));
  out.push(row('---', '---'));
  out.push(row('load ran / ticks (rate x time)', `${r.load.seconds.toFixed(1)} s / ${r.load.ticks} (${Math.round(r.load.expectedTicks)})`));
  out.push(row('POSTs sent / ticks skipped (client disconnected, 100 POSTs in flight)', `${r.load.attempted} / ${r.load.skippedDisconnected}, ${r.load.skippedBusy}`));
  out.push(row('accepted outside / during the faults', `${r.load.calm.accepted} of ${r.load.calm.attempted} / ${r.load.duringFaults.accepted} of ${r.load.duringFaults.attempted}`));
  out.push(row('accepted (202)', r.posts.accepted));
  out.push(row('POST answers by status', Object.entries(r.posts.byStatus).map(([k, v]) => `${k}: ${v}`).join(', ')));
  out.push(row('POSTs without an answer (server or Redis down)', r.posts.errors));
  out.push(row('outcomes', Object.entries(r.states).map(([k, v]) => `${k}: ${v}`).join(', ')));
  out.push(row('final state seen live / in a re-subscribe snapshot / read from the record', `${r.liveFinal} / ${r.snapshotFinal} / ${r.recordFinal}`));
  out.push(row('run a second time (their worker was killed)', r.rerun));
  out.push(row('lost', r.lost));
  out.push(row('completed twice (workers) / two final events (clients)', `${r.dupCompletions} / ${r.dupEvents}`));
  out.push(row('create to final event, p50 / p95 / p99 / max', `${r.latencyMs.p50} / ${r.latencyMs.p95} / ${r.latencyMs.p99} / ${r.latencyMs.max} ms`));
  out.push(row('events received', r.counters.events));
  out.push(row('reconnections / re-subscribes', `${r.reconnects} / ${r.counters.resubscribes}`));
  out.push(row('clients connected in', `${r.connectSeconds.toFixed(1)} s`));
  out.push(row('drain after the load stopped', `${r.drainSeconds.toFixed(1)} s`));
  out.push('');
  if (r.abuse) {
    const a = r.abuse;
    out.push('## Misbehaving clients');
    out.push('');
    out.push(`Four episodes between the faults, each against one server: ${r.options.floodSockets} sockets sending ${r.options.floodEvents} \`task:subscribe\` each, ` +
      `${r.options.stormCycles} connections closed right after their CONNECT (8 at a time), and ${r.options.holders} engine.io sessions that never authenticate; ` +
      'meanwhile a well-behaved client of that server times `GET /api/v1/tasks` every 50 ms (from the same Node process as the flood, so its times include that process\'s own load).');
    out.push('');
    out.push(row('what', 'number'));
    out.push(row('---', '---'));
    out.push(row('episodes', a.episodes.map((e) => `${e.server} at ${e.at.toFixed(0)} s (${e.seconds.toFixed(1)} s)`).join('; ')));
    out.push(row('flooding sockets closed by the server / events sent', `${a.floodersClosed} of ${a.flooders} / ${a.floodEvents}`));
    out.push(row('connect/close cycles', a.stormCycles));
    out.push(row('unauthenticated sessions held / refused', `${a.holders} / ${a.holdersRefused}`));
    out.push(row('probe GET /api/v1/tasks during the episodes: count, p50 / p99 / max', `${a.probe.count}, ${a.probe.p50?.toFixed(1)} / ${a.probe.p99?.toFixed(1)} / ${a.probe.max?.toFixed(1)} ms`));
    out.push(row('left at the end: sockets without a connection, unauthenticated sessions', a.leftovers.map((x, k) => `${r.servers[k].name} ${x.orphans}, ${x.unauthenticated}`).join('; ')));
    out.push('');
  }
  out.push('## Faults');
  out.push('');
  for (const f of r.faults) {
    const extra = Object.entries(f).filter(([k]) => !['what', 'at'].includes(k)).map(([k, v]) => `${k} ${v}`).join(', ');
    out.push(`- at ${f.at.toFixed(0)} s: ${f.what} (${extra})`);
  }
  out.push('');
  out.push('## Servers: goroutines and memory');
  out.push('');
  out.push('Baseline: idle, after a warm-up of 40 clients that connected and left, and three garbage collections. Peak: sampled every 2 s under load. ' +
    `Left: once every client left (goroutines back after ${r.goroutinesBackSeconds.toFixed(0)} s), as the runtime had it. ` +
    `Collected: after three garbage collections (the profiler's heap endpoint with gc=1) and the runtime returning the freed memory (${r.rssBackSeconds.toFixed(0)} s after the clients left). ` +
    'server-2 was restarted mid-run; its numbers are those of the new process, against the first one\'s baseline.');
  out.push('');
  out.push(row('server', 'goroutines baseline / peak / after', 'live heap MiB baseline / peak / collected', 'RSS MiB baseline / peak / left / collected'));
  out.push(row('---', '---', '---', '---'));
  for (const s of r.servers) {
    out.push(row(s.name, `${s.baseline.goroutines} / ${s.peak.goroutines} / ${s.after.goroutines}`,
      `${mib(s.baseline.live)} / ${mib(s.peak.live)} / ${mib(s.after.live)}`,
      `${mib(s.baseline.rss)} / ${mib(s.peak.rss)} / ${mib(s.uncollected.rss)} / ${mib(s.after.rss)}`));
  }
  out.push('');
  out.push(row('worker', 'goroutines baseline / after', 'RSS MiB baseline / after'));
  out.push(row('---', '---', '---'));
  for (const w of r.workers) {
    out.push(row(w.name, `${w.baseline?.goroutines ?? '-'} / ${w.after?.goroutines ?? '-'}`, `${w.baseline?.rss ? mib(w.baseline.rss) : '-'} / ${w.after?.rss ? mib(w.after.rss) : '-'}`));
  }
  out.push('');
  return out.join('\n');
}

main().catch((err) => {
  log(`error: ${err.stack ?? err}`);
  killAll();
  process.exit(1);
});
