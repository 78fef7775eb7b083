package taskservice

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// MaxQueuePosition caps the queue positions reported: past it a client only
// needs to know that the wait is long, and counting costs Redis work.
const MaxQueuePosition = 1000

// queuePositionsScript counts, for each entry id in ARGV[3..], the entries of
// the stream KEYS[1] that the group ARGV[1] has not been handed yet (after its
// last-delivered id) and that come before the entry, at most ARGV[2]. An entry
// the group was handed already counts 0. The answer is empty when the stream
// does not exist.
var queuePositionsScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local last = '0-0'
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, lid
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i+1] elseif g[i] == 'last-delivered-id' then lid = g[i+1] end
  end
  if name == ARGV[1] and lid then last = lid end
end
local cap = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  out[#out+1] = #redis.call('XRANGE', KEYS[1], '(' .. last, '(' .. ARGV[i], 'COUNT', cap)
end
return out`)

// waitsInQueue reports whether rec waits in its kind's stream since it was
// created, so that its queue entry says where it is. A task that ran already
// (a retry waiting or queued again) has no position.
func waitsInQueue(rec *tasks.Record) bool {
	return rec.State == tasks.StateQueued && rec.Attempts == 0 && rec.NextAttemptAt == nil && rec.QueueEntry != ""
}

// fillQueuePositions sets QueuePosition on the records that wait in their
// kind's queue, with one pipelined round trip (one script per kind). Failures
// leave positions out: they are a hint.
func (s *Service) fillQueuePositions(ctx context.Context, recs []*tasks.Record) {
	byKind := map[tasks.Kind][]*tasks.Record{}
	var kinds []tasks.Kind
	for _, r := range recs {
		if !waitsInQueue(r) {
			continue
		}
		if _, ok := byKind[r.Kind]; !ok {
			kinds = append(kinds, r.Kind)
		}
		byKind[r.Kind] = append(byKind[r.Kind], r)
	}
	if len(kinds) == 0 {
		return
	}
	rdb := s.store.Client()
	run := func(c redis.Scripter, k tasks.Kind) *redis.Cmd {
		args := []any{store.QueueGroup, MaxQueuePosition}
		for _, r := range byKind[k] {
			args = append(args, r.QueueEntry)
		}
		keys := []string{s.store.Keys().Queue(k)}
		if len(kinds) == 1 {
			return queuePositionsScript.Run(ctx, c, keys, args...) // EVALSHA, EVAL when not loaded
		}
		return queuePositionsScript.Eval(ctx, c, keys, args...) // in a pipeline: no fallback possible
	}
	cmds := make([]*redis.Cmd, len(kinds))
	if len(kinds) == 1 {
		cmds[0] = run(rdb, kinds[0])
	} else {
		_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range kinds {
				cmds[i] = run(p, k)
			}
			return nil
		})
	}
	for i, k := range kinds {
		counts, err := cmds[i].Int64Slice()
		if err != nil {
			s.log.WarnContext(ctx, "queue positions", "kind", k, "err", err)
			continue
		}
		for j, r := range byKind[k] {
			if j < len(counts) {
				n := int(min(counts[j], MaxQueuePosition))
				r.QueuePosition = &n
			}
		}
	}
}
