// `make run-cluster` for tests: scripts/run-cluster.sh with prebuilt binaries, a
// free port for its sticky proxy and its own redis-server, and what it announces
// on standard output (every process's URL and pid) parsed into a handle.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { BINARIES, buildBinaries, repoRoot } from './build.mjs';
import { onCleanup, spawnProcess, withTimeout } from './proc.mjs';

/** CLUSTER_BINARIES are the binaries run-cluster.sh runs, by short name. */
export const CLUSTER_BINARIES = Object.freeze({
  server: BINARIES.server,
  worker: BINARIES.worker,
  proxy: './devtools/cmd/taskwire-proxy',
});

/**
 * clusterBinDir returns a directory holding taskwire-server, taskwire-worker and
 * taskwire-proxy (symbolic links to the binaries built for this test run, or
 * taken from $TASKWIRE_BIN_DIR), for the script's BIN.
 *
 * @returns {Promise<string>}
 */
export async function clusterBinDir() {
  const bins = await buildBinaries({ binaries: CLUSTER_BINARIES });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskwire-e2e-cluster-bin-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [name, pkg] of Object.entries(CLUSTER_BINARIES)) {
    if (!bins.paths[name]) throw new Error(`cannot run the cluster: ${name}: ${bins.missing[name]}`);
    fs.symlinkSync(bins.paths[name], path.join(dir, path.basename(pkg)));
  }
  return dir;
}

/**
 * @typedef {object} Member
 * @property {number} n    1, 2, ... in the order the script started them
 * @property {string} url  base URL (a worker's is that of its /healthz, /readyz, /metrics)
 * @property {number} pid
 */

/**
 * @typedef {object} Cluster
 * @property {string} url  the proxy's base URL, without the trailing slash
 * @property {string} redisUrl
 * @property {Member[]} servers
 * @property {Member[]} workers
 * @property {Member} proxy
 * @property {import('./proc.mjs').ProcessHandle} proc  the script
 * @property {() => Promise<import('./proc.mjs').ExitInfo>} stop  SIGTERM to the script
 *   (which stops what it started), SIGKILL to its process group after 20 s
 */

/**
 * startCluster runs scripts/run-cluster.sh (NO_BUILD=1, BIN from clusterBinDir,
 * PROXY_ADDR=127.0.0.1:0, its own redis-server) and resolves once it printed
 * `cluster ready <url>`. env adds variables for the script and the binaries
 * (SERVERS, WORKERS, EXPORT_ROW_DELAY, ...). With t, it is stopped when that test
 * or suite ends; always when the test file's process exits.
 *
 * @param {{env?: Record<string, string | undefined>, timeoutMs?: number,
 *   t?: {after: (fn: () => any) => void}}} [opts]
 * @returns {Promise<Cluster>}
 */
export async function startCluster({ env = {}, timeoutMs = 90_000, t } = {}) {
  const bin = await clusterBinDir();
  const proc = spawnProcess('bash', [path.join(repoRoot, 'scripts', 'run-cluster.sh')], {
    name: 'run-cluster',
    cwd: repoRoot,
    env: {
      NO_BUILD: '1',
      BIN: bin,
      PROXY_ADDR: '127.0.0.1:0',
      REDIS_URL: undefined, // the script starts its own redis-server
      SERVER_PORTS: undefined,
      WORKER_PORTS: undefined,
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT: '3s',
      WORKER_SHUTDOWN_TIMEOUT: '3s',
      ...env,
    },
  });
  const stop = () => proc.kill('SIGTERM', { timeoutMs: 20_000 });
  t?.after(stop);
  const ready = await proc.waitForLine(/^cluster ready (\S+)$/, timeoutMs, { stream: 'stdout', what: '"cluster ready <url>"' });
  const members = (kind) => proc.stdoutLines
    .map((l) => l.match(new RegExp(`^cluster ${kind} (\\d+) (\\S+) pid (\\d+)$`)))
    .filter(Boolean)
    .map((m) => ({ n: Number(m[1]), url: m[2].replace(/\/$/, ''), pid: Number(m[3]) }));
  const proxy = proc.stdoutLines.map((l) => l.match(/^cluster proxy (\S+) pid (\d+)$/)).find(Boolean);
  const redis = proc.stdoutLines.map((l) => l.match(/^cluster redis (\S+)/)).find(Boolean);
  return {
    url: ready[1].replace(/\/$/, ''),
    redisUrl: redis?.[1],
    servers: members('server'),
    workers: members('worker'),
    proxy: proxy && { n: 1, url: proxy[1].replace(/\/$/, ''), pid: Number(proxy[2]) },
    proc,
    stop,
  };
}

/**
 * killMember sends SIGKILL to one server or worker of the cluster (by the pid the
 * script announced) and resolves once the script reported that it exited.
 *
 * @param {Cluster} cluster
 * @param {Member} member
 * @param {string} kind  'server' or 'worker'
 */
export async function killMember(cluster, member, kind) {
  const mark = cluster.proc.mark();
  process.kill(member.pid, 'SIGKILL');
  await withTimeout(
    cluster.proc.waitForLine((l) => l.includes(`${kind}-${member.n} (pid ${member.pid}) exited`), 10_000,
      { since: mark, what: `the report that ${kind}-${member.n} exited` }),
    11_000, `${kind}-${member.n} did not exit after SIGKILL`);
}
