// The two stacks under test, started the same way: a server process (measured),
// an event feed process (not measured) and the handshake auth of each client.
//
//   node:     bench/node/ref-server.mjs  (socket.io + @socket.io/redis-adapter)
//             bench/node/feed.mjs        (@socket.io/redis-emitter)
//   taskwire: taskwire-server            (this repository)
//             gofeed                     (taskwire's Go emitter)

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort, spawnProcess, waitForHttp } from '../../e2e/lib/proc.mjs';

const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** SECRET signs the taskwire sessions of a run (at least 32 bytes). */
const SECRET = 'bench-secret-bench-secret-bench-secret';

/**
 * LineRpc sends one JSON command a line to a process and resolves with the first
 * JSON answer of the expected type printed after it (or of type "error", which
 * rejects). Commands run one at a time.
 */
export class LineRpc {
  /** @param {import('../../e2e/lib/proc.mjs').ProcessHandle} proc */
  constructor(proc) {
    this.proc = proc;
    this.queue = Promise.resolve();
  }

  /**
   * @param {object} cmd
   * @param {string} type  the answer's type
   * @param {number} timeoutMs
   * @returns {Promise<any>}
   */
  call(cmd, type, timeoutMs) {
    const run = async () => {
      const since = this.proc.mark();
      this.proc.write(`${JSON.stringify(cmd)}\n`);
      const want = `{"type":"${type}"`;
      const answer = await this.proc.waitForLine((text) => {
        if (text.startsWith(want) || text.startsWith('{"type":"error"')) return JSON.parse(text);
        return null;
      }, timeoutMs, { since, stream: 'stdout', what: `the answer to ${cmd.cmd}` });
      if (answer.type === 'error') throw new Error(`${this.proc.name}: ${cmd.cmd}: ${answer.error}`);
      return answer;
    };
    const p = this.queue.then(run);
    this.queue = p.catch(() => {});
    return p;
  }
}

/**
 * @typedef {object} Stack
 * @property {'node' | 'taskwire'} kind
 * @property {string} url        the server's base URL
 * @property {number} pid        the server process (the one measured)
 * @property {import('../../e2e/lib/proc.mjs').ProcessHandle} proc
 * @property {LineRpc} feed
 * @property {(n: number, shared?: boolean) => Promise<{auths: object[], rooms: string[]}>} clients
 *   handshake auth of n clients and the room each is in (shared: all in one room)
 * @property {() => Promise<void>} stop
 */

/**
 * startStack starts the server and the feed of one stack against redisUrl.
 *
 * @param {'node' | 'taskwire'} kind
 * @param {{redisUrl: string, binDir: string, pprofAddr?: string, env?: Record<string, string>}} opts
 * @returns {Promise<Stack>}
 */
export async function startStack(kind, { redisUrl, binDir, pprofAddr, env = {} }) {
  let proc;
  let url;
  if (kind === 'node') {
    proc = spawnProcess(process.execPath, [path.join(benchDir, 'node', 'ref-server.mjs')], {
      name: 'node-server', env: { REDIS_URL: redisUrl, PORT: '0', ...env },
    });
    const [, port] = await proc.waitForLine(/^listening (\d+)$/, 20_000);
    url = `http://127.0.0.1:${port}`;
  } else {
    const port = await freePort();
    proc = spawnProcess(path.join(binDir, 'taskwire-server'), [], {
      name: 'taskwire-server',
      env: {
        HTTP_ADDR: `127.0.0.1:${port}`, REDIS_URL: redisUrl, TASKWIRE_SECRET: SECRET, LOG_LEVEL: 'warn',
        ...(pprofAddr ? { PPROF_ADDR: pprofAddr } : {}), ...env,
      },
    });
    url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/readyz`, 20_000, { process: proc });
  }

  const feedProc = kind === 'node'
    ? spawnProcess(process.execPath, [path.join(benchDir, 'node', 'feed.mjs')], { name: 'node-feed', env: { REDIS_URL: redisUrl }, stdin: true })
    : spawnProcess(path.join(binDir, 'gofeed'), [], { name: 'go-feed', env: { REDIS_URL: redisUrl }, stdin: true });
  await feedProc.waitForLine(/^\{"type":"ready"\}$/, 20_000, { stream: 'stdout' });

  const clients = kind === 'node'
    ? async (n, shared = false) => {
      const rooms = Array.from({ length: n }, (_, i) => (shared ? 'user:all' : `user:${i}`));
      return { auths: rooms.map((r) => ({ rooms: [r] })), rooms };
    }
    : async (n, shared = false) => {
      // One identity per client (its user room), or one for all (a shared room).
      const tokens = shared ? Array(n).fill(await newToken(url)) : await mapLimit(n, 32, () => newToken(url));
      return {
        auths: tokens.map((token) => ({ token })),
        rooms: tokens.map((token) => `user:${token.split('.')[1]}`),
      };
    };

  return {
    kind,
    url,
    pid: proc.pid,
    proc,
    feed: new LineRpc(feedProc),
    clients,
    stop: async () => {
      feedProc.closeStdin();
      await Promise.all([feedProc.kill(), proc.kill()]);
    },
  };
}

/** newToken asks a taskwire server for a new anonymous session. */
async function newToken(url) {
  const res = await fetch(`${url}/api/v1/session`);
  const body = await res.json();
  if (res.status !== 200 || typeof body.token !== 'string') {
    throw new Error(`GET /api/v1/session: ${res.status} ${JSON.stringify(body)}`);
  }
  return body.token;
}

/** mapLimit runs fn(i) for i in [0, n) with at most limit at once, in order. */
export async function mapLimit(n, limit, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return out;
}

/**
 * startWorkers starts n taskwire-worker processes (for the task path).
 *
 * @param {number} n
 * @param {{redisUrl: string, binDir: string, concurrency: number, rowDelay?: string}} opts
 *   rowDelay: EXPORT_ROW_DELAY, which makes a short export last a little
 */
export function startWorkers(n, { redisUrl, binDir, concurrency, rowDelay = '0' }) {
  return Array.from({ length: n }, (_, i) => spawnProcess(path.join(binDir, 'taskwire-worker'), [], {
    name: `taskwire-worker-${i + 1}`,
    env: {
      REDIS_URL: redisUrl, WORKER_CONCURRENCY: String(concurrency), METRICS_ADDR: 'off', LOG_LEVEL: 'warn',
      EXPORT_ROW_DELAY: rowDelay,
    },
  }));
}
