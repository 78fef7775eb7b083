// Package store keeps task records, task results and the task queue in Redis. The
// server and the worker both use it, so the layout of the keys and the scripts that
// change them exist once.
//
// Keys, with the default prefix "taskwire":
//
//	taskwire:task:<id>            hash   the task record (tasks.Record.Fields), TTL
//	taskwire:user:<owner>:tasks   zset   recent task ids of one identity, by creation time
//	taskwire:user:<owner>:active  set    ids of one identity's active tasks (CreateLimited)
//	taskwire:user:<owner>:create-rate hash token bucket of one identity's task creations (Allow)
//	taskwire:result:<id>          list   the result: a gzip stream cut into chunks, TTL
//	taskwire:result:<id>:<n>      list   the result being written by attempt n
//	taskwire:task:<id>:stream:<name> list the last items of one stream of the task's attempt, TTL
//	taskwire:task:<id>:events     stream the task's history: its events, entry id "<seq>-0", fields
//	                                     "e" (event name) and "d" (JSON payload); the last
//	                                     historyLimit of them, TTL (see Update.Event, ReadHistory)
//	taskwire:user:<owner>:inbox   zset   ids of one identity's finished tasks, by finish time (Unix
//	                                     ms), TTL; written when a task becomes final
//	taskwire:undelivered          zset   ids of finished tasks not confirmed delivered yet, by finish
//	                                     time; written when a task becomes final
//	taskwire:queue:<kind>         stream the queue of one kind (field "task": tasks.Message JSON)
//	taskwire:queue                stream the queue of the previous release, all kinds in one;
//	                                     workers move its entries to their kind's queue
//	taskwire:retries              zset   queue messages waiting for a retry, by due time
//	taskwire:delayed              zset   the same, of the previous release's workers
//	taskwire:kinds                zset   names of the kinds workers registered, by last refresh
//	taskwire:kind:<name>          hash   the kind's descriptors (tasks.KindInfo JSON) by schema hash
//	taskwire:kind:<name>:workers  zset   "<worker> <schema hash>" of the live workers, by lease end
//	taskwire:cancel               channel ids of tasks to cancel (pub/sub)
//
// The keys of the operator dashboard (the index of all tasks, the heartbeats of
// workers and servers) are listed in admin.go.
package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/tasks"
)

// Errors returned by Store methods.
var (
	// ErrNotFound means the task does not exist (or its record expired).
	ErrNotFound = errors.New("store: task not found")
	// ErrFinal means the task is already completed, failed or cancelled.
	ErrFinal = errors.New("store: task is in a final state")
	// ErrStale means the update came from an attempt that is no longer the current
	// one, or carried a sequence number not greater than the record's.
	ErrStale = errors.New("store: stale update")
)

// Defaults of Options.
const (
	DefaultPrefix      = "taskwire"
	DefaultTTL         = 24 * time.Hour
	DefaultRecentLimit = 100
)

// QueueGroup is the consumer group of the workers on the task queue.
const QueueGroup = "workers"

// QueueField is the stream entry field that holds the task message.
const QueueField = "task"

// Options configure a Store. The zero value (and nil) means the defaults.
type Options struct {
	// Prefix starts every key. Default: "taskwire".
	Prefix string
	// TTL is how long records and results are kept after their last change.
	// Default: 24h.
	TTL time.Duration
	// RecentLimit is how many tasks per identity ListByOwner can return.
	// Default: 100.
	RecentLimit int
}

// Keys names the Redis keys of a store.
type Keys struct {
	Prefix string
}

// Task is the key of the record of task id.
func (k Keys) Task(id string) string { return k.Prefix + ":task:" + id }

// UserTasks is the key of the index of one identity's tasks.
func (k Keys) UserTasks(owner string) string { return k.Prefix + ":user:" + owner + ":tasks" }

// Result is the key of the result of task id.
func (k Keys) Result(id string) string { return k.Prefix + ":result:" + id }

// ResultTemp is the key of the result that attempt is writing.
func (k Keys) ResultTemp(id string, attempt int) string {
	return k.Prefix + ":result:" + id + ":" + strconv.Itoa(attempt)
}

