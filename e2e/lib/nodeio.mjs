// Reference Node processes for interop tests: a socket.io 4.8 server with the
// classic @socket.io/redis-adapter (node/sio-server.mjs), and emitter drivers that
// perform call specs (lib/spec.mjs) with taskwire's Go emitter (twemit) or Node's
// @socket.io/redis-emitter (node/nodemit.mjs), through the same line protocol.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { spawnProcess } from './proc.mjs';

const nodeDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'node');

/**
 * @typedef {object} NodeServer
 * @property {string} name
 * @property {number} port
 * @property {string} url   http://127.0.0.1:<port>
 * @property {import('./proc.mjs').ProcessHandle} proc
 * @property {(pred: (ev: object) => boolean, opts?: {timeoutMs?: number, since?: number, what?: string}) => Promise<object>} waitEvent
 *   resolves with the first reported fact (see node/sio-server.mjs: connection,
 *   join-room, leave-room, disconnect, server-side) satisfying pred
 * @property {() => number} mark  position in its output, for waitEvent's since
 * @property {(cmd: object, opts?: {timeoutMs?: number}) => Promise<any>} command
 *   performs a cluster operation (see node/sio-server.mjs: emit, socketsJoin,
 *   socketsLeave, disconnectSockets, fetchSockets) and resolves with its value;
 *   rejects with the server's error
 * @property {() => Promise<void>} stop
 */

/**
 * startNodeServer starts node/sio-server.mjs (namespaces "/" and "/admin"; clients
 * join the rooms in their handshake auth.rooms) on a free port and resolves once it
 * listens with its adapter subscribed.
 *
 * @param {{redisUrl: string, name?: string, key?: string, serverEvents?: string[],
 *   adapter?: 'classic' | 'sharded', subscriptionMode?: 'static' | 'dynamic' | 'dynamic-private',
 *   timeoutMs?: number, t?: {after: (fn: () => any) => void}}} opts
 *   serverEvents: serverSideEmit event names it reports; adapter 'sharded' runs
 *   createShardedAdapter (key is its channelPrefix) with subscriptionMode (default:
 *   the adapter's, dynamic)
 * @returns {Promise<NodeServer>}
 */
export async function startNodeServer({ redisUrl, name = 'sio', key, serverEvents = [], adapter, subscriptionMode, timeoutMs = 15_000, t }) {
  const proc = spawnProcess(process.execPath, [path.join(nodeDir, 'sio-server.mjs')], {
    name: `node-server ${name}`,
    env: { REDIS_URL: redisUrl, NAME: name, PORT: '0', ADAPTER_KEY: key, SERVER_EVENTS: serverEvents.join(','),
      ADAPTER: adapter, SUBSCRIPTION_MODE: subscriptionMode },
    stdin: true,
    t,
  });
  const [, port] = await proc.waitForLine(/^listening (\d+)$/, timeoutMs);
  let n = 0;
  return {
    name,
    port: Number(port),
    url: `http://127.0.0.1:${port}`,
    proc,
    mark: () => proc.mark(),
    waitEvent(pred, { timeoutMs: ms = 5_000, since = 0, what = 'the awaited event' } = {}) {
      return proc.waitForLine((text) => {
        if (!text.startsWith('event ')) return null;
        const ev = JSON.parse(text.slice(6));
        return pred(ev) ? ev : null;
      }, ms, { since, what: `event: ${what}`, stream: 'stdout' });
    },
    async command(cmd, { timeoutMs: ms = 10_000 } = {}) {
      const id = ++n;
      const since = proc.mark();
      proc.write(`${JSON.stringify({ ...cmd, n: id })}\n`);
      const res = await proc.waitForLine((text) => {
        if (!text.startsWith('result ')) return null;
        const r = JSON.parse(text.slice(7));
        return r.n === id ? r : null;
      }, ms, { since, stream: 'stdout', what: `the result of ${JSON.stringify(cmd).slice(0, 200)}` });
      if (!res.ok) throw new Error(`node-server ${name}: ${cmd.op}: ${res.error}`);
      return res.value;
    },
    stop: () => proc.kill().then(() => {}),
  };
}

/**
 * @typedef {object} EmitterDriver
 * @property {string} kind  'go' or 'node'
 * @property {(spec: object, opts?: {timeoutMs?: number}) => Promise<void>} perform
 *   performs one call spec; resolves once Redis accepted the message, rejects with
 *   the driver's error
 * @property {import('./proc.mjs').ProcessHandle} proc
 * @property {() => Promise<void>} stop
 */

/**
 * startEmitterDriver starts an emitter driver against redisUrl: kind 'go' runs the
 * twemit binary (its path in twemitPath, see build.mjs), kind 'node' runs
 * node/nodemit.mjs with @socket.io/redis-emitter.
 *
 * @param {'go' | 'node'} kind
 * @param {{redisUrl: string, twemitPath?: string, t?: {after: (fn: () => any) => void}}} opts
 * @returns {EmitterDriver}
 */
export function startEmitterDriver(kind, { redisUrl, twemitPath, t }) {
  let cmd;
  let args;
  if (kind === 'go') {
    if (!twemitPath) throw new Error('startEmitterDriver go: twemitPath is required');
    [cmd, args] = [twemitPath, []];
  } else if (kind === 'node') {
    [cmd, args] = [process.execPath, [path.join(nodeDir, 'nodemit.mjs')]];
  } else {
    throw new Error(`startEmitterDriver: unknown kind ${kind}`);
  }
  const proc = spawnProcess(cmd, args, { name: `emitter-${kind}`, env: { REDIS_URL: redisUrl }, stdin: true, t });
  let n = 0;
  let queue = Promise.resolve();
  const perform = (spec, { timeoutMs = 5_000 } = {}) => {
    // One spec at a time, in order: the answer to line n is "ok n" / "error n: ...".
    const run = async () => {
      const id = ++n;
      const since = proc.mark();
      proc.write(`${JSON.stringify(spec)}\n`);
      const m = await proc.waitForLine(new RegExp(`^(ok|error) ${id}(?::\\s*(.*))?$`), timeoutMs,
        { since, stream: 'stdout', what: `the answer to spec ${id} ${JSON.stringify(spec).slice(0, 200)}` });
      if (m[1] === 'error') throw new Error(`emitter-${kind}: spec ${JSON.stringify(spec)}: ${m[2]}`);
    };
    const p = queue.then(run);
    queue = p.catch(() => {});
    return p;
  };
  return {
    kind,
    perform,
    proc,
    stop: async () => {
      proc.closeStdin();
      await proc.kill();
    },
  };
}
