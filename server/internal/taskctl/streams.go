package taskctl

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/tasks"
)

// MaxStreamItems is how many items of one stream are kept (the newest), and so
// the most one read returns.
const MaxStreamItems = 10_000

// ErrBadStreamName: the name cannot be a stream's.
var ErrBadStreamName = errors.New("taskctl: invalid stream name")

// StreamPage is a part of one stream of a task: Items are the items from index
// From on (the first item appended is index 0). Count is the number of items
// appended so far in the current attempt; From is past the index asked for when
// older items were dropped (only the last MaxStreamItems are kept).
type StreamPage struct {
	Stream string            `json:"stream"`
	From   int64             `json:"from"`
	Count  int64             `json:"count"`
	Items  []json.RawMessage `json:"items"`
}

// readStreamScript reads a stream of a task at once with its count: KEYS[1] the
// record, KEYS[2] the list of kept items, ARGV[1] the record field of the
// count, ARGV[2] the first index wanted, ARGV[3] the most items wanted. It
// answers {count, first index returned, items}.
var readStreamScript = redis.NewScript(`
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
local kept = redis.call('LLEN', KEYS[2])
local first = n - kept
if first < 0 then first = 0 end
local from = tonumber(ARGV[2])
if from < first then from = first end
if from > n then from = n end
local want = tonumber(ARGV[3])
if from >= n or want <= 0 then return {n, from, {}} end
local start = from - first
return {n, from, redis.call('LRANGE', KEYS[2], start, start + want - 1)}`)

// ValidStreamName reports whether s can name a stream: 1 to 64 letters,
// digits, '.', '_' or '-'.
func ValidStreamName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Stream returns the items of stream name of task id of owner from index from
// on, at most limit (at most MaxStreamItems; 0 means that many). A stream
// nothing was appended to is empty, not an error; a task of someone else is
// ErrNotFound.
func (s *Service) Stream(ctx context.Context, owner, id, name string, from int64, limit int) (*StreamPage, error) {
	if !ValidStreamName(name) {
		return nil, ErrBadStreamName
	}
	if _, err := s.owned(ctx, owner, id); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxStreamItems {
		limit = MaxStreamItems
	}
	from = max(from, 0)
	keys := s.store.Keys()
	res, err := readStreamScript.Run(ctx, s.store.Client(), []string{keys.Task(id), keys.Task(id) + ":stream:" + name},
		tasks.FieldStreamPrefix+name, from, limit).Slice()
	if err != nil || len(res) != 3 {
		s.log.ErrorContext(ctx, "read stream", "task", id, "stream", name, "err", err)
		return nil, ErrUnavailable
	}
	count, _ := res[0].(int64)
	first, _ := res[1].(int64)
	raw, _ := res[2].([]any)
	page := &StreamPage{Stream: name, From: first, Count: count, Items: make([]json.RawMessage, 0, len(raw))}
	for _, it := range raw {
		b, _ := it.(string)
		if !json.Valid([]byte(b)) {
			// Never written by a worker; keep the indexes right all the same.
			b = "null"
		}
		page.Items = append(page.Items, json.RawMessage(b))
	}
	return page, nil
}
