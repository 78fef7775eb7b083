// What the benchmark reads of the machine and of the processes it measures: CPU
// time and resident memory from /proc (Linux only), and the notes written with the
// results.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

let clkTck = 0;

/** ticksPerSecond returns the kernel's clock ticks per second (CLK_TCK). */
export function ticksPerSecond() {
  if (!clkTck) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/**
 * cpuSeconds returns the user + system CPU time of process pid (all its threads,
 * not its children), in seconds, from /proc/<pid>/stat.
 *
 * @param {number} pid
 * @returns {number}
 */
export function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / ticksPerSecond();
}

/**
 * rssBytes returns the resident set size of process pid (VmRSS), in bytes.
 *
 * @param {number} pid
 * @returns {number}
 */
export function rssBytes(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  return m ? Number(m[1]) * 1024 : 0;
}

/** threads returns the number of threads of process pid. */
export function threads(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = status.match(/^Threads:\s+(\d+)/m);
  return m ? Number(m[1]) : 0;
}

function cmd(file, args) {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'not found';
  }
}

/**
 * machineNotes describes the machine and the software the results came from.
 *
 * @param {string} repoRoot
 * @returns {Record<string, string>}
 */
export function machineNotes(repoRoot) {
  const cpus = os.cpus();
  const commit = cmd('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const dirty = cmd('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'server', 'emitter', 'shared', 'worker']);
  return {
    date: new Date().toISOString(),
    cores: `${cpus.length} x ${cpus[0]?.model ?? 'unknown'}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    go: cmd('go', ['version']),
    node: process.version,
    redis: cmd(process.env.REDIS_SERVER_BIN || 'redis-server', ['--version']),
    commit: commit + (dirty && dirty !== 'not found' ? ' (with uncommitted changes)' : ''),
    'ulimit -n': cmd('sh', ['-c', 'ulimit -n']),
  };
}
