package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/tasks"
)

// The inbox and the delivery receipts.
//
// When an update makes a task final, the update script adds the task to its
// owner's inbox (Keys.Inbox) and to the tasks not yet delivered
// (Keys.Undelivered), both scored by the task's finishedAt in Unix ms. The
// functions here read and change them:
//
//   - ListInbox lists an owner's unseen items, AckInbox marks some seen (the
//     record's seenAt) and takes them out of the inbox;
//   - MarkDelivered records that a socket of the owner has the task's final
//     event (the record's deliveredAt) and takes the task out of the
//     undelivered set;
//   - SweepUndelivered takes out the tasks that were never delivered within
//     the TTL, and counts them.

// Errors of the inbox and the receipts.
var (
	// ErrNotFinished means the task has not completed, failed or been
	// cancelled yet: it has no inbox item and no final event to confirm.
	ErrNotFinished = errors.New("store: task has not finished")
	// ErrTooManyIDs means AckInbox was given more than MaxInboxAck ids.
	ErrTooManyIDs = errors.New("store: too many task ids")
)

// MaxInboxAck is the most task ids one AckInbox may mark seen.
const MaxInboxAck = 100

// InboxEntryOf returns the inbox entry of rec, a finished task.
func InboxEntryOf(rec *tasks.Record) events.InboxEntry {
	e := events.InboxEntry{TaskID: rec.ID, Kind: rec.Kind, State: rec.State, Seq: rec.Seq}
	if rec.FinishedAt != nil {
		e.FinishedAt = *rec.FinishedAt
	}
	if rec.State == tasks.StateFailed && rec.Error != nil {
		info := *rec.Error
		e.Error = &info
	}
	return e
}

