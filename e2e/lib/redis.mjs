// A throwaway redis-server per test file: its own process on a free loopback port,
// no persistence, killed when the test file ends. Mirrors shared/redistest on the Go
// side.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { freePort, onCleanup, spawnProcess } from './proc.mjs';

/**
 * redisServerPath returns the redis-server to run: $REDIS_SERVER_BIN, or the one on
 * PATH. It throws a clear error when there is none.
 *
 * @returns {string}
 */
export function redisServerPath() {
  if (process.env.REDIS_SERVER_BIN) return process.env.REDIS_SERVER_BIN;
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('redis-server is not installed (not on PATH): the end-to-end tests start their ' +
      'own Redis. Install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) ' +
      'or point REDIS_SERVER_BIN at the binary.');
  }
}

/**
 * redisCommand sends one command to host:port over a fresh connection and resolves
 * with the raw first line of the reply (e.g. "+OK", ":3"); an error reply rejects.
 * It needs no client library.
 *
 * @param {number} port
 * @param {string[]} args
 * @param {{host?: string, timeoutMs?: number}} [opts]
 * @returns {Promise<string>}
 */
export function redisCommand(port, args, { host = '127.0.0.1', timeoutMs = 2_000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host });
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis ${host}:${port}: no reply to ${args[0]} within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (err, val) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(val);
    };
    sock.on('error', (err) => finish(new Error(`redis ${host}:${port}: ${err.code ?? err.message}`)));
    sock.on('connect', () => {
      let cmd = `*${args.length}\r\n`;
      for (const a of args) cmd += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
      sock.write(cmd);
    });
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\r\n');
      if (i < 0) return;
      const line = buf.slice(0, i);
      if (line.startsWith('-')) finish(new Error(`redis: ${line.slice(1)}`));
      else finish(null, line);
    });
  });
}

/**
 * @typedef {object} RedisServer
 * @property {number} port
 * @property {string} host  always 127.0.0.1
 * @property {string} url   redis://127.0.0.1:<port>/0
 * @property {number} pid   the redis-server's pid (changes after restart)
 * @property {() => Promise<void>} stop     kill it (SIGKILL; idempotent)
 * @property {(opts?: {downMs?: number}) => Promise<void>} restart  stop (SIGKILL), stay down
 *   downMs (default 0: the length of the outage, not a synchronisation), then start again
 *   on the same port and directory: empty, unless it runs with --appendonly yes (then it
 *   loads its append-only file, as a production Redis would)
 * @property {(ms: number) => Promise<void>} pause  CLIENT PAUSE ms ALL: every command (even
 *   CLIENT UNPAUSE) blocks until ms have passed; connections stay open
 * @property {(...args: string[]) => Promise<string>} command  one command, raw first reply line
 * @property {(n?: number) => string} tail  its last output lines
 */

/**
 * startRedis starts a redis-server on a free 127.0.0.1 port with no persistence
 * (--save '' --appendonly no, a temporary --dir) and resolves once it answers PING.
 * extraArgs come last, so ['--appendonly', 'yes', '--appendfsync', 'always'] turns
 * persistence on (the directory outlives restarts).
 *
 * Options: extraArgs (more command-line arguments, e.g. ['--maxmemory', '10mb']),
 * timeoutMs (how long to wait for it to be ready, default 10 s), t (a node:test
 * context: stop it when that test or suite ends). It is always stopped when the
 * Node process exits. It throws a clear error when redis-server is not installed.
 *
 * @param {{extraArgs?: string[], timeoutMs?: number, t?: {after: (fn: () => any) => void}}} [opts]
 * @returns {Promise<RedisServer>}
 */
export async function startRedis({ extraArgs = [], timeoutMs = 10_000, t } = {}) {
  const bin = redisServerPath();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskwire-e2e-redis-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));

  let proc = null;
  let port = 0;

  const launch = async () => {
    const p = spawnProcess(bin, [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--daemonize', 'no',
      '--loglevel', 'notice',
    ].concat(extraArgs), { name: `redis-server:${port}` });
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      if (!p.running) {
        throw new Error(`redis-server on port ${port} exited (code ${p.exitInfo.code}) before ` +
          `it was ready; its output:\n${p.tail()}`);
      }
      try {
        if ((await redisCommand(port, ['PING'], { timeoutMs: 1_000 })) === '+PONG') return p;
      } catch (err) {
        last = err.message;
      }
      if (Date.now() > deadline) {
        await p.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} not ready within ${timeoutMs} ms (${last}); ` +
          `its output:\n${p.tail()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  let lastErr;
  for (let attempt = 0; attempt < 5 && !proc; attempt++) {
    port = await freePort();
    try {
      proc = await launch();
    } catch (err) {
      lastErr = err; // most likely the port was taken meanwhile: try another
    }
  }
  if (!proc) throw lastErr;

  const server = {
    port,
    host: '127.0.0.1',
    url: `redis://127.0.0.1:${port}/0`,
    get pid() {
      return proc?.pid;
    },
    async stop() {
      const p = proc;
      proc = null;
      if (p) await p.kill('SIGKILL');
    },
    async restart({ downMs = 0 } = {}) {
      await server.stop();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      let err;
      for (let i = 0; i < 50; i++) {
        try {
          proc = await launch();
          return;
        } catch (e) {
          err = e; // the port may still be held for a moment
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw new Error(`redis restart on port ${port}: ${err.message}`);
    },
    async pause(ms) {
      await redisCommand(port, ['CLIENT', 'PAUSE', String(ms), 'ALL']);
    },
    command(...args) {
      return redisCommand(port, args);
    },
    tail(n) {
      return proc ? proc.tail(n) : '(stopped)';
    },
  };
  t?.after(() => server.stop());
  return server;
}
