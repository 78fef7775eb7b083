// run.mjs: the emitter benchmark, taskwire's Go emitter against Node's
// @socket.io/redis-emitter 5.1, on one machine in one run. It starts its own
// redis-server (never touching another), installs the Node side (npm ci) when
// needed, runs both sides on the same workload against that server, alternating
// them, prints one table and writes RESULTS.md.
//
//   bench/emitter/run.sh [--runs 3] [--messages 100000] [--quick]
//
// --quick (a smoke run, as `make test` may do): 1 run of 5000 messages, no file
// written unless --write is given too.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const quick = flag('--quick');
const runs = opt('--runs', quick ? 1 : 3);
const messages = opt('--messages', quick ? 5000 : 100_000);
const serialMessages = Math.max(1000, Math.round(messages / 5));
const write = !quick || flag('--write');
const ROOMS = [1, 10, 100];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(cmd, argv, { env = {}, cwd = here, timeoutMs = 30 * 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${cmd} ${argv.join(' ')}: no result after ${timeoutMs} ms`));
    }, timeoutMs);
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${argv.join(' ')} exited with ${code}:\n${err.slice(-3000)}${out.slice(-3000)}`));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskwire-bench-redis-'));
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--loglevel', 'warning'], { stdio: 'ignore' });
  const stop = () => { try { p.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', stop);
  for (const deadline = Date.now() + 10_000; ;) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.write('PING\r\n'); });
      c.on('data', (d) => { c.destroy(); resolve(String(d).startsWith('+PONG')); });
      c.on('error', () => resolve(false));
    });
    if (ok) return { port, url: `redis://127.0.0.1:${port}/0`, addr: `127.0.0.1:${port}`, stop };
    if (Date.now() > deadline) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// goBench runs the Go benchmarks matching re with b.N = n and returns
// {name: {emitsPerSec, nsPerOp, bytes, allocs}}.
async function goBench(re, n, env, dir = here) {
  const out = await run('go', ['test', '-run', '^$', '-bench', re, '-benchmem', `-benchtime=${n}x`, '-count=1', './'],
    { env: { GOWORK: 'off', ...env }, cwd: dir });
  const res = {};
  for (const line of out.split('\n')) {
    const m = line.match(/^Benchmark(\S+?)-\d+\s+\d+\s+([\d.]+) ns\/op(?:\s+([\d.]+) emits\/s)?\s+([\d.]+) B\/op\s+([\d.]+) allocs\/op/);
    if (m) res[m[1]] = { nsPerOp: Number(m[2]), emitsPerSec: m[3] ? Number(m[3]) : 1e9 / Number(m[2]), bytes: Number(m[4]), allocs: Number(m[5]) };
  }
  if (Object.keys(res).length === 0) throw new Error(`no benchmark results:\n${out}`);
  return res;
}

async function nodeBench(mode, rooms, n, url) {
  const out = await run(process.execPath, [path.join(here, 'node', 'bench.mjs'), mode, String(rooms), String(n)], { env: { REDIS_URL: url } });
  return JSON.parse(out.trim().split('\n').pop()).emitsPerSec;
}

function versionOf(cmd, argv) {
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8' }).trim().split('\n')[0];
  } catch {
    return 'unknown';
  }
}

// Node side: install once.
if (!fs.existsSync(path.join(here, 'node_modules', '@socket.io', 'redis-emitter'))) {
  console.error('installing the Node side (npm ci)...');
  await run('npm', ['ci', '--no-audit', '--no-fund']);
}

const redis = await startRedis();
const loadBefore = os.loadavg();
const samples = {}; // key -> [values]
const add = (key, v) => { (samples[key] ??= []).push(v); };
const mem = {};
try {
  for (let r = 0; r < runs; r++) {
    console.error(`run ${r + 1}/${runs}`);
    for (const rooms of ROOMS) {
      add(`node/pipelined/${rooms}`, await nodeBench('pipelined', rooms, messages, redis.url));
      add(`node/serial/${rooms}`, await nodeBench('serial', rooms, serialMessages, redis.url));
    }
    const fast = await goBench('^BenchmarkPublish$/classic/(batch|parallel)', messages, { REDIS_BENCH_ADDR: redis.addr });
    const slow = await goBench('^BenchmarkPublish$/classic/serial', serialMessages, { REDIS_BENCH_ADDR: redis.addr });
    const sharded = await goBench('^BenchmarkPublish$/sharded/(batch-1000|serial|parallel-64-autopipeline)/rooms=1$', messages, { REDIS_BENCH_ADDR: redis.addr });
    for (const [name, v] of Object.entries({ ...fast, ...slow, ...sharded })) {
      add(`go/${name}`, v.emitsPerSec);
      mem[`go/${name}`] = v;
    }
  }
  const enc = await goBench('^(BenchmarkEncode|BenchmarkEmitNoRedis)$', quick ? 20_000 : 500_000, {}, path.join(here, '..', '..', 'emitter'));
  for (const [name, v] of Object.entries(enc)) mem[`enc/${name}`] = v;
} finally {
  redis.stop();
}
const loadAfter = os.loadavg();

