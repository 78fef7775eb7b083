package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

func kindInfo(name, schema string) tasks.KindInfo {
	k := tasks.KindInfo{Name: name, Title: name, ParamsSchema: json.RawMessage(schema)}
	k.SchemaHash = k.Hash()
	return k
}

func TestKindRegistry(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, err := s.Kind(ctx, "thumbnail"); !errors.Is(err, store.ErrUnknownKind) {
		t.Fatalf("unregistered kind: err = %v, want ErrUnknownKind", err)
	}
	v1 := kindInfo("thumbnail", `{"type":"object"}`)
	v2 := kindInfo("thumbnail", `{"type":"object","properties":{"w":{"type":"integer"}}}`)
	other := kindInfo("report", `{"type":"object"}`)
	if v1.SchemaHash == v2.SchemaHash || v1.SchemaHash != kindInfo("thumbnail", `{ "type" : "object" }`).SchemaHash {
		t.Fatalf("hashes: %s %s", v1.SchemaHash, v2.SchemaHash)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.RegisterKinds(ctx, "w1", []tasks.KindInfo{v1, other}, time.Minute))
	must(s.RegisterKinds(ctx, "w2", []tasks.KindInfo{v1}, time.Minute))
	k, err := s.Kind(ctx, "thumbnail")
	must(err)
	if len(k.Versions) != 1 || k.Workers() != 2 || k.Conflict() || k.Current().Info.Title != "thumbnail" {
		t.Fatalf("one version, two workers: %+v", k)
	}
	// A second version: reported, with the version of most workers current.
	must(s.RegisterKinds(ctx, "w3", []tasks.KindInfo{v2}, time.Minute))
	k, err = s.Kind(ctx, "thumbnail")
	must(err)
	if len(k.Versions) != 2 || !k.Conflict() || k.Current().Info.SchemaHash != v1.SchemaHash || k.Versions[1].Workers != 1 {
		t.Fatalf("two versions: %+v", k)
	}
	// Workers that leave (or whose lease ends) no longer count; the kind stays known.
	must(s.UnregisterKinds(ctx, "w1", []tasks.KindInfo{v1, other}))
	must(s.UnregisterKinds(ctx, "w2", []tasks.KindInfo{v1}))
	must(s.RegisterKinds(ctx, "w3", []tasks.KindInfo{v2}, -time.Second)) // lease over
	all, err := s.Kinds(ctx)
	must(err)
	if len(all) != 2 || all[0].Name != "report" || all[1].Name != "thumbnail" {
		t.Fatalf("kinds = %+v", all)
	}
	if all[0].Workers() != 0 || all[1].Workers() != 0 || all[1].Conflict() {
		t.Fatalf("no live workers: %+v", all)
	}
	if len(all[1].Versions) != 2 {
		t.Fatalf("versions without workers are still listed: %+v", all[1])
	}
	if _, err := s.Kind(ctx, "Not A Kind"); !errors.Is(err, store.ErrUnknownKind) {
		t.Fatalf("invalid name: err = %v", err)
	}
}

func TestStreamAppendAndRead(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	rec := newRecord("alice")
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	att, err := s.StartAttempt(ctx, rec.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	seq := att.Seq
	appendN := func(from, n int) {
		t.Helper()
		items := make([][]byte, n)
		for i := range items {
			items[i] = []byte(fmt.Sprintf(`{"i":%d}`, from+i))
		}
		seq++
		err := s.Apply(ctx, &store.Update{
			TaskID: rec.ID, Attempt: att.Attempts, Seq: seq,
			Fields: map[string]any{tasks.FieldStreamPrefix + "metrics": from + n},
			Append: &store.Append{Stream: "metrics", Items: items},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	appendN(0, 3)
	appendN(3, 2)
	got, err := s.ReadStream(ctx, rec.ID, "metrics", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.From != 1 || got.Count != 5 || len(got.Items) != 4 || string(got.Items[0]) != `{"i":1}` || string(got.Items[3]) != `{"i":4}` {
		t.Fatalf("read from 1: %+v", got)
	}
	r, err := s.Get(ctx, rec.ID)
	if err != nil || r.Streams["metrics"] != 5 {
		t.Fatalf("record streams = %v, %v", r.Streams, err)
	}
	// Past the kept window, the oldest items go and From says where the kept ones start.
	appendN(5, tasks.MaxStreamItems)
	got, err = s.ReadStream(ctx, rec.ID, "metrics", 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got.From != 5 || got.Count != 5+tasks.MaxStreamItems || len(got.Items) != 2 || string(got.Items[0]) != `{"i":5}` {
		t.Fatalf("trimmed read: from %d count %d items %d", got.From, got.Count, len(got.Items))
	}
	empty, err := s.ReadStream(ctx, rec.ID, "log", 0, 0)
	if err != nil || empty.Count != 0 || len(empty.Items) != 0 {
		t.Fatalf("unused stream: %+v, %v", empty, err)
	}
	if _, err := s.ReadStream(ctx, tasks.NewID(), "metrics", 0, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown task: %v", err)
	}
	// A new attempt starts its streams and metadata over.
	if err := s.Apply(ctx, &store.Update{TaskID: rec.ID, Seq: seq + 1, Fields: map[string]any{tasks.FieldMetadata: `{"a":1}`, tasks.FieldState: "queued"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartAttempt(ctx, rec.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	r, err = s.Get(ctx, rec.ID)
	if err != nil || len(r.Streams) != 0 || len(r.Metadata) != 0 {
		t.Fatalf("after a new attempt: streams %v metadata %s err %v", r.Streams, r.Metadata, err)
	}
	if n, _ := rdb.Exists(ctx, s.Keys().Stream(rec.ID, "metrics")).Result(); n != 0 {
		t.Fatal("the stream of the previous attempt is still kept")
	}
}

func TestEnqueueByKind(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	rec := newRecord("alice")
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	m := &tasks.Message{ID: rec.ID, Kind: "thumbnail", Params: []byte(`{}`), Owner: "alice", EnqueuedAt: time.Now()}
	if err := s.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	entries, err := rdb.XRange(ctx, s.Keys().Queue("thumbnail"), "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("queue of the kind: %v, %v", entries, err)
	}
	r, err := s.Get(ctx, rec.ID)
	if err != nil || r.QueueEntry != entries[0].ID {
		t.Fatalf("record's queue entry = %q, want %q (%v)", r.QueueEntry, entries[0].ID, err)
	}
	if err := s.Enqueue(ctx, &tasks.Message{ID: rec.ID, Kind: "Bad Kind", Params: []byte(`{}`)}); err == nil {
		t.Fatal("a message with an invalid kind was queued")
	}
}
