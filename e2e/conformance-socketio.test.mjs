// Socket.IO v5 conformance, written from the protocol's specification
// (socketio/socket.io-protocol, Readme): one test per requirement on the server,
// over websocket and over HTTP long-polling, run in the same file against
// taskwire-echo (our stack), taskwire-echo with our Redis adapter (on a
// redis-server this file starts), and the Node reference (socket.io 4.8,
// node/echo-server.mjs), so that the tests themselves are proven against the
// reference. The echo servers are configured as the official suite expects:
// "auth" with the handshake's auth on connection, "message" -> "message-back",
// "message-with-ack" acknowledged with its arguments, on "/" and "/custom".

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { SETTINGS, startEcho } from './lib/echo.mjs';
import { SIO, Session, nextSio, sioConnect, sioEncode } from './lib/eio.mjs';
import { startRedis } from './lib/redis.mjs';

/** Slack added to every bound derived from the settings (a busy machine). */
const SLACK = 1_500;

const TARGETS = [
  { name: 'taskwire-echo', impl: 'go' },
  { name: 'taskwire-echo+redis', impl: 'go', redis: true },
  { name: 'node', impl: 'node' },
];

/** Arguments of every kind JSON has, as both sides encode them alike. */
const ARGS = [1, '2', { 3: [true, null] }, 'é € ☃', [], -4.5];

let redis;
before(async () => {
  redis = await startRedis();
});
after(() => redis?.stop());

