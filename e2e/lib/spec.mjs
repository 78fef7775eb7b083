// The emitter call spec: a small JSON language that describes one emitter call, read
// the same way by the Node side (this file, with @socket.io/redis-emitter) and the Go
// side (emitter/internal/spec, with taskwire's emitter). The golden vectors and the
// interop tests are written in it.
//
//   {
//     "key":  "socket.io",           optional: the channel prefix (Emitter option key)
//     "nsp":  "/admin",              optional: apply of(nsp) first ("admin" is allowed too)
//     "ops":  [{"to": "r1"}, {"to": ["r2", "r3"]}, {"in": "r4"}, {"except": ["x"]},
//              {"volatile": true}, {"compress": false}],    applied in order
//     "call": "emit" | "socketsJoin" | "socketsLeave" | "disconnectSockets" | "serverSideEmit",
//     "args": [...]                  the call's arguments, as values (below):
//                                      emit, serverSideEmit:  [event, ...args]
//                                      socketsJoin/Leave:     [room or [rooms]]
//                                      disconnectSockets:     [] or [close]
//     "goArgs": "name"               optional, Go side only: use the Go values registered
//                                    under this name (structs) instead of args[1:]
//     "sharded": true                optional: a sharded emitter (Go: Options.Sharded;
//                                    Node has no sharded emitter: the golden vectors
//                                    come from createShardedAdapter, see golden/generate.mjs)
//     "subscriptionMode": "static" | "dynamic" | "dynamic-private"   optional, with sharded
//   }
//
// Values are JSON, plus these one-key objects:
//   {"$bin": "<base64>"}                    binary (Buffer / []byte)
//   {"$binpat": n}                          n bytes, byte i = i % 256
//   {"$repeat": "ab", "times": n}           the string repeated n times
//   {"$date": ms}                           a Date / time.Time (UTC) from Unix milliseconds
//   {"$num": "NaN"|"Infinity"|"-Infinity"|"-0"}
//   {"$float": x}                           the number x; on the Go side a float64 even
//                                           when integral (plain integral numbers are int)
// Objects must list their keys in the order the Go side writes them: sorted for maps.

/**
 * revive turns a spec value into the JavaScript value it describes.
 *
 * @param {unknown} v
 * @returns {unknown}
 */
export function revive(v) {
  if (Array.isArray(v)) return v.map(revive);
  if (v === null || typeof v !== 'object') return v;
  const keys = Object.keys(v);
  if (keys.length > 0 && keys[0].startsWith('$')) {
    switch (keys[0]) {
      case '$bin':
        return Buffer.from(v.$bin, 'base64');
      case '$binpat': {
        const b = Buffer.alloc(v.$binpat);
        for (let i = 0; i < b.length; i++) b[i] = i & 0xff;
        return b;
      }
      case '$repeat':
        return v.$repeat.repeat(v.times);
      case '$date':
        return new Date(v.$date);
      case '$num':
        return { NaN, Infinity, '-Infinity': -Infinity, '-0': -0 }[v.$num] ?? fail(`bad $num ${v.$num}`);
      case '$float':
        return v.$float;
      default:
        fail(`unknown spec value form ${keys[0]}`);
    }
  }
  const out = {};
  for (const k of keys) out[k] = revive(v[k]);
  return out;
}

/**
 * toSpecValue turns a received value back into a spec value: binary (Buffer,
 * ArrayBuffer, typed arrays) becomes {"$bin": base64}; everything else is copied.
 *
 * @param {unknown} v
 * @returns {unknown}
 */
export function toSpecValue(v) {
  if (Buffer.isBuffer(v)) return { $bin: v.toString('base64') };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString('base64') };
  if (ArrayBuffer.isView(v)) return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (Array.isArray(v)) return v.map(toSpecValue);
  if (v instanceof Date) return { $date: v.getTime() };
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = toSpecValue(x);
    return out;
  }
  return v;
}

