package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/tasks"
)

// StreamItems is a window of one stream of a task.
type StreamItems struct {
	// From is the index of the first item of Items in the stream of the
	// current attempt. It is greater than the index asked for when older items
	// are no longer kept (the last tasks.MaxStreamItems are).
	From int64
	// Count is how many items the stream has had in this attempt.
	Count int64
	// Items are the kept items from From on, oldest first.
	Items []json.RawMessage
}

// ReadStream returns up to limit items of stream name of task id, from index
// from on (limit <= 0 or above tasks.MaxStreamItems means tasks.MaxStreamItems).
// A stream that never had an item reads as empty. It returns ErrNotFound when
// the task has no record.
func (s *Store) ReadStream(ctx context.Context, id, name string, from int64, limit int) (*StreamItems, error) {
	if limit <= 0 || limit > tasks.MaxStreamItems {
		limit = tasks.MaxStreamItems
	}
	v, err := readStreamScript.Run(ctx, s.rdb, []string{s.keys.Task(id), s.keys.Stream(id, name)},
		tasks.FieldStreamPrefix+name, max(from, 0), limit).Slice()
	if err != nil {
		return nil, fmt.Errorf("store: read stream %s/%s: %w", id, name, err)
	}
	if len(v) != 3 {
		return nil, ErrNotFound
	}
	first, _ := v[0].(int64)
	total, _ := v[1].(int64)
	list, _ := v[2].([]any)
	out := &StreamItems{From: first, Count: total, Items: make([]json.RawMessage, 0, len(list))}
	for _, it := range list {
		if str, ok := it.(string); ok {
			out.Items = append(out.Items, json.RawMessage(str))
		}
	}
	return out, nil
}

// readStreamScript reads a window of a stream and the count it belongs to in one
// step, so items appended (and old ones trimmed) meanwhile cannot shift it.
//
// KEYS[1] record, KEYS[2] stream list; ARGV[1] count field, ARGV[2] from, ARGV[3]
// limit. Returns {from, count, items} or {} when there is no record.
var readStreamScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local total = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
local kept = redis.call('LLEN', KEYS[2])
local first = total - kept
local from = tonumber(ARGV[2])
if from < first then from = first end
if from >= total then return {total, total, {}} end
local s = from - first
return {from, total, redis.call('LRANGE', KEYS[2], s, s + tonumber(ARGV[3]) - 1)}
`)
