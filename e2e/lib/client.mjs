// Helpers around the real socket.io-client: connect with a deadline, record every
// event a socket receives, and wait for one with a predicate and a deadline.

import { io } from 'socket.io-client';

import { onCleanup } from './proc.mjs';

/** Sockets opened by connect/connectNamespace and not yet closed. */
const open = new Set();

onCleanup(() => {
  for (const s of open) s.io.engine?.close();
});

/**
 * connect opens a socket.io-client socket to url (which may end with a namespace,
 * e.g. http://127.0.0.1:8080/admin) and resolves once it is connected (the
 * 'connect' event). It rejects with the server's reason on 'connect_error', or
 * after timeoutMs.
 *
 * Options (all optional):
 *  - token: sent as auth.token in the handshake (the taskwire server's identity)
 *  - auth: more handshake auth fields
 *  - transports: e.g. ['websocket'] or ['polling'] (default: polling then upgrade)
 *  - timeoutMs: default 5000
 *  - record: also attach a Recorder (returned as socket.recorder) before connecting,
 *    so not even the first event is missed (default true)
 *  - any other socket.io-client option (path, query, reconnection, forceNew...);
 *    forceNew defaults to true so each call gets its own connection, and
 *    reconnection defaults to false so a test sees disconnects as they happen.
 *
 * @param {string} url
 * @param {object} [opts]
 * @returns {Promise<import('socket.io-client').Socket & {recorder?: Recorder}>}
 */
export async function connect(url, opts = {}) {
  const { token, auth, timeoutMs = 5_000, record = true, ...ioOpts } = opts;
  const socket = io(url, {
    forceNew: true,
    reconnection: false,
    ...ioOpts,
    auth: { ...(auth ?? {}), ...(token !== undefined ? { token } : {}) },
  });
  return waitConnected(socket, url, timeoutMs, record);
}

/**
 * connectNamespace opens another namespace over the same connection (the same
 * Manager, multiplexed) as socket, and resolves once it is connected.
 *
 * @param {import('socket.io-client').Socket} socket
 * @param {string} nsp  e.g. '/admin'
 * @param {{auth?: object, token?: string, timeoutMs?: number, record?: boolean}} [opts]
 */
export async function connectNamespace(socket, nsp, opts = {}) {
  const { token, auth, timeoutMs = 5_000, record = true } = opts;
  const s = socket.io.socket(nsp, {
    auth: { ...(auth ?? {}), ...(token !== undefined ? { token } : {}) },
  });
  // With autoConnect (the default) the Manager already opened it; a second connect()
  // before the first is acknowledged would send a second CONNECT packet.
  if (!s.active) s.connect();
  return waitConnected(s, nsp, timeoutMs, record);
}

