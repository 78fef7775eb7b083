// sio-server: a Node socket.io 4.8 server with @socket.io/redis-adapter 8.3 (classic,
// pub/sub) on REDIS_URL, the reference the interop tests check emitters against.
//
// Environment: REDIS_URL (required), PORT (0 or unset: any free port), NAME (shown
// in its output), ADAPTER_KEY (the adapter's key, default "socket.io"),
// SERVER_EVENTS (comma-separated serverSideEmit event names to listen to).
//
// Namespaces "/" and "/admin". A client joins the rooms listed in its handshake
// auth.rooms. It prints one line per fact, for the test to wait on:
//   listening <port>                              ready: adapter subscribed, port open
//   event {"type":"connection","nsp":..,"id":..}
//   event {"type":"join-room"|"leave-room","nsp":..,"room":..,"id":..}
//   event {"type":"disconnect","nsp":..,"id":..,"reason":..}
//   event {"type":"server-side","nsp":..,"event":..,"args":[..]}   (binary as {"$bin"})

import http from 'node:http';

import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';

import { toSpecValue } from '../lib/spec.mjs';

const url = process.env.REDIS_URL;
if (!url) {
  console.error('sio-server: REDIS_URL is not set');
  process.exit(1);
}
const name = process.env.NAME ?? 'sio';
const key = process.env.ADAPTER_KEY || 'socket.io';
const serverEvents = (process.env.SERVER_EVENTS ?? '').split(',').filter(Boolean);

const say = (obj) => process.stdout.write(`event ${JSON.stringify(obj)}\n`);

const pub = createClient({ url });
const sub = pub.duplicate();
for (const c of [pub, sub]) c.on('error', (err) => console.error(`${name}: redis: ${err.message}`));
await Promise.all([pub.connect(), sub.connect()]);

const httpServer = http.createServer();
const io = new Server(httpServer, { adapter: createAdapter(pub, sub, { key }) });

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
await sub.subscribe(`${key}-e2e-ready#${process.pid}`, () => {});

await new Promise((resolve) => httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', resolve));
console.log(`listening ${httpServer.address().port}`);

const stop = async () => {
  io.close();
  await Promise.allSettled([pub.quit(), sub.quit()]);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
