// Engine.IO v4 conformance, written from the protocol's specification
// (socketio/engine.io-protocol, README): one test per requirement on the server,
// run against taskwire-echo -protocol engineio (our transports) and against the
// Node reference (engine.io 6, node/echo-server.mjs) in the same run, so that the
// tests themselves are proven against the reference. Both echo every message.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';

import { SETTINGS, startEcho } from './lib/echo.mjs';
import { RS, Session, endpoint, openWebSocket, request } from './lib/eio.mjs';

/** Slack added to every bound derived from the ping settings (a busy machine). */
const SLACK = 1_500;

/** pollingSid makes a polling session with a raw handshake and returns its sid. */
async function pollingSid(server) {
  const res = await request(endpoint(server, 'polling'));
  assert.equal(res.status, 200, res.body);
  return JSON.parse(res.body.slice(1)).sid;
}

/**
 * pendingGet sends a GET of session sid and resolves, with {answer} (the
 * promise of its answer), once the request has left and the server has had a moment to take it:
 * nothing the server sends says that a GET is waiting (the official suite
 * relies on the order of arrival alone), so 50 ms after the request was written
 * is the margin.
 */
async function pendingGet(server, sid) {
  const url = new URL(endpoint(server, 'polling', { sid }));
  let sent;
  const written = new Promise((resolve) => {
    sent = resolve;
  });
  const answer = new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'GET', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('pending GET: no answer within 10 s')));
    req.on('error', reject);
    req.on('finish', sent);
    req.end();
  });
  answer.catch(() => {});
  await written;
  await new Promise((r) => setTimeout(r, 50));
  return { answer };
}

/**
 * afterPing waits for the next ping of polling session sid (a GET answered
 * "2") and answers it: a test that needs a waiting GET then has a whole
 * pingInterval before the next ping would answer that GET.
 */
async function afterPing(server, sid) {
  const url = endpoint(server, 'polling', { sid });
  const ping = await request(url, { timeoutMs: SETTINGS.pingInterval + SLACK });
  assert.deepEqual([ping.status, ping.body], [200, '2']);
  assert.equal((await request(url, { method: 'POST', body: '3' })).status, 200);
}

/** upgraded upgrades polling session sid to a websocket (probe, then UPGRADE). */
async function upgraded(server, sid) {
  const ws = await openWebSocket(endpoint(server, 'websocket', { sid }));
  ws.send('2probe');
  assert.equal(await ws.next(), '3probe');
  ws.send('5');
  return ws;
}

