// A pool of client processes (bench/node/clients.mjs), each driving a share of
// the sockets of a scenario.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { spawnProcess } from '../../e2e/lib/proc.mjs';
import { LineRpc } from './stacks.mjs';

const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * CONNECT_RATE is how many clients connect per second, all processes together:
 * a steady ramp, as load generators do, rather than thousands of handshakes at
 * the same instant.
 */
export const CONNECT_RATE = 1000;

/** SOCKETS_PER_PROCESS is how many sockets one client process drives at most. */
export const SOCKETS_PER_PROCESS = 500;

export class ClientPool {
  /**
   * @param {number} processes
   */
  constructor(processes) {
    this.procs = Array.from({ length: processes }, (_, i) => spawnProcess(process.execPath,
      ['--max-old-space-size=4096', path.join(benchDir, 'node', 'clients.mjs')],
      { name: `clients-${i + 1}`, stdin: true }));
    this.rpcs = this.procs.map((p) => new LineRpc(p));
  }

  /** processesFor returns how many client processes n sockets get. */
  static processesFor(n) {
    return Math.max(1, Math.ceil(n / SOCKETS_PER_PROCESS));
  }

  async ready() {
    await Promise.all(this.procs.map((p) => p.waitForLine(/^\{"type":"ready"\}$/, 20_000, { stream: 'stdout' })));
  }

  /**
   * connect spreads auths over the processes (round robin) and connects them all.
   *
   * @returns {Promise<{ok: number, stalls: number, errors: number, errorSample: string[], ms: number}>}
   */
  async connect(url, auths, { transports = ['websocket'], concurrency = 50, rate = CONNECT_RATE, timeoutMs = 10_000 } = {}) {
    const shares = this.rpcs.map(() => []);
    auths.forEach((a, i) => shares[i % shares.length].push(a));
    const perProcess = rate > 0 ? rate / this.rpcs.length : 0;
    const answers = await Promise.all(this.rpcs.map((rpc, i) => rpc.call(
      { cmd: 'connect', url, auths: shares[i], transports, concurrency, rate: perProcess, timeoutMs },
      'connected', timeoutMs + 10_000 + shares[i].length * 200)));
    return {
      ok: sum(answers, 'ok'),
      stalls: sum(answers, 'stalls'),
      errors: sum(answers, 'errors'),
      errorSample: answers.flatMap((a) => a.errorSample).slice(0, 5),
      ms: Math.max(...answers.map((a) => a.ms)),
    };
  }

  async arm(perSocket) {
    await Promise.all(this.rpcs.map((rpc) => rpc.call({ cmd: 'arm', perSocket }, 'armed', 10_000)));
  }

  async status() {
    const answers = await Promise.all(this.rpcs.map((rpc) => rpc.call({ cmd: 'status' }, 'status', 10_000)));
    return { received: sum(answers, 'received'), dups: sum(answers, 'dups'), disconnects: sum(answers, 'disconnects') };
  }

  async report() {
    const answers = await Promise.all(this.rpcs.map((rpc) => rpc.call({ cmd: 'report' }, 'report', 30_000)));
    return {
      received: sum(answers, 'received'),
      dups: sum(answers, 'dups'),
      unexpected: sum(answers, 'unexpected'),
      disconnects: sum(answers, 'disconnects'),
      lat: answers.flatMap((a) => a.lat),
    };
  }

  async tasks(cmd, timeoutMs) {
    const answers = await Promise.all(this.rpcs.map((rpc) => rpc.call({ cmd: 'tasks', ...cmd }, 'tasks', timeoutMs)));
    return {
      started: sum(answers, 'started'),
      completed: sum(answers, 'completed'),
      failed: sum(answers, 'failed'),
      errorSample: answers.flatMap((a) => a.errorSample).slice(0, 5),
      firstProgress: answers.flatMap((a) => a.firstProgress),
      completion: answers.flatMap((a) => a.completion),
    };
  }

  async close() {
    await Promise.allSettled(this.rpcs.map((rpc) => rpc.call({ cmd: 'close' }, 'closed', 10_000)));
    await Promise.all(this.procs.map((p) => p.kill()));
  }
}

function sum(list, key) {
  return list.reduce((s, x) => s + (x[key] ?? 0), 0);
}

/** percentile returns the p-th percentile (0..100) of sorted values (nearest rank). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** sortedNumbers returns the values as a sorted Float64Array. */
export function sortedNumbers(values) {
  const a = Float64Array.from(values);
  a.sort();
  return a;
}