// Queue is the key of the queue stream of kind.
func (k Keys) Queue(kind tasks.Kind) string { return k.Prefix + ":queue:" + string(kind) }

// LegacyQueue is the key of the one queue stream of every kind that servers of
// the previous release write to. Workers drain it into the queues of the kinds
// (see Keys.Queue), so a rolling update loses no task.
func (k Keys) LegacyQueue() string { return k.Prefix + ":queue" }

// Stream is the key of the list that keeps the last items of stream name of
// task id.
func (k Keys) Stream(id, name string) string { return k.Prefix + ":task:" + id + ":stream:" + name }

// Events is the key of the stream that keeps the history of task id: one entry
// per event, id "<seq>-0", fields "e" (the event's name) and "d" (its JSON
// payload).
func (k Keys) Events(id string) string { return k.Prefix + ":task:" + id + ":events" }

// Inbox is the key of the sorted set of the ids of owner's finished tasks, scored
// by the Unix millisecond at which they finished.
func (k Keys) Inbox(owner string) string { return k.Prefix + ":user:" + owner + ":inbox" }

// Undelivered is the key of the sorted set of the ids of finished tasks whose final
// event no socket of the owner confirmed yet, scored by the Unix millisecond at
// which they finished.
func (k Keys) Undelivered() string { return k.Prefix + ":undelivered" }

// Delayed is the key of the sorted set of queue messages waiting for a retry, scored
// by the Unix millisecond at which they are due. Workers move each one to the
// queue of its kind when it is due.
func (k Keys) Delayed() string { return k.Prefix + ":retries" }

// LegacyDelayed is the key of the retries of the previous release's workers,
// whose messages go back to their one stream (LegacyQueue); workers of this
// release move them too. It is kept apart from Delayed so that a worker of the
// previous release never takes a retry of a kind it does not know.
func (k Keys) LegacyDelayed() string { return k.Prefix + ":delayed" }

// CancelChannel is the pub/sub channel on which the id of a task whose owner asked
// to cancel it is published, so the worker running it stops at once.
func (k Keys) CancelChannel() string { return k.Prefix + ":cancel" }

// Store reads and writes task state in Redis. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	keys   Keys
	ttl    time.Duration
	recent int
}

// New returns a Store on rdb. The store never closes rdb.
func New(rdb redis.UniversalClient, opts *Options) *Store {
	s := &Store{rdb: rdb, keys: Keys{Prefix: DefaultPrefix}, ttl: DefaultTTL, recent: DefaultRecentLimit}
	if opts != nil {
		if opts.Prefix != "" {
			s.keys.Prefix = opts.Prefix
		}
		if opts.TTL > 0 {
			s.ttl = opts.TTL
		}
		if opts.RecentLimit > 0 {
			s.recent = opts.RecentLimit
		}
	}
	return s
}

// Keys returns the key names the store uses.
func (s *Store) Keys() Keys { return s.keys }

// TTL returns how long records and results are kept.
func (s *Store) TTL() time.Duration { return s.ttl }

// Client returns the Redis client of the store.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Create writes the record of a new task and adds it to its owner's index.
func (s *Store) Create(ctx context.Context, rec *tasks.Record) error {
	if rec.ID == "" || rec.Owner == "" {
		return fmt.Errorf("store: create: record needs an id and an owner")
	}
	idx := s.keys.UserTasks(rec.Owner)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		key := s.keys.Task(rec.ID)
		p.HSet(ctx, key, rec.Fields())
		p.PExpire(ctx, key, s.ttl)
		p.ZAdd(ctx, idx, redis.Z{Score: float64(rec.CreatedAt.UnixMilli()), Member: rec.ID})
		p.ZRemRangeByRank(ctx, idx, 0, int64(-s.recent-1))
		p.PExpire(ctx, idx, s.ttl)
		s.indexTask(ctx, p, rec)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: create %s: %w", rec.ID, err)
	}
	return nil
}

