// Issue 8, security, through the real binaries and the real socket.io-client:
// - Socket.IO origins from ALLOWED_ORIGINS, over websocket and polling (and the
//   same-origin rule without it); the API's CORS: preflight with credentials for a
//   listed origin, nothing for others, and no side effects from them (CSRF);
// - the session cookie's flags (HttpOnly, SameSite=Lax; Secure only over TLS or
//   behind a proxy trusted with TRUST_PROXY);
// - Redis with an ACL user and requirepass, over redis:// and rediss:// (TLS),
//   given to server and worker in REDIS_URL: the whole path works;
// - no secret in any log line of either binary (TASKWIRE_SECRET, Redis passwords,
//   session tokens), at LOG_LEVEL=debug, also when REDIS_URL is wrong;
// - nor any token of the app's identities (JWTs, TASKWIRE_JWT_SECRET, API keys
//   and their hashes, viewer tokens, the password of the JWKS URL), after every
//   path of them, accepted and refused, also when the configuration is wrong;
// - a socket id of another identity, on another replica, is no socketId target.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

import { io } from 'socket.io-client';

import { closeAll, connect } from './lib/client.mjs';
import {
  claims, connectError, keyPair, newApiKey, now, refused, sign, signatureOf, startJwks, tamper, unsigned,
} from './lib/jwt.mjs';
import { binaries } from './lib/taskwire.mjs';
import { freePort, spawnProcess } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';
import {
  Api, ack, checkCsv, startServer, startWorker, stopSystem, taskEvents, waitFinal, waitLog,
} from './lib/taskwire.mjs';

after(() => stopSystem());
afterEach(() => closeAll());

const APP = 'https://app.example';
const EVIL = 'https://evil.example';

