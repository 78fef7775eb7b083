// A TCP proxy in front of taskwire servers, standing for the load balancer or the
// network between a browser and the cluster: each new connection goes to the next
// backend of the current list (round robin), and the list can change while it runs
// (a draining server leaves the rotation, as a Kubernetes Service drops a pod that
// is terminating). It can also hold websocket upgrade requests back, for a while or
// until the test releases them, as a slow network would, so that a client stays on
// polling until a known moment.
//
// Round robin breaks long-polling sessions across several backends (their
// requests may land on different servers): with more than one backend, clients
// should use the websocket transport.

import net from 'node:net';

/**
 * @typedef {object} TcpProxy
 * @property {number} port
 * @property {string} url  http://127.0.0.1:<port>
 * @property {(backends: number[]) => void} setBackends  ports of the servers for new connections
 * @property {{backend: number, websocket: boolean, at: number}[]} connections  every connection so far
 * @property {() => void} releaseWebsockets  forward the held websocket connections, and
 *   from now on all of them at once
 * @property {() => void} cut  cut every connection open now (the listener stays; with
 *   setBackends([]) first, new connections are refused too: a network partition)
 * @property {() => Promise<void>} close  stop listening and cut every connection
 */

/**
 * startTcpProxy listens on a free 127.0.0.1 port and forwards every connection to
 * one of backends (ports on 127.0.0.1). holdWebsocketMs delays the forwarding of
 * connections whose first request asks for a websocket upgrade; holdWebsockets holds
 * them until releaseWebsockets() is called.
 *
 * @param {{backends: number[], holdWebsocketMs?: number, holdWebsockets?: boolean,
 *   t?: {after: (fn: () => any) => void}}} opts
 * @returns {Promise<TcpProxy>}
 */
export async function startTcpProxy({ backends, holdWebsocketMs = 0, holdWebsockets = false, t }) {
  let list = [...backends];
  let held = holdWebsockets ? [] : null;
  let next = 0;
  const sockets = new Set();
  const connections = [];
  const timers = new Set();

  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    client.once('data', (first) => {
      client.pause();
      if (list.length === 0) {
        client.destroy();
        return;
      }
      const backend = list[next++ % list.length];
      const head = first.toString('latin1', 0, Math.min(first.length, 4096));
      const websocket = /\r\nupgrade:\s*websocket/i.test(head);
      connections.push({ backend, websocket, at: Date.now() });
      const forward = () => {
        if (client.destroyed) return;
        const upstream = net.connect({ port: backend, host: '127.0.0.1' });
        sockets.add(upstream);
        upstream.on('close', () => {
          sockets.delete(upstream);
          client.destroy();
        });
        upstream.on('error', () => upstream.destroy());
        client.on('close', () => upstream.destroy());
        upstream.write(first);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      };
      if (websocket && held) {
        held.push(forward);
      } else if (websocket && holdWebsocketMs > 0) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          forward();
        }, holdWebsocketMs);
        timers.add(timer);
      } else {
        forward();
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  server.unref(); // its connections keep the process alive, not the listener
  const { port } = server.address();
  const proxy = {
    port,
    url: `http://127.0.0.1:${port}`,
    connections,
    setBackends(ports) {
      list = [...ports];
    },
    releaseWebsockets() {
      const waiting = held ?? [];
      held = null;
      for (const forward of waiting) forward();
    },
    cut() {
      for (const s of sockets) s.destroy();
    },
    async close() {
      held = null;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
  t?.after(() => proxy.close());
  return proxy;
}
