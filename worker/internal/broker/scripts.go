package broker

import "github.com/redis/go-redis/v9"

// heartbeatScript renews the lease of the entries this consumer still owns: XCLAIM
// with min-idle-time 0 resets their idle time (JUSTID leaves the delivery count
// alone). Entries that another consumer took over, or that are gone, are returned
// and left alone.
//
// KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3...] entry ids.
var heartbeatScript = redis.NewScript(`
local lost = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if type(p) == 'table' and p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
  else
    lost[#lost + 1] = id
  end
end
return lost
`)

// handBackScript puts a message back at the end of the stream as a new entry and
// acknowledges and deletes the old one, so another consumer gets it at once. It
// does nothing (returns 0) when the entry is no longer this consumer's.
//
// KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id, ARGV[4]
// field, ARGV[5] message.
var handBackScript = redis.NewScript(`
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if type(p) ~= 'table' or not p[1] or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XADD', KEYS[1], '*', ARGV[4], ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
`)

// delayScript moves a message from the stream to the delayed set, due at a time,
// acknowledging and deleting its entry. It does nothing (returns 0) when the entry
// is no longer this consumer's.
//
// KEYS[1] stream, KEYS[2] delayed set; ARGV[1] group, ARGV[2] consumer, ARGV[3]
// entry id, ARGV[4] due (Unix ms), ARGV[5] message.
var delayScript = redis.NewScript(`
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if type(p) ~= 'table' or not p[1] or p[1][2] ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
`)

// promoteScript moves the delayed messages that are due into the streams of their
// kinds, at most ARGV[2] of them, and returns how many it moved. Each message
// leaves the set in the same script that adds it to a stream, so a crash cannot
// lose or double it. A message whose kind cannot be read goes to the previous
// release's stream, where a worker drops it (and fails its task).
//
// KEYS[1] delayed set, KEYS[2] the previous release's stream; ARGV[1] now (Unix
// ms), ARGV[2] limit, ARGV[3] field, ARGV[4] the prefix of the kinds' streams.
var promoteScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(due) do
  local ok, msg = pcall(cjson.decode, m)
  local stream = KEYS[2]
  if ok and type(msg) == 'table' and type(msg.kind) == 'string' and string.match(msg.kind, '^[a-z0-9][a-z0-9._-]*$') then
    stream = ARGV[4] .. msg.kind
  end
  redis.call('XADD', stream, '*', ARGV[3], m)
  redis.call('ZREM', KEYS[1], m)
end
return #due
`)

// rerouteScript moves an entry of the previous release's stream to the stream of
// its kind and acknowledges and deletes the old one. It does nothing (returns 0)
// when the entry is no longer this consumer's.
//
// KEYS[1] old stream, KEYS[2] the kind's stream; ARGV[1] group, ARGV[2]
// consumer, ARGV[3] entry id, ARGV[4] field, ARGV[5] message.
var rerouteScript = redis.NewScript(`
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if type(p) ~= 'table' or not p[1] or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XADD', KEYS[2], '*', ARGV[4], ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
`)
