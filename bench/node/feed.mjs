// feed: the benchmark's event source for the Node reference, with
// @socket.io/redis-emitter 5.1 on a node-redis client, as its documentation shows.
// It speaks the same line protocol as bench/gofeed (taskwire's emitter): one JSON
// command a line on stdin, one JSON answer a line on stdout; see gofeed/main.go.
//
// Like the emitter itself, it does not wait for each PUBLISH: node-redis pipelines
// them. A command is "done" once Redis has accepted every message it sent.

import readline from 'node:readline';

import { Emitter } from '@socket.io/redis-emitter';
import { createClient } from 'redis';

const url = process.env.REDIS_URL;
if (!url) {
  console.error('feed: REDIS_URL is not set');
  process.exit(1);
}

const client = createClient({ url });
client.on('error', (err) => console.error('feed: redis:', err.message));
await client.connect();

// Keeps the promises of PUBLISH so a command ends once Redis accepted them all.
let pending = [];
const publisher = {
  publish(channel, message) {
    const p = client.publish(channel, message);
    pending.push(p);
    return p;
  },
};
const emitter = new Emitter(publisher);

const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

async function emit(c) {
  const start = performance.now();
  const total = c.rooms.length * c.perRoom;
  let maxLag = 0;
  let i = 0;
  for (let seq = 0; seq < c.perRoom; seq++) {
    for (const room of c.rooms) {
      if (c.rate > 0) {
        const due = start + (i / c.rate) * 1000;
        const d = due - performance.now();
        if (d > 1) await sleep(d);
        else if (-d > maxLag) maxLag = -d;
      }
      (room === '' ? emitter : emitter.to(room)).emit('bench', {
        taskId: 'bench', seq, percent: ((seq + 1) * 100) / c.perRoom,
        done: seq + 1, total: c.perRoom, stage: 'rows', t: nowMs(),
      });
      i++;
      // Let node-redis write what was queued now and then when not pacing.
      if (c.rate <= 0 && i % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
  }
  await Promise.all(pending);
  pending = [];
  return { calls: total, ms: performance.now() - start, maxLagMs: maxLag };
}

say({ type: 'ready' });
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let c;
  try {
    c = JSON.parse(line);
    let r;
    if (c.cmd === 'emit') r = await emit(c);
    else throw new Error(`unknown command ${c.cmd}`);
    say({ type: 'done', id: c.id, ...r });
  } catch (err) {
    say({ type: 'error', id: c?.id, error: String(err.message) });
  }
}
await client.quit();