// enqueueScript adds a message to a queue stream and notes the entry id in the
// task's record (when it exists), in one step.
//
// KEYS[1] stream, KEYS[2] record; ARGV[1] field, ARGV[2] message.
var enqueueScript = redis.NewScript(`
local id = redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'queueEntry', id) end
return id
`)

// Enqueue puts a task message on the queue of its kind and notes the entry in
// the task's record (tasks.Record.QueueEntry).
func (s *Store) Enqueue(ctx context.Context, m *tasks.Message) error {
	b, err := m.Encode()
	if err != nil {
		return fmt.Errorf("store: enqueue %s: %w", m.ID, err)
	}
	if !tasks.ValidKindName(string(m.Kind)) {
		return fmt.Errorf("store: enqueue %s: invalid kind %q", m.ID, m.Kind)
	}
	err = enqueueScript.Run(ctx, s.rdb, []string{s.keys.Queue(m.Kind), s.keys.Task(m.ID)}, QueueField, b).Err()
	if err != nil {
		return fmt.Errorf("store: enqueue %s: %w", m.ID, err)
	}
	return nil
}

// Get reads the record of task id. It returns ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, id string) (*tasks.Record, error) {
	h, err := s.rdb.HGetAll(ctx, s.keys.Task(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id, err)
	}
	if len(h) == 0 {
		return nil, ErrNotFound
	}
	rec, err := tasks.RecordFromHash(h)
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id, err)
	}
	return rec, nil
}

