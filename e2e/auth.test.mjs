// Identities of an app (issue 13), through the real binaries, a real Redis and
// the real socket.io-client:
// - a JWT of the app (HS256, TASKWIRE_JWT_SECRET, issuer and audience checked)
//   starts tasks over HTTP on one server and follows them on the other, over
//   websocket and over polling, to completion;
// - viewer tokens, made by the owner and by an API key: one task, read-only,
//   nothing else, never the owner;
// - refused tokens (expired, tampered, alg none, wrong issuer or audience, an HS
//   token where only a JWKS is configured, no exp...): 401 on HTTP and the
//   connect_error "unauthorized" on Socket.IO, with the reason;
// - a JWKS served here: RS256, PS256, ES256, ES384 and EdDSA accepted; a key
//   added to it is picked up on its first token, and tokens with unknown key
//   ids cost at most one fetch per 10 s;
// - ANONYMOUS_SESSIONS=false: no /api/v1/session, no anonymous token;
// - API keys (from `taskwire-server apikey new`) act for a subject: create,
//   list, cancel; the limits are the subject's;
// - the token of a live socket expires: task:token_expired, then the
//   disconnection after TOKEN_EXPIRY_GRACE, unless auth:refresh brings a new one.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';

import { closeAllAndWait, connect } from './lib/client.mjs';
import {
  claims, connectError, decodePart, keyPair, newApiKey, now, refused, refusedOverHttp, sign, startJwks, tamper, unsigned,
  withPayload,
} from './lib/jwt.mjs';
import { startRedis } from './lib/redis.mjs';
import {
  Api, ack, binaries, checkCsv, checkProgress, startServer, startWorker, stopSystem, taskEvents, until, waitFinal,
} from './lib/taskwire.mjs';

const JWT_SECRET = 'e2e-app-jwt-secret-0f3c9a7e5b1d4c2e8a6f0b3d5c7e9a1f';
const ISS = 'https://app.example';
const AUD = 'taskwire';
const GRACE_MS = 2_000;
const UNKNOWN_KEY = 'no key to verify the token (unknown key id or algorithm)';
const NOT_FOUND = { error: { code: 'not_found', message: 'no such task' } };

/** appToken is a JWT of the app for sub, as servers A and B accept it. */
function appToken(sub, extra = {}) {
  return sign(claims(sub, { iss: ISS, aud: AUD, ...extra }), { key: JWT_SECRET });
}

const sys = {};

before(async () => {
  const bins = await binaries();
  sys.backend = newApiKey(bins.server, 'backend');
  sys.rotated = newApiKey(bins.server, 'backend-next');
  sys.keys = {
    rsa: keyPair('RS256', 'rsa-1'), ps: keyPair('PS256', 'ps-1'), ec: keyPair('ES256', 'ec-1'),
    ec384: keyPair('ES384', 'ec384-1'), ed: keyPair('EdDSA', 'ed-1'),
  };
  sys.jwks = await startJwks(Object.values(sys.keys));
  sys.redis = await startRedis();
  const app = {
    TASKWIRE_JWT_SECRET: JWT_SECRET, TASKWIRE_JWT_ISSUER: ISS, TASKWIRE_JWT_AUDIENCE: AUD, TASKWIRE_JWT_LEEWAY: '1s',
    TASKWIRE_API_KEYS: `${sys.backend.entry},${sys.rotated.entry}`, TOKEN_EXPIRY_GRACE: `${GRACE_MS / 1000}s`,
  };
  [sys.A, sys.B, sys.J, sys.L] = await Promise.all([
    startServer({ redis: sys.redis, name: 'server-A', env: { ...app, ANONYMOUS_SESSIONS: 'false' } }),
    startServer({ redis: sys.redis, name: 'server-B', env: { ...app, ANONYMOUS_SESSIONS: 'false' } }),
    // Only a JWKS: no JWT secret, no anonymous sessions.
    startServer({ redis: sys.redis, name: 'server-jwks', env: { TASKWIRE_JWKS_URL: sys.jwks.url, ANONYMOUS_SESSIONS: 'false' } }),
    // Limits, with tasks of its own (no worker consumes them) and anonymous sessions on.
    startServer({
      redis: sys.redis,
      name: 'server-limits',
      env: { ...app, TASKWIRE_PREFIX: 'twlimits', MAX_ACTIVE_TASKS: '2', MAX_SOCKETS_PER_IDENTITY: '1' },
    }),
    startWorker({ redis: sys.redis, env: { EXPORT_ROW_DELAY: '1ms', WORKER_CONCURRENCY: '2' } }),
  ]);
});
after(async () => {
  await stopSystem();
  await sys.jwks?.close();
});
afterEach(() => closeAllAndWait());

