// nodemit: the Node counterpart of emitter/internal/cmd/twemit, the control in the
// interop tests. It reads one emitter call spec per line on stdin (lib/spec.mjs),
// performs it with Node's @socket.io/redis-emitter against REDIS_URL, and prints
// "ok <n>" once Redis has accepted the message (or "error <n>: <message>"), n
// counting spec lines from 1. It exits at the end of its input.

import readline from 'node:readline';

import { Emitter } from '@socket.io/redis-emitter';
import { createClient } from 'redis';

import { applySpec } from '../lib/spec.mjs';

const url = process.env.REDIS_URL;
if (!url) {
  console.error('nodemit: REDIS_URL is not set');
  process.exit(1);
}

const client = createClient({ url });
client.on('error', (err) => console.error('nodemit: redis:', err.message));
await client.connect();

// The emitter does not wait for PUBLISH; this wrapper keeps the promises so that
// "ok" is printed only once Redis has accepted the message, as twemit does.
let pending = [];
const publisher = {
  publish(channel, message) {
    const p = client.publish(channel, message);
    pending.push(p);
    return p;
  },
};

let n = 0;
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  n++;
  pending = [];
  try {
    const spec = JSON.parse(line);
    if (spec.sharded) throw new Error("Node's @socket.io/redis-emitter has no sharded mode");
    const emitter = new Emitter(publisher, spec.key !== undefined ? { key: spec.key } : undefined);
    applySpec(emitter, spec);
    await Promise.all(pending);
    process.stdout.write(`ok ${n}\n`);
  } catch (err) {
    process.stdout.write(`error ${n}: ${String(err.message).replace(/\n/g, ' ')}\n`);
  }
}
await client.quit();