// ListByOwner returns the most recent tasks of owner, newest first, at most limit
// (at most the store's RecentLimit when limit <= 0).
func (s *Store) ListByOwner(ctx context.Context, owner string, limit int) ([]*tasks.Record, error) {
	if limit <= 0 || limit > s.recent {
		limit = s.recent
	}
	idx := s.keys.UserTasks(owner)
	ids, err := s.rdb.ZRevRange(ctx, idx, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", owner, err)
	}
	if len(ids) == 0 {
		return []*tasks.Record{}, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.keys.Task(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", owner, err)
	}
	out := make([]*tasks.Record, 0, len(ids))
	var gone []any
	for i, c := range cmds {
		h := c.Val()
		if len(h) == 0 {
			gone = append(gone, ids[i])
			continue
		}
		rec, err := tasks.RecordFromHash(h)
		if err != nil || rec.Owner != owner {
			continue
		}
		out = append(out, rec)
	}
	if len(gone) > 0 {
		// Records expire on their own; forget them in the index too.
		_ = s.rdb.ZRem(ctx, idx, gone...).Err()
	}
	return out, nil
}

// Publish is a message to publish together with a record update.
type Publish struct {
	Channel string
	Payload []byte
	// Sharded sends it with SPUBLISH instead of PUBLISH.
	Sharded bool
}

// Event is a task event as the task's history keeps it (see Keys.Events).
type Event struct {
	// Name is the event's name (events.TaskProgress, ...).
	Name string
	// Data is the event's JSON payload, as clients receive it.
	Data []byte
}

// DefaultHistoryLimit is how many events the history of a task keeps when its
// record sets no tasks.Record.HistoryLimit (records written before histories
// existed).
const DefaultHistoryLimit = 2000

// Update changes a task record and, in the same script, publishes the event that
// describes the change and adds it to the task's history, so no client can see
// an event that the record and the history do not already reflect.
//
// An update that makes the state final (completed, failed, cancelled) also puts
// the task in its owner's inbox (Keys.Inbox) and in the undelivered set
// (Keys.Undelivered), scored by the record's finishedAt, and publishes Inbox.
type Update struct {
	TaskID string
	// Attempt, when not 0, must be the record's current attempt number, so a worker
	// that lost its task can no longer write to it.
	Attempt int
	// Seq must be greater than the record's seq; it becomes the record's seq.
	Seq int64
	// Fields are the record fields to set (tasks.Field* names).
	Fields map[string]any
	// Publish, when not nil, is published after the record is written.
	Publish *Publish
	// Event, when not nil, is the event that Publish carries: it is added to the
	// task's history under Seq (trimmed to the record's historyLimit; the seq of
	// the newest event dropped goes to the record's historyTrimmed).
	Event *Event
	// Inbox, when not nil, is published after Publish when the update makes the
	// state final: the inbox:item event for the owner's sockets.
	Inbox *Publish
	// CommitResult moves the result written by Attempt into place (it must be set
	// together with the completed state).
	CommitResult bool
	// RequireState, when not empty, must be the record's current state.
	RequireState tasks.State
	// Append, when not nil, appends items to one of the task's streams in the
	// same script (set the stream's count in Fields, FieldStreamPrefix+name).
	Append *Append
}

// Append is items added to a stream of a task with an Update.
type Append struct {
	// Stream names the stream.
	Stream string
	// Items are the JSON forms of the items, oldest first.
	Items [][]byte
}

// updateChecksLua begins updateScript and eventScript: it reads what their checks
// need (cur) and answers -1 to -4 when the record refuses the update.
const updateChecksLua = `
local cur = redis.call('HMGET', KEYS[1], 'state', 'seq', 'attempts', 'cancelRequested', 'historyLimit', 'historyCount', 'touchedAt')
if not cur[1] then return -1 end
local st = cur[1]
if st == 'completed' or st == 'failed' or st == 'cancelled' then return -2 end
if ARGV[1] ~= '' and cur[3] ~= ARGV[1] then return -3 end
if tonumber(ARGV[2]) <= tonumber(cur[2] or '0') then return -4 end
`

// historyAddLua adds the event to the history (hkey; ename, edata), with
// lim, hv and renew set by the script that includes it; see updateScript.
const historyAddLua = `
if lim > 0 then
  local id = ARGV[2] .. '-0'
  local r = redis.pcall('XADD', hkey, id, 'e', ename, 'd', edata)
  if type(r) == 'table' and r.err then
    redis.call('DEL', hkey)
    redis.call('XADD', hkey, id, 'e', ename, 'd', edata)
    redis.call('HSET', KEYS[1], 'historyTrimmed', tonumber(ARGV[2]) - 1, 'historyCount', 1)
    hv = 1
  end
  if hv % 32 == 0 then redis.call('XTRIM', hkey, 'MAXLEN', lim) end
  if renew or hv == 1 then redis.call('PEXPIRE', hkey, ARGV[3]) end
end
`

// updateScript applies an Update. Return values: 1 applied, 2 applied and the owner
// asked to cancel the task, -1 no record, -2 final state, -3 other attempt, -4
// sequence not increasing, -5 not in the required state.
//
// The history (KEYS[5]) keeps the record's historyLimit newest events (absent:
// ARGV[13]; negative: none), and up to 31 more: it is trimmed with every 32nd
// event, which costs less than trimming one entry with each. The record counts the
// events added in historyCount, so that a reader knows the history dropped
// some when it holds fewer, and which (those before its first entry; see
// ReadHistory). Should the history be out of step with the record (an entry at
// or above the seq, which only a restored or edited Redis can hold), it starts
// over from this event and says so in historyTrimmed.
//
// The script runs for every event a task sends (eventScript, its lean twin,
// takes the common case), so it makes as few calls as it can (each costs more
// in the script than the command itself): one HMGET reads everything the
// checks need, one HSET writes the record, and the owner's fields are read
// only when the state becomes final (ARGV[19]). The TTLs of the
// record and of the history are renewed together, not with every event: with
// the history's first event, the final one, and any event at least a 16th of
// the TTL after the last renewal (the record's touchedAt, by the writer's
// clock ARGV[20]; a clock behind it renews too). So both keys expire together,
// at least 15/16 of the TTL after a task's last event; should the history
// still be gone before the record (evicted, deleted), a reader is told
// (ReasonExpired, or ReasonTrimmed once new events came) instead of getting a
// gap.
//
// The owner's inbox key is ARGV[17] .. owner .. ":inbox", from the record's owner:
// like createLimitedScript, this assumes one Redis (no cluster).
//
// KEYS[1] record, KEYS[2] result of the attempt, KEYS[3] result, KEYS[4] stream
// (the record's key where unused), KEYS[5] history, KEYS[6] undelivered set.
// ARGV[1] attempt, ARGV[2] seq, ARGV[3] TTL (ms), ARGV[4..6] publish command,
// channel, payload, ARGV[7] required state, ARGV[8] "1" to commit the result,
// ARGV[9] number n of stream items, ARGV[10] items kept per stream, ARGV[11..12]
// event name and data ("" for none), ARGV[13] default history limit, ARGV[14..16]
// inbox publish command, channel, payload, ARGV[17] user key prefix, ARGV[18]
// task id, ARGV[19] "1" when the update makes the state final, ARGV[20] the
// writer's clock (Unix ms), then the n items, then field/value pairs.
var updateScript = redis.NewScript(updateChecksLua + `
if ARGV[7] ~= '' and st ~= ARGV[7] then return -5 end
if ARGV[8] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
local n = tonumber(ARGV[9])
local first = 21 + n
if n > 0 then
  for i = 21, 20 + n, 500 do
    redis.call('RPUSH', KEYS[4], unpack(ARGV, i, math.min(i + 499, 20 + n)))
  end
  redis.call('LTRIM', KEYS[4], -tonumber(ARGV[10]), -1)
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
end
local lim = 0
local hk, hv = 'seq', ARGV[2]
if ARGV[11] ~= '' then
  lim = tonumber(cur[5] or '')
  if not lim or lim == 0 then lim = tonumber(ARGV[13]) end
  if lim > 0 then
    hk, hv = 'historyCount', (tonumber(cur[6] or '') or 0) + 1
  else
    hk = 'historyTrimmed'
  end
end
local touched = cur[7]
local age = tonumber(ARGV[20]) - (tonumber(touched or '') or 0)
local renew = ARGV[19] == '1' or age < 0 or age * 16 >= tonumber(ARGV[3])
if renew then touched = ARGV[20] end
if #ARGV >= first then
  redis.call('HSET', KEYS[1], 'seq', ARGV[2], hk, hv, 'touchedAt', touched, unpack(ARGV, first))
else
  redis.call('HSET', KEYS[1], 'seq', ARGV[2], hk, hv, 'touchedAt', touched)
end
if renew then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
local hkey, ename, edata = KEYS[5], ARGV[11], ARGV[12]
` + historyAddLua + `if ARGV[4] ~= '' then redis.call(ARGV[4], ARGV[5], ARGV[6]) end
if ARGV[19] == '1' then
  local fin = redis.call('HMGET', KEYS[1], 'owner', 'finishedAt')
  local at = tonumber(fin[2] or '')
  if not at then
    local tm = redis.call('TIME')
    at = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
  end
  local id = ARGV[18]
  if fin[1] then
    local inbox = ARGV[17] .. fin[1] .. ':inbox'
    redis.call('ZADD', inbox, at, id)
    redis.call('ZREMRANGEBYSCORE', inbox, '-inf', '(' .. (at - tonumber(ARGV[3])))
    redis.call('PEXPIRE', inbox, ARGV[3])
  end
  redis.call('ZADD', KEYS[6], at, id)
  if ARGV[14] ~= '' then redis.call(ARGV[14], ARGV[15], ARGV[16]) end
end
if cur[4] == '1' then return 2 end
return 1
`)

// eventScript is updateScript for the common case, an event of a running
// attempt that writes the record, adds the event to the history and publishes
// it, and nothing else (no result, no stream items, no required state, no
// final state): the same checks, answers and history rules, with 2 keys and
// 9 arguments instead of 6 and 20. Redis parses, copies and frees every
// argument of every call before the script runs, and each costs the script
// an entry in its tables; on the event path, where Redis is the bottleneck
// when many tasks send at once, the fewer the better (see bench/README.md,
// "What the history costs the event path").
//
// KEYS[1] record, KEYS[2] history. ARGV[1] attempt, ARGV[2] seq, ARGV[3] TTL
// (ms), ARGV[4..6] publish command, channel, payload, ARGV[7..8] event name
// and data, ARGV[9] the writer's clock (Unix ms), then field/value pairs.
var eventScript = redis.NewScript(updateChecksLua + `
local lim = tonumber(cur[5] or '')
if not lim or lim == 0 then lim = ` + strconv.Itoa(DefaultHistoryLimit) + ` end
local hk, hv = 'historyTrimmed', ARGV[2]
if lim > 0 then hk, hv = 'historyCount', (tonumber(cur[6] or '') or 0) + 1 end
local age = tonumber(ARGV[9]) - (tonumber(cur[7] or '') or 0)
local renew = age < 0 or age * 16 >= tonumber(ARGV[3])
if renew then
  redis.call('HSET', KEYS[1], 'seq', ARGV[2], hk, hv, 'touchedAt', ARGV[9], unpack(ARGV, 10))
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('HSET', KEYS[1], 'seq', ARGV[2], hk, hv, unpack(ARGV, 10))
end
local hkey, ename, edata = KEYS[2], ARGV[7], ARGV[8]
` + historyAddLua + `if ARGV[4] ~= '' then redis.call(ARGV[4], ARGV[5], ARGV[6]) end
if cur[4] == '1' then return 2 end
return 1
`)

// lean reports whether eventScript can apply u.
func lean(u *Update) bool {
	return !fullScriptOnly && u.Event != nil && u.Event.Name != "" && u.Inbox == nil && !u.CommitResult &&
		u.RequireState == "" && (u.Append == nil || len(u.Append.Items) == 0) && finalFlag(u.Fields) == ""
}

// fullScriptOnly makes every update take updateScript (tests compare the two).
var fullScriptOnly bool

// applyEvent runs u, which lean accepts, with eventScript.
func (s *Store) applyEvent(ctx context.Context, u *Update) (int, error) {
	keys := []string{s.keys.Task(u.TaskID), s.keys.Events(u.TaskID)}
	args := make([]any, 0, 9+2*len(u.Fields))
	args = append(args, attemptArg(u.Attempt), u.Seq, s.ttl.Milliseconds())
	args = appendPublish(args, u.Publish)
	args = append(args, u.Event.Name, u.Event.Data, time.Now().UnixMilli())
	args = appendFields(args, u.Fields)
	n, err := eventScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("store: update %s: %w", u.TaskID, err)
	}
	return n, resultCode(n)
}

