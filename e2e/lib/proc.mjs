// Child processes for end-to-end tests: spawn, read their output line by line, wait
// for a line, stop them, and make sure none outlives the test file.
//
// Every wait is bounded and fails with a message that names the process and shows
// the end of its output. Every process started here is killed when the test file's
// process exits (normally, on an uncaught error, or on SIGINT/SIGTERM), and
// `kill()` only ever signals the process group this module created.

import { spawn } from 'node:child_process';
import net from 'node:net';

/** How many output lines a handle keeps (older ones are dropped). */
const MAX_LINES = 5000;

/** Processes started by this module and not yet exited, by pid. */
const live = new Map();

/** Cleanup functions registered with onCleanup, run once at exit. */
const cleanups = new Set();

let exitHooksInstalled = false;

function installExitHooks() {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL whatever is left.
  process.on('exit', () => {
    for (const fn of cleanups) {
      try {
        fn();
      } catch {
        // best effort at exit
      }
    }
    for (const h of live.values()) h._killSync('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      // process.exit runs the 'exit' handler above.
      process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[sig]));
    });
  }
}

/**
 * onCleanup registers a synchronous function that runs when the process exits, for
 * resources that are not child processes (temporary directories...). It returns a
 * function that unregisters it.
 *
 * @param {() => void} fn
 * @returns {() => void}
 */
export function onCleanup(fn) {
  installExitHooks();
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/**
 * withTimeout resolves or rejects like promise, or rejects with an Error whose
 * message is `message` (a string or a function returning one) after timeoutMs.
 *
 * @template T
 * @param {Promise<T>} promise
 * @param {number} timeoutMs
 * @param {string | (() => string)} message
 * @returns {Promise<T>}
 */
export function withTimeout(promise, timeoutMs, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(typeof message === 'function' ? message() : message));
    }, timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * freePort asks the kernel for a free TCP port on 127.0.0.1. Another process may
 * take it before it is used; callers that bind it themselves should retry.
 *
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * @typedef {object} Line
 * @property {'stdout' | 'stderr'} stream
 * @property {string} text
 * @property {number} seq  position in the process's output, from 0
 */

/**
 * @typedef {object} ExitInfo
 * @property {number | null} code
 * @property {string | null} signal
 */

/**
 * ProcessHandle is a running child process started by spawnProcess.
 */