/** outcome connects a client with an Origin header and says how it went. */
function outcome(url, token, transports, origin) {
  const s = io(url, {
    forceNew: true, reconnection: false, auth: { token }, transports,
    ...(origin ? { extraHeaders: { Origin: origin } } : {}),
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer over ${transports} from ${origin}`)), 5_000);
    const done = (v) => {
      clearTimeout(timer);
      s.close();
      resolve(v);
    };
    s.on('connect', () => done('connected'));
    s.on('connect_error', (e) => done(`${e.message}: ${e.description?.message ?? e.description}`));
  });
}

describe('origins, CORS and cookies', () => {
  const env = {};
  before(async () => {
    env.redis = await startRedis();
    [env.listed, env.plain, env.proxied] = await Promise.all([
      startServer({ redis: env.redis, name: 'server-listed', env: { ALLOWED_ORIGINS: APP } }),
      startServer({ redis: env.redis, name: 'server-plain' }),
      startServer({ redis: env.redis, name: 'server-proxied', env: { TRUST_PROXY: 'true' } }),
    ]);
  });

  for (const transports of [['websocket'], ['polling']]) {
    it(`Socket.IO over ${transports}: listed origins connect, others get 403; without a list, only the same origin`, async () => {
      const me = await Api.session(env.listed.url);
      assert.equal(await outcome(env.listed.url, me.token, transports, APP), 'connected');
      assert.match(await outcome(env.listed.url, me.token, transports, EVIL), /403/);
      assert.equal(await outcome(env.plain.url, me.token, transports, env.plain.url), 'connected');
      assert.match(await outcome(env.plain.url, me.token, transports, APP), /403/);
      // Not a browser (no Origin header): allowed; it still needs a valid session.
      assert.equal(await outcome(env.plain.url, me.token, transports, undefined), 'connected');
      assert.equal(await outcome(env.plain.url, 'v1.forged', transports, undefined), 'unauthorized: undefined');
    });
  }

  it('polling from a listed origin gets CORS headers with credentials', async () => {
    const res = await fetch(`${env.listed.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: APP } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
  });

  it('API: preflight and credentials for a listed origin; other origins read nothing and change nothing', async () => {
    const base = env.listed.url;
    const pre = await fetch(`${base}/api/v1/tasks`, {
      method: 'OPTIONS',
      headers: { Origin: APP, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,authorization' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), APP);
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
    assert.match(pre.headers.get('access-control-allow-headers'), /Content-Type/);
    assert.match(pre.headers.get('vary') ?? '', /Origin/);
    const denied = await fetch(`${base}/api/v1/tasks`, {
      method: 'OPTIONS', headers: { Origin: EVIL, 'Access-Control-Request-Method': 'POST' },
    });
    assert.equal(denied.status, 403);
    assert.equal(denied.headers.get('access-control-allow-origin'), null);

    // The page of the listed origin, with the session cookie.
    const s = await fetch(`${base}/api/v1/session`);
    const cookie = s.headers.get('set-cookie').split(';')[0];
    const post = await fetch(`${base}/api/v1/tasks`, {
      method: 'POST', headers: { Origin: APP, Cookie: cookie, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'export', params: { rows: 5 } }),
    });
    assert.equal(post.status, 202);
    assert.equal(post.headers.get('access-control-allow-origin'), APP);
    assert.equal(post.headers.get('access-control-allow-credentials'), 'true');
    assert.match(post.headers.get('access-control-expose-headers'), /Location/);

    // Another site with the same cookie (a same-site sibling, or a browser that
    // sends it): reads get no CORS headers, writes are refused, whatever the
    // content type.
    const list = await fetch(`${base}/api/v1/tasks`, { headers: { Origin: EVIL, Cookie: cookie } });
    assert.equal(list.status, 200);
    assert.equal(list.headers.get('access-control-allow-origin'), null);
    for (const headers of [{ 'Content-Type': 'application/json' }, { 'Content-Type': 'text/plain' }, {}]) {
      const r = await fetch(`${base}/api/v1/tasks`, {
        method: 'POST', headers: { Origin: EVIL, Cookie: cookie, ...headers },
        body: new Blob([JSON.stringify({ kind: 'export', params: { rows: 5 } })]),
      });
      assert.equal(r.status, 403, `POST from ${EVIL} with ${JSON.stringify(headers)}`);
      assert.equal((await r.json()).error.code, 'origin_not_allowed');
    }
    const mine = await (await fetch(`${base}/api/v1/tasks`, { headers: { Cookie: cookie } })).json();
    assert.equal(mine.tasks.length, 1, 'only the listed origin created a task');
  });

  it('session cookie: HttpOnly, SameSite=Lax; Secure only behind a trusted proxy that says https', async () => {
    const flags = async (base, headers = {}) => {
      const res = await fetch(`${base}/api/v1/session`, { headers });
      const c = res.headers.get('set-cookie');
      assert.match(c, /^taskwire_session=v1\./);
      assert.match(c, /; HttpOnly/);
      assert.match(c, /; SameSite=Lax/);
      assert.match(c, /; Path=\//);
      return /; Secure/.test(c);
    };
    assert.equal(await flags(env.plain.url), false);
    assert.equal(await flags(env.plain.url, { 'X-Forwarded-Proto': 'https' }), false, 'an untrusted X-Forwarded-Proto');
    assert.equal(await flags(env.proxied.url, { 'X-Forwarded-Proto': 'https' }), true, 'TRUST_PROXY and https');
    assert.equal(await flags(env.proxied.url, { 'X-Forwarded-Proto': 'http' }), false);
    assert.equal(await flags(env.proxied.url), false);
  });

  it('a socket id of another identity, on another replica, is no socketId target', async () => {
    const owner = await Api.session(env.plain.url);
    const other = await Api.session(env.listed.url);
    await startWorker({ redis: env.redis, name: 'worker-origins', env: { EXPORT_ROW_DELAY: '1ms' } });
    const mine = await connect(env.plain.url, { token: owner.token, transports: ['websocket'] });
    const theirs = await connect(env.listed.url, { token: other.token, transports: ['polling'] });
    const id = await owner.createExport(300, { socketId: theirs.id });
    // The owner's own socket follows it (from its snapshot: it may be over by then).
    const snap = await ack(mine, 'task:subscribe', { taskId: id });
    if (snap.state !== 'completed') assert.equal((await waitFinal(mine.recorder, id)).event, 'task:completed');
    // Barrier on their connection, then: nothing of the task reached it.
    const refused = await ack(theirs, 'task:subscribe', { taskId: id });
    assert.deepEqual(refused, { error: { code: 'not_found', message: 'no such task' } });
    assert.deepEqual(taskEvents(theirs.recorder, id), []);
    // The owner's own socket on the other replica may be named.
    const mine2 = await connect(env.listed.url, { token: owner.token, transports: ['websocket'] });
    const id2 = await owner.createExport(10, { socketId: mine2.id });
    assert.equal((await waitFinal(mine2.recorder, id2)).event, 'task:completed');
  });
});

/** tlsFiles makes a CA and a certificate for 127.0.0.1 signed by it, with openssl. */
function tlsFiles() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskwire-e2e-tls-'));
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=taskwire e2e CA',
    '-keyout', 'ca.key', '-out', 'ca.pem');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'redis.key', '-out', 'redis.csr');
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'redis.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1',
    '-extfile', 'san.ext', '-out', 'redis.pem');
  return { dir, ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'redis.pem'), key: path.join(dir, 'redis.key') };
}

