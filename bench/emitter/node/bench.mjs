// bench.mjs runs the emitter workload of RESULTS.md with Node's
// @socket.io/redis-emitter 5.1 (redis 4.7 client) and prints one JSON line:
// {"workload", "messages", "seconds", "emitsPerSec"}.
//
//   REDIS_URL=redis://127.0.0.1:6379/0 node node/bench.mjs <mode> <rooms> <messages>
//
// mode "pipelined": emit() in a loop without waiting, as an application does (the
//   emitter returns at once; node-redis writes the queued PUBLISHes together), then
//   wait for every reply: what one Node process can push;
// mode "serial": wait for each PUBLISH's reply before the next emit, the
//   counterpart of one goroutine calling Emit.
// rooms: 1 (one of 1000 task rooms per message), 10 or 100 rooms per message.
//
// The payload and rooms are those of publish_bench_test.go.

import { Emitter } from '@socket.io/redis-emitter';
import { createClient } from 'redis';

const [mode = 'pipelined', roomsArg = '1', messagesArg = '100000'] = process.argv.slice(2);
const rooms = Number(roomsArg);
const messages = Number(messagesArg);
if (!['pipelined', 'serial'].includes(mode) || !(rooms >= 1) || !(messages >= 1)) {
  console.error('usage: node node/bench.mjs pipelined|serial <rooms> <messages>');
  process.exit(2);
}
const url = process.env.REDIS_URL;
if (!url) {
  console.error('bench: REDIS_URL is not set');
  process.exit(2);
}

const client = createClient({ url });
client.on('error', (err) => console.error('bench: redis:', err.message));
await client.connect();

// The emitter does not return the PUBLISH promise; this wrapper keeps the last one
// so the benchmark can wait for Redis (serial) or for the end (pipelined).
let last = null;
const publisher = {
  publish(channel, message) {
    last = client.publish(channel, message);
    return last;
  },
};
const emitter = new Emitter(publisher);

const taskRooms = Array.from({ length: 1000 }, (_, i) => `task:${i}`);
const target = (i) => {
  if (rooms <= 1) return emitter.to(taskRooms[i % taskRooms.length]);
  const start = (i * rooms) % (taskRooms.length - rooms);
  return emitter.to(taskRooms.slice(start, start + rooms));
};
const payload = (i) => ({ taskId: '01JD5R3Q0S7X9ZK2M4N6P8B0CD', seq: i, percent: 37.5, done: 375000, total: 1000000, stage: 'rows' });

async function run(n) {
  const start = process.hrtime.bigint();
  if (mode === 'serial') {
    for (let i = 0; i < n; i++) {
      target(i).emit('task:progress', payload(i));
      await last;
    }
  } else {
    const pending = new Array(n);
    for (let i = 0; i < n; i++) {
      target(i).emit('task:progress', payload(i));
      pending[i] = last;
      // Yield now and then, as a real program does between its own events; it
      // also lets node-redis flush its queue while the loop goes on.
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(pending);
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

await run(Math.min(5000, messages)); // warm-up: JIT, connection
const seconds = await run(messages);
process.stdout.write(`${JSON.stringify({ workload: `${mode}/rooms=${rooms}`, messages, seconds, emitsPerSec: messages / seconds })}\n`);
await client.quit();