// Apply runs u. It returns ErrNotFound, ErrFinal or ErrStale when the record refused
// the update; then nothing was written or published.
func (s *Store) Apply(ctx context.Context, u *Update) error {
	_, err := s.apply(ctx, u)
	return err
}

// apply runs u and returns the script's result code with its error.
func (s *Store) apply(ctx context.Context, u *Update) (int, error) {
	if lean(u) {
		return s.applyEvent(ctx, u)
	}
	rec := s.keys.Task(u.TaskID)
	keys := []string{rec, rec, rec, rec, s.keys.Events(u.TaskID), s.keys.Undelivered()}
	if u.CommitResult {
		keys[1], keys[2] = s.keys.ResultTemp(u.TaskID, u.Attempt), s.keys.Result(u.TaskID)
	}
	var items [][]byte
	if u.Append != nil && len(u.Append.Items) > 0 {
		keys[3] = s.keys.Stream(u.TaskID, u.Append.Stream)
		items = u.Append.Items
	}
	args := make([]any, 0, 19+len(items)+2*len(u.Fields))
	args = append(args, attemptArg(u.Attempt), u.Seq, s.ttl.Milliseconds())
	args = appendPublish(args, u.Publish)
	commit := ""
	if u.CommitResult {
		commit = "1"
	}
	args = append(args, string(u.RequireState), commit, len(items), tasks.MaxStreamItems)
	if u.Event != nil && u.Event.Name != "" {
		args = append(args, u.Event.Name, u.Event.Data)
	} else {
		args = append(args, "", "")
	}
	args = append(args, DefaultHistoryLimit)
	args = appendPublish(args, u.Inbox)
	args = append(args, s.keys.Prefix+":user:", u.TaskID, finalFlag(u.Fields), time.Now().UnixMilli())
	for _, it := range items {
		args = append(args, it)
	}
	args = appendFields(args, u.Fields)
	n, err := updateScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("store: update %s: %w", u.TaskID, err)
	}
	return n, resultCode(n)
}