/** followed waits until socket has the final event of task id (or its snapshot says it ended). */
async function followed(socket, id, label) {
  const snap = await ack(socket, 'task:subscribe', { taskId: id });
  assert.equal(snap.taskId, id, `${label}: snapshot`);
  if (snap.state === 'completed') return snap;
  const final = await waitFinal(socket.recorder, id, 30_000, label);
  assert.equal(final.event, 'task:completed', `${label}: final event`);
  return final.payload;
}

describe('an app JWT (HS256) on two servers', () => {
  it('u-42 starts tasks over HTTP (Bearer) on one server and follows them on the other over websocket and polling', async () => {
    const token = appToken('u-42');
    const onA = new Api(sys.A.url, token);
    const onB = onA.at(sys.B.url);
    const ws = await connect(sys.B.url, { token, transports: ['websocket'] });
    const polling = await connect(sys.B.url, { token, transports: ['polling'] });
    assert.equal(polling.io.engine.transport.name, 'polling');
    assert.equal(ws.io.engine.transport.name, 'websocket');

    const id = await onA.createExport(3000);
    await Promise.all([followed(ws, id, 'websocket on B'), followed(polling, id, 'polling on B')]);
    // Both saw the task run to its end through its events, not only in a snapshot.
    for (const [s, label] of [[ws, 'websocket'], [polling, 'polling']]) {
      const evs = checkProgress(taskEvents(s.recorder, id), id).map((e) => e.event);
      assert.ok(evs.includes('task:progress') && evs.at(-1) === 'task:completed', `${label}: ${evs}`);
    }
    const csv = await onB.result(id);
    assert.equal(csv.status, 200, csv.text);
    checkCsv(csv.text, 3000);

    // The other way round: started on B for a socket of A (socketId), followed there.
    const wsA = await connect(sys.A.url, { token, transports: ['websocket'] });
    const id2 = await onB.createExport(500, { socketId: wsA.id });
    assert.equal((await waitFinal(wsA.recorder, id2, 30_000, 'websocket on A')).event, 'task:completed');

    const mine = (await onA.list()).map((r) => r.taskId);
    assert.ok(mine.includes(id) && mine.includes(id2), `u-42 lists its tasks: ${mine}`);
    assert.equal((await onA.record(id)).owner, undefined, 'the record does not show the owner');
    // Another subject sees none of it.
    const other = new Api(sys.B.url, appToken('u-7'));
    assert.deepEqual((await other.get(id)).json, NOT_FOUND);
    assert.deepEqual((await other.list()).map((r) => r.taskId), []);
  });
});

