// JWTs as an app signs them, with node:crypto only: HS256/384/512 with a shared
// secret, RS/PS/ES256-512 and EdDSA with a key pair; the forgeries a server must
// refuse (tampered, alg none, HS signed with a public key); a JWKS endpoint on
// 127.0.0.1 whose key set can be rotated and whose fetches are counted; API keys
// from taskwire-server itself; and the checks of a refused token on the HTTP
// API and on Socket.IO.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';

import { io } from 'socket.io-client';

/** b64url encodes a Buffer or a string as unpadded base64url. */
export function b64url(v) {
  return Buffer.from(v).toString('base64url');
}

/** decodePart decodes the header or payload part of a JWT. */
export function decodePart(token, i) {
  return JSON.parse(Buffer.from(token.split('.')[i], 'base64url').toString('utf8'));
}

const HASH = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

/**
 * signature returns the signature of data for alg with key (a secret string or
 * Buffer for HS*, a private KeyObject for the others, ignored for none).
 *
 * @param {string} alg
 * @param {string | Buffer | crypto.KeyObject} key
 * @param {string} data
 * @returns {Buffer}
 */
export function signature(alg, key, data) {
  const bits = alg.slice(2);
  switch (alg.slice(0, 2)) {
    case 'no':
      return Buffer.alloc(0);
    case 'HS':
      return crypto.createHmac(HASH[bits], key).update(data).digest();
    case 'RS':
      return crypto.sign(HASH[bits], Buffer.from(data), key);
    case 'PS':
      return crypto.sign(HASH[bits], Buffer.from(data), {
        key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST,
      });
    case 'ES':
      return crypto.sign(HASH[bits], Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' });
    case 'Ed':
      return crypto.sign(null, Buffer.from(data), key);
  }
  throw new Error(`signature: unsupported alg ${alg}`);
}

/**
 * sign returns a compact JWT of payload. alg defaults to HS256; kid, when
 * given, goes in the header, and header adds to (or overrides) it.
 *
 * @param {object} payload
 * @param {{alg?: string, key?: any, kid?: string, header?: object}} opts
 * @returns {string}
 */
export function sign(payload, { alg = 'HS256', key, kid, header = {} } = {}) {
  const h = { alg, typ: 'JWT', ...(kid ? { kid } : {}), ...header };
  const data = `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(payload))}`;
  return `${data}.${b64url(signature(alg, key, data))}`;
}

/**
 * signatureOf returns the part of a token that only its signer can make: the
 * signature of a JWT, the MAC of a session token, all of anything else.
 */
export function signatureOf(token) {
  const parts = token.split('.');
  return parts.length === 3 ? parts[2] : token;
}

/** now returns the current time in seconds (a JWT NumericDate). */
export function now() {
  return Math.floor(Date.now() / 1000);
}

/**
 * claims returns the claims of an app token for sub: iat now, exp ttl seconds
 * later (none with ttl null), and any more (iss, aud...) from extra, where
 * undefined removes a claim.
 *
 * @param {string} sub
 * @param {{ttl?: number | null, [k: string]: any}} [extra]
 */
export function claims(sub, { ttl = 600, ...extra } = {}) {
  const c = { sub, iat: now(), ...(ttl === null ? {} : { exp: now() + ttl }), ...extra };
  for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
  return c;
}

/**
 * tamper changes the payload of token (sub becomes sub), keeping its header and
 * signature: the signature no longer matches.
 */
export function tamper(token, sub = 'u-admin') {
  return withPayload(token, { ...decodePart(token, 1), sub });
}

/**
 * withPayload replaces the payload of token by payload, keeping its header and
 * signature.
 */
export function withPayload(token, payload) {
  const [h, , s] = token.split('.');
  return `${h}.${b64url(JSON.stringify(payload))}.${s}`;
}

/**
 * unsigned returns a token with alg "none" and no signature, as an attacker
 * would send it.
 */
export function unsigned(payload) {
  return sign(payload, { alg: 'none' });
}

const CURVES = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

/**
 * @typedef {object} KeyPair
 * @property {string} alg
 * @property {string} kid
 * @property {crypto.KeyObject} privateKey
 * @property {crypto.KeyObject} publicKey
 * @property {() => object} jwk  the public key as a JWK (kid, alg, use "sig")
 * @property {(payload: object, header?: object) => string} sign
 */

/**
 * keyPair makes a new key pair for alg (RS256..., PS256..., ES256/384/512,
 * EdDSA: Ed25519) with key id kid.
 *
 * @param {string} alg
 * @param {string} kid
 * @returns {KeyPair}
 */
export function keyPair(alg, kid) {
  let pair;
  if (alg.startsWith('RS') || alg.startsWith('PS')) pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  else if (alg.startsWith('ES')) pair = crypto.generateKeyPairSync('ec', { namedCurve: CURVES[alg] });
  else if (alg === 'EdDSA') pair = crypto.generateKeyPairSync('ed25519');
  else throw new Error(`keyPair: unsupported alg ${alg}`);
  const { privateKey, publicKey } = pair;
  return {
    alg,
    kid,
    privateKey,
    publicKey,
    jwk: () => ({ ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' }),
    sign: (payload, header = {}) => sign(payload, { alg, key: privateKey, kid, header }),
  };
}

/**
 * @typedef {object} JwksServer
 * @property {string} url        http://127.0.0.1:<port>/.well-known/jwks.json
 * @property {string} base       http://127.0.0.1:<port>
 * @property {() => number} requests  how many GETs of the key set it answered
 * @property {(keys: KeyPair[]) => void} setKeys  rotate: serve these keys from now on
 * @property {(status: number) => void} failWith  answer every GET with status (0: serve again)
 * @property {string[]} authorizations  the Authorization headers received
 * @property {(n: number, timeoutMs?: number) => Promise<void>} waitRequests
 * @property {() => Promise<void>} close
 */

/**
 * startJwks serves the public keys of keys as a JWKS on a free port of
 * 127.0.0.1, counting every fetch. Close it in an after hook.
 *
 * @param {KeyPair[]} keys
 * @returns {Promise<JwksServer>}
 */
export async function startJwks(keys) {
  let current = keys;
  let fail = 0;
  let count = 0;
  const waiters = new Set();
  const authorizations = [];
  const srv = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    count++;
    if (req.headers.authorization) authorizations.push(req.headers.authorization);
    for (const w of waiters) w();
    if (fail) {
      res.writeHead(fail, { 'Content-Type': 'text/plain' }).end('unavailable');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
      .end(JSON.stringify({ keys: current.map((k) => k.jwk()) }));
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const base = `http://127.0.0.1:${srv.address().port}`;
  return {
    base,
    url: `${base}/.well-known/jwks.json`,
    requests: () => count,
    setKeys: (k) => {
      current = k;
    },
    failWith: (status) => {
      fail = status;
    },
    authorizations,
    waitRequests: (n, timeoutMs = 10_000) => new Promise((resolve, reject) => {
      if (count >= n) {
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`the JWKS server got ${count} requests within ${timeoutMs} ms, not ${n}`));
      }, timeoutMs);
      const check = () => {
        if (count < n) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
    }),
    close: () => new Promise((resolve) => {
      srv.closeAllConnections();
      srv.close(() => resolve());
    }),
  };
}

/**
 * newApiKey runs `taskwire-server apikey new name` and returns the key and the
 * TASKWIRE_API_KEYS entry (name:sha256hex) it printed, and the hash alone.
 *
 * @param {string} serverBin
 * @param {string} name
 * @returns {{key: string, entry: string, hash: string}}
 */
export function newApiKey(serverBin, name) {
  const out = execFileSync(serverBin, ['apikey', 'new', name], { encoding: 'utf8', timeout: 10_000 });
  const key = out.match(/^key .*: (twk_[A-Za-z0-9_-]{43})$/m)?.[1];
  const entry = out.match(/^TASKWIRE_API_KEYS entry .*: (\S+)$/m)?.[1];
  assert.ok(key && entry, `taskwire-server apikey new ${name} printed:\n${out}`);
  const hash = crypto.createHash('sha256').update(key).digest('hex');
  assert.equal(entry, `${name}:${hash}`, 'the entry holds the SHA-256 of the key');
  return { key, entry, hash };
}

/**
 * refusedOverHttp asserts that base answers GET /api/v1/tasks with token as a
 * bearer token 401 {"error":{"code":"unauthorized","message":reason}}.
 *
 * @param {string} base
 * @param {string} token
 * @param {string | RegExp} reason
 */
export async function refusedOverHttp(base, token, reason) {
  const res = await fetch(`${base}/api/v1/tasks`, {
    headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  assert.equal(res.status, 401, `GET /api/v1/tasks with a token that should be refused (${reason}): ${res.status} ${body}`);
  const { error } = JSON.parse(body);
  assert.equal(error.code, 'unauthorized');
  if (reason instanceof RegExp) assert.match(error.message, reason);
  else assert.equal(error.message, reason);
}

/**
 * connectError connects a socket.io-client socket with token (auth.token) over
 * transports and resolves with its connect_error; it rejects if the socket
 * connects, or after timeoutMs.
 *
 * @param {string} base
 * @param {string} token
 * @param {string[]} [transports]
 * @param {number} [timeoutMs]
 * @returns {Promise<Error & {data?: any}>}
 */
export function connectError(base, token, transports = ['websocket'], timeoutMs = 5_000) {
  const s = io(base, { forceNew: true, reconnection: false, auth: { token }, transports });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`no connect_error over ${transports} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('connect', () => {
      clearTimeout(timer);
      s.close();
      reject(new Error(`a socket with a token that should be refused connected over ${transports}`));
    });
    s.on('connect_error', (err) => {
      clearTimeout(timer);
      s.close();
      resolve(err);
    });
  });
}

/**
 * refusedOverSocket asserts that a socket with token gets the connect_error
 * "unauthorized" with data {code: "unauthorized", message: reason}, over each
 * of websocket and polling.
 *
 * @param {string} base
 * @param {string} token
 * @param {string | RegExp} reason
 */
export async function refusedOverSocket(base, token, reason) {
  for (const transports of [['websocket'], ['polling']]) {
    const err = await connectError(base, token, transports);
    assert.equal(err.message, 'unauthorized', `connect_error over ${transports}`);
    assert.equal(err.data?.code, 'unauthorized', `connect_error data over ${transports}: ${JSON.stringify(err.data)}`);
    if (reason instanceof RegExp) assert.match(err.data.message, reason);
    else assert.equal(err.data.message, reason, `connect_error message over ${transports}`);
  }
}

/**
 * refused asserts refusedOverHttp and refusedOverSocket.
 *
 * @param {string} base
 * @param {string} token
 * @param {string | RegExp} reason
 */
export async function refused(base, token, reason) {
  await refusedOverHttp(base, token, reason);
  await refusedOverSocket(base, token, reason);
}