// attemptArg is the attempt argument of the update scripts: "" for none.
func attemptArg(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// appendFields adds the field/value pairs of fields to args, but the seq (the
// scripts set it themselves).
func appendFields(args []any, fields map[string]any) []any {
	for k, v := range fields {
		if k != tasks.FieldSeq {
			args = append(args, k, v)
		}
	}
	return args
}

// finalFlag is "1" when fields set a final state, else "".
func finalFlag(fields map[string]any) string {
	var st tasks.State
	switch v := fields[tasks.FieldState].(type) {
	case string:
		st = tasks.State(v)
	case tasks.State:
		st = v
	}
	if st.Final() {
		return "1"
	}
	return ""
}

// appendPublish adds the command, channel and payload of p to args (three empty
// strings for nil).
func appendPublish(args []any, p *Publish) []any {
	if p == nil {
		return append(args, "", "", "")
	}
	cmd := "PUBLISH"
	if p.Sharded {
		cmd = "SPUBLISH"
	}
	return append(args, cmd, p.Channel, p.Payload)
}

func resultCode(n int) error {
	switch n {
	case 1, 2:
		return nil
	case -1:
		return ErrNotFound
	case -2:
		return ErrFinal
	case -3, -4, -5:
		return ErrStale
	}
	return fmt.Errorf("store: unexpected script result %d", n)
}

// startScript begins an attempt: state running, attempts + 1, startedAt; the
// metadata and the streams of the previous attempt are dropped (a retry starts
// over; the stream keys are the record's key + ":stream:<name>"). The history
// (the record's key + ":events") is kept, and lives as long as the record. It returns
// the whole record as a flat field/value list, or a negative number like
// updateScript. With ARGV[3] (see StartAttemptLimit) it returns -6 instead when the
// record's attempts reached its maxAttempts, or ARGV[3] when the record has none.
var startScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return -1 end
if st == 'completed' or st == 'failed' or st == 'cancelled' then return -2 end
if ARGV[3] then
  local max = tonumber(redis.call('HGET', KEYS[1], 'maxAttempts') or '')
  if not max or max <= 0 then max = tonumber(ARGV[3]) end
  local n = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '') or 0
  if max and max > 0 and n >= max then return -6 end