const m = (key) => (samples[key] ? median(samples[key]) : NaN);
const fmt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const k = (x) => `${Math.round(x / 1000)}k`;
// cell: the median, and the range of the samples when there are several.
const cell = (key) => {
  const xs = samples[key];
  if (!xs) return 'n/a';
  return xs.length > 1 ? `${fmt(median(xs))} (${k(Math.min(...xs))}-${k(Math.max(...xs))})` : fmt(xs[0]);
};
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(1)}x` : 'n/a');

const rows = [];
for (const rooms of ROOMS) {
  const rs = `${rooms} room${rooms > 1 ? 's' : ''}/message`;
  const node = `node/pipelined/${rooms}`;
  rows.push([`one producer, ${rs}: Node emit() loop (pipelined) vs Go Batch of 1000`, node, `go/Publish/classic/batch-1000/rooms=${rooms}`]);
  rows.push([`one producer, ${rs}: Node emit() loop vs Go Batch of 100`, node, `go/Publish/classic/batch-100/rooms=${rooms}`]);
  rows.push([`many producers, ${rs}: Node emit() loop vs 64 goroutines on AutoPipeline`, node, `go/Publish/classic/parallel-64-autopipeline/rooms=${rooms}`]);
  rows.push([`many producers, ${rs}: Node emit() loop vs 64 goroutines, plain client`, node, `go/Publish/classic/parallel-64/rooms=${rooms}`]);
  rows.push([`waiting for each reply, ${rs}: Node await each vs one goroutine Emit`, `node/serial/${rooms}`, `go/Publish/classic/serial/rooms=${rooms}`]);
}

const table = [
  '| workload (emits/s: median (range) of ' + runs + ' runs) | Node @socket.io/redis-emitter 5.1 | taskwire emitter | taskwire / Node (medians) |',
  '|---|---:|---:|---:|',
  ...rows.map(([w, n, g]) => `| ${w} | ${cell(n)} | ${cell(g)} | ${ratio(m(g), m(n))} |`),
].join('\n');

const shardedTable = [
  '| sharded (SPUBLISH), 1 room/message | taskwire emitter (emits/s) |',
  '|---|---:|',
  `| one goroutine, Batch of 1000 | ${cell('go/Publish/sharded/batch-1000/rooms=1')} |`,
  `| 64 goroutines on AutoPipeline | ${cell('go/Publish/sharded/parallel-64-autopipeline/rooms=1')} |`,
  `| one goroutine, Emit waiting for each reply | ${cell('go/Publish/sharded/serial/rooms=1')} |`,
  '',
  'Node has no sharded emitter.',
].join('\n');

const memRows = Object.entries(mem)
  .filter(([k]) => k.startsWith('enc/') || /\/(serial|batch-1000)\/rooms=1$/.test(k))
  .map(([k, v]) => `| ${k.replace(/^enc\//, 'emitter: ').replace(/^go\//, 'with Redis: ')} | ${v.nsPerOp.toFixed(0)} | ${v.bytes} | ${v.allocs} |`);
const memTable = ['| benchmark (per message) | ns/op | B/op | allocs/op |', '|---|---:|---:|---:|', ...memRows].join('\n');

const machine = [
  `- ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB; load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${loadAfter.map((x) => x.toFixed(2)).join(' ')} after`,
  `- ${versionOf('go', ['version'])}; node ${process.version}; ${versionOf('redis-server', ['--version'])}`,
  `- ${runs} run(s), Node and Go alternating against one redis-server started for the run (no subscribers); ${messages} messages per pipelined/batch/parallel sample, ${serialMessages} per serial one`,
].join('\n');

console.log(`\n${table}\n\n${shardedTable}\n\n${memTable}\n\n${machine}`);

if (write) {
  const doc = `# Emitter throughput: taskwire vs Node's @socket.io/redis-emitter

Written by \`bench/emitter/run.sh\` (\`node bench/emitter/run.mjs\`); numbers change with the
machine and its load: compare the ratios, rerun to check.

## Workload

Each message is one \`task:progress\` event (a worker's progress payload: taskId, seq, percent,
done, total, stage) to the room of one of 1000 tasks, or to 10 or 100 rooms at once; classic
format (PUBLISH). Both sides publish to the same freshly started redis-server, on the same
machine, in the same run, alternating. The Node side (\`node/bench.mjs\`) is
\`@socket.io/redis-emitter\` 5.1.0 on \`redis\` 4.7.1; the Go side is \`publish_bench_test.go\`
(go-redis 9.23).

How each side produces:

- **Node emit() loop**: \`emitter.to(room).emit(...)\` in a loop; the emitter does not wait for
  Redis and reports no error, node-redis writes the queued PUBLISHes together (implicit
  pipelining). This is what one Node process can push.
- **Go Batch of N**: one goroutine, \`em.Batch(ctx, fn)\` queuing N emits, published in one
  pipeline; every message's error is reported.
- **64 goroutines on AutoPipeline**: \`emitter.New(rdb.AutoPipeline())\` (go-redis's
  experimental autopipelining), each Emit waits for its own reply while concurrent commands
  travel together.
- **64 goroutines, plain client**: each Emit is a round trip on a pooled connection.
- **waiting for each reply**: one command in flight (Node \`await\` per publish; one goroutine
  calling Emit): round-trip bound on both sides.

## Results

${table}

Reading them: a producer that does not wait for replies is what Node's emitter is, and
there taskwire's counterparts (Batch, or AutoPipeline for concurrent producers) are the
fair comparison. "64 goroutines, plain client" is below Node because each Emit is then a
round trip of its own on a pooled connection; use Batch or AutoPipeline. "Waiting for
each reply" is bound by the round trip on both sides and swings the most with the
machine's load (other processes share these 2 CPUs), so its ratio is the least telling.

${shardedTable}

## Cost per message

\`emitter:\` rows are the emitter alone (no Redis; \`BenchmarkEncode\`, \`BenchmarkEmitNoRedis\` in
\`emitter/bench_test.go\`); \`with Redis:\` rows include go-redis.

${memTable}

## Machine

${machine}
`;
  fs.writeFileSync(path.join(here, 'RESULTS.md'), doc);
  console.error(`wrote ${path.relative(process.cwd(), path.join(here, 'RESULTS.md'))}`);
}
