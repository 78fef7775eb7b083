// sio-server: a Node socket.io 4.8 server with @socket.io/redis-adapter 8.3 (classic,
// pub/sub) on REDIS_URL, the reference the interop tests check emitters against.
//
// Environment: REDIS_URL (required), PORT (0 or unset: any free port), NAME (shown
// in its output), ADAPTER_KEY (the adapter's key, default "socket.io"),
// SERVER_EVENTS (comma-separated serverSideEmit event names to listen to),
// ADAPTER=sharded for createShardedAdapter (Redis 7 SPUBLISH/SSUBSCRIBE; ADAPTER_KEY
// is then its channelPrefix) instead of the classic createAdapter, and
// SUBSCRIPTION_MODE (static, dynamic or dynamic-private; the adapter's default,
// dynamic, when unset) for the sharded adapter.
//
// Namespaces "/" and "/admin". A client joins the rooms listed in its handshake
// auth.rooms. It prints one line per fact, for the test to wait on:
//   listening <port>                              ready: adapter subscribed, port open
//   event {"type":"connection","nsp":..,"id":..}
//   event {"type":"join-room"|"leave-room","nsp":..,"room":..,"id":..}
//   event {"type":"disconnect","nsp":..,"id":..,"reason":..}
//   event {"type":"server-side","nsp":..,"event":..,"args":[..]}   (binary as {"$bin"})
//
// It also performs cluster operations read from stdin, one JSON object per line,
// {"n": <number>, "op": ..., "nsp": "/" (default), "to"/"in": room(s), "except": room(s),
// ...}, and answers each with one line, "result <json>" = {"n", "ok": true, "value"} or
// {"n", "ok": false, "error"}:
//   {"op":"emit", "args":[event, ...spec values]}         io.of(nsp).to().except().emit()
//   {"op":"socketsJoin"|"socketsLeave", "rooms": r}        .in().socketsJoin(r)
//   {"op":"disconnectSockets", "close": bool}              .in().disconnectSockets(close)
//   {"op":"fetchSockets"}    value: [{id, rooms, data}] of every server, and "ms", its duration
// An emit is answered once its message has been handed to Redis. Ranges of sockets
// ("in", "to", "except") work across the whole cluster, as in any Node application.

import http from 'node:http';
import readline from 'node:readline';

import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';

import { revive, toSpecValue } from '../lib/spec.mjs';

const url = process.env.REDIS_URL;
if (!url) {
  console.error('sio-server: REDIS_URL is not set');
  process.exit(1);
}
const name = process.env.NAME ?? 'sio';
const key = process.env.ADAPTER_KEY || 'socket.io';
const serverEvents = (process.env.SERVER_EVENTS ?? '').split(',').filter(Boolean);
const sharded = process.env.ADAPTER === 'sharded';

const say = (obj) => process.stdout.write(`event ${JSON.stringify(obj)}\n`);

const pub = createClient({ url });
const sub = pub.duplicate();
for (const c of [pub, sub]) c.on('error', (err) => console.error(`${name}: redis: ${err.message}`));
await Promise.all([pub.connect(), sub.connect()]);

const httpServer = http.createServer();
const adapter = sharded
  ? createShardedAdapter(pub, sub, {
    channelPrefix: key,
    ...(process.env.SUBSCRIPTION_MODE ? { subscriptionMode: process.env.SUBSCRIPTION_MODE } : {}),
  })
  : createAdapter(pub, sub, { key });
const io = new Server(httpServer, { adapter });

for (const nspName of ['/', '/admin']) {
  const nsp = io.of(nspName);
  nsp.adapter.on('join-room', (room, id) => say({ type: 'join-room', nsp: nspName, room, id }));
  nsp.adapter.on('leave-room', (room, id) => say({ type: 'leave-room', nsp: nspName, room, id }));
  nsp.on('connection', (socket) => {
    const rooms = socket.handshake.auth?.rooms;
    if (Array.isArray(rooms)) socket.join(rooms.map(String));
    say({ type: 'connection', nsp: nspName, id: socket.id });
    socket.on('disconnect', (reason) => say({ type: 'disconnect', nsp: nspName, id: socket.id, reason }));
  });
  for (const ev of serverEvents) {
    nsp.on(ev, (...args) => say({ type: 'server-side', nsp: nspName, event: ev, args: toSpecValue(args) }));
  }
}

// The adapter subscribes when each namespace is created; those commands are queued
// on `sub` before this one, so once it is confirmed they are too.
if (sharded) {
  await sub.sSubscribe(`${key}-e2e-ready#${process.pid}`, () => {});
} else {
  await sub.subscribe(`${key}-e2e-ready#${process.pid}`, () => {});
}

await new Promise((resolve) => httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', resolve));
console.log(`listening ${httpServer.address().port}`);

// Cluster operations from stdin (see the top of this file).
const target = (cmd) => {
  let op = io.of(cmd.nsp ?? '/');
  if (cmd.in !== undefined) op = op.in(cmd.in);
  if (cmd.to !== undefined) op = op.to(cmd.to);
  if (cmd.except !== undefined) op = op.except(cmd.except);
  return op;
};
const perform = async (cmd) => {
  switch (cmd.op) {
    case 'emit':
      target(cmd).emit(...revive(cmd.args));
      // The adapter's PUBLISH is queued on pub before this PING: once it answers,
      // Redis has the message.
      await pub.ping();
      return null;
    case 'socketsJoin':
      target(cmd).socketsJoin(cmd.rooms);
      await pub.ping();
      return null;
    case 'socketsLeave':
      target(cmd).socketsLeave(cmd.rooms);
      await pub.ping();
      return null;
    case 'disconnectSockets':
      target(cmd).disconnectSockets(Boolean(cmd.close));
      await pub.ping();
      return null;
    case 'fetchSockets': {
      const start = Date.now();
      const list = await target(cmd).fetchSockets();
      return {
        ms: Date.now() - start,
        sockets: list.map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), data: s.data ?? null })),
      };
    }
    default:
      throw new Error(`unknown op ${JSON.stringify(cmd.op)}`);
  }
};
readline.createInterface({ input: process.stdin, crlfDelay: Infinity }).on('line', async (line) => {
  if (!line.trim()) return;
  let n = null;
  try {
    const cmd = JSON.parse(line);
    n = cmd.n ?? null;
    const value = await perform(cmd);
    process.stdout.write(`result ${JSON.stringify({ n, ok: true, value })}\n`);
  } catch (err) {
    process.stdout.write(`result ${JSON.stringify({ n, ok: false, error: String(err?.message ?? err) })}\n`);
  }
});

const stop = async () => {
  io.close();
  await Promise.allSettled([pub.quit(), sub.quit()]);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