describe('viewer tokens', () => {
  it('made by the owner and by an API key: follow one task, cannot cancel it nor see another, and are not the owner', async () => {
    const owner = new Api(sys.A.url, appToken('u-viewed'));
    const backend = new Api(sys.B.url, sys.backend.key);
    const other = await owner.createExport(20);
    const id = await owner.createExport(3000);

    const byOwner = await owner.request('POST', `/api/v1/tasks/${id}/viewers`, { body: { ttlSeconds: 600 } });
    assert.equal(byOwner.status, 201, byOwner.text);
    assert.equal(byOwner.json.taskId, id);
    assert.match(byOwner.json.token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    const exp = Date.parse(byOwner.json.expiresAt);
    assert.ok(Math.abs(exp - (Date.now() + 600_000)) < 10_000, `expiresAt ${byOwner.json.expiresAt}`);
    const byKey = await backend.request('POST', `/api/v1/tasks/${id}/viewers`);
    assert.equal(byKey.status, 201, byKey.text);
    assert.ok(Math.abs(Date.parse(byKey.json.expiresAt) - (Date.now() + 3_600_000)) < 10_000, 'an hour by default');
    // Someone else cannot make one; a viewer token cannot either.
    const stranger = new Api(sys.A.url, appToken('u-7'));
    assert.deepEqual((await stranger.request('POST', `/api/v1/tasks/${id}/viewers`)).json, NOT_FOUND);
    const badTTL = await owner.request('POST', `/api/v1/tasks/${id}/viewers`, { body: { ttlSeconds: 8 * 24 * 3600 } });
    assert.equal(badTTL.status, 400);

    const viewers = [
      { label: 'viewer of the owner, websocket on A', token: byOwner.json.token, base: sys.A.url, transports: ['websocket'] },
      { label: 'viewer of the API key, polling on B', token: byKey.json.token, base: sys.B.url, transports: ['polling'] },
    ];
    for (const v of viewers) {
      const api = new Api(v.base, v.token);
      v.socket = await connect(v.base, { token: v.token, transports: v.transports });
      const snap = await ack(v.socket, 'task:subscribe', { taskId: id });
      assert.equal(snap.taskId, id, v.label);
      const rec = await api.record(id);
      assert.equal(rec.taskId, id);
      assert.equal(rec.kind, 'export');
      // Read-only.
      const del = await api.cancel(id);
      assert.equal(del.status, 403, `${v.label}: DELETE ${del.text}`);
      assert.equal(del.json.error.code, 'forbidden');
      const cancel = await ack(v.socket, 'task:cancel', { taskId: id });
      assert.equal(cancel.error?.code, 'forbidden', `${v.label}: task:cancel ${JSON.stringify(cancel)}`);
      assert.equal((await api.request('POST', '/api/v1/tasks', { body: { kind: 'export', params: { rows: 5 } } })).status, 403);
      assert.equal((await api.request('POST', `/api/v1/tasks/${id}/viewers`)).status, 403);
      // One task: the owner's other one does not exist for it.
      assert.deepEqual((await api.get(other)).json, NOT_FOUND, `${v.label}: GET another task`);
      assert.deepEqual(await ack(v.socket, 'task:subscribe', { taskId: other }), NOT_FOUND);
      assert.deepEqual(await ack(v.socket, 'task:cancel', { taskId: other }), NOT_FOUND);
      assert.equal((await api.cancel(other)).status, 404);
      assert.deepEqual((await api.list()).map((r) => r.taskId), [id], `${v.label}: its list is its one task`);
    }
    for (const v of viewers) {
      assert.equal((await waitFinal(v.socket.recorder, id, 30_000, v.label)).event, 'task:completed');
      assert.deepEqual(taskEvents(v.socket.recorder, other), [], `${v.label}: no event of the other task`);
      // No result without allowResult.
      const res = await new Api(v.base, v.token).result(id);
      assert.equal(res.status, 403, `${v.label}: result ${res.text}`);
    }
    const withResult = await owner.request('POST', `/api/v1/tasks/${id}/viewers`, { body: { allowResult: true } });
    const csv = await new Api(sys.B.url, withResult.json.token).result(id);
    assert.equal(csv.status, 200, csv.text);
    checkCsv(csv.text, 3000);

    // The task ran to its end (nobody cancelled it) and is still the owner's
    // alone: a viewer owns nothing and is listed nowhere.
    assert.equal((await owner.record(id)).state, 'completed');
    assert.deepEqual((await owner.list()).map((r) => r.taskId).sort(), [id, other].sort());
    const bySubject = await backend.request('GET', `/api/v1/tasks?subject=u-viewed`);
    assert.deepEqual(bySubject.json.tasks.map((r) => r.taskId).sort(), [id, other].sort());
    for (const v of viewers) {
      const jti = decodePart(v.token, 1).jti;
      const theirs = await backend.request('GET', `/api/v1/tasks?subject=${encodeURIComponent(`viewer:${jti}`)}`);
      assert.deepEqual(theirs.json.tasks, [], 'a viewer identity has no tasks');
    }

    // Forgeries: a viewer token changed to another task, and one signed with the app's secret.
    await refused(sys.A.url, withPayload(byOwner.json.token, { ...decodePart(byOwner.json.token, 1), tid: other }), 'bad signature');
    const selfMade = sign({ iss: 'taskwire', aud: 'taskwire:viewer', tid: other, jti: 'x', exp: now() + 600 },
      { key: JWT_SECRET, header: { typ: 'taskwire-viewer+jwt' } });
    await refused(sys.A.url, selfMade, 'bad signature');
  });

  it("viewer sockets do not count as the owner's (MAX_SOCKETS_PER_IDENTITY=1)", async () => {
    const token = appToken('u-sockets');
    const owner = new Api(sys.L.url, token);
    const id = await owner.createExport(5);
    await connect(sys.L.url, { token, transports: ['websocket'] });
    const second = await connectError(sys.L.url, token);
    assert.equal(second.message, 'too many connections');
    const v = await owner.request('POST', `/api/v1/tasks/${id}/viewers`);
    assert.equal(v.status, 201, v.text);
    const a = await connect(sys.L.url, { token: v.json.token, transports: ['websocket'] });
    assert.equal((await ack(a, 'task:subscribe', { taskId: id })).taskId, id);
    // Each viewer token is its own identity.
    const v2 = await owner.request('POST', `/api/v1/tasks/${id}/viewers`);
    await connect(sys.L.url, { token: v2.json.token, transports: ['polling'] });
    await owner.cancel(id);
  });
});

describe('refused tokens: 401 on HTTP and connect_error on Socket.IO, with the reason', () => {
  it('a server with a JWT secret, an issuer and an audience', async () => {
    const base = sys.A.url;
    await refused(base, appToken('u-42', { exp: now() - 120 }), 'token expired');
    await refused(base, tamper(appToken('u-42')), 'bad signature');
    await refused(base, sign(claims('u-42', { iss: ISS, aud: AUD }), { key: `${JWT_SECRET}-other` }), 'bad signature');
    await refused(base, unsigned(claims('u-42', { iss: ISS, aud: AUD })), 'unsigned tokens (alg none) are not accepted');
    await refused(base, sign(claims('u-42', { iss: ISS, aud: AUD }), { alg: 'none', header: { alg: 'NoNe' } }),
      'unsigned tokens (alg none) are not accepted');
    await refused(base, appToken('u-42', { iss: 'https://evil.example' }), 'wrong issuer');
    await refused(base, appToken('u-42', { iss: undefined }), 'token has no "iss"');
    await refused(base, appToken('u-42', { aud: undefined }), 'token has no "aud"');
    await refused(base, appToken('u-42', { aud: 'someone-else' }), 'wrong audience');
    await refused(base, appToken('u-42', { aud: ['taskwire:viewer'] }), 'wrong audience');
    await refused(base, appToken('u-42', { ttl: null }), 'token has no "exp"');
    await refused(base, appToken('u-42', { nbf: now() + 600 }), 'token not valid yet');
    await refused(base, appToken('', {}), '"sub" must be 1 to 256 printable characters');
    await refused(base, sys.keys.rsa.sign(claims('u-42', { iss: ISS, aud: AUD })),
      'algorithm RS256 is not accepted: no JWKS is configured');
    await refused(base, 'eyJub3Q.a.jwt', 'malformed token');
  });

  it('a server with only a JWKS: an HS token is refused (alg confusion), and so are forgeries of its keys', async () => {
    const base = sys.J.url;
    const pem = sys.keys.rsa.publicKey.export({ type: 'spki', format: 'pem' });
    // The classic confusion: HS256 "signed" with the RSA public key, with its kid.
    await refused(base, sign(claims('u-42'), { alg: 'HS256', key: pem, kid: 'rsa-1' }),
      'algorithm HS256 is not accepted: no JWT secret is configured');
    await refused(base, sign(claims('u-42'), { alg: 'HS512', key: JWT_SECRET }),
      'algorithm HS512 is not accepted: no JWT secret is configured');
    await refused(base, sys.keys.rsa.sign(claims('u-42', { exp: now() - 120 })), 'token expired');
    await refused(base, tamper(sys.keys.ec.sign(claims('u-42'))), 'bad signature');
    await refused(base, sys.keys.ed.sign(claims('u-42', { ttl: null })), 'token has no "exp"');
    await refused(base, unsigned(claims('u-42')), 'unsigned tokens (alg none) are not accepted');
    // A key of the attacker's, claiming the kid of a key of the JWKS.
    const impostor = keyPair('RS256', 'rsa-1');
    await refused(base, impostor.sign(claims('u-42')), 'bad signature');
    // An ES256 key id with an RS256 token: the JWK's alg decides.
    await refused(base, sign(claims('u-42'), { alg: 'RS256', key: sys.keys.rsa.privateKey, kid: 'ec-1' }), UNKNOWN_KEY);
  });
});

describe('a JWKS of the app', () => {
  it('RS256, PS256, ES256, ES384 and EdDSA tokens are accepted, on HTTP and Socket.IO', async () => {
    for (const k of Object.values(sys.keys)) {
      const token = k.sign(claims(`u-${k.alg}`));
      const api = new Api(sys.J.url, token);
      const s = await connect(sys.J.url, { token, transports: ['websocket'] });
      const id = await api.createExport(10, { socketId: s.id });
      assert.equal((await waitFinal(s.recorder, id, 30_000, k.alg)).event, 'task:completed');
      assert.deepEqual((await api.list()).map((r) => r.taskId), [id], `${k.alg}: the task is its subject's`);
    }
  });

  it('a key added to the JWKS is accepted at once (one fetch); unknown key ids cost at most one fetch per 10 s', async () => {
    const fresh = keyPair('ES256', 'ec-2');
    const before = sys.jwks.requests();
    sys.jwks.setKeys([...Object.values(sys.keys), fresh]);
    const token = fresh.sign(claims('u-rotated'));
    const res = await new Api(sys.J.url, token).request('GET', '/api/v1/tasks');
    assert.equal(res.status, 200, `the new key's token: ${res.text}`);
    assert.equal(sys.jwks.requests(), before + 1, 'one fetch for the new key id');
    await connect(sys.J.url, { token, transports: ['polling'] });
    assert.equal(sys.jwks.requests(), before + 1, 'the key is cached');

    // A burst of tokens with made-up key ids, on HTTP and Socket.IO.
    const start = Date.now();
    const forger = keyPair('ES256', 'x');
    const burst = [];
    for (let i = 0; i < 30; i++) {
      const t = sign(claims('u-burst'), { alg: 'ES256', key: forger.privateKey, kid: `made-up-${i}-${crypto.randomUUID()}` });
      burst.push(i % 3 === 0
        ? connectError(sys.J.url, t, ['websocket'], 10_000).then((e) => assert.equal(e.data?.message, UNKNOWN_KEY))
        : refusedOverHttp(sys.J.url, t, UNKNOWN_KEY));
    }
    await Promise.all(burst);
    const elapsed = Date.now() - start;
    const fetched = sys.jwks.requests() - before - 1;
    assert.ok(fetched <= 1 + Math.floor(elapsed / 10_000),
      `${fetched} fetches of the JWKS for 30 unknown key ids in ${elapsed} ms`);
    assert.ok(elapsed < 8_000, `the refusals took ${elapsed} ms`);

    // Another key is picked up once the interval allows a fetch: within 10 s,
    // with one more fetch.
    const next = keyPair('EdDSA', 'ed-2');
    sys.jwks.setKeys([...Object.values(sys.keys), fresh, next]);
    const fetchedBefore = sys.jwks.requests();
    const nextToken = next.sign(claims('u-rotated'));
    const t0 = Date.now();
    await until(async () => (await new Api(sys.J.url, nextToken).request('GET', '/api/v1/tasks')).status === 200,
      { timeoutMs: 15_000, intervalMs: 500, what: 'the token of a key added to the JWKS accepted' });
    assert.ok(Date.now() - t0 < 12_000);
    assert.equal(sys.jwks.requests(), fetchedBefore + 1, 'one fetch for it');
  });
});

describe('ANONYMOUS_SESSIONS=false', () => {
  it('GET /api/v1/session answers 404 and anonymous session tokens are refused', async () => {
    for (const srv of [sys.A, sys.J]) {
      const res = await fetch(`${srv.url}/api/v1/session`);
      assert.equal(res.status, 404, srv.name);
      assert.equal((await res.json()).error.code, 'not_found');
    }
    // A session token of a server where they are on (the same TASKWIRE_SECRET).
    const anon = await Api.session(sys.L.url);
    assert.equal((await anon.request('GET', '/api/v1/tasks')).status, 200, 'valid where sessions are on');
    await refused(sys.A.url, anon.token, 'anonymous sessions are turned off: use a token of the app');
    const cookie = await fetch(`${sys.A.url}/api/v1/tasks`, { headers: { Cookie: `taskwire_session=${anon.token}` } });
    assert.equal(cookie.status, 401);
    const none = await fetch(`${sys.A.url}/api/v1/tasks`);
    assert.equal(none.status, 401);
    assert.equal((await none.json()).error.message, "no token: send the app's token as an Authorization: Bearer header");
  });
});

describe('API keys', () => {
  it('act for a subject: create for u-42, list u-42, cancel any task; a wrong key is refused', async () => {
    const backend = new Api(sys.A.url, sys.backend.key);
    const u42 = new Api(sys.B.url, appToken('u-42'));
    const socket = await connect(sys.B.url, { token: u42.token, transports: ['websocket'] });
    const create = await backend.request('POST', '/api/v1/tasks',
      { body: { kind: 'export', params: { rows: 30_000 }, subject: 'u-42', socketId: socket.id } });
    assert.equal(create.status, 202, create.text);
    const id = create.json.id;
    assert.ok((await u42.list()).some((r) => r.taskId === id), 'the u-42 JWT lists the task the backend started for it');
    assert.equal((await u42.record(id)).taskId, id);
    assert.deepEqual((await new Api(sys.B.url, appToken('u-7')).get(id)).json, NOT_FOUND);
    const listed = await backend.request('GET', '/api/v1/tasks?subject=u-42');
    assert.equal(listed.status, 200);
    assert.ok(listed.json.tasks.some((r) => r.taskId === id));
    assert.equal((await backend.request('GET', '/api/v1/tasks')).status, 400, 'a list needs a subject');
    const noSubject = await backend.request('POST', '/api/v1/tasks', { body: { kind: 'export', params: { rows: 5 } } });
    assert.equal(noSubject.status, 400, noSubject.text);
    const userSubject = await u42.request('POST', '/api/v1/tasks', { body: { kind: 'export', params: { rows: 5 }, subject: 'u-7' } });
    assert.equal(userSubject.status, 400, 'a user cannot start a task for someone else');

    // It cancels the task it started, and one the user started; u-42's socket sees it.
    const del = await backend.cancel(id);
    assert.ok([200, 202].includes(del.status), `DELETE: ${del.status} ${del.text}`);
    assert.equal((await waitFinal(socket.recorder, id, 15_000, 'u-42')).event, 'task:cancelled');
    const own = await u42.createExport(30_000);
    const rotatedKey = new Api(sys.B.url, sys.rotated.key); // the second key of TASKWIRE_API_KEYS
    const del2 = await rotatedKey.cancel(own);
    assert.ok([200, 202].includes(del2.status), `DELETE: ${del2.status} ${del2.text}`);
    await u42.waitRecord(own, (r) => r.state === 'cancelled', { what: 'cancelled' });

    await refused(sys.A.url, `twk_${crypto.randomBytes(32).toString('base64url')}`, 'unknown API key');
    await refusedOverHttp(sys.A.url, sys.backend.hash, 'unknown API key');
    await refusedOverHttp(sys.A.url, `${sys.backend.key}x`, 'unknown API key');
    await refusedOverHttp(sys.J.url, sys.backend.key, 'malformed token'); // no keys there
    const onSocket = await connectError(sys.A.url, sys.backend.key);
    assert.equal(onSocket.message, 'unauthorized');
    assert.match(onSocket.data.message, /^API keys are for the HTTP API/);
  });

  it("the limits are the subject's (MAX_ACTIVE_TASKS=2)", async () => {
    const backend = new Api(sys.L.url, sys.backend.key);
    const forSubject = (subject) => backend.request('POST', '/api/v1/tasks', { body: { kind: 'export', params: { rows: 5 }, subject } });
    const first = await forSubject('u-limited');
    assert.equal(first.status, 202, first.text);
    assert.equal((await forSubject('u-limited')).status, 202);
    const third = await forSubject('u-limited');
    assert.equal(third.status, 429, third.text);
    assert.equal(third.json.error.code, 'too_many_active_tasks');
    // The subject's own token meets the same limit; another subject of the same key does not.
    const user = new Api(sys.L.url, appToken('u-limited'));
    assert.equal((await user.request('POST', '/api/v1/tasks', { body: { kind: 'export', params: { rows: 5 } } })).status, 429);
    assert.equal((await forSubject('u-other')).status, 202);
    // Cancelling one (queued: no worker here) makes room.
    assert.equal((await backend.cancel(first.json.id)).status, 200);
    await user.createExport(5);
  });
});

describe('the token of a live socket expires', () => {
  it('task:token_expired, then disconnected within the grace; auth:refresh with a new token keeps the socket', async () => {
    const exp = now() + 3;
    const short = appToken('u-42', { exp });
    const lapsing = await connect(sys.B.url, { token: short, transports: ['websocket'] });
    const late = await connect(sys.A.url, { token: short, transports: ['polling'] });
    const early = await connect(sys.B.url, { token: short, transports: ['polling'] });
    const id = await new Api(sys.A.url, short).createExport(5);

    // Refreshed before it expires: bad requests first, then a good one.
    assert.deepEqual(await ack(early, 'auth:refresh', {}), { error: { code: 'bad_request', message: 'expected {token: string}' } });
    assert.deepEqual(await ack(early, 'auth:refresh', { token: appToken('u-42', { exp: now() - 120 }) }),
      { error: { code: 'unauthorized', message: 'token expired' } });
    assert.equal((await ack(early, 'auth:refresh', { token: appToken('u-7') })).error.code, 'identity_changed');
    const longer = now() + 600;
    const ok = await ack(early, 'auth:refresh', { token: appToken('u-42', { exp: longer }) });
    assert.equal(ok.ok, true);
    assert.equal(Date.parse(ok.expiresAt), longer * 1000);

    // The one that refreshes only once told its token expired.
    const lateRefresh = late.recorder.waitFor('task:token_expired', () => true, 8_000, { label: 'late socket' })
      .then(() => ack(late, 'auth:refresh', { token: appToken('u-42') }));

    const expired = await lapsing.recorder.waitFor('task:token_expired', () => true, 8_000, { label: 'lapsing socket' });
    assert.equal(Date.parse(expired.args[0].expiresAt), exp * 1000);
    assert.ok(Math.abs(expired.at - exp * 1000) < 1_500, `task:token_expired ${expired.at - exp * 1000} ms after exp`);
    const gone = await lapsing.recorder.waitFor('disconnect', () => true, GRACE_MS + 3_000, { label: 'lapsing socket' });
    const after = gone.at - expired.at;
    assert.ok(after >= GRACE_MS - 200 && after < GRACE_MS + 1_500, `disconnected ${after} ms after task:token_expired`);
    assert.equal(gone.args[0], 'io server disconnect');

    assert.equal((await lateRefresh).ok, true, 'refreshed during the grace');
    // Past the grace of all three (they share exp): those that refreshed are still here.
    await new Promise((r) => setTimeout(r, 1_000)); // what is awaited is the absence of a disconnection
    for (const [s, label] of [[late, 'refreshed after expiry'], [early, 'refreshed before expiry']]) {
      assert.equal(s.connected, true, label);
      assert.equal(s.recorder.count('disconnect'), 0, label);
      assert.equal((await ack(s, 'task:subscribe', { taskId: id })).taskId, id, `${label}: still served`);
    }
    assert.equal(early.recorder.count('task:token_expired'), 0, 'refreshed in time: never told it expired');
  });
});