export class ProcessHandle {
  /** @param {import('node:child_process').ChildProcess} child @param {string} name */
  constructor(child, name, echo) {
    /** @type {string} the name used in messages */
    this.name = name;
    /** @type {number} */
    this.pid = child.pid;
    /** @type {Line[]} every line so far (up to the last 5000) */
    this.lines = [];
    /** @type {ExitInfo | null} set once the process has exited */
    this.exitInfo = null;
    this._child = child;
    this._seq = 0;
    this._waiters = new Set();
    this._echo = echo;
    /** @type {Promise<ExitInfo>} resolves when the process has exited (never rejects) */
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this.pid);
        resolve(this.exitInfo);
        for (const w of this._waiters) w.onExit(this.exitInfo);
      });
    });
    this._readLines(child.stdout, 'stdout');
    this._readLines(child.stderr, 'stderr');
  }

  /** @returns {string[]} the stdout lines so far */
  get stdoutLines() {
    return this.lines.filter((l) => l.stream === 'stdout').map((l) => l.text);
  }

  /** @returns {string[]} the stderr lines so far */
  get stderrLines() {
    return this.lines.filter((l) => l.stream === 'stderr').map((l) => l.text);
  }

  /** @returns {boolean} whether the process is still running */
  get running() {
    return this.exitInfo === null;
  }

  /**
   * mark returns a position in the output; pass it as `since` to waitForLine to
   * ignore lines printed before it.
   *
   * @returns {number}
   */
  mark() {
    return this._seq;
  }

  /**
   * tail returns the last n lines of output (both streams), for error messages.
   *
   * @param {number} [n]
   * @returns {string}
   */
  tail(n = 30) {
    return this.lines
      .slice(-n)
      .map((l) => `  [${this.name} ${l.stream}] ${l.text}`)
      .join('\n');
  }

  _readLines(stream, name) {
    if (!stream) return;
    stream.setEncoding('utf8');
    let buf = '';
    const push = (text) => {
      const line = { stream: name, text, seq: this._seq++ };
      this.lines.push(line);
      if (this.lines.length > MAX_LINES) this.lines.splice(0, this.lines.length - MAX_LINES);
      if (this._echo) process.stderr.write(`[${this.name} ${name}] ${text}\n`);
      for (const w of this._waiters) w.onLine(line);
    };
    stream.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        push(buf.slice(0, i).replace(/\r$/, ''));
        buf = buf.slice(i + 1);
      }
    });
    stream.on('end', () => {
      if (buf) push(buf);
      buf = '';
    });
  }

  /**
   * waitForLine resolves with the match of the first line (stdout or stderr) that
   * matches, looking at lines already printed (from position `since`, see mark;
   * default 0) and at future ones. re is a RegExp (the result is its match array) or
   * a function of the line's text (the result is what it returns, when truthy). It
   * rejects when timeoutMs passes or the process exits first.
   *
   * @param {RegExp | ((text: string) => any)} re
   * @param {number} [timeoutMs]
   * @param {{since?: number, stream?: 'stdout' | 'stderr', what?: string}} [opts]
   *   what: describes the line in error messages
   * @returns {Promise<any>}
   */
  waitForLine(re, timeoutMs = 10_000, { since = 0, stream, what } = {}) {
    const matcher = typeof re === 'function' ? re : (text) => text.match(re);
    what ??= typeof re === 'function' ? 'the awaited line' : `a line matching ${re}`;
    const test = (l) => l.seq >= since && (!stream || l.stream === stream) && matcher(l.text);
    for (const l of this.lines) {
      const m = test(l);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        onLine: (l) => {
          const m = test(l);
          if (m) done(null, m);
        },
        onExit: (info) => {
          done(new Error(`${this.name} exited (code ${info.code}, signal ${info.signal}) ` +
            `before printing ${what}; its output:\n${this.tail()}`));
        },
      };
      const timer = setTimeout(() => {
        done(new Error(`${this.name} did not print ${what} within ${timeoutMs} ms; ` +
          `its output:\n${this.tail()}`));
      }, timeoutMs);
      const done = (err, m) => {
        clearTimeout(timer);
        this._waiters.delete(waiter);
        if (err) reject(err);
        else resolve(m);
      };
      this._waiters.add(waiter);
      if (this.exitInfo) waiter.onExit(this.exitInfo);
    });
  }

  /**
   * write sends text to the process's stdin.
   *
   * @param {string} text
   */
  write(text) {
    if (!this._child.stdin || this._child.stdin.destroyed) {
      throw new Error(`${this.name}: stdin is closed`);
    }
    this._child.stdin.write(text);
  }

  /** closeStdin ends the process's stdin (many tools exit at EOF). */
  closeStdin() {
    this._child.stdin?.end();
  }

  _killSync(signal) {
    if (!this.running) return;
    try {
      // Negative pid: the process group created for this child (detached), so
      // grandchildren (a shell, `go run`) go too; nothing else is in that group.
      process.kill(-this.pid, signal);
    } catch {
      try {
        process.kill(this.pid, signal);
      } catch {
        // already gone
      }
    }
  }

  /**
   * kill sends signal (default SIGTERM) and waits for the process to exit; if it is
   * still running after timeoutMs it is killed with SIGKILL. Resolves with how it
   * exited. Calling it on an exited process just returns that.
   *
   * @param {NodeJS.Signals} [signal]
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<ExitInfo>}
   */
  async kill(signal = 'SIGTERM', { timeoutMs = 5_000 } = {}) {
    if (!this.running) return this.exitInfo;
    this._killSync(signal);
    let timer;
    const forced = new Promise((resolve) => {
      timer = setTimeout(() => {
        this._killSync('SIGKILL');
        resolve();
      }, timeoutMs);
    });
    await Promise.race([this.exited, forced]);
    clearTimeout(timer);
    return this.exited;
  }

  /**
   * signal sends a signal without waiting (SIGSTOP/SIGCONT to freeze a process...).
   *
   * @param {NodeJS.Signals} signal
   */
  signal(signal) {
    this._killSync(signal);
  }
}

