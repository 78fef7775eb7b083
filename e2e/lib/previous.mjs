// The binaries of the previous release, built from its commit in this
// repository's history, for the tests of mixed deployments (an old server with
// new workers, a rolling update).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { repoRoot } from './build.mjs';

/**
 * PREVIOUS_RELEASE is the commit of the release before kinds were learnt from
 * the workers: one queue stream for every task, export compiled into the server.
 */
export const PREVIOUS_RELEASE = 'abb56ca';

/**
 * buildPrevious returns the paths of taskwire-server and taskwire-worker built
 * from commit (its source taken with git archive into a cache directory under
 * the system temporary directory; built once per commit).
 *
 * @param {string} [commit]
 * @returns {{server: string, worker: string}}
 */
export function buildPrevious(commit = PREVIOUS_RELEASE) {
  const dir = path.join(os.tmpdir(), `taskwire-e2e-release-${commit}`);
  const bin = path.join(dir, 'bin');
  const out = { server: path.join(bin, 'taskwire-server'), worker: path.join(bin, 'taskwire-worker') };
  if (fs.existsSync(out.server) && fs.existsSync(out.worker)) return out;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(bin, { recursive: true });
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  const tar = execFileSync('git', ['-C', repoRoot, 'archive', '--format=tar', commit], { maxBuffer: 1 << 30, timeout: 60_000 });
  execFileSync('tar', ['-x', '-C', src], { input: tar, timeout: 60_000 });
  for (const [name, pkg] of [['server', './server/cmd/taskwire-server'], ['worker', './worker/cmd/taskwire-worker']]) {
    execFileSync('go', ['build', '-o', out[name], pkg], { cwd: src, stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 });
  }
  return out;
}
