// A raw Engine.IO v4 / Socket.IO v5 client for the conformance tests: it speaks the
// wire format itself (no engine.io-client, no socket.io-client), over a websocket
// (the ws package) or HTTP long-polling (fetch), so that a test sees and sends
// exactly the packets the specs describe. Every wait is bounded.

import WebSocket from 'ws';

/** RS is the record separator between the packets of a polling payload. */
export const RS = '\x1e';

/**
 * decodePayload splits a polling payload into its packets: text packets as
 * strings ("4hello"), binary ones ("b" + base64) as Buffers.
 *
 * @param {string} body
 * @returns {(string | Buffer)[]}
 */
export function decodePayload(body) {
  if (body === '') return [];
  return body.split(RS).map((p) => (p.startsWith('b') ? Buffer.from(p.slice(1), 'base64') : p));
}

/**
 * encodePayload joins packets (strings, or Buffers for binary messages) into a
 * polling payload.
 *
 * @param {(string | Buffer)[]} packets
 * @returns {string}
 */
export function encodePayload(packets) {
  return packets.map((p) => (Buffer.isBuffer(p) ? `b${p.toString('base64')}` : p)).join(RS);
}

/**
 * request sends one HTTP request and resolves with its status, body (text) and
 * headers; it rejects after timeoutMs.
 *
 * @param {string} url
 * @param {{method?: string, body?: string | Buffer, headers?: Record<string, string>, timeoutMs?: number}} [opts]
 * @returns {Promise<{status: number, body: string, headers: Headers}>}
 */