end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'state', 'running', 'startedAt', ARGV[1])
redis.call('HDEL', KEYS[1], 'nextAttemptAt', 'finishedAt', 'metadata', 'stageMessage')
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 7) == 'stream:' then
    redis.call('HDEL', KEYS[1], f)
    redis.call('DEL', KEYS[1] .. ':' .. f)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1] .. ':events', ARGV[2])
return redis.call('HGETALL', KEYS[1])
`)

// StartAttempt marks task id running and counts a new attempt. It returns the record
// as it is now; its Attempts is the number of the attempt that starts and its Seq the
// last sequence number used. It returns ErrNotFound or ErrFinal when the task must
// not run.
func (s *Store) StartAttempt(ctx context.Context, id string, now time.Time) (*tasks.Record, error) {
	v, err := startScript.Run(ctx, s.rdb, []string{s.keys.Task(id)}, now.UnixMilli(), s.ttl.Milliseconds()).Result()
	if err != nil {
		return nil, fmt.Errorf("store: start %s: %w", id, err)
	}
	if n, ok := v.(int64); ok {
		return nil, resultCode(int(n))
	}
	return recordFromReply(v)
}

// recordFromReply turns a flat HGETALL reply into a record.
func recordFromReply(v any) (*tasks.Record, error) {
	list, ok := v.([]any)
	if !ok || len(list)%2 != 0 {
		return nil, fmt.Errorf("store: unexpected reply %T", v)
	}
	h := make(map[string]string, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		k, _ := list[i].(string)
		val, _ := list[i+1].(string)
		h[k] = val
	}
	return tasks.RecordFromHash(h)
}
