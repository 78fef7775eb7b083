// echo-server: the Node reference of taskwire-echo (server/cmd/taskwire-echo), as
// the official protocol test suites configure it: socket.io 4.8 or engine.io 6,
// ping interval 300 ms, ping timeout 200 ms, max payload 1,000,000 bytes, CORS
// open, and for Socket.IO a connect timeout of 1000 ms.
//
// Environment: PROTOCOL (socketio, the default, or engineio), PORT (0 or unset:
// any free port). It prints "listening <port>" once it serves.
//
// socketio: on "/" and "/custom", every socket is sent "auth" with its handshake's
// auth on connection; "message" is answered with "message-back" and the same
// arguments; "message-with-ack" is acknowledged with the same arguments.
// engineio: an Engine.IO server at /engine.io/ that sends every message back.

import http from 'node:http';

import { Server as EngineServer } from 'engine.io';
import { Server } from 'socket.io';

const protocol = process.env.PROTOCOL || 'socketio';
const settings = { pingInterval: 300, pingTimeout: 200, maxHttpBufferSize: 1e6, cors: { origin: '*' } };

const httpServer = http.createServer();
let close;
if (protocol === 'socketio') {
  const io = new Server(httpServer, { ...settings, connectTimeout: 1000, serveClient: false });
  for (const nsp of [io.of('/'), io.of('/custom')]) {
    nsp.on('connection', (socket) => {
      socket.emit('auth', socket.handshake.auth);
      socket.on('message', (...args) => socket.emit('message-back', ...args));
      socket.on('message-with-ack', (...args) => {
        const ack = args.pop();
        if (typeof ack === 'function') ack(...args);
      });
    });
  }
  close = () => io.close();
} else if (protocol === 'engineio') {
  const engine = new EngineServer({ ...settings, path: '/engine.io/' });
  engine.attach(httpServer, { path: '/engine.io/' });
  engine.on('connection', (socket) => {
    socket.on('message', (data) => socket.send(data));
  });
  close = () => engine.close();
} else {
  console.error(`echo-server: PROTOCOL ${JSON.stringify(protocol)} is not socketio or engineio`);
  process.exit(2);
}

await new Promise((resolve) => httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', resolve));
console.log(`listening ${httpServer.address().port}`);

const stop = () => {
  close();
  httpServer.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
