// generate.mjs writes emitter/wire/testdata/golden.json: for each call spec below
// (see lib/spec.mjs for the language), the channel and the exact bytes that the real
// @socket.io/redis-emitter publishes. The Go tests (emitter/wire/golden_test.go,
// emitter/golden_test.go) build the same calls with taskwire's emitter and require
// identical channels and bytes; the server's decoders
// (server/internal/redisadapter/decode/golden_test.go) read them back.
//
// The emitter only ever calls publish(channel, message) on its client, so a fake
// client that records those calls is all it needs; no Redis is involved. The output
// depends only on the specs and the package versions: running it twice gives the
// same file.
//
// Sharded specs ("sharded": true): Node has no sharded emitter, so their vectors are
// what a socket.io 4.8 server with @socket.io/redis-adapter's createShardedAdapter
// (the subscriptionMode of the spec, static by default) SPUBLISHes for the same
// call made on the server (io.of(nsp).to(...).emit(...), socketsJoin, ...), with the
// adapter's uid set to "emitter": the message a sharded server would accept from an
// emitter, byte for byte what Node's own servers send each other.
//
//   npm run golden          (from e2e/)
//   node golden/generate.mjs [--check]   --check: fail if the file is not up to date

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { createShardedAdapter } from '@socket.io/redis-adapter';
import { Emitter } from '@socket.io/redis-emitter';
import { Server } from 'socket.io';

import { applySpec, checkSortedKeys } from '../lib/spec.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const outFile = path.resolve(here, '..', '..', 'emitter', 'wire', 'testdata', 'golden.json');

