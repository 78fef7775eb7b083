package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

type eventsAnswer struct {
	TaskID    string                `json:"taskId"`
	Seq       int64                 `json:"seq"`
	Events    []events.HistoryEvent `json:"events"`
	Recovered bool                  `json:"recovered"`
	Reason    string                `json:"reason"`
	Next      int64                 `json:"next"`
}

func TestEventsEndpoint(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	ctx := context.Background()
	r := e.do("POST", "/api/v1/tasks", tok, exportBody)
	id, _ := r.json(t)["id"].(string)
	get := func(query string) (response, eventsAnswer) {
		t.Helper()
		r := e.do("GET", "/api/v1/tasks/"+id+"/events"+query, tok, "")
		var a eventsAnswer
		if r.status == 200 {
			if err := json.Unmarshal(r.body, &a); err != nil {
				t.Fatal(err)
			}
		}
		return r, a
	}
	// No event yet: complete, and empty (an array, not null).
	if r, a := get(""); r.status != 200 || a.TaskID != id || a.Seq != 0 || !a.Recovered || a.Events == nil || len(a.Events) != 0 ||
		r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("before any event: %d %s", r.status, r.body)
	}
	// The record says how much history the task keeps.
	if rec, err := e.store.Get(ctx, id); err != nil || rec.HistoryLimit != store.DefaultHistoryLimit {
		t.Fatalf("record: %+v, %v", rec, err)
	}
	if _, err := e.store.StartAttempt(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 5; seq++ {
		err := e.store.Apply(ctx, &store.Update{TaskID: id, Attempt: 1, Seq: seq, Fields: map[string]any{tasks.FieldDone: seq},
			Event: &store.Event{Name: events.TaskProgress, Data: fmt.Appendf(nil, `{"taskId":%q,"seq":%d}`, id, seq)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	r, a := get("?since=1&limit=2")
	if r.status != 200 || !a.Recovered || a.Seq != 5 || a.Next != 3 || len(a.Events) != 2 || a.Events[0].Seq != 2 ||
		a.Events[0].Event != events.TaskProgress || string(a.Events[1].Data) != fmt.Sprintf(`{"taskId":%q,"seq":3}`, id) {
		t.Fatalf("page: %d %s", r.status, r.body)
	}
	if r, a := get("?since=3"); len(a.Events) != 2 || a.Next != 0 || a.Events[1].Seq != 5 {
		t.Fatalf("rest: %d %s", r.status, r.body)
	}
	if r, a := get("?since=5"); !a.Recovered || len(a.Events) != 0 {
		t.Fatalf("up to date: %d %s", r.status, r.body)
	}
	// Gone history: the record alone is authoritative.
	e.rdb.Del(ctx, e.store.Keys().Events(id))
	if r, a := get("?since=2"); r.status != 200 || a.Recovered || a.Reason != "expired" || len(a.Events) != 0 || a.Seq != 5 {
		t.Fatalf("expired: %d %s", r.status, r.body)
	}
	// Bad input: refused, and nothing changed.
	for _, q := range []string{"?since=-1", "?since=1.5", "?since=x", "?since=", "?since=9007199254740992", "?since=6",
		"?limit=0", "?limit=10001", "?limit=x"} {
		if r, _ := get(q); r.status != 400 || r.errorCode(t) != "bad_request" {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	// Other identities, unknown tasks, since ahead of a foreign task's seq.
	for _, path := range []string{"/api/v1/tasks/" + id + "/events", "/api/v1/tasks/" + id + "/events?since=99",
		"/api/v1/tasks/" + tasks.NewID() + "/events", "/api/v1/tasks/nope/events"} {
		if r := e.do("GET", path, e.token(), ""); r.status != 404 || r.errorCode(t) != "not_found" {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
	if r := e.do("GET", "/api/v1/tasks/"+id+"/events", "", ""); r.status != 401 {
		t.Errorf("no session: %d", r.status)
	}
	if rec, _ := e.store.Get(ctx, id); rec.Seq != 5 {
		t.Fatalf("seq moved: %d", rec.Seq)
	}
}