for (const impl of ['go', 'node']) {
  describe(`Engine.IO v4 conformance: ${impl}`, () => {
    let server;
    const sockets = [];
    before(async () => {
      server = await startEcho({ impl, protocol: 'engineio' });
    });
    after(async () => {
      for (const s of sockets) s.terminate?.() ?? s.close?.();
      await server?.stop();
    });
    const track = (s) => {
      sockets.push(s);
      return s;
    };

    describe('handshake', () => {
      it('answers a polling handshake with the open packet and its five fields', async () => {
        const res = await request(endpoint(server, 'polling'));
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type'), /^text\/plain/);
        assert.equal(res.body[0], '0');
        const open = JSON.parse(res.body.slice(1));
        assert.deepEqual(Object.keys(open).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
        assert.equal(typeof open.sid, 'string');
        assert.ok(open.sid.length > 0);
        assert.deepEqual(open.upgrades, ['websocket']);
        assert.equal(open.pingInterval, SETTINGS.pingInterval);
        assert.equal(open.pingTimeout, SETTINGS.pingTimeout);
        assert.equal(open.maxPayload, SETTINGS.maxPayload);
      });

      it('answers a websocket handshake with the open packet as its first frame', async () => {
        const ws = track(await openWebSocket(endpoint(server, 'websocket')));
        const msg = await ws.next();
        assert.equal(typeof msg, 'string');
        const open = JSON.parse(msg.slice(1));
        assert.equal(msg[0], '0');
        assert.deepEqual(Object.keys(open).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
        assert.deepEqual(open.upgrades, []); // nothing to upgrade to from websocket
        assert.equal(open.pingInterval, SETTINGS.pingInterval);
      });

      it('refuses polling requests without a valid EIO or transport with 400', async () => {
        for (const [what, url] of [
          ['no EIO', endpoint(server, 'polling', { eio: null })],
          ['EIO=abc', endpoint(server, 'polling', { eio: 'abc' })],
          ['no transport', endpoint(server, null)],
          ['transport=carrier-pigeon', `${server.url}${server.path}?EIO=4&transport=carrier-pigeon`],
        ]) {
          const res = await request(url);
          assert.equal(res.status, 400, `${what}: ${res.status} ${res.body}`);
        }
      });

      it('never opens a websocket session without a valid EIO', async () => {
        for (const eio of [null, 'abc']) {
          let ws;
          try {
            ws = track(await openWebSocket(endpoint(server, 'websocket', { eio })));
          } catch (err) {
            assert.equal(err.status, 400, err.message); // refused before the upgrade
            continue;
          }
          // Or accepted and then closed, without an open packet.
          await ws.waitClosed();
          assert.ok(!ws.queue.some((m) => typeof m === 'string' && m.startsWith('0')));
        }
      });

      it('refuses a handshake with another method than GET with 400', async () => {
        const res = await request(endpoint(server, 'polling'), { method: 'PUT', body: '' });
        assert.equal(res.status, 400);
      });

      it('answers GET and POST with an unknown sid with 400', async () => {
        const url = endpoint(server, 'polling', { sid: 'no-such-session' });
        assert.equal((await request(url)).status, 400);
        assert.equal((await request(url, { method: 'POST', body: '4hello' })).status, 400);
      });
    });

    describe('messages and payloads', () => {
      it('answers a POST with 200 "ok" and delivers its packet', async () => {
        const sid = await pollingSid(server);
        const url = endpoint(server, 'polling', { sid });
        const post = await request(url, { method: 'POST', body: '4hello' });
        assert.deepEqual([post.status, post.body], [200, 'ok']);
        const get = await request(url);
        assert.deepEqual([get.status, get.body], [200, '4hello']);
      });

      it('reads and writes payloads of several packets separated by \\x1e (UTF-8 text)', async () => {
        const sid = await pollingSid(server);
        const url = endpoint(server, 'polling', { sid });
        const body = ['4test1', '4test2', '4€ — ☃'].join(RS);
        assert.equal((await request(url, { method: 'POST', body })).status, 200);
        const get = await request(url);
        assert.equal(get.body, body);
      });

      it('carries binary on polling as "b" and base64', async () => {
        const sid = await pollingSid(server);
        const url = endpoint(server, 'polling', { sid });
        const body = `4hello${RS}bAQIDBA==`;
        assert.equal((await request(url, { method: 'POST', body })).status, 200);
        assert.equal((await request(url)).body, body);
      });

      it('carries one packet per websocket frame, binary as is', async () => {
        const s = track(await Session.open(server, 'websocket'));
        await s.send('4hello', Buffer.from([1, 2, 3, 4]), '4€');
        assert.equal(await s.next(), '4hello');
        assert.deepEqual(await s.next(), Buffer.from([1, 2, 3, 4]));
        assert.equal(await s.next(), '4€');
      });

      it('closes a polling session that sends an invalid packet', async () => {
        const sid = await pollingSid(server);
        const url = endpoint(server, 'polling', { sid });
        await request(url, { method: 'POST', body: 'abc' });
        assert.equal((await request(url)).status, 400);
      });

      it('closes a websocket session that sends an invalid packet', async () => {
        const s = track(await Session.open(server, 'websocket'));
        s.ws.send('abc');
        await s.waitEnded();
      });

      it('answers a second concurrent GET with 400 and closes the session', async () => {
        const sid = await pollingSid(server);
        const url = endpoint(server, 'polling', { sid });
        const both = await Promise.all([request(url), request(url)]);
        both.sort((a, b) => a.status - b.status);
        assert.deepEqual(both.map((r) => r.status), [200, 400]);
        assert.equal(both[0].body, '1'); // the waiting GET gets CLOSE
        assert.equal((await request(url)).status, 400);
      });

      it('answers a POST larger than maxPayload with 413', async () => {
        const sid = await pollingSid(server);
        const body = `4${'x'.repeat(SETTINGS.maxPayload + 10)}`;
        const res = await request(endpoint(server, 'polling', { sid }), { method: 'POST', body });
        assert.equal(res.status, 413);
      });

      it('closes a websocket whose message is larger than maxPayload (1009)', async () => {
        const s = track(await Session.open(server, 'websocket'));
        s.ws.send(`4${'x'.repeat(SETTINGS.maxPayload + 10)}`);
        const info = await s.ws.waitClosed();
        assert.equal(info.code, 1009);
      });
    });

    describe('heartbeat', () => {
      for (const transport of ['polling', 'websocket']) {
        it(`pings every pingInterval and keeps a session that answers (${transport})`, async () => {
          const s = track(await Session.open(server, transport, { showPings: true }));
          const start = Date.now();
          assert.equal(await s.next({ timeoutMs: SETTINGS.pingInterval + SLACK }), '2');
          assert.ok(Date.now() - start >= SETTINGS.pingInterval - 50, 'the first ping came before pingInterval');
          assert.equal(await s.next({ timeoutMs: SETTINGS.pingInterval + SLACK }), '2');
          assert.equal(s.ended, null);
        });

        it(`closes a session that does not answer a ping within pingTimeout (${transport})`, async () => {
          const s = track(await Session.open(server, transport, { autoPong: false, showPings: true }));
          const start = Date.now();
          assert.equal(await s.next({ timeoutMs: SETTINGS.pingInterval + SLACK }), '2');
          await s.waitEnded(SETTINGS.pingTimeout + SLACK);
          assert.ok(s.endedAt - start >= SETTINGS.pingInterval + SETTINGS.pingTimeout - 50,
            `closed after ${s.endedAt - start} ms, before pingInterval + pingTimeout`);
          if (transport === 'polling') {
            assert.equal((await request(endpoint(server, 'polling', { sid: s.sid }))).status, 400);
          }
        });
      }
    });

    describe('upgrade', () => {
      it('upgrades: NOOP to the waiting GET, 3probe, then messages on the websocket', async () => {
        const sid = await pollingSid(server);
        await afterPing(server, sid);
        const { answer: waiting } = await pendingGet(server, sid);
        const ws = track(await openWebSocket(endpoint(server, 'websocket', { sid })));
        ws.send('2probe');
        assert.equal(await ws.next(), '3probe');
        assert.deepEqual(await waiting, { status: 200, body: '6' });
        ws.send('5');
        ws.send('4hello');
        assert.equal(await ws.next(), '4hello');
      });

      it('answers polling requests of an upgraded session with 400', async () => {
        for (let i = 0; i < 10; i++) {
          const sid = await pollingSid(server);
          const ws = track(await upgraded(server, sid));
          const url = endpoint(server, 'polling', { sid });
          // Sent right after the UPGRADE packet: it must never be served.
          assert.equal((await request(url)).status, 400, `round ${i}: GET`);
          assert.equal((await request(url, { method: 'POST', body: '4x' })).status, 400, `round ${i}: POST`);
          ws.send('4still-here');
          assert.equal(await ws.next(), '4still-here');
        }
      });

      it('closes a second websocket of an upgraded session', async () => {
        const sid = await pollingSid(server);
        const first = track(await upgraded(server, sid));
        const second = track(await openWebSocket(endpoint(server, 'websocket', { sid })));
        await second.waitClosed();
        assert.deepEqual(second.queue, []); // no open packet, nothing
        first.send('4hello');
        assert.equal(await first.next(), '4hello');
      });

      it('gives up a probe websocket that sends anything but the probe and UPGRADE; polling goes on', async () => {
        const sid = await pollingSid(server);
        const ws = track(await openWebSocket(endpoint(server, 'websocket', { sid })));
        ws.send('2probe');
        assert.equal(await ws.next(), '3probe');
        ws.send('4too-early');
        await ws.waitClosed();
        const url = endpoint(server, 'polling', { sid });
        assert.equal((await request(url, { method: 'POST', body: '4polling' })).status, 200);
        let got = '';
        while (got === '' || got === '6') got = (await request(url)).body; // the probe's NOOP first
        assert.equal(got, '4polling');
      });
    });

    describe('close', () => {
      it('polling: the client\'s CLOSE ends the session; a waiting GET gets NOOP', async () => {
        const sid = await pollingSid(server);
        await afterPing(server, sid);
        const { answer: waiting } = await pendingGet(server, sid);
        const url = endpoint(server, 'polling', { sid });
        assert.equal((await request(url, { method: 'POST', body: '1' })).status, 200);
        assert.deepEqual(await waiting, { status: 200, body: '6' });
        assert.equal((await request(url)).status, 400);
      });

      // The spec requires nothing more of the server here: taskwire closes the
      // websocket at once, Node (engine.io 6) ignores CLOSE on a websocket and
      // ends the session at its ping timeout, as the client answers no more pings.
      it('websocket: after the client\'s CLOSE the session ends (at the latest by ping timeout)', async () => {
        const s = track(await Session.open(server, 'websocket', { autoPong: false }));
        s.ws.send('1');
        await s.ws.waitClosed(SETTINGS.pingInterval + SETTINGS.pingTimeout + SLACK);
      });

      it('while probing: the client\'s CLOSE on polling closes the probe websocket too', async () => {
        const sid = await pollingSid(server);
        const ws = track(await openWebSocket(endpoint(server, 'websocket', { sid })));
        ws.send('2probe');
        assert.equal(await ws.next(), '3probe');
        const url = endpoint(server, 'polling', { sid });
        assert.equal((await request(url, { method: 'POST', body: '1' })).status, 200);
        await ws.waitClosed();
        assert.equal((await request(url)).status, 400);
      });

      it('after the upgrade: the client\'s CLOSE on the websocket ends the session (at the latest by ping timeout)', async () => {
        const sid = await pollingSid(server);
        const ws = track(await upgraded(server, sid));
        ws.send('1');
        await ws.waitClosed(SETTINGS.pingInterval + SETTINGS.pingTimeout + SLACK);
        assert.equal((await request(endpoint(server, 'polling', { sid }))).status, 400);
      });
    });
  });
}
