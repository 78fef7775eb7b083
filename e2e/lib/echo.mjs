// The echo servers the conformance tests run against: taskwire-echo
// (server/cmd/taskwire-echo, our stack) and its Node reference
// (node/echo-server.mjs: socket.io 4.8 or engine.io 6), configured as the official
// protocol test suites expect (ping interval 300 ms, ping timeout 200 ms, max
// payload 1,000,000, connect timeout 1000 ms, CORS open).

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildBinaries } from './build.mjs';
import { spawnProcess } from './proc.mjs';

const nodeDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'node');

/** ECHO is the package of taskwire-echo, for buildBinaries. */
export const ECHO = Object.freeze({ echo: './server/cmd/taskwire-echo' });

/** The settings both echo servers run with. */
export const SETTINGS = Object.freeze({ pingInterval: 300, pingTimeout: 200, maxPayload: 1_000_000, connectTimeout: 1000 });

/**
 * @typedef {object} EchoServer
 * @property {string} name  e.g. "taskwire-echo", "taskwire-echo+redis", "node"
 * @property {string} url   http://127.0.0.1:<port>
 * @property {string} path  "/socket.io/" or "/engine.io/"
 * @property {import('./proc.mjs').ProcessHandle} proc
 * @property {() => Promise<void>} stop
 */

/**
 * startEcho starts an echo server on a free port and resolves once it serves.
 * impl 'go' runs taskwire-echo (built once per run, or from $TASKWIRE_BIN_DIR),
 * with our Redis adapter on redisUrl when given; impl 'node' runs the reference.
 *
 * @param {{impl: 'go' | 'node', protocol: 'socketio' | 'engineio', redisUrl?: string,
 *   t?: {after: (fn: () => any) => void}, timeoutMs?: number}} opts
 * @returns {Promise<EchoServer>}
 */
export async function startEcho({ impl, protocol, redisUrl, t, timeoutMs = 15_000 }) {
  let proc;
  let name;
  if (impl === 'go') {
    const bins = await buildBinaries({ binaries: ECHO, names: ['echo'] });
    if (!bins.paths.echo) throw new Error(`taskwire-echo not available: ${bins.missing.echo}`);
    const args = ['-protocol', protocol, '-addr', '127.0.0.1:0'];
    if (redisUrl) args.push('-redis', redisUrl);
    name = redisUrl ? 'taskwire-echo+redis' : 'taskwire-echo';
    proc = spawnProcess(bins.paths.echo, args, { name: `${name} ${protocol}`, t });
  } else if (impl === 'node') {
    if (redisUrl) throw new Error('startEcho: the Node reference runs without Redis');
    name = 'node';
    proc = spawnProcess(process.execPath, [path.join(nodeDir, 'echo-server.mjs')], {
      name: `node-echo ${protocol}`,
      env: { PROTOCOL: protocol, PORT: '0' },
      t,
    });
  } else {
    throw new Error(`startEcho: unknown impl ${impl}`);
  }
  const [, port] = await proc.waitForLine(/^listening (\d+)$/, timeoutMs, { stream: 'stdout' });
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    path: protocol === 'socketio' ? '/socket.io/' : '/engine.io/',
    proc,
    stop: () => proc.kill().then(() => {}),
  };
}