/**
 * spawnProcess starts cmd with args as a child process in its own process group and
 * returns a handle that collects its output lines.
 *
 * Options:
 *  - env: variables added to (or, with inheritEnv: false, replacing) process.env;
 *    a value of undefined removes a variable
 *  - name: used in error messages (default: the command's base name)
 *  - cwd: working directory
 *  - stdin: true to keep a pipe to its stdin (see write/closeStdin); default ignored
 *  - echo: copy its output to this process's stderr as it comes (also when the
 *    environment variable E2E_ECHO is set), handy when debugging a test
 *  - t: a node:test context (or anything with an after(fn) method); the process is
 *    killed when that test or suite ends
 *
 * Whatever happens, the process is killed when this Node process exits.
 *
 * @param {string} cmd
 * @param {string[]} [args]
 * @param {{env?: Record<string, string | undefined>, name?: string, cwd?: string,
 *   stdin?: boolean, echo?: boolean, inheritEnv?: boolean,
 *   t?: {after: (fn: () => any) => void}}} [opts]
 * @returns {ProcessHandle}
 */
export function spawnProcess(cmd, args = [], opts = {}) {
  installExitHooks();
  const env = { ...(opts.inheritEnv === false ? {} : process.env) };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = String(v);
  }
  const name = opts.name ?? cmd.split('/').pop();
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env,
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.on('error', () => {}); // reported through exit / waits
  if (child.pid === undefined) {
    // spawn failed (ENOENT, EACCES...): the error event comes later; say it now.
    throw new Error(`${name}: could not start ${cmd} (not found or not executable)`);
  }
  child.stdin?.on('error', () => {}); // EPIPE when it exits while we write
  const echo = opts.echo ?? Boolean(process.env.E2E_ECHO);
  const h = new ProcessHandle(child, name, echo);
  live.set(h.pid, h);
  opts.t?.after(() => h.kill());
  return h;
}

/**
 * killAll kills every process started by spawnProcess that is still running and
 * waits for them to exit.
 *
 * @returns {Promise<void>}
 */
export async function killAll() {
  await Promise.all([...live.values()].map((h) => h.kill()));
}

/**
 * waitForHttp polls url (GET) until it answers 200, and rejects after timeoutMs
 * with the last status or error seen.
 *
 * @param {string} url
 * @param {number} [timeoutMs]
 * @param {{intervalMs?: number, process?: ProcessHandle}} [opts]  process: fail
 *   early (with its output) if it exits while we wait
 * @returns {Promise<Response>}
 */
export async function waitForHttp(url, timeoutMs = 10_000, { intervalMs = 50, process: proc } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  for (;;) {
    if (proc && !proc.running) {
      throw new Error(`waitForHttp ${url}: ${proc.name} exited (code ${proc.exitInfo.code}); ` +
        `its output:\n${proc.tail()}`);
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new Error(`waitForHttp ${url}: no 200 within ${timeoutMs} ms (last: ${last})` +
        (proc ? `; ${proc.name} output:\n${proc.tail()}` : ''));
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(Math.max(1, Math.min(left, 2_000))) });
      if (res.status === 200) return res;
      last = `status ${res.status}`;
      await res.body?.cancel();
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(1, deadline - Date.now()))));
  }
}
