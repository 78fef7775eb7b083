package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/tasks"
)

// ErrSinceAhead is returned by ReadHistory when since is greater than the
// record's seq: the caller claims events the task never had.
var ErrSinceAhead = errors.New("store: since is ahead of the task's seq")

// Bounds of one ReadHistory call.
const (
	// MaxHistoryRead is the most events one ReadHistory returns.
	MaxHistoryRead = 10_000
	// MaxHistoryReadBytes bounds the payloads of the events one ReadHistory
	// returns (one event is always returned, whatever its size).
	MaxHistoryReadBytes = 8 << 20
)

// History is what ReadHistory read: the record and the events after a seq, in
// one step, so the events end at the record's seq unless Next says there are
// more.
type History struct {
	// Record is the task's record as it was when the events were read.
	Record *tasks.Record
	// Events are the events after the seq asked for, oldest first (none when
	// Recovered is false).
	Events []events.HistoryEvent
	// Recovered is true when the history still holds every event after the seq
	// asked for; Events are then those events, or the first of them when Next
	// is not 0.
	Recovered bool
	// Reason says why Recovered is false: events.ReasonTrimmed (the history
	// dropped some of them to keep its limit) or events.ReasonExpired (the
	// history is gone: it expired, or was lost, or the record is older than
	// histories).
	Reason events.Reason
	// Next, when not 0, is the seq of the last event returned: more events
	// follow, read them with since = Next.
	Next int64
}

// ReadHistory reads the record of task id and the events of its history after
// seq since (at most limit of them and MaxHistoryReadBytes of payloads; limit <=
// 0 or above MaxHistoryRead means MaxHistoryRead), in one script, so no event
// written meanwhile can be half in. It returns ErrNotFound when the task has no
// record and ErrSinceAhead (with the history holding the record) when since is
// greater than the record's seq. A negative since is read as 0.
func (s *Store) ReadHistory(ctx context.Context, id string, since int64, limit int) (*History, error) {
	if limit <= 0 || limit > MaxHistoryRead {
		limit = MaxHistoryRead
	}
	since = max(since, 0)
	v, err := readHistoryScript.Run(ctx, s.rdb, []string{s.keys.Task(id), s.keys.Events(id)},
		since, limit, MaxHistoryReadBytes).Slice()
	if err != nil {
		return nil, fmt.Errorf("store: read history %s: %w", id, err)
	}
	if len(v) != 6 {
		return nil, ErrNotFound
	}
	rec, err := recordFromReply(v[0])
	if err != nil {
		return nil, fmt.Errorf("store: read history %s: %w", id, err)
	}
	h := &History{Record: rec}
	if since > rec.Seq {
		return h, ErrSinceAhead
	}
	exists, _ := v[1].(int64)
	more, _ := v[3].(int64)
	held, _ := v[4].(int64)
	trimmed := rec.HistoryTrimmed
	if oldest, _ := v[5].(string); held < rec.HistoryCount && oldest != "" {
		// The history dropped its oldest events to keep its limit: every
		// event before the one it holds first (conservative where seqs were
		// skipped).
		seq, err := strconv.ParseInt(strings.TrimSuffix(oldest, "-0"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("store: read history %s: entry id %q", id, oldest)
		}
		trimmed = max(trimmed, seq-1)
	}
	switch {
	case since == rec.Seq:
		h.Recovered = true
		return h, nil
	case since < trimmed || rec.HistoryLimit < 0:
		h.Reason = events.ReasonTrimmed
		return h, nil
	case exists == 0:
		h.Reason = events.ReasonExpired
		return h, nil
	}
	list, _ := v[2].([]any)
	h.Events = make([]events.HistoryEvent, 0, len(list))
	for _, it := range list {
		e, _ := it.([]any)
		if len(e) != 3 {
			continue
		}
		sid, _ := e[0].(string)
		name, _ := e[1].(string)
		data, _ := e[2].(string)
		seq, err := strconv.ParseInt(strings.TrimSuffix(sid, "-0"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("store: read history %s: entry id %q", id, sid)
		}
		h.Events = append(h.Events, events.HistoryEvent{Seq: seq, Event: name, Data: []byte(data)})
	}
	h.Recovered = true
	if more == 1 && len(h.Events) > 0 {
		h.Next = h.Events[len(h.Events)-1].Seq
	}
	return h, nil
}

// readHistoryScript reads a record and the entries of its history after a seq,
// in batches so that a long history of large events is never held whole.
//
// KEYS[1] record, KEYS[2] history. ARGV[1] since, ARGV[2] most entries, ARGV[3]
// most bytes of payloads (one entry is always taken). Returns {} without a record,
// else {record as HGETALL, 1 when the history exists, {{id, name, data}...}, 1
// when more entries follow, the number of entries, the id of the first ("" for
// none)}.
var readHistoryScript = redis.NewScript(`
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then return {} end
local exists = redis.call('EXISTS', KEYS[2])
local out, more = {}, 0
if exists == 1 then
  local want, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
  local from, bytes = '(' .. ARGV[1] .. '-0', 0
  while more == 0 do
    local batch = redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', 100)
    for _, e in ipairs(batch) do
      local name, data = '', ''
      for i = 1, #e[2], 2 do
        if e[2][i] == 'e' then name = e[2][i + 1] elseif e[2][i] == 'd' then data = e[2][i + 1] end
      end
      if #out >= want or (#out > 0 and bytes + #data > budget) then
        more = 1
        break
      end
      out[#out + 1] = {e[1], name, data}
      bytes = bytes + #data
    end
    if #batch < 100 then break end
    from = '(' .. batch[#batch][1]
  end
end
local held, oldest = 0, ''
if exists == 1 then
  held = redis.call('XLEN', KEYS[2])
  local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  if #head > 0 then oldest = head[1][1] end
end
return {rec, exists, out, more, held, oldest}
`)
