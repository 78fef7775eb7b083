package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// TestOversizedEntryNotDecoded: an entry over MaxEntryBytes is rejected as
// malformed before it is decoded (even one that would decode), keeping the
// task id readable from its start so that the task can be failed.
func TestOversizedEntryNotDecoded(t *testing.T) {
	id := tasks.NewID()
	m := &tasks.Message{ID: id, Kind: "export", Params: []byte(`{"rows":1}`),
		Owner: strings.Repeat("o", 2<<20), EnqueuedAt: time.Now()}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tasks.DecodeMessage(b); err != nil {
		t.Fatalf("the entry itself decodes: %v", err)
	}
	var br Broker
	d := br.newDelivery(redis.XMessage{ID: "1-0", Values: map[string]any{store.QueueField: string(b)}}, false)
	if d.bad == nil || d.bad.Code != CodeMalformed || !strings.Contains(d.bad.Message, "not decoded") {
		t.Fatalf("oversized entry: bad %+v", d.bad)
	}
	if d.taskID() != id || d.raw != "" {
		t.Fatalf("task id %q (want %q), raw kept: %d bytes", d.taskID(), id, len(d.raw))
	}
	// Garbage without a readable id: rejected all the same.
	d = br.newDelivery(redis.XMessage{ID: "2-0", Values: map[string]any{store.QueueField: strings.Repeat("x", MaxEntryBytes+1)}}, false)
	if d.bad == nil || d.taskID() != "" {
		t.Fatalf("oversized garbage: %+v %q", d.bad, d.taskID())
	}
	// An ordinary entry is decoded as before.
	m.Owner = "someone"
	b, _ = m.Encode()
	d = br.newDelivery(redis.XMessage{ID: "3-0", Values: map[string]any{store.QueueField: string(b)}}, false)
	if d.bad != nil || d.taskID() != id {
		t.Fatalf("ordinary entry: %+v", d.bad)
	}
}
