package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/tasks"
)

// ErrTooManyActive is returned by CreateLimited when the owner already has as many
// active (queued or running) tasks as allowed; nothing was created.
var ErrTooManyActive = errors.New("store: too many active tasks")

// ActiveTasks is the key of the set of the ids of one identity's tasks that were
// active (queued or running) when last looked at. CreateLimited keeps it.
func (k Keys) ActiveTasks(owner string) string { return k.Prefix + ":user:" + owner + ":active" }

// CreateRate is the key of the token bucket that bounds how fast one identity
// creates tasks (see Allow).
func (k Keys) CreateRate(owner string) string { return k.Prefix + ":user:" + owner + ":create-rate" }

// createLimitedScript is Create with a bound on the owner's active tasks, in one
// script so that concurrent creations on any number of server replicas cannot
// exceed it.
//
// The owner's active set (KEYS[3]) is a superset of the owner's active tasks: an id
// enters it with its record, in this script, and leaves it here, once its record
// says the task is over or the record is gone (expired, or lost with a Redis that
// kept no data). So the count is taken from the records themselves, whatever
// finished the task (worker, cancel, failure, expiry), and the set never holds more
// than the bound. The records' keys are derived from ARGV[3]: like the rest of the
// store, this assumes one Redis (no cluster).
//
// KEYS: record, owner's index, owner's active set. ARGV: max active, TTL ms, record
// key prefix, task id, index score (creation ms), index length, then the record's
// field/value pairs. It returns {1, active including the new task} or {0, active}.
var createLimitedScript = redis.NewScript(`
local max = tonumber(ARGV[1])
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local st = redis.call('HGET', ARGV[3] .. id, 'state')
  if st == 'queued' or st == 'running' then
    n = n + 1
  else
    redis.call('SREM', KEYS[3], id)
  end
end
if n >= max then return {0, n} end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[6]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return {1, n + 1}
`)

// CreateLimited is Create for an owner who may have at most maxActive active
// (queued or running) tasks at once, counted across every server replica. It
// returns the owner's number of active tasks: with the new one when it was created,
// or the number found, with ErrTooManyActive, when the bound was reached (then
// nothing was written). A task stops counting as soon as its record is final or
// gone. With maxActive <= 0 it is Create (and returns 0).
func (s *Store) CreateLimited(ctx context.Context, rec *tasks.Record, maxActive int) (int, error) {
	if maxActive <= 0 {
		return 0, s.Create(ctx, rec)
	}
	if rec.ID == "" || rec.Owner == "" {
		return 0, fmt.Errorf("store: create: record needs an id and an owner")
	}
	fields := rec.Fields()
	args := make([]any, 0, 6+2*len(fields))
	args = append(args, maxActive, s.ttl.Milliseconds(), s.keys.Task(""), rec.ID, rec.CreatedAt.UnixMilli(), s.recent)
	for k, v := range fields {
		args = append(args, k, v)
	}
	keys := []string{s.keys.Task(rec.ID), s.keys.UserTasks(rec.Owner), s.keys.ActiveTasks(rec.Owner)}
	v, err := createLimitedScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("store: create %s: %w", rec.ID, err)
	}
	if len(v) != 2 {
		return 0, fmt.Errorf("store: create %s: unexpected script reply %v", rec.ID, v)
	}
	if v[0] != 1 {
		return int(v[1]), ErrTooManyActive
	}
	// The index of all tasks is not the owner's: outside the script, which
	// names the owner's keys only (an entry without a record is purged).
	s.indexTask(ctx, s.rdb, rec)
	return int(v[1]), nil
}

// tokenScript takes one token from the bucket KEYS[1] (a hash: tokens "t" and the
// time "ts", in Redis's clock, of the last refill), which holds at most ARGV[2]
// tokens and gains ARGV[1] per second. It returns {1, 0} when a token was taken,
// else {0, milliseconds until one is there}. Redis's own clock makes every replica
// agree; a clock that goes back refills nothing. An idle bucket expires once it
// would be full again.
var tokenScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if not tokens or not ts then
  tokens, ts = burst, now
elseif now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end
local ok, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {ok, wait}
`)

// Allow takes one token from the token bucket at key, which holds at most burst
// tokens and gains rate tokens per second (a new bucket is full). It reports
// whether a token was there and, when not, how long until one is. Buckets live in
// Redis, so every server replica draws from the same one. rate must be positive and
// burst at least 1.
func (s *Store) Allow(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	if !(rate > 0) || math.IsInf(rate, 0) || burst < 1 {
		return false, 0, fmt.Errorf("store: allow %s: rate must be positive and burst at least 1 (got %v, %d)", key, rate, burst)
	}
	v, err := tokenScript.Run(ctx, s.rdb, []string{key}, rate, burst).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("store: allow %s: %w", key, err)
	}
	if len(v) != 2 {
		return false, 0, fmt.Errorf("store: allow %s: unexpected script reply %v", key, v)
	}
	return v[0] == 1, time.Duration(v[1]) * time.Millisecond, nil
}