for (const target of TARGETS) {
  describe(`Socket.IO v5 conformance: ${target.name}`, () => {
    let server;
    const sessions = [];
    before(async () => {
      server = await startEcho({ impl: target.impl, protocol: 'socketio', redisUrl: target.redis ? redis.url : undefined });
    });
    after(async () => {
      for (const s of sessions) s.close();
      await server?.stop();
    });

    for (const transport of ['websocket', 'polling']) {
      /** open makes an Engine.IO session (answering pings) on this transport. */
      const open = async (opts) => {
        const s = await Session.open(server, transport, opts);
        sessions.push(s);
        return s;
      };
      /** connected opens a session and connects it to nsp; it returns the session. */
      const connected = async (nsp = '/') => {
        const s = await open();
        const reply = await sioConnect(s, nsp);
        assert.equal(reply.type, SIO.CONNECT, reply.raw);
        const auth = await nextSio(s);
        assert.deepEqual([auth.nsp, auth.data[0]], [nsp, 'auth']);
        return s;
      };

      describe(transport, () => {
        describe('connection to a namespace', () => {
          it('answers CONNECT to "/" with CONNECT {sid}; a CONNECT without payload has auth {}', async () => {
            const s = await open();
            const reply = await sioConnect(s, '/');
            assert.equal(reply.type, SIO.CONNECT);
            assert.equal(reply.nsp, '/');
            assert.deepEqual(Object.keys(reply.data), ['sid']);
            assert.equal(typeof reply.data.sid, 'string');
            assert.match(reply.raw, /^0\{"sid":"[^"]+"\}$/);
            const auth = await nextSio(s);
            assert.equal(auth.raw, '2["auth",{}]');
          });

          it('hands the CONNECT payload to the server as the handshake auth', async () => {
            const s = await open();
            const reply = await sioConnect(s, '/', { token: '123' });
            assert.equal(reply.type, SIO.CONNECT);
            assert.equal((await nextSio(s)).raw, '2["auth",{"token":"123"}]');
          });

          it('answers CONNECT to a custom namespace in that namespace', async () => {
            const s = await open();
            const reply = await sioConnect(s, '/custom');
            assert.match(reply.raw, /^0\/custom,\{"sid":"[^"]+"\}$/);
            assert.equal((await nextSio(s)).raw, '2/custom,["auth",{}]');
            const s2 = await open();
            await sioConnect(s2, '/custom', { token: 'abc' });
            assert.equal((await nextSio(s2)).raw, '2/custom,["auth",{"token":"abc"}]');
          });

          it('answers CONNECT to an unknown namespace with CONNECT_ERROR {message}', async () => {
            const s = await open();
            const reply = await sioConnect(s, '/random');
            assert.equal(reply.raw, '4/random,{"message":"Invalid namespace"}');
          });

          it('closes the connection when the first packet is not a CONNECT', async () => {
            const s = await open();
            await s.send(...sioEncode({ type: SIO.EVENT, data: ['message', 'too early'] }));
            await s.waitEnded();
          });

          it('closes the connection when no CONNECT comes within the connect timeout', async () => {
            const start = Date.now();
            const s = await open(); // it answers pings: only the connect timeout can end it
            await s.waitEnded(SETTINGS.connectTimeout + SLACK);
            assert.ok(s.endedAt - start >= SETTINGS.connectTimeout - 100, `ended after ${s.endedAt - start} ms`);
          });

          it('closes the connection on a packet that does not decode', async () => {
            const s = await connected();
            await s.send('4abc');
            await s.waitEnded();
          });

          it('keeps several namespaces on one connection (multiplexing)', async () => {
            const s = await connected('/');
            assert.equal((await sioConnect(s, '/custom')).type, SIO.CONNECT);
            assert.equal((await nextSio(s)).raw, '2/custom,["auth",{}]');
            await s.send(...sioEncode({ type: SIO.EVENT, nsp: '/custom', data: ['message', 'c'] }));
            assert.equal((await nextSio(s)).raw, '2/custom,["message-back","c"]');
            await s.send(...sioEncode({ type: SIO.EVENT, data: ['message', 'm'] }));
            assert.equal((await nextSio(s)).raw, '2["message-back","m"]');
          });
        });

        describe('sending and receiving data', () => {
          it('encodes EVENT as type, [namespace,] JSON array', async () => {
            const s = await connected();
            await s.send(`42${JSON.stringify(['message', ...ARGS])}`);
            assert.equal((await nextSio(s)).raw, `2${JSON.stringify(['message-back', ...ARGS])}`);
            const c = await connected('/custom');
            await c.send(`42/custom,${JSON.stringify(['message', ...ARGS])}`);
            assert.equal((await nextSio(c)).raw, `2/custom,${JSON.stringify(['message-back', ...ARGS])}`);
          });

          for (const [what, payload] of [['an object', '{"a":1}'], ['an empty array', '[]'], ['a string', '"message"']]) {
            it(`closes the connection on an EVENT whose payload is ${what}`, async () => {
              const s = await connected();
              await s.send(`42${payload}`);
              await s.waitEnded();
            });
          }

          it('sends binary as BINARY_EVENT: placeholder, then the attachment', async () => {
            const s = await connected();
            const bin = Buffer.from([1, 2, 3, 4]);
            await s.send(...sioEncode({ type: SIO.EVENT, data: ['message', bin] }));
            const back = await nextSio(s);
            assert.equal(back.raw, '51-["message-back",{"_placeholder":true,"num":0}]');
            assert.deepEqual(back.buffers, [bin]);
          });

          it('numbers several attachments in order, in a custom namespace, nested and large', async () => {
            const s = await connected('/custom');
            const a = Buffer.from([1, 2]);
            const b = Buffer.alloc(70_000, 7);
            await s.send(...sioEncode({ type: SIO.EVENT, nsp: '/custom', data: ['message', a, { nested: [b] }, 'text'] }));
            const back = await nextSio(s);
            assert.equal(back.raw,
              '52-/custom,["message-back",{"_placeholder":true,"num":0},{"nested":[{"_placeholder":true,"num":1}]},"text"]');
            assert.deepEqual(back.buffers, [a, b]);
          });
        });

        describe('acknowledgement', () => {
          it('answers an EVENT with an id with an ACK of the same id', async () => {
            const s = await connected();
            await s.send(`4212${JSON.stringify(['message-with-ack', ...ARGS])}`);
            assert.equal((await nextSio(s)).raw, `312${JSON.stringify(ARGS)}`);
          });

          it('acknowledges in the namespace of the event', async () => {
            const s = await connected('/custom');
            await s.send('42/custom,13["message-with-ack","bar"]');
            assert.equal((await nextSio(s)).raw, '3/custom,13["bar"]');
          });

          it('acknowledges with no arguments as an empty array', async () => {
            const s = await connected();
            await s.send('427["message-with-ack"]');
            assert.equal((await nextSio(s)).raw, '37[]');
          });

          it('answers a BINARY_EVENT with an id with a BINARY_ACK of the same id', async () => {
            const s = await connected();
            const bin = Buffer.from([5, 6, 7]);
            await s.send(...sioEncode({ type: SIO.EVENT, id: 456, data: ['message-with-ack', bin, 'x'] }));
            const ack = await nextSio(s);
            assert.equal(ack.raw, '61-456[{"_placeholder":true,"num":0},"x"]');
            assert.deepEqual(ack.buffers, [bin]);
          });
        });

        describe('disconnection from a namespace', () => {
          it('keeps the connection after a DISCONNECT of its only namespace', async () => {
            const s = await connected();
            await s.send('41');
            // The session lives on (pings answered) and can connect again.
            assert.equal((await sioConnect(s, '/custom')).type, SIO.CONNECT);
            assert.equal((await nextSio(s)).raw, '2/custom,["auth",{}]');
            assert.equal(s.ended, null);
          });

          it('ends only the namespace named in DISCONNECT', async () => {
            const s = await connected('/');
            await sioConnect(s, '/custom');
            assert.equal((await nextSio(s)).raw, '2/custom,["auth",{}]');
            await s.send('41/custom,', `42${JSON.stringify(['message', 'to main'])}`);
            assert.equal((await nextSio(s)).raw, '2["message-back","to main"]');
          });
        });
      });
    }
  });
}
