package taskservice

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/taskwire/taskwire/shared/store"
)

// ErrBadStreamName: the name cannot be a stream's.
var ErrBadStreamName = errors.New("taskservice: invalid stream name")

// StreamPage is a part of one stream of a task: Items are the items from index
// From on (the first item appended is index 0). Count is the number of items
// appended so far in the current attempt; From is past the index asked for when
// older items were dropped (only the last tasks.MaxStreamItems are kept).
type StreamPage struct {
	Stream string            `json:"stream"`
	From   int64             `json:"from"`
	Count  int64             `json:"count"`
	Items  []json.RawMessage `json:"items"`
}

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
// on, at most limit (at most tasks.MaxStreamItems; 0 means that many). A stream
// nothing was appended to is empty, not an error; a task of someone else is
// ErrNotFound.
func (s *Service) Stream(ctx context.Context, owner, id, name string, from int64, limit int) (*StreamPage, error) {
	if !ValidStreamName(name) {
		return nil, ErrBadStreamName
	}
	if _, err := s.owned(ctx, owner, id); err != nil {
		return nil, err
	}
	items, err := s.store.ReadStream(ctx, id, name, max(from, 0), limit)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNotFound
	case err != nil:
		s.log.ErrorContext(ctx, "read stream", "task", id, "stream", name, "err", err)
		return nil, ErrUnavailable
	}
	page := &StreamPage{Stream: name, From: items.From, Count: items.Count, Items: items.Items}
	for i, it := range page.Items {
		if !json.Valid(it) {
			// Never written by a worker; keep the indexes right all the same.
			page.Items[i] = json.RawMessage("null")
		}
	}
	return page, nil
}
