package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// Publish queues the task of s, as Machinery's SendTask does: the UUID must be a
// task id and the first argument the params JSON; the owner comes from the
// HeaderOwner header. With an ETA in the future the message waits in the delayed
// set. The task record must exist already (store.Create).
func (b *Broker) Publish(ctx context.Context, s *mtasks.Signature) error {
	m, err := messageOf(s)
	if err != nil {
		return err
	}
	raw, err := m.Encode()
	if err != nil {
		return fmt.Errorf("broker: publish %s: %w", s.UUID, err)
	}
	if s.ETA != nil && s.ETA.After(time.Now()) {
		err = b.rdb.ZAdd(ctx, b.opts.Keys.Delayed(), redis.Z{Score: float64(s.ETA.UnixMilli()), Member: raw}).Err()
	} else {
		err = b.rdb.XAdd(ctx, &redis.XAddArgs{Stream: b.opts.Keys.Queue(m.Kind), Values: []any{store.QueueField, raw}}).Err()
	}
	if err != nil {
		return fmt.Errorf("broker: publish %s: %w", s.UUID, err)
	}
	return nil
}

func messageOf(s *mtasks.Signature) (*tasks.Message, error) {
	if !tasks.ValidID(s.UUID) {
		return nil, fmt.Errorf("broker: publish: %q is not a task id", s.UUID)
	}
	kind := tasks.Kind(s.Name)
	if !tasks.ValidKindName(s.Name) {
		return nil, fmt.Errorf("broker: publish %s: invalid kind %q", s.UUID, s.Name)
	}
	if len(s.Args) != 1 {
		return nil, fmt.Errorf("broker: publish %s: want one argument (the params JSON), got %d", s.UUID, len(s.Args))
	}
	raw, ok := s.Args[0].Value.(string)
	if !ok {
		return nil, fmt.Errorf("broker: publish %s: the argument is %T, not a JSON string", s.UUID, s.Args[0].Value)
	}
	params := json.RawMessage(raw)
	if p := bytes.TrimSpace(params); len(p) == 0 || p[0] != '{' || !json.Valid(p) {
		return nil, fmt.Errorf("broker: publish %s: the params are not a JSON object", s.UUID)
	}
	owner, _ := s.Headers[HeaderOwner].(string)
	return &tasks.Message{ID: s.UUID, Kind: kind, Params: params, Owner: owner, EnqueuedAt: time.Now().UTC(), TraceParent: TraceParent(s)}, nil
}