// ListInbox returns owner's unseen inbox items, newest first, at most the
// store's RecentLimit. Items expire with their task: those older than the TTL
// and those whose record is gone are dropped (and forgotten).
func (s *Store) ListInbox(ctx context.Context, owner string, now time.Time) ([]events.InboxEntry, error) {
	key := s.keys.Inbox(owner)
	var ids []string
	err := s.rdb.ZRemRangeByScore(ctx, key, "-inf", s.expiredBefore(now)).Err()
	if err == nil {
		ids, err = s.rdb.ZRevRange(ctx, key, 0, int64(s.recent-1)).Result()
	}
	if err != nil {
		return nil, fmt.Errorf("store: list inbox %s: %w", owner, err)
	}
	out := make([]events.InboxEntry, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.keys.Task(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list inbox %s: %w", owner, err)
	}
	var gone []any
	for i, c := range cmds {
		rec, err := tasks.RecordFromHash(c.Val())
		if len(c.Val()) == 0 || err != nil || rec.Owner != owner || !rec.State.Final() || rec.SeenAt != nil {
			gone = append(gone, ids[i])
			continue
		}
		out = append(out, InboxEntryOf(rec))
	}
	if len(gone) > 0 {
		_ = s.rdb.ZRem(ctx, key, gone...).Err()
	}
	return out, nil
}

// IDError is the error of AckInbox for one of its ids; it wraps ErrNotFound
// (no such task of the owner) or ErrNotFinished.
type IDError struct {
	ID  string
	Err error
}

func (e *IDError) Error() string { return e.Err.Error() + ": " + e.ID }

// Unwrap returns ErrNotFound or ErrNotFinished.
func (e *IDError) Unwrap() error { return e.Err }

// ackInboxScript marks inbox items seen, all or none: every id must be a
// finished task of the owner, else nothing changes and the script returns
// {-1, i} (no such task of the owner) or {-2, i} (not finished) for the first
// refused id i (from 1). Then each record gets seenAt unless it has one, and
// each id leaves the inbox; it returns {1}. Record keys are derived from
// ARGV[1], like createLimitedScript's (one Redis, no cluster).
//
// KEYS[1] inbox; ARGV[1] record key prefix, ARGV[2] owner, ARGV[3] now (ms),
// then the ids.
var ackInboxScript = redis.NewScript(`
for i = 4, #ARGV do
  local r = redis.call('HMGET', ARGV[1] .. ARGV[i], 'owner', 'state')
  if r[1] ~= ARGV[2] then return {-1, i - 3} end
  if r[2] ~= 'completed' and r[2] ~= 'failed' and r[2] ~= 'cancelled' then return {-2, i - 3} end
end
for i = 4, #ARGV do
  redis.call('HSETNX', ARGV[1] .. ARGV[i], 'seenAt', ARGV[3])
  redis.call('ZREM', KEYS[1], ARGV[i])
end
return {1}
`)

// AckInbox marks the inbox items of ids seen for owner, all or none: each
// record gets seenAt (the first ack's time; a later ack keeps it) and leaves
// the inbox. An id that is not a task of owner (unknown, expired, someone
// else's) refuses the whole ack with an *IDError wrapping ErrNotFound, a task
// that has not finished with one wrapping ErrNotFinished; more than
// MaxInboxAck ids is ErrTooManyIDs. Repeated ids count once. It returns the
// ids, each once, in their first order.
func (s *Store) AckInbox(ctx context.Context, owner string, ids []string, now time.Time) ([]string, error) {
	uniq := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	if len(uniq) > MaxInboxAck {
		return nil, ErrTooManyIDs
	}
	if len(uniq) == 0 {
		return uniq, nil
	}
	args := make([]any, 0, 3+len(uniq))
	args = append(args, s.keys.Task(""), owner, now.UnixMilli())
	for _, id := range uniq {
		args = append(args, id)
	}
	v, err := ackInboxScript.Run(ctx, s.rdb, []string{s.keys.Inbox(owner)}, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("store: ack inbox %s: %w", owner, err)
	}
	switch {
	case len(v) == 1 && v[0] == 1:
		return uniq, nil
	case len(v) == 2 && v[1] >= 1 && int(v[1]) <= len(uniq):
		id := uniq[v[1]-1]
		if v[0] == -2 {
			return nil, &IDError{ID: id, Err: ErrNotFinished}
		}
		return nil, &IDError{ID: id, Err: ErrNotFound}
	}
	return nil, fmt.Errorf("store: ack inbox %s: unexpected script reply %v", owner, v)
}

// SeqError is the error of MarkDelivered for a seq that is not the task's
// final one.
type SeqError struct {
	// Seq is what was confirmed; Final is the seq of the task's final event.
	Seq, Final int64
}

func (e *SeqError) Error() string {
	return fmt.Sprintf("store: seq %d is not the seq of the task's final event (%d)", e.Seq, e.Final)
}

// Delivery is the outcome of MarkDelivered.
type Delivery struct {
	// At is the task's deliveredAt: now when First, else the first time.
	At time.Time
	// FinishedAt is when the task finished.
	FinishedAt time.Time
	// First is true when this call set deliveredAt.
	First bool
}

// markDeliveredScript sets deliveredAt of a finished task of the owner whose
// final seq is ARGV[2], unless it has one, and takes it out of the undelivered
// set. It returns {-1} (no such task of the owner), {-2} (not finished),
// {-3, final seq}, or {first (1 or 0), deliveredAt, finishedAt}.
//
// KEYS[1] record, KEYS[2] undelivered; ARGV[1] owner, ARGV[2] seq, ARGV[3] now
// (ms), ARGV[4] task id.
var markDeliveredScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'owner', 'state', 'seq', 'deliveredAt', 'finishedAt')
if r[1] ~= ARGV[1] then return {-1} end
if r[2] ~= 'completed' and r[2] ~= 'failed' and r[2] ~= 'cancelled' then return {-2} end
local seq = tonumber(r[3] or '0') or 0
if tonumber(ARGV[2]) ~= seq then return {-3, seq} end
redis.call('ZREM', KEYS[2], ARGV[4])
local fin = tonumber(r[5] or '0') or 0
if r[4] then return {0, tonumber(r[4]) or 0, fin} end
redis.call('HSET', KEYS[1], 'deliveredAt', ARGV[3])
return {1, tonumber(ARGV[3]), fin}
`)

// MarkDelivered records that a socket of owner has the final event of task
// id, whose seq is seq: the first time, the record's deliveredAt becomes now
// and the task leaves the undelivered set. seq must be exactly the seq of the
// task's final event (a final record never changes again, so that seq is
// fixed): any other is a *SeqError. A task that is not owner's is ErrNotFound,
// one that has not finished ErrNotFinished.
func (s *Store) MarkDelivered(ctx context.Context, owner, id string, seq int64, now time.Time) (*Delivery, error) {
	v, err := markDeliveredScript.Run(ctx, s.rdb, []string{s.keys.Task(id), s.keys.Undelivered()},
		owner, seq, now.UnixMilli(), id).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("store: mark delivered %s: %w", id, err)
	}
	switch {
	case len(v) == 1 && v[0] == -1:
		return nil, ErrNotFound
	case len(v) == 1 && v[0] == -2:
		return nil, ErrNotFinished
	case len(v) == 2 && v[0] == -3:
		return nil, &SeqError{Seq: seq, Final: v[1]}
	case len(v) == 3 && (v[0] == 0 || v[0] == 1):
		return &Delivery{At: time.UnixMilli(v[1]).UTC(), FinishedAt: time.UnixMilli(v[2]).UTC(), First: v[0] == 1}, nil
	}
	return nil, fmt.Errorf("store: mark delivered %s: unexpected script reply %v", id, v)
}

// SweepUndelivered takes out of the undelivered set the tasks that finished
// more than the TTL before now (their record has expired undelivered), and
// returns how many. One command does it, so when every server replica sweeps,
// each task is counted by exactly one.
func (s *Store) SweepUndelivered(ctx context.Context, now time.Time) (int, error) {
	n, err := s.rdb.ZRemRangeByScore(ctx, s.keys.Undelivered(), "-inf", s.expiredBefore(now)).Result()
	if err != nil {
		return 0, fmt.Errorf("store: sweep undelivered: %w", err)
	}
	return int(n), nil
}

// expiredBefore is the score bound (exclusive) of the entries of the inbox and
// undelivered sets that finished more than the TTL before now.
func (s *Store) expiredBefore(now time.Time) string {
	return "(" + strconv.FormatInt(now.Add(-s.ttl).UnixMilli(), 10)
}