export async function request(url, { method = 'GET', body, headers, timeoutMs = 5_000 } = {}) {
  const res = await fetch(url, { method, body, headers, signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

/**
 * @typedef {object} Server
 * @property {string} url   http://host:port
 * @property {string} path  "/socket.io/" or "/engine.io/"
 */

/**
 * endpoint is the URL of server's engine.io endpoint for transport (and sid).
 *
 * @param {Server} server
 * @param {'polling' | 'websocket'} transport
 * @param {{sid?: string, eio?: string | null, ws?: boolean}} [opts]
 *   eio: the EIO parameter (null: left out); ws: a ws:// URL
 */
export function endpoint(server, transport, { sid, eio = '4', ws = transport === 'websocket' } = {}) {
  const q = new URLSearchParams();
  if (eio !== null) q.set('EIO', eio);
  if (transport) q.set('transport', transport);
  if (sid) q.set('sid', sid);
  const base = ws ? server.url.replace(/^http/, 'ws') : server.url;
  return `${base}${server.path}?${q}`;
}

/**
 * openWebSocket opens a websocket to url and resolves with it and a message queue
 * once it is open; it rejects when the handshake fails (with the HTTP status).
 *
 * @param {string} url
 * @param {{timeoutMs?: number}} [opts]
 * @returns {Promise<WsQueue>}
 */
export function openWebSocket(url, { timeoutMs = 5_000 } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const q = new WsQueue(ws);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`websocket ${url}: not open within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(q);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      ws.terminate();
      const err = new Error(`websocket ${url}: HTTP ${res.statusCode}`);
      err.status = res.statusCode;
      reject(err);
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * WsQueue keeps every message of a websocket, in order, so that none is missed
 * between two waits.
 */
export class WsQueue {
  /** @param {WebSocket} ws */
  constructor(ws) {
    this.ws = ws;
    /** @type {(string | Buffer)[]} */
    this.queue = [];
    this.waiters = [];
    /** @type {{code: number, reason: string} | null} set once closed */
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        for (const w of this.waiters.splice(0)) w();
      });
    });
    ws.on('error', () => {}); // reported by close
    ws.on('message', (data, isBinary) => {
      this.queue.push(isBinary ? Buffer.from(data) : data.toString());
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /**
   * next resolves with the next message; it rejects when the websocket closes
   * first or after timeoutMs.
   *
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<string | Buffer>}
   */
  async next({ timeoutMs = 3_000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.queue.length) return this.queue.shift();
      if (this.closeInfo) throw new Error(`websocket closed (${this.closeInfo.code}) before the next message`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no websocket message within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** @param {string | Buffer} msg */
  send(msg) {
    this.ws.send(msg);
  }

  /**
   * waitClosed resolves with the close code and reason, or rejects after
   * timeoutMs.
   *
   * @param {number} [timeoutMs]
   */
  waitClosed(timeoutMs = 3_000) {
    return withDeadline(this.closed, timeoutMs, `websocket not closed within ${timeoutMs} ms`);
  }

  /** terminate drops the connection. */
  terminate() {
    this.ws.terminate();
  }
}

/**
 * Session is one Engine.IO session over 'websocket' or 'polling'. It answers
 * pings (autoPong) and hides PING and NOOP packets from next() unless asked.
 */
export class Session {
  /**
   * open makes a session on server over transport and waits for its open packet.
   *
   * @param {Server} server
   * @param {'websocket' | 'polling'} transport
   * @param {{autoPong?: boolean, showPings?: boolean}} [opts]
   * @returns {Promise<Session>}
   */
  static async open(server, transport, { autoPong = true, showPings = false } = {}) {
    const s = new Session(server, transport, { autoPong, showPings });
    if (transport === 'websocket') {
      s.ws = await openWebSocket(endpoint(server, 'websocket'));
      const open = await s.ws.next();
      s._setOpen(open);
      s.ws.closed.then((info) => s._end(`websocket close ${info.code}`));
      s._pumpWs();
    } else {
      const res = await request(endpoint(server, 'polling'));
      if (res.status !== 200) throw new Error(`polling handshake: HTTP ${res.status} ${res.body}`);
      const [open, ...rest] = decodePayload(res.body);
      s._setOpen(open);
      for (const p of rest) s._push(p);
      s._pollLoop();
    }
    return s;
  }

  constructor(server, transport, opts) {
    this.server = server;
    this.transport = transport;
    this.opts = opts;
    /** @type {(string | Buffer)[]} */
    this.queue = [];
    this.waiters = [];
    /** @type {string | null} why the session ended, once it has */
    this.ended = null;
    this.endedAt = 0;
    this._endWaiters = [];
    this._posts = Promise.resolve();
  }

  _setOpen(open) {
    if (typeof open !== 'string' || !open.startsWith('0')) throw new Error(`expected an open packet, got ${String(open)}`);
    /** the open packet's data: sid, upgrades, pingInterval, pingTimeout, maxPayload */
    this.handshake = JSON.parse(open.slice(1));
    this.sid = this.handshake.sid;
  }

  _wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  _push(p) {
    if (p === '2' && this.opts.autoPong) this.send('3').catch(() => {});
    if (!this.opts.showPings && (p === '2' || p === '6')) return;
    this.queue.push(p);
    this._wake();
  }

  _end(why) {
    if (this.ended) return;
    this.ended = why;
    this.endedAt = Date.now();
    this._wake();
    for (const w of this._endWaiters.splice(0)) w(why);
  }

  async _pumpWs() {
    for (;;) {
      let m;
      try {
        m = await this.ws.next({ timeoutMs: 60_000 });
      } catch {
        if (this.ws.closeInfo) return; // reported through closed
        continue;
      }
      if (m === '1') {
        this._end('close packet');
        return;
      }
      this._push(m);
    }
  }

  async _pollLoop() {
    while (!this.ended) {
      let res;
      try {
        res = await request(endpoint(this.server, 'polling', { sid: this.sid }), { timeoutMs: 30_000 });
      } catch (err) {
        this._end(`GET failed: ${err.message}`);
        return;
      }
      if (this.ended) return;
      if (res.status !== 200) {
        this._end(`GET ${res.status}`);
        return;
      }
      for (const p of decodePayload(res.body)) {
        if (p === '1') {
          this._end('close packet');
          return;
        }
        this._push(p);
      }
    }
  }

  /**
   * send sends packets (engine.io packets as strings, Buffers as binary
   * messages): over websocket one frame each, over polling in one POST (POSTs
   * go one at a time, in order). It resolves once they are sent (polling: with
   * the POST's response).
   *
   * @param {...(string | Buffer)} packets
   * @returns {Promise<{status: number, body: string} | undefined>}
   */
  send(...packets) {
    if (this.transport === 'websocket') {
      for (const p of packets) this.ws.send(p);
      return Promise.resolve(undefined);
    }
    const post = this._posts.then(() => request(endpoint(this.server, 'polling', { sid: this.sid }),
      { method: 'POST', body: encodePayload(packets), headers: { 'Content-Type': 'text/plain;charset=UTF-8' } }));
    this._posts = post.catch(() => {});
    return post;
  }

  /**
   * next resolves with the next packet from the server (a string such as
   * "4hello", or a Buffer for a binary message); it rejects when the session
   * ends first or after timeoutMs.
   *
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<string | Buffer>}
   */
  async next({ timeoutMs = 3_000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.queue.length) return this.queue.shift();
      if (this.ended) throw new Error(`session ended (${this.ended}) before the next packet`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no packet within ${timeoutMs} ms on ${this.transport}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * waitEnded resolves with why the session ended (the server closed the
   * websocket, sent CLOSE, or answered a poll with an error), or rejects after
   * timeoutMs.
   *
   * @param {number} [timeoutMs]
   * @returns {Promise<string>}
   */
  waitEnded(timeoutMs = 3_000) {
    if (this.ended) return Promise.resolve(this.ended);
    return withDeadline(new Promise((resolve) => this._endWaiters.push(resolve)), timeoutMs,
      () => `session on ${this.transport} still open after ${timeoutMs} ms`);
  }

  /** close ends the session from the client's side without a word (test cleanup). */
  close() {
    this._end('closed by the test');
    this.ws?.terminate();
  }
}

function withDeadline(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(typeof message === 'function' ? message() : message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Socket.IO v5 packets (the default parser's encoding).

/** The Socket.IO packet types. */
export const SIO = Object.freeze({ CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6 });

/**
 * sioEncode encodes a Socket.IO packet as the engine.io messages that carry it:
 * the text one ("4" + packet) and its binary attachments. Buffers in data become
 * placeholders, and EVENT / ACK with attachments become BINARY_EVENT / BINARY_ACK.
 *
 * @param {{type: number, nsp?: string, id?: number, data?: unknown}} p
 * @returns {(string | Buffer)[]}
 */
export function sioEncode({ type, nsp = '/', id, data }) {
  const attachments = [];
  const walk = (v) => {
    if (Buffer.isBuffer(v)) {
      attachments.push(v);
      return { _placeholder: true, num: attachments.length - 1 };
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  const payload = data === undefined ? undefined : walk(data);
  let t = type;
  if (attachments.length && t === SIO.EVENT) t = SIO.BINARY_EVENT;
  if (attachments.length && t === SIO.ACK) t = SIO.BINARY_ACK;
  let s = `4${t}`;
  if (t === SIO.BINARY_EVENT || t === SIO.BINARY_ACK) s += `${attachments.length}-`;
  if (nsp !== '/') s += `${nsp},`;
  if (id !== undefined) s += id;
  if (payload !== undefined) s += JSON.stringify(payload);
  return [s, ...attachments];
}

/**
 * sioDecode decodes the Socket.IO packet of an engine.io message ("4" + packet):
 * {type, nsp, id, data, attachments (their number), raw (the packet text)}.
 *
 * @param {string} msg
 */
export function sioDecode(msg) {
  if (typeof msg !== 'string' || msg[0] !== '4') throw new Error(`not an engine.io message: ${String(msg)}`);
  const str = msg.slice(1);
  let i = 0;
  const type = Number(str[i++]);
  let attachments = 0;
  if (type === SIO.BINARY_EVENT || type === SIO.BINARY_ACK) {
    const j = str.indexOf('-', i);
    attachments = Number(str.slice(i, j));
    i = j + 1;
  }
  let nsp = '/';
  if (str[i] === '/') {
    const j = str.indexOf(',', i);
    nsp = j < 0 ? str.slice(i) : str.slice(i, j);
    i = j < 0 ? str.length : j + 1;
  }
  let idText = '';
  while (i < str.length && str[i] >= '0' && str[i] <= '9') idText += str[i++];
  const data = i < str.length ? JSON.parse(str.slice(i)) : undefined;
  return { type, nsp, id: idText === '' ? undefined : Number(idText), data, attachments, raw: str };
}

/**
 * nextSio resolves with the next Socket.IO packet of session, its binary
 * attachments put in place of their placeholders (as Buffers).
 *
 * @param {Session} session
 * @param {{timeoutMs?: number}} [opts]
 */
export async function nextSio(session, { timeoutMs = 3_000 } = {}) {
  const msg = await session.next({ timeoutMs });
  const p = sioDecode(msg);
  if (p.attachments) {
    const bufs = [];
    for (let n = 0; n < p.attachments; n++) {
      const b = await session.next({ timeoutMs });
      if (!Buffer.isBuffer(b)) throw new Error(`expected binary attachment ${n} of ${p.raw}, got ${b}`);
      bufs.push(b);
    }
    const put = (v) => {
      if (v && typeof v === 'object' && v._placeholder === true && typeof v.num === 'number') return bufs[v.num];
      if (Array.isArray(v)) return v.map(put);
      if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, put(x)]));
      return v;
    };
    p.data = put(p.data);
    p.buffers = bufs;
  }
  return p;
}

/**
 * sioConnect sends a CONNECT to nsp (with auth as its payload, when given) and
 * resolves with the server's answer (a CONNECT or CONNECT_ERROR packet).
 *
 * @param {Session} session
 * @param {string} [nsp]
 * @param {unknown} [auth]
 */
export async function sioConnect(session, nsp = '/', auth) {
  await session.send(...sioEncode({ type: SIO.CONNECT, nsp, data: auth }));
  return nextSio(session);
}