function waitConnected(socket, what, timeoutMs, record) {
  if (record) socket.recorder = new Recorder(socket);
  open.add(socket);
  socket.on('disconnect', () => {
    if (!socket.active) open.delete(socket);
  });
  return new Promise((resolve, reject) => {
    let lastError = '';
    const timer = setTimeout(() => {
      cleanup();
      socket.close();
      open.delete(socket);
      reject(new Error(`socket.io-client: no 'connect' from ${what} within ${timeoutMs} ms` +
        (lastError ? ` (last connect_error: ${lastError})` : '')));
    }, timeoutMs);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      // When the client will retry (a transport error with reconnection on), only give
      // up on the timeout; a refusal by the server (socket no longer active) or a
      // failure without reconnection is final.
      lastError = err?.message ?? String(err);
      if (socket.active && socket.io.reconnection()) return;
      cleanup();
      open.delete(socket);
      const extra = err?.data ? ` ${JSON.stringify(err.data)}` : '';
      reject(new Error(`socket.io-client: connect to ${what} failed: ${err?.message}${extra}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
}

/**
 * closeAll closes every socket opened by connect/connectNamespace (and their
 * connections). Call it from an after/afterEach hook.
 */
export function closeAll() {
  for (const s of open) {
    s.close();
    s.io.engine?.close();
  }
  open.clear();
}

/**
 * closeAllAndWait closes every socket like closeAll and resolves once their
 * connections are closed (for long-polling: once the close packet went out), or
 * after timeoutMs, so that the servers know before they are stopped.
 *
 * @param {number} [timeoutMs]
 * @returns {Promise<void>}
 */
export async function closeAllAndWait(timeoutMs = 2_000) {
  const engines = new Set([...open].map((s) => s.io.engine).filter((e) => e && e.readyState === 'open'));
  // A websocket is closed when the engine says so; long-polling sends a close packet
  // with a POST, done when its transport drains.
  const closed = [...engines].map((e) => new Promise((resolve) => {
    if (e.transport?.name === 'polling') e.transport.once('drain', resolve);
    else e.once('close', resolve);
  }));
  closeAll();
  let timer;
  await Promise.race([
    Promise.all(closed),
    new Promise((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}

/**
 * @typedef {object} RecordedEvent
 * @property {string} event  the event name; 'connect', 'disconnect', 'connect_error'
 *   for the socket's own events, and 'io:close', 'io:error', 'io:reconnect'... for
 *   those of its Manager (the underlying connection)
 * @property {any[]} args
 * @property {number} seq   position in this recorder, from 0
 * @property {number} at    Date.now() when it arrived
 */

/**
 * Recorder records every event a socket receives, in order: all custom events
 * (through onAny), the socket's connect/disconnect/connect_error, and the close,
 * error and reconnect events of its Manager as 'io:<name>'.
 */
export class Recorder {
  /** @param {import('socket.io-client').Socket} socket */
  constructor(socket) {
    this.socket = socket;
    /** @type {RecordedEvent[]} */
    this.events = [];
    this._waiters = new Set();
    this._onAny = (event, ...args) => this._push(event, args);
    socket.onAny(this._onAny);
    this._own = {};
    for (const ev of ['connect', 'disconnect', 'connect_error']) {
      this._own[ev] = (...args) => this._push(ev, args);
      socket.on(ev, this._own[ev]);
    }
    this._mgr = {};
    for (const ev of ['close', 'error', 'reconnect', 'reconnect_attempt', 'reconnect_failed']) {
      this._mgr[ev] = (...args) => this._push(`io:${ev}`, args);
      socket.io.on(ev, this._mgr[ev]);
    }
  }

  _push(event, args) {
    const e = { event, args, seq: this.events.length, at: Date.now() };
    this.events.push(e);
    for (const w of this._waiters) w(e);
  }

  /**
   * mark returns the current position; pass it as `since` to waitFor or all to
   * look only at events that arrive after it.
   *
   * @returns {number}
   */
  mark() {
    return this.events.length;
  }

  /**
   * all returns the recorded events named event (every event when omitted), from
   * position since.
   *
   * @param {string} [event]
   * @param {{since?: number}} [opts]
   * @returns {RecordedEvent[]}
   */
  all(event, { since = 0 } = {}) {
    return this.events.filter((e) => e.seq >= since && (event === undefined || e.event === event));
  }

  /**
   * names returns the names of the events recorded since position since.
   *
   * @param {{since?: number}} [opts]
   * @returns {string[]}
   */
  names({ since = 0 } = {}) {
    return this.all(undefined, { since }).map((e) => e.event);
  }

  /**
   * count returns how many events named event were recorded.
   *
   * @param {string} event
   * @returns {number}
   */
  count(event) {
    return this.all(event).length;
  }

  /**
   * waitFor resolves with the first event named event (or any of the names, when
   * event is an array) whose args satisfy predicate
   * (default: any), among those already recorded from position since (default 0)
   * and those still to come. It rejects after timeoutMs with a message that lists
   * what was received.
   *
   * @param {string | string[]} event
   * @param {(...args: any[]) => boolean} [predicate]
   * @param {number} [timeoutMs]
   * @param {{since?: number, label?: string}} [opts]  label names the socket in messages
   * @returns {Promise<RecordedEvent>}
   */
  waitFor(event, predicate = () => true, timeoutMs = 5_000, { since = 0, label } = {}) {
    const names = Array.isArray(event) ? event : [event];
    const match = (e) => e.seq >= since && names.includes(e.event) && predicate(...e.args);
    const found = this.events.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = (e) => {
        if (!match(e)) return;
        clearTimeout(timer);
        this._waiters.delete(waiter);
        resolve(e);
      };
      const timer = setTimeout(() => {
        this._waiters.delete(waiter);
        const who = label ?? `socket ${this.socket.id ?? '(no id)'} (${this.socket.nsp})`;
        const got = this.all(undefined, { since })
          .map((e) => `${e.event} ${safeJSON(e.args)}`)
          .slice(-20)
          .join('\n    ');
        reject(new Error(`${who}: no '${names.join("' or '")}' event matching within ${timeoutMs} ms; ` +
          `received since mark ${since}:\n    ${got || '(nothing)'}`));
      }, timeoutMs);
      this._waiters.add(waiter);
    });
  }

  /** stop detaches the recorder from the socket. */
  stop() {
    this.socket.offAny(this._onAny);
    for (const [ev, fn] of Object.entries(this._own)) this.socket.off(ev, fn);
    for (const [ev, fn] of Object.entries(this._mgr)) this.socket.io.off(ev, fn);
    this._waiters.clear();
  }
}

/**
 * recordEvents attaches a Recorder to socket (or returns the one connect attached).
 *
 * @param {import('socket.io-client').Socket & {recorder?: Recorder}} socket
 * @returns {Recorder}
 */
export function recordEvents(socket) {
  if (!socket.recorder) socket.recorder = new Recorder(socket);
  return socket.recorder;
}

/**
 * toBuffer turns a binary value as socket.io-client delivers it (Buffer, ArrayBuffer,
 * a typed array) into a Buffer, and returns null for anything else.
 *
 * @param {unknown} v
 * @returns {Buffer | null}
 */
export function toBuffer(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return null;
}

function safeJSON(v) {
  try {
    const s = JSON.stringify(v, (_, x) => {
      // Buffers reach the replacer already turned into {type: 'Buffer', data}.
      if (x && x.type === 'Buffer' && Array.isArray(x.data)) {
        return { $bin: Buffer.from(x.data).toString('base64') };
      }
      const b = toBuffer(x);
      return b ? { $bin: b.toString('base64') } : x;
    });
    return s.length > 300 ? `${s.slice(0, 300)}...` : s;
  } catch {
    return String(v);
  }
}