function haveOpenssl() {
  try {
    execFileSync('openssl', ['version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

describe('Redis with an ACL user and a password, plain and TLS; no secrets in logs', () => {
  const SECRET = 'e2e-secret-do-not-log-7c3f9a1e5b2d4c6e8f0a1b3c5d7e9f1a';
  const USER_PW = 'user-password-do-not-log-51ab';
  const DEFAULT_PW = 'default-password-do-not-log-93cd';
  const procs = [];

  /** secureRedis: a Redis where the default user needs a password and the user taskwire another. */
  async function secureRedis(extraArgs = []) {
    const redis = await startRedis({ extraArgs });
    await redis.command('ACL', 'SETUSER', 'taskwire', 'on', `>${USER_PW}`, '~*', '&*', '+@all');
    await redis.command('CONFIG', 'SET', 'requirepass', DEFAULT_PW);
    await assert.rejects(redis.command('GET', 'x'), /NOAUTH/, 'the default user needs the password now');
    return redis;
  }

  /** exportThrough runs an export on server with its client, to task:completed and the CSV. */
  async function exportThrough(server) {
    const api = await Api.session(server.url);
    const socket = await connect(server.url, { token: api.token, transports: ['websocket'] });
    const id = await api.createExport(200, { socketId: socket.id });
    assert.equal((await waitFinal(socket.recorder, id)).event, 'task:completed');
    const csv = await api.result(id);
    assert.equal(csv.status, 200);
    checkCsv(csv.text, 200);
    return api.token;
  }

  const debugEnv = (redisUrl) => ({ REDIS_URL: redisUrl, TASKWIRE_SECRET: SECRET, LOG_LEVEL: 'debug' });

  it('redis:// with user:password (ACL), requirepass on the default user: the whole path works', async (t) => {
    t.after(() => stopSystem());
    const redis = await secureRedis();
    const url = `redis://taskwire:${USER_PW}@127.0.0.1:${redis.port}/0`;
    const server = await startServer({ redis, name: 'server-acl', env: debugEnv(url) });
    const worker = await startWorker({ redis, name: 'worker-acl', env: { ...debugEnv(url), METRICS_ADDR: '127.0.0.1:0' } });
    procs.push(server.proc, worker.proc);
    procs.tokens = [...(procs.tokens ?? []), await exportThrough(server)];
    // The default user with its password works too (redis://:password@).
    const server2 = await startServer({ redis, name: 'server-requirepass', env: debugEnv(`redis://:${DEFAULT_PW}@127.0.0.1:${redis.port}/0`) });
    procs.push(server2.proc);
    procs.tokens.push(await exportThrough(server2));
  });

  it('a wrong password: the server does not start, says why, and prints no password', async (t) => {
    t.after(() => stopSystem());
    const redis = await secureRedis();
    const bins = await binaries();
    const port = await freePort();
    const bad = spawnProcess(bins.server, [], {
      name: 'server-wrongpass',
      env: { ...debugEnv(`redis://taskwire:wrong-${USER_PW}@127.0.0.1:${redis.port}/0`), HTTP_ADDR: `127.0.0.1:${port}` },
    });
    const { code } = await bad.exited;
    assert.notEqual(code, 0);
    assert.match(bad.tail(20), /WRONGPASS|invalid username-password/);
    procs.push(bad);
    // Malformed REDIS_URL with a password in it: exit 2, the reason, no password.
    for (const [bin, name] of [[bins.server, 'server-badurl'], [bins.worker, 'worker-badurl']]) {
      const p = spawnProcess(bin, [], {
        name, env: { REDIS_URL: `redis://taskwire:${USER_PW}@127.0.0.1:notaport/0`, TASKWIRE_SECRET: SECRET, METRICS_ADDR: 'off' },
      });
      assert.equal((await p.exited).code, 2, `${name}: exit code`);
      assert.match(p.tail(20), /REDIS_URL/);
      procs.push(p);
    }
  });

  it('rediss:// (TLS, verified against its CA) with an ACL user: the whole path works', async (t) => {
    if (!haveOpenssl()) {
      t.skip('openssl is not installed: cannot make the test certificates');
      return;
    }
    t.after(() => stopSystem());
    const tls = tlsFiles();
    const tlsPort = await freePort();
    const redis = await secureRedis(['--tls-port', String(tlsPort), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key,
      '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no']);
    const url = `rediss://taskwire:${USER_PW}@127.0.0.1:${tlsPort}/0`;
    // The binaries trust the test CA through the standard variable of Go's TLS.
    const env = { ...debugEnv(url), SSL_CERT_FILE: tls.ca };
    const server = await startServer({ redis, name: 'server-tls', env });
    const worker = await startWorker({ redis, name: 'worker-tls', env: { ...env, METRICS_ADDR: '127.0.0.1:0' } });
    procs.push(server.proc, worker.proc);
    procs.tokens = [...(procs.tokens ?? []), await exportThrough(server)];
    // Without the CA the certificate is refused: TLS is really verified.
    const bins = await binaries();
    const untrusted = spawnProcess(bins.server, [], {
      name: 'server-untrusted-ca',
      env: { ...debugEnv(url), HTTP_ADDR: `127.0.0.1:${await freePort()}`, SSL_CERT_FILE: '/nonexistent' },
    });
    assert.notEqual((await untrusted.exited).code, 0);
    assert.match(untrusted.tail(20), /certificate/);
    procs.push(untrusted);
    fs.rmSync(tls.dir, { recursive: true, force: true });
  });

  it('no log line of either binary holds the secret, a Redis password or a session token', () => {
    assert.ok(procs.length >= 6, `the runs above produced the logs (${procs.length} processes)`);
    const secrets = [SECRET, USER_PW, DEFAULT_PW, ...(procs.tokens ?? [])];
    // Tokens end with their MAC: look for that part alone too.
    for (const tok of procs.tokens ?? []) secrets.push(tok.split('.')[2]);
    let lines = 0;
    for (const p of procs) {
      for (const l of p.lines) {
        lines++;
        for (const s of secrets) {
          assert.ok(!l.text.includes(s), `${p.name} logged a secret (${s.slice(0, 6)}...): ${l.text}`);
        }
      }
    }
    assert.ok(lines > 50, `only ${lines} log lines were checked`);
    // The configuration is logged, with the password masked.
    const configLine = procs[0].lines.find((l) => l.text.includes('starting taskwire-server'));
    assert.ok(configLine, 'the server logs its configuration');
    assert.match(configLine.text, /taskwire:(xxxxx|%2A%2A%2A%2A%2A|\*\*\*\*\*)@/);
  });
});

describe('no JWT, JWT secret, API key, key hash or viewer token in any log line', () => {
  const JWT_SECRET = 'e2e-jwt-secret-do-not-log-2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e1b';
  const JWKS_PW = 'jwks-password-do-not-log-77e1';
  const ISS = 'https://app.example';
  const AUD = 'taskwire';
  const procs = [];
  /** Every token used below, good or bad: none may be logged. */
  const tokens = [];
  const secrets = [JWT_SECRET, JWKS_PW];
  const use = (t) => {
    tokens.push(t);
    return t;
  };
  const jwt = (sub, extra = {}) => use(sign(claims(sub, { iss: ISS, aud: AUD, ...extra }), { key: JWT_SECRET }));

  it('every path of the identities, accepted and refused, at LOG_LEVEL=debug', async (t) => {
    t.after(() => stopSystem());
    const bins = await binaries();
    const key = newApiKey(bins.server, 'backend');
    secrets.push(key.key, key.hash);
    const rsa = keyPair('RS256', 'rsa-1');
    const jwks = await startJwks([rsa]);
    const failing = await startJwks([]);
    failing.failWith(500);
    t.after(() => Promise.all([jwks.close(), failing.close()]));
    const withPassword = (u) => u.replace('http://', `http://jwks:${JWKS_PW}@`);
    const redis = await startRedis();
    const common = { LOG_LEVEL: 'debug', TASKWIRE_API_KEYS: key.entry, TOKEN_EXPIRY_GRACE: '1s', TASKWIRE_JWT_LEEWAY: '1s' };
    const [app, other, worker] = await Promise.all([
      startServer({
        redis,
        name: 'server-app',
        env: {
          ...common, ANONYMOUS_SESSIONS: 'false', TASKWIRE_JWT_SECRET: JWT_SECRET, TASKWIRE_JWT_ISSUER: ISS,
          TASKWIRE_JWT_AUDIENCE: AUD, TASKWIRE_JWKS_URL: withPassword(jwks.url),
        },
      }),
      // Only a JWKS, which fails; anonymous sessions on.
      startServer({ redis, name: 'server-jwks-down', env: { ...common, TASKWIRE_JWKS_URL: withPassword(failing.url) } }),
      startWorker({ redis, name: 'worker-auth', env: { LOG_LEVEL: 'debug', EXPORT_ROW_DELAY: '1ms' } }),
    ]);
    procs.push(app.proc, other.proc, worker.proc);
    assert.ok(jwks.authorizations.length > 0 && jwks.authorizations.every((a) => a.startsWith('Basic ')),
      'the JWKS is fetched with the password of its URL');

    // Accepted: an app JWT (HS256 and RS256 of the JWKS) starts, follows over
    // websocket and polling, downloads.
    const makers = [(sub) => jwt(sub), (sub) => use(rsa.sign(claims(sub, { iss: ISS, aud: AUD })))];
    for (const make of makers) {
      const token = make('u-42');
      const api = new Api(app.url, token);
      const ws = await connect(app.url, { token, transports: ['websocket'] });
      const polling = await connect(app.url, { token, transports: ['polling'] });
      const id = await api.createExport(300, { socketId: ws.id });
      await ack(polling, 'task:subscribe', { taskId: id });
      assert.equal((await waitFinal(ws.recorder, id)).event, 'task:completed');
      assert.equal((await api.result(id)).status, 200);
      // Viewer tokens, by the owner and by the API key, on HTTP and Socket.IO.
      const backend = new Api(app.url, use(key.key));
      for (const maker of [api, backend]) {
        const v = await maker.request('POST', `/api/v1/tasks/${id}/viewers`, { body: { allowResult: true } });
        assert.equal(v.status, 201, v.text);
        const viewer = new Api(app.url, use(v.json.token));
        assert.equal((await viewer.get(id)).status, 200);
        assert.equal((await viewer.result(id)).status, 200);
        assert.equal((await viewer.cancel(id)).status, 403);
        const vs = await connect(app.url, { token: viewer.token, transports: ['polling'] });
        assert.equal((await ack(vs, 'task:subscribe', { taskId: id })).taskId, id);
        assert.equal((await ack(vs, 'task:cancel', { taskId: id })).error.code, 'forbidden');
        await refused(app.url, use(tamper(viewer.token)), 'bad signature');
      }
      // auth:refresh, good and bad.
      assert.equal((await ack(ws, 'auth:refresh', { token: make('u-42') })).ok, true);
      assert.equal((await ack(ws, 'auth:refresh', { token: make('u-7') })).error.code, 'identity_changed');
      assert.equal((await ack(ws, 'auth:refresh', { token: use(tamper(token)) })).error.code, 'unauthorized');
    }
    // The API key acts for a subject.
    const backend = new Api(app.url, key.key);
    const made = await backend.request('POST', '/api/v1/tasks', { body: { kind: 'export', params: { rows: 50_000 }, subject: 'u-42' } });
    assert.equal(made.status, 202, made.text);
    assert.equal((await backend.request('GET', '/api/v1/tasks?subject=u-42')).status, 200);
    assert.ok([200, 202].includes((await backend.cancel(made.json.id)).status));
    const anon = await Api.session(other.url);
    use(anon.token);

    // Refused, on HTTP and Socket.IO.
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
    const bad = [
      [app, jwt('u-42', { exp: now() - 120 }), 'token expired'],
      [app, use(tamper(jwt('u-42'))), 'bad signature'],
      [app, use(sign(claims('u-42', { iss: ISS, aud: AUD }), { key: `${JWT_SECRET}-forged` })), 'bad signature'],
      [app, use(unsigned(claims('u-42', { iss: ISS, aud: AUD }))), 'unsigned tokens (alg none) are not accepted'],
      [app, jwt('u-42', { iss: 'https://evil.example' }), 'wrong issuer'],
      [app, jwt('u-42', { aud: 'other' }), 'wrong audience'],
      [app, jwt('u-42', { ttl: null }), 'token has no "exp"'],
      [app, use(keyPair('RS256', 'made-up').sign(claims('u-42', { iss: ISS, aud: AUD }))), /^no key to verify/],
      [app, use(anon.token), 'anonymous sessions are turned off: use a token of the app'],
      [app, use(`twk_${crypto.randomBytes(32).toString('base64url')}`), 'unknown API key'],
      [app, use(key.hash), 'unknown API key'],
      [app, use(`not-a-token-${crypto.randomUUID()}`), 'unknown API key'],
      [other, use(sign(claims('u-42'), { alg: 'HS256', key: pem, kid: 'rsa-1' })), 'algorithm HS256 is not accepted: no JWT secret is configured'],
      [other, use(rsa.sign(claims('u-42'))), /^no key to verify/],
    ];
    for (const [srv, token, reason] of bad) await refused(srv.url, token, reason);
    assert.match((await connectError(app.url, key.key)).data.message, /^API keys are for the HTTP API/);
    // The JWKS that fails was fetched again for the unknown key id, and that was logged.
    await waitLog(other.proc, 'auth: fetching the JWKS failed');

    // A token that expires on a live socket.
    const short = jwt('u-42', { exp: now() + 2 });
    const lapsing = await connect(app.url, { token: short, transports: ['websocket'] });
    await lapsing.recorder.waitFor('task:token_expired', () => true, 6_000);
    await lapsing.recorder.waitFor('disconnect', () => true, 4_000);

    // Configurations that are refused: a key pasted instead of its hash, a short JWT secret.
    for (const [name, env, want] of [
      ['server-key-as-hash', { TASKWIRE_API_KEYS: `backend:${key.key}` }, /TASKWIRE_API_KEYS/],
      ['server-bare-key', { TASKWIRE_API_KEYS: key.key }, /TASKWIRE_API_KEYS/],
      ['server-short-jwt-secret', { TASKWIRE_JWT_SECRET: JWT_SECRET.slice(0, 20) }, /TASKWIRE_JWT_SECRET/],
    ]) {
      const p = spawnProcess(bins.server, [], {
        name, env: { REDIS_URL: redis.url, HTTP_ADDR: `127.0.0.1:${await freePort()}`, LOG_LEVEL: 'debug', ...env },
      });
      assert.equal((await p.exited).code, 2, `${name}: exit code`);
      assert.match(p.tail(20), want);
      procs.push(p);
    }
    secrets.push(JWT_SECRET.slice(0, 20));
  });

  it('none of them is in the output of the server or the worker', () => {
    assert.ok(procs.length >= 6 && tokens.length > 30, `${procs.length} processes, ${tokens.length} tokens`);
    const needles = [...secrets];
    for (const tok of tokens) {
      needles.push(tok);
      const sig = signatureOf(tok);
      if (sig.length >= 16) needles.push(sig);
    }
    let lines = 0;
    for (const p of procs) {
      for (const l of p.lines) {
        lines++;
        for (const s of needles) {
          assert.ok(!l.text.includes(s), `${p.name} ${l.stream} holds a secret (${s.slice(0, 8)}...): ${l.text}`);
        }
      }
    }
    assert.ok(lines > 60, `only ${lines} lines were checked`);
    // What was logged of them: the refusals (no reason, no token) and the failed JWKS fetch.
    const entries = procs.flatMap((p) => p.lines.map((l) => l.text));
    assert.ok(entries.some((l) => l.includes('"status":401')), 'the refusals are logged');
    assert.ok(entries.some((l) => l.includes('fetching the JWKS failed')), 'the failed JWKS fetch is logged');
    assert.ok(entries.some((l) => l.includes('"jwksURL":"http://jwks:xxxxx@')), 'the JWKS URL is logged masked');
  });
});