/**
 * asClientSees returns the spec value as a socket.io client receives it after the
 * server has encoded it: binary stays binary ({"$bin"}, see toSpecValue), a Date
 * becomes its ISO string, -0 becomes 0, NaN and ±Infinity become null.
 *
 * @param {unknown} v  a spec value
 * @returns {unknown}
 */
export function asClientSees(v) {
  const walk = (x) => {
    if (Buffer.isBuffer(x)) return { $bin: x.toString('base64') };
    if (x instanceof Date) return x.toISOString();
    if (typeof x === 'number') return Number.isFinite(x) ? (Object.is(x, -0) ? 0 : x) : null;
    if (Array.isArray(x)) return x.map(walk);
    if (x && typeof x === 'object') {
      const out = {};
      for (const [k, y] of Object.entries(x)) out[k] = walk(y);
      return out;
    }
    return x;
  };
  return walk(revive(v));
}

/**
 * checkSortedKeys throws when an object in spec value v (outside the one-key forms)
 * does not list its keys in sorted order, or when JavaScript would reorder them
 * (integer-like keys), since the Go side encodes maps with sorted keys.
 *
 * @param {unknown} v
 * @param {string} [where]
 */
export function checkSortedKeys(v, where = 'value') {
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkSortedKeys(x, `${where}[${i}]`));
    return;
  }
  if (v === null || typeof v !== 'object') return;
  const keys = Object.keys(v);
  if (keys.length > 0 && keys[0].startsWith('$')) return;
  const sorted = [...keys].sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
  if (keys.join('\0') !== sorted.join('\0')) {
    fail(`${where}: object keys ${JSON.stringify(keys)} are not in Go's sorted order ${JSON.stringify(sorted)}`);
  }
  for (const k of keys) checkSortedKeys(v[k], `${where}.${k}`);
}

function roomsArg(v) {
  if (typeof v === 'string' || Array.isArray(v)) return v;
  fail(`rooms must be a string or an array of strings, got ${JSON.stringify(v)}`);
}

/**
 * applySpec performs spec with Node's @socket.io/redis-emitter: emitter is an
 * Emitter (new Emitter(client, {key})), of which spec.nsp and spec.ops build the
 * target. It returns what the call returned.
 *
 * @param {import('@socket.io/redis-emitter').Emitter} emitter
 * @param {object} spec
 */
export function applySpec(emitter, spec) {
  let target = emitter;
  if (spec.nsp !== undefined) target = target.of(spec.nsp);
  for (const op of spec.ops ?? []) {
    const [name, ...more] = Object.keys(op);
    if (more.length) fail(`op ${JSON.stringify(op)} has more than one key`);
    const arg = op[name];
    switch (name) {
      case 'to':
      case 'in':
      case 'except':
        target = target[name](roomsArg(arg));
        break;
      case 'volatile':
        if (arg !== true) fail('op volatile must be true');
        target = target.volatile;
        break;
      case 'compress':
        if (typeof arg !== 'boolean') fail('op compress needs a boolean');
        target = target.compress(arg);
        break;
      default:
        fail(`unknown op ${name}`);
    }
  }
  const args = (spec.args ?? []).map(revive);
  switch (spec.call) {
    case 'emit':
    case 'serverSideEmit':
      if (typeof args[0] !== 'string') fail(`${spec.call} needs an event name as args[0]`);
      if (spec.call === 'serverSideEmit' && target !== emitter && spec.ops?.length) {
        fail('serverSideEmit takes no ops');
      }
      return target[spec.call](...args);
    case 'socketsJoin':
    case 'socketsLeave':
      if (args.length !== 1) fail(`${spec.call} takes one argument (a room or an array of rooms)`);
      return target[spec.call](roomsArg(args[0]));
    case 'disconnectSockets':
      if (args.length > 1 || (args.length === 1 && typeof args[0] !== 'boolean')) {
        fail('disconnectSockets takes [] or [close]');
      }
      return target.disconnectSockets(...args);
    default:
      fail(`unknown call ${JSON.stringify(spec.call)}`);
  }
}

function fail(msg) {
  throw new Error(`spec: ${msg}`);
}
