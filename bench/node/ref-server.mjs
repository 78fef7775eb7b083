// ref-server: the Node reference stack of the benchmark, written the way its
// documentation shows: a socket.io 4.8 server with the classic
// @socket.io/redis-adapter 8.3 on REDIS_URL (node-redis clients). A client joins
// the rooms listed in its handshake auth.rooms, nothing else happens per socket.
//
// Environment: REDIS_URL (required), PORT (0: any free port).
// Prints "listening <port>" once the adapter is subscribed and the port is open.

import http from 'node:http';

import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';

const url = process.env.REDIS_URL;
if (!url) {
  console.error('ref-server: REDIS_URL is not set');
  process.exit(1);
}

const pub = createClient({ url });
const sub = pub.duplicate();
for (const c of [pub, sub]) c.on('error', (err) => console.error(`ref-server: redis: ${err.message}`));
await Promise.all([pub.connect(), sub.connect()]);

const httpServer = http.createServer();
const io = new Server(httpServer, { adapter: createAdapter(pub, sub), serveClient: false });

io.on('connection', (socket) => {
  const rooms = socket.handshake.auth?.rooms;
  if (Array.isArray(rooms)) socket.join(rooms.map(String));
});

// The adapter subscribed when the main namespace was created; this subscription is
// queued after it, so once it is confirmed the adapter's is too.
await sub.subscribe(`bench-ready#${process.pid}`, () => {});
await new Promise((resolve) => httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', resolve));
console.log(`listening ${httpServer.address().port}`);

const stop = async () => {
  io.close();
  await Promise.allSettled([pub.quit(), sub.quit()]);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