// The versions that produced the vectors, as the emitter resolves its dependencies.
const require = createRequire(import.meta.url);
function versionOf(name, from) {
  let dir = path.dirname(createRequire(from).resolve(name));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (pkg.name === name) return pkg.version;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the package.json of ${name}`);
    dir = up;
  }
}
const emitterMain = require.resolve('@socket.io/redis-emitter');
const versions = {
  '@socket.io/redis-emitter': versionOf('@socket.io/redis-emitter', import.meta.url),
  'notepack.io': versionOf('notepack.io', emitterMain),
  'socket.io-parser': versionOf('socket.io-parser', emitterMain),
  'socket.io': versionOf('socket.io', import.meta.url),
  '@socket.io/redis-adapter': versionOf('@socket.io/redis-adapter', import.meta.url),
  'socket.io-adapter': versionOf('socket.io-adapter', require.resolve('socket.io')),
};
if (versions['@socket.io/redis-emitter'] !== '5.1.0') {
  throw new Error(`golden vectors must come from @socket.io/redis-emitter 5.1.0, found ${versions['@socket.io/redis-emitter']}`);
}
if (versions['@socket.io/redis-adapter'] !== '8.3.0') {
  throw new Error(`sharded vectors must come from @socket.io/redis-adapter 8.3.0, found ${versions['@socket.io/redis-adapter']}`);
}

const e = (args, extra = {}) => ({ ...extra, call: 'emit', args });
const sh = (spec, mode) => ({ sharded: true, ...(mode ? { subscriptionMode: mode } : {}), ...spec });
const goSocketId = 'SKVasjFnI_UMOQAAAAAAAAAB'; // 24 characters, as taskwire's server makes them

/** @type {[string, object, {differs?: string}?][]} name, spec, notes */
const cases = [
  // Targets and channels.
  ['emit/all', e(['hello', 'world', 1])],
  ['emit/no-args', e(['ping'])],
  ['emit/room', e(['hello', 'x'], { ops: [{ to: 'room1' }] })],
  ['emit/room-array-of-one', e(['hello'], { ops: [{ to: ['room1'] }] })],
  ['emit/in', e(['hello'], { ops: [{ in: 'room1' }] })],
  ['emit/rooms-2', e(['hello'], { ops: [{ to: ['room1', 'room2'] }] })],
  ['emit/rooms-3-chained', e(['hello'], { ops: [{ to: 'a' }, { in: 'b' }, { to: ['c'] }] })],
  ['emit/rooms-dedup', e(['hello'], { ops: [{ to: ['r1', 'r2', 'r1'] }, { to: 'r2' }, { in: ['r3', 'r1'] }] })],
  ['emit/except', e(['hello'], { ops: [{ except: 'x' }] })],
  ['emit/except-2-dedup', e(['hello'], { ops: [{ except: ['x', 'y'] }, { except: 'x' }] })],
  ['emit/room-except', e(['hello'], { ops: [{ to: 'room1' }, { except: 'room2' }] })],
  ['emit/except-then-room', e(['hello'], { ops: [{ except: 'room2' }, { to: 'room1' }] })],
  ['emit/rooms-except', e(['hello'], { ops: [{ to: ['a', 'b'] }, { except: ['c', 'd'] }] })],
  ['emit/socket-id-room', e(['hello'], { ops: [{ to: 'Dq2aWw8kIWyLo5XyAAAB' }] })],
  ['emit/room-unicode', e(['hello'], { ops: [{ to: 'sala-ñ-部屋-🎉' }] })],
  ['emit/room-with-colon', e(['task:progress', { percent: 5 }], { ops: [{ to: 'task:42' }] })],
  ['emit/room-empty-string', e(['hello'], { ops: [{ to: '' }] })],
  ['emit/nsp-admin', e(['hello'], { nsp: '/admin' })],
  ['emit/nsp-admin-no-slash', e(['hello'], { nsp: 'admin' })],
  ['emit/nsp-nested-path', e(['hello'], { nsp: '/a/b' })],
  ['emit/nsp-root', e(['hello'], { nsp: '/' })],
  ['emit/nsp-admin-room', e(['hello'], { nsp: '/admin', ops: [{ to: 'room1' }] })],
  ['emit/key-custom', e(['hello'], { key: 'myapp' })],
  ['emit/key-custom-room', e(['hello'], { key: 'myapp', ops: [{ to: 'room1' }] })],
  ['emit/key-custom-nsp', e(['hello'], { key: 'myapp', nsp: 'admin' })],

  // Flags.
  ['flags/volatile', e(['hello'], { ops: [{ volatile: true }] })],
  ['flags/compress-false', e(['hello'], { ops: [{ compress: false }] })],
  ['flags/compress-true', e(['hello'], { ops: [{ compress: true }] })],
  ['flags/volatile-compress', e(['hello'], { ops: [{ volatile: true }, { compress: false }] })],
  ['flags/compress-volatile', e(['hello'], { ops: [{ compress: false }, { volatile: true }] })],
  ['flags/compress-twice', e(['hello'], { ops: [{ compress: false }, { volatile: true }, { compress: true }] })],
  ['flags/volatile-twice', e(['hello'], { ops: [{ volatile: true }, { volatile: true }] })],
  ['flags/room-volatile-except', e(['hello'], { ops: [{ to: 'r' }, { volatile: true }, { except: 'x' }] })],

  // Strings (fixstr < 32 bytes, str8 < 256, str16 < 65536, str32).
  ['str/empty', e(['s', ''])],
  ['str/31', e(['s', { $repeat: 'a', times: 31 }])],
  ['str/32', e(['s', { $repeat: 'a', times: 32 }])],
  ['str/33', e(['s', { $repeat: 'a', times: 33 }])],
  ['str/255', e(['s', { $repeat: 'a', times: 255 }])],
  ['str/256', e(['s', { $repeat: 'a', times: 256 }])],
  ['str/65535', e(['s', { $repeat: 'a', times: 65535 }])],
  ['str/65536', e(['s', { $repeat: 'a', times: 65536 }])],
  ['str/unicode', e(['s', 'héllo wörld — 日本語 🎉 ∑'])],
  ['str/unicode-31-bytes', e(['s', 'ééééééééééééééé!'])],
  ['str/unicode-32-bytes', e(['s', { $repeat: 'é', times: 16 }])],
  ['str/unicode-long', e(['s', { $repeat: '日本🎉', times: 40 }])],
  ['str/controls-quotes', e(['s', 'tab\tnl\ncr\r"q"\\ <b>&amp;</b> \u0000 \u001f \u007f \u2028 \u2029'])],
  ['str/event-unicode', e(['événement:進捗', 1])],

  // Numbers.
  ['int/positive-boundaries', e(['n', 0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 9007199254740991])],
  ['int/negative-boundaries', e(['n', -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -9007199254740991])],
  ['int/large', e(['n', 1099511627776, -1099511627776, 4503599627370496])],
  ['float/values', e(['f', 1.5, -2.25, 0.1, 3.141592653589793, 1e-7, 1.7976931348623157e-300, 5e-324, -0.000001, 123456789.125])],
  ['float/integral', e(['f', { $float: 0 }, { $float: 1 }, { $float: -1 }, { $float: 128 }, { $float: 255 }, { $float: 65536 },
    { $float: -129 }, { $float: 4294967296 }, { $float: 1e15 }])],
  ['float/special', e(['f', { $num: 'Infinity' }, { $num: '-Infinity' }, { $num: '-0' }])],
  // Known differences: kept in the file so the Go tests can show what each side does.
  ['float/huge-integral', e(['f', 1.7976931348623157e308, 1e20, 18446744073709551616]), {
    differs: 'notepack.io 3.0.1 writes integral numbers >= 2^64 as a uint64 whose high word wrapped ' +
      '(Number.MAX_VALUE and 2^64 become 0, 1e20 becomes 1e20 mod 2^64): the receiver gets wrong numbers. ' +
      'taskwire writes a float64 holding the exact value.',
  }],
  ['float/2^63', e(['f', 9223372036854775808]), {
    differs: 'notepack.io writes 2^63 as uint64 (exact); taskwire writes float64 (exact). Same number.',
  }],
  ['float/nan', e(['f', { $num: 'NaN' }]), {
    differs: "only the NaN payload: V8 writes 7ff8000000000000, Go's math.NaN() is 7ff8000000000001. Both decode as NaN.",
  }],
  ['bool/null', e(['b', true, false, null])],

  // Arrays and objects.
  ['array/empty-and-nested', e(['a', [], [1, [2, [3, []]]], ['x', true, null, 1.5]])],
  ['array/15-16', e(['a', Array.from({ length: 15 }, (_, i) => i), Array.from({ length: 16 }, (_, i) => i)])],
  ['object/empty', e(['o', {}])],
  ['object/flat-sorted', e(['o', { a: 1, b: 'two', c: true, d: null, e: 1.5 }])],
  ['object/nested', e(['o', { list: [{ id: 1, tags: ['x'] }, { id: 2, tags: [] }], meta: { deep: { deeper: { v: 'end' } } } }])],
  ['object/15-16-keys', e(['o',
    Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${String(i).padStart(2, '0')}`, i])),
    Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${String(i).padStart(2, '0')}`, i]))])],
  ['object/unicode-keys', e(['o', { Z: 1, a: 2, é: 3, 日本: 4 }])],
  ['object/progress', e(['task:progress', { done: 500, percent: 50, seq: 7, stage: 'writing', taskId: 't-1', total: 1000 }],
    { ops: [{ to: 'task:t-1' }] })],

  // Binary (bin8 < 256, bin16 < 65536, bin32).
  ['bin/0', e(['bin', { $bin: '' }])],
  ['bin/1', e(['bin', { $bin: 'AA==' }])],
  ['bin/255', e(['bin', { $binpat: 255 }])],
  ['bin/256', e(['bin', { $binpat: 256 }])],
  ['bin/65535', e(['bin', { $binpat: 65535 }])],
  ['bin/70000', e(['bin', { $binpat: 70000 }])],
  ['bin/in-object', e(['bin', { data: { $bin: 'AQID/w==' }, name: 'file.bin' }])],
  ['bin/in-array', e(['bin', [{ $bin: 'AQ==' }, 'x', { $bin: 'AgM=' }]])],
  ['bin/mixed-args', e(['upload', 'name', { $bin: 'aGVsbG8=' }, 3])],

  // Dates (msgpack timestamp extension -1: 32, 64 and 96 bit forms).
  ['date/epoch', e(['d', { $date: 0 }])],
  ['date/seconds', e(['d', { $date: 1700000000000 }])],
  ['date/millis', e(['d', { $date: 1700000000123 }])],
  ['date/after-2106', e(['d', { $date: 4294967296000 }])],
  ['date/before-1970', e(['d', { $date: -1000 }])],

  // Requests.
  ['join/all', { call: 'socketsJoin', args: ['room1'] }],
  ['join/array', { call: 'socketsJoin', args: [['room1', 'room2']] }],
  ['join/rooms-except', { call: 'socketsJoin', ops: [{ to: ['a', 'b'] }, { except: 'c' }], args: ['room1'] }],
  ['join/nsp', { call: 'socketsJoin', nsp: 'admin', ops: [{ in: 'a' }], args: [['x']] }],
  ['join/key', { call: 'socketsJoin', key: 'myapp', args: ['x'] }],
  ['join/unicode', { call: 'socketsJoin', ops: [{ to: 'sala-ñ' }], args: ['部屋 🎉 <&> "q"'] }],
  ['join/line-separators', { call: 'socketsJoin', args: ['a\u2028b\u2029c'] }],
  // The text \u2028 (a backslash, then "u2028") must stay text; a real U+2028 after a
  // backslash must still be written raw.
  ['join/backslash-u2028-text', { call: 'socketsJoin', args: [['\\u2028|\\\u2028|\\\\u2029', '\\']] }],
  ['leave/all', { call: 'socketsLeave', args: ['room1'] }],
  ['leave/rooms-except', { call: 'socketsLeave', ops: [{ to: 'a' }, { except: ['b', 'c'] }], args: [['room1', 'room2']] }],
  ['disconnect/default', { call: 'disconnectSockets', args: [] }],
  ['disconnect/false', { call: 'disconnectSockets', args: [false] }],
  ['disconnect/true', { call: 'disconnectSockets', args: [true] }],
  ['disconnect/room-except', { call: 'disconnectSockets', ops: [{ to: 'a' }, { except: 'b' }], args: [true] }],
  ['disconnect/nsp', { call: 'disconnectSockets', nsp: '/admin', args: [false] }],
  ['sse/no-args', { call: 'serverSideEmit', args: ['ping'] }],
  ['sse/args', { call: 'serverSideEmit', args: ['hello', 'world', 1, 1.5, -7, true, false, null, [1, 'a'], { a: 1, b: { c: [] } }] }],
  ['sse/nsp', { call: 'serverSideEmit', nsp: 'admin', args: ['hello', 1] }],
  ['sse/key', { call: 'serverSideEmit', key: 'myapp', args: ['hello'] }],
  ['sse/strings', { call: 'serverSideEmit', args: ['s', '<b>&amp;</b>', 'héllo 日本 🎉', 'tab\tnl\n"q"\\', '\u0000\u001f\u007f', '\u2028\u2029'] }],
  ['sse/numbers', { call: 'serverSideEmit', args: ['n', 0, 9007199254740991, -9007199254740991, 0.1, 1e21, 1e-7, 123456789.125, { $float: 2 }] }],

  // Go structs: the Go side encodes the struct registered under goArgs (see
  // emitter/internal/spec/structs.go); the JS object has the keys in the order of the
  // struct's fields, without the fields Go leaves out.
  ['struct/progress', e(['task:progress', { taskId: 't-1', seq: 3, percent: 42.5, done: 425, total: 1000 }],
    { goArgs: 'progress', ops: [{ to: 'task:t-1' }] })],
  ['struct/progress-full', e(['task:progress', { taskId: 't-2', seq: 4, percent: 100, done: 10, total: 10, stage: 'done', etaSeconds: 0 }],
    { goArgs: 'progress-full' })],
  ['struct/order', e(['order', {
    id: 'o-1', kind: 'export',
    items: [{ name: 'pen', qty: 2 }, { name: 'ink', qty: 1 }],
    meta: { a: 1, b: 'x' },
    blob: { $bin: 'AQID' },
    parent: null,
    NoTag: 'kept',
    createdAt: { $date: 1700000000123 },
  }], { goArgs: 'order' })],
  ['struct/pointer-and-args', e(['mixed', 'first', { taskId: 't-3', seq: 1, percent: 0.5, done: 1, total: 200 }, 7],
    { goArgs: 'pointer-and-args' })],
  ['struct/sse', { call: 'serverSideEmit', args: ['task:progress', { taskId: 't-4', seq: 9, percent: 12.5, done: 1, total: 8 }],
    goArgs: 'sse-progress' }],

  // The value rules (emitter/wire/value.go): types that marshal themselves, and the
  // field options of encoding/json. The JS side is the value a Go user means.
  ['value/raw-json', e(['raw', { b: 1, a: [1.5, 'x', null, true, 1000], c: { z: 1, y: -0.5 } }, 's'], { goArgs: 'raw-json' })],
  ['value/marshalers', e(['m', {
    ip: '10.0.0.1', custom: { z: true, a: [1, 2.5], n: 7 }, level: 'level-3', ptr: 'ptr:x', raw: [1, { b: 2 }],
    quoted: '42', flag: 'true', dur: 1500000000, hash: { $bin: '3q2+7w==' }, when: { $date: 1700000000123 },
    nil: null, '-': 'dash',
  }], { goArgs: 'marshalers' })],
  ['value/embedded-conflicts', e(['c', { Kind: 'a-kind', name: 'top' }], { goArgs: 'conflicts' })],
  ['sse/binary-as-buffer-json', { call: 'serverSideEmit', args: ['b', { $bin: 'AQID' }, { nested: { $bin: '' } }] }],
  ['sse/date', { call: 'serverSideEmit', args: ['d', { $date: 1700000000123 }, { $date: 0 }, { $date: -1000 }] }],
  ['sse/special-numbers', { call: 'serverSideEmit', args: ['n', { $num: 'NaN' }, { $num: 'Infinity' }, { $num: '-Infinity' }, { $num: '-0' }] }],
  ['sse/marshalers', { call: 'serverSideEmit', goArgs: 'marshalers', args: ['m', {
    ip: '10.0.0.1', custom: { z: true, a: [1, 2.5], n: 7 }, level: 'level-3', ptr: 'ptr:x', raw: [1, { b: 2 }],
    quoted: '42', flag: 'true', dur: 1500000000, hash: { $bin: '3q2+7w==' }, when: { $date: 1700000000123 },
    nil: null, '-': 'dash',
  }] }],

  // Sharded pub/sub (createShardedAdapter): see the note at the top.
  ['sharded/emit-all', sh(e(['hello', 'world', 1]))],
  ['sharded/emit-no-args', sh(e(['ping']))],
  ['sharded/emit-room-static', sh(e(['hello', 'x'], { ops: [{ to: 'room1' }] }))],
  ['sharded/emit-room-explicit-static', sh(e(['hello', 'x'], { ops: [{ to: 'room1' }] }), 'static')],
  ['sharded/emit-room-dynamic', sh(e(['hello', 'x'], { ops: [{ to: 'room1' }] }), 'dynamic')],
  ['sharded/emit-room-dynamic-private', sh(e(['hello', 'x'], { ops: [{ to: 'room1' }] }), 'dynamic-private')],
  ['sharded/emit-node-socket-id-dynamic', sh(e(['hello'], { ops: [{ to: 'Dq2aWw8kIWyLo5XyAAAB' }] }), 'dynamic')],
  ['sharded/emit-node-socket-id-dynamic-private', sh(e(['hello'], { ops: [{ to: 'Dq2aWw8kIWyLo5XyAAAB' }] }), 'dynamic-private')],
  ['sharded/emit-go-socket-id-dynamic', sh(e(['hello'], { ops: [{ to: goSocketId }] }), 'dynamic')],
  ['sharded/emit-rooms-2-dynamic', sh(e(['hello'], { ops: [{ to: ['room1', 'room2'] }] }), 'dynamic')],
  ['sharded/emit-except-dynamic', sh(e(['hello'], { ops: [{ except: 'x' }] }), 'dynamic')],
  ['sharded/emit-room-except-dynamic', sh(e(['hello'], { ops: [{ to: 'room1' }, { except: ['x', 'y'] }] }), 'dynamic')],
  ['sharded/emit-nsp', sh(e(['hello'], { nsp: 'admin', ops: [{ to: 'r' }] }), 'dynamic')],
  ['sharded/emit-key', sh(e(['hello'], { key: 'myapp', ops: [{ to: 'r' }] }), 'dynamic')],
  ['sharded/flags', sh(e(['hello'], { ops: [{ volatile: true }, { compress: false }, { to: 'r' }] }))],
  ['sharded/flags-compress-first', sh(e(['hello'], { ops: [{ compress: true }, { volatile: true }] }))],
  ['sharded/strings', sh(e(['s', '', 'tab\tnl\ncr\r"q"\\ <b>&amp;</b> \u0000 \u001f \u007f \u2028 \u2029', 'héllo 日本 🎉',
    { $repeat: 'ab', times: 200 }]))],
  ['sharded/numbers', sh(e(['n', 0, 1, -1, 127, 128, -129, 4294967296, 9007199254740991, -9007199254740991, 0.1, 1.5, -2.25,
    1e21, 1e-7, 5e-324, 123456789.125, { $float: 2 }, { $num: '-0' }]))],
  ['sharded/special-numbers', sh(e(['n', { $num: 'NaN' }, { $num: 'Infinity' }, { $num: '-Infinity' }]))],
  ['sharded/objects', sh(e(['o', {}, [], { list: [{ id: 1, tags: ['x'] }, { id: 2, tags: [] }], meta: { deep: { v: null } } }, true, false, null]))],
  ['sharded/date', sh(e(['d', { $date: 1700000000123 }, { $date: 0 }, { $date: 4294967296000 }]))],
  ['sharded/binary', sh(e(['bin', { $bin: 'AQID' }, 'x', 1]))],
  ['sharded/binary-nested-with-date', sh(e(['bin', { file: { data: { $binpat: 300 }, name: 'f' } }, { $date: 1700000000123 }, [1.5, 'y']], { ops: [{ to: 'r' }] }))],
  ['sharded/struct', sh(e(['task:progress', { taskId: 't-1', seq: 3, percent: 42.5, done: 425, total: 1000 }],
    { goArgs: 'progress', ops: [{ to: 'task:t-1' }] }), 'dynamic')],
  ['sharded/marshalers', sh(e(['m', {
    ip: '10.0.0.1', custom: { z: true, a: [1, 2.5], n: 7 }, level: 'level-3', ptr: 'ptr:x', raw: [1, { b: 2 }],
    quoted: '42', flag: 'true', dur: 1500000000, hash: { $bin: '3q2+7w==' }, when: { $date: 1700000000123 },
    nil: null, '-': 'dash',
  }], { goArgs: 'marshalers' }))],
  ['sharded/join', sh({ call: 'socketsJoin', args: ['room1'] })],
  ['sharded/join-rooms-except', sh({ call: 'socketsJoin', ops: [{ to: ['a', 'b'] }, { except: 'c' }], args: [['x', 'y']] }, 'dynamic')],
  ['sharded/join-with-flags', sh({ call: 'socketsJoin', ops: [{ in: 'a' }, { volatile: true }], args: ['x'] })],
  ['sharded/join-nsp', sh({ call: 'socketsJoin', nsp: '/admin', args: ['x'] })],
  ['sharded/leave', sh({ call: 'socketsLeave', ops: [{ to: 'a' }], args: [['x']] }, 'dynamic-private')],
  ['sharded/disconnect-default', sh({ call: 'disconnectSockets', args: [] })],
  ['sharded/disconnect-true', sh({ call: 'disconnectSockets', ops: [{ to: 'a' }, { except: 'b' }], args: [true] })],
  ['sharded/sse', sh({ call: 'serverSideEmit', args: ['hello', 'world', 1, 1.5, null, { a: [true] }] })],
  ['sharded/sse-no-args', sh({ call: 'serverSideEmit', args: ['ping'] }, 'dynamic')],
  ['sharded/sse-nsp-key', sh({ call: 'serverSideEmit', key: 'myapp', nsp: 'admin', args: ['ping', 2] })],
  ['sharded/sse-binary', sh({ call: 'serverSideEmit', args: ['bin', { $bin: 'AQ==' }, { $date: 1700000000123 }] })],
];

class RecordingClient {
  constructor() {
    this.calls = [];
  }

  publish(channel, message) {
    this.calls.push({ channel, message });
    return Promise.resolve(0);
  }
}

function toHex(message) {
  return Buffer.isBuffer(message) ? message.toString('hex') : Buffer.from(message, 'utf8').toString('hex');
}

// ShardedRecorder stands for both Redis clients of createShardedAdapter: it records
// sPublish and ignores subscriptions.
class ShardedRecorder {
  constructor() {
    this.calls = [];
  }

  sPublish(channel, message) {
    this.calls.push({ channel, message });
    return Promise.resolve(0);
  }

  sSubscribe() {}

  sUnsubscribe() {}

  sendCommand() {
    return Promise.resolve(['', '1']);
  }
}

const shardedServers = new Map();

/** shardedServer returns a socket.io server with a sharded adapter for key and mode. */
function shardedServer(key = 'socket.io', mode = 'static') {
  const id = `${key}\0${mode}`;
  if (!shardedServers.has(id)) {
    const client = new ShardedRecorder();
    const io = new Server({ adapter: createShardedAdapter(client, client, { channelPrefix: key, subscriptionMode: mode }) });
    shardedServers.set(id, { io, client });
  }
  return shardedServers.get(id);
}

/** publishSharded performs spec on a Node server with the sharded adapter. */
async function publishSharded(spec) {
  const { io, client } = shardedServer(spec.key, spec.subscriptionMode);
  client.calls = [];
  const namespace = (name) => {
    const nsp = io.of(name);
    nsp.adapter.uid = 'emitter'; // what an emitter sends
    return nsp;
  };
  applySpec(spec.nsp !== undefined ? { of: namespace } : namespace('/'), spec);
  await new Promise((resolve) => setImmediate(resolve)); // the adapter publishes after a microtask for some calls
  return client.calls;
}

const names = new Set();
const out = [];
for (const [name, spec, notes = {}] of cases) {
  if (names.has(name)) throw new Error(`duplicate case ${name}`);
  names.add(name);
  if (!spec.goArgs) checkSortedKeys(spec.args, `${name}: args`);
  let calls;
  if (spec.sharded) {
    calls = await publishSharded(spec);
  } else {
    const client = new RecordingClient();
    const emitter = new Emitter(client, spec.key !== undefined ? { key: spec.key } : undefined);
    applySpec(emitter, spec);
    calls = client.calls;
  }
  if (calls.length !== 1) {
    throw new Error(`${name}: expected exactly one publish, got ${calls.length}`);
  }
  const [{ channel, message }] = calls;
  const entry = { name, spec, channel, payloadHex: toHex(message) };
  // differs: the Go side knowingly writes other bytes for this spec (and why).
  if (notes.differs) entry.differs = notes.differs;
  out.push(entry);
}

// One entry per line pair keeps diffs readable; the big payloads stay on one line.
const text = `[\n${out.map((x) => JSON.stringify(x)).join(',\n')}\n]\n`;

if (process.argv.includes('--check')) {
  const current = fs.existsSync(outFile) ? fs.readFileSync(outFile, 'utf8') : '';
  if (current !== text) {
    console.error(`${path.relative(process.cwd(), outFile)} is not up to date: run npm run golden`);
    process.exit(1);
  }
  console.log(`${out.length} golden vectors up to date (${JSON.stringify(versions)})`);
} else {
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, text);
  console.log(`wrote ${out.length} golden vectors to ${path.relative(process.cwd(), outFile)} (${JSON.stringify(versions)})`);
}
