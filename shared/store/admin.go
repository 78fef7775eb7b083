package store

// What the operator dashboard reads and changes. Keys, with the default prefix:
//
//	taskwire:tasks                zset   every task id, by creation time (Unix ms)
//	taskwire:workers              zset   ids of the workers that sent a heartbeat, by its end (Unix ms)
//	taskwire:worker:<id>          hash   the last heartbeat of a worker (field "info": WorkerInfo JSON), TTL
//	taskwire:servers              zset   ids of the servers that sent a heartbeat, by its end (Unix ms)
//	taskwire:server:<id>          hash   the last heartbeat of a server (field "info": ServerInfo JSON), TTL

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/tasks"
)

// MaxIndexedTasks bounds the index of all tasks (Keys.AllTasks): the oldest
// entries go beyond it.
const MaxIndexedTasks = 1_000_000

// FieldRetries counts the retries an operator asked for (Retry); it is a
// record field that only the operator API reads.
const FieldRetries = "retries"

// fieldRetryBudget is the number of attempts each retry adds (the task's first
// maxAttempts).
const fieldRetryBudget = "retryBudget"

// ErrNotFailed is returned by Retry for a task that is not failed.
var ErrNotFailed = errors.New("store: task is not failed")

// AllTasks is the key of the index of every task, scored by creation time.
func (k Keys) AllTasks() string { return k.Prefix + ":tasks" }

// Workers is the key of the sorted set of the workers with a heartbeat, scored
// by the Unix millisecond it ends.
func (k Keys) Workers() string { return k.Prefix + ":workers" }

// Worker is the key of the heartbeat of worker id.
func (k Keys) Worker(id string) string { return k.Prefix + ":worker:" + id }

// Servers is the key of the sorted set of the servers with a heartbeat, scored
// by the Unix millisecond it ends.
func (k Keys) Servers() string { return k.Prefix + ":servers" }

// Server is the key of the heartbeat of server id.
func (k Keys) Server(id string) string { return k.Prefix + ":server:" + id }

// indexTask adds the task to the index of all tasks, in p.
func (s *Store) indexTask(ctx context.Context, p redis.Cmdable, rec *tasks.Record) {
	idx := s.keys.AllTasks()
	p.ZAdd(ctx, idx, redis.Z{Score: float64(rec.CreatedAt.UnixMilli()), Member: rec.ID})
	p.ZRemRangeByRank(ctx, idx, 0, -MaxIndexedTasks-1)
}

// WorkerInfo is the heartbeat of a worker.
type WorkerInfo struct {
	// ID is the worker's consumer name in the queue's consumer group.
	ID   string `json:"id"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// Kinds are the kinds it serves.
	Kinds       []string `json:"kinds"`
	Concurrency int      `json:"concurrency"`
	// Running are the ids of the tasks it runs.
	Running   []string  `json:"running"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"startedAt"`
	// LastHeartbeat is when it was written; ExpiresAt when it ends.
	LastHeartbeat time.Time `json:"lastHeartbeat"`
	ExpiresAt     time.Time `json:"expiresAt"`
}

// ServerInfo is the heartbeat of a server.
type ServerInfo struct {
	// ID names the server process (host, pid and a random part).
	ID   string `json:"id"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// Addr is the address it listens on.
	Addr string `json:"addr"`
	// Sockets counts the sockets of the main namespace, Operators those of the
	// operator namespace.
	Sockets   int `json:"sockets"`
	Operators int `json:"operators"`
	// Connections counts engine.io sessions by transport.
	Connections   map[string]int `json:"connections"`
	Version       string         `json:"version"`
	StartedAt     time.Time      `json:"startedAt"`
	LastHeartbeat time.Time      `json:"lastHeartbeat"`
	ExpiresAt     time.Time      `json:"expiresAt"`
}

// BuildVersion returns the version of the running binary: its module version
// and VCS revision when the build recorded them, else "devel".
func BuildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	for _, st := range bi.Settings {
		if st.Key == "vcs.revision" && len(st.Value) >= 12 {
			v += "+" + st.Value[:12]
		}
	}
	return v
}

// PutWorker writes the heartbeat of a worker, valid for ttl.
func (s *Store) PutWorker(ctx context.Context, w *WorkerInfo, ttl time.Duration) error {
	w.ExpiresAt = w.LastHeartbeat.Add(ttl)
	return s.putBeat(ctx, s.keys.Workers(), s.keys.Worker(w.ID), w.ID, w, w.ExpiresAt, ttl)
}

// DeleteWorker removes the heartbeat of worker id (it stopped).
func (s *Store) DeleteWorker(ctx context.Context, id string) error {
	return s.deleteBeat(ctx, s.keys.Workers(), s.keys.Worker(id), id)
}

// PutServer writes the heartbeat of a server, valid for ttl.
func (s *Store) PutServer(ctx context.Context, v *ServerInfo, ttl time.Duration) error {
	v.ExpiresAt = v.LastHeartbeat.Add(ttl)
	return s.putBeat(ctx, s.keys.Servers(), s.keys.Server(v.ID), v.ID, v, v.ExpiresAt, ttl)
}

// DeleteServer removes the heartbeat of server id (it stopped).
func (s *Store) DeleteServer(ctx context.Context, id string) error {
	return s.deleteBeat(ctx, s.keys.Servers(), s.keys.Server(id), id)
}

func (s *Store) putBeat(ctx context.Context, set, key, id string, v any, until time.Time, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: heartbeat %s: %w", id, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "info", b)
		p.PExpire(ctx, key, ttl)
		p.ZAdd(ctx, set, redis.Z{Score: float64(until.UnixMilli()), Member: id})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: heartbeat %s: %w", id, err)
	}
	return nil
}

func (s *Store) deleteBeat(ctx context.Context, set, key, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		p.ZRem(ctx, set, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: remove heartbeat %s: %w", id, err)
	}
	return nil
}

// Workers returns the live workers (heartbeat not expired), by id.
func (s *Store) Workers(ctx context.Context, now time.Time) ([]WorkerInfo, error) {
	out := []WorkerInfo{}
	err := s.listBeats(ctx, s.keys.Workers(), s.keys.Worker, now, func(b []byte) error {
		var w WorkerInfo
		if err := json.Unmarshal(b, &w); err != nil {
			return err
		}
		out = append(out, w)
		return nil
	})
	return out, err
}

// Servers returns the live servers (heartbeat not expired), by id.
func (s *Store) Servers(ctx context.Context, now time.Time) ([]ServerInfo, error) {
	out := []ServerInfo{}
	err := s.listBeats(ctx, s.keys.Servers(), s.keys.Server, now, func(b []byte) error {
		var v ServerInfo
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// maxBeats bounds the workers or servers listed.
const maxBeats = 1000

func (s *Store) listBeats(ctx context.Context, set string, key func(string) string, now time.Time, each func([]byte) error) error {
	ms := now.UnixMilli()
	// Heartbeats that ended: forget them (their hashes expired on their own).
	_ = s.rdb.ZRemRangeByScore(ctx, set, "-inf", "("+strconv.FormatInt(ms, 10)).Err()
	ids, err := s.rdb.ZRangeByScore(ctx, set, &redis.ZRangeBy{Min: strconv.FormatInt(ms, 10), Max: "+inf", Count: maxBeats}).Result()
	if err != nil {
		return fmt.Errorf("store: heartbeats: %w", err)
	}
	sort.Strings(ids)
	cmds := make([]*redis.StringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, key(id), "info")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: heartbeats: %w", err)
	}
	for _, c := range cmds {
		b, err := c.Bytes()
		if err != nil {
			continue // expired in between
		}
		if err := each(b); err != nil {
			continue // written by another release: skipped
		}
	}
	return nil
}

// KindQueue is the state of the queue of one kind.
type KindQueue struct {
	Kind string `json:"kind"`
	// Length counts the entries of the kind's stream: waiting plus running.
	Length int64 `json:"length"`
	// Lag counts the entries no worker took yet; OldestWaitingMs is the age of
	// the oldest of them (0 when none).
	Lag             int64 `json:"lag"`
	OldestWaitingMs int64 `json:"oldestWaitingMs"`
	// Pending counts the entries taken by a worker and not acknowledged.
	Pending int64 `json:"pending"`
	// Delayed counts the tasks waiting for a retry.
	Delayed int64 `json:"delayed"`
	// Consumers counts the consumers of the group; Workers the live workers
	// registered for the kind.
	Consumers int64 `json:"consumers"`
	Workers   int   `json:"workers"`
}

// maxDelayedRead bounds the delayed messages read to count them by kind.
const maxDelayedRead = 10_000

// Queues returns the state of the queue of every registered kind, by name,
// in two round trips. Delayed counts come from the first maxDelayedRead
// messages of the retry sets.
func (s *Store) Queues(ctx context.Context, now time.Time) ([]KindQueue, error) {
	list, err := s.Kinds(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]KindQueue, len(list))
	type cmds struct {
		xlen   *redis.IntCmd
		groups *redis.XInfoGroupsCmd
	}
	cs := make([]cmds, len(list))
	pipe := s.rdb.Pipeline()
	for i, k := range list {
		q := s.keys.Queue(tasks.Kind(k.Name))
		out[i] = KindQueue{Kind: k.Name, Workers: k.Workers()}
		cs[i] = cmds{xlen: pipe.XLen(ctx, q), groups: pipe.XInfoGroups(ctx, q)}
	}
	delayed := pipe.ZRange(ctx, s.keys.Delayed(), 0, maxDelayedRead-1)
	legacy := pipe.ZRange(ctx, s.keys.LegacyDelayed(), 0, maxDelayedRead-1)
	_, _ = pipe.Exec(ctx) // errors are read per command
	byKind := map[string]int64{}
	for _, c := range []*redis.StringSliceCmd{delayed, legacy} {
		ms, err := c.Result()
		if err != nil {
			return nil, fmt.Errorf("store: queues: %w", err)
		}
		for _, m := range ms {
			var msg struct {
				Kind string `json:"kind"`
			}
			if json.Unmarshal([]byte(m), &msg) == nil {
				byKind[msg.Kind]++
			}
		}
	}
	// The first waiting entry of each stream, for the age of the backlog.
	pipe = s.rdb.Pipeline()
	firsts := make([]*redis.XMessageSliceCmd, len(list))
	for i := range list {
		q := &out[i]
		q.Delayed = byKind[q.Kind]
		n, err := cs[i].xlen.Result()
		if err != nil {
			return nil, fmt.Errorf("store: queues: %w", err)
		}
		q.Length, q.Lag = n, n
		groups, err := cs[i].groups.Result()
		if err != nil && !strings.Contains(err.Error(), "no such key") {
			return nil, fmt.Errorf("store: queues: %w", err)
		}
		last := "-"
		for _, g := range groups {
			if g.Name != QueueGroup {
				continue
			}
			q.Pending, q.Consumers, q.Lag = g.Pending, g.Consumers, g.Lag
			if q.Lag < 0 {
				q.Lag = max(q.Length-q.Pending, 0)
			}
			last = "(" + g.LastDeliveredID
		}
		if q.Lag > 0 {
			firsts[i] = pipe.XRangeN(ctx, s.keys.Queue(tasks.Kind(q.Kind)), last, "+", 1)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && len(list) > 0 {
		// A failed read of the backlog's age leaves it at 0.
		_ = err
	}
	for i, c := range firsts {
		if c == nil {
			continue
		}
		if ms, err := c.Result(); err == nil && len(ms) == 1 {
			if t, ok := entryTime(ms[0].ID); ok {
				out[i].OldestWaitingMs = max(now.UnixMilli()-t, 0)
			}
		}
	}
	return out, nil
}

// entryTime reads the Unix millisecond of a stream entry id.
func entryTime(id string) (int64, bool) {
	ms, _, _ := strings.Cut(id, "-")
	t, err := strconv.ParseInt(ms, 10, 64)
	return t, err == nil
}

// TaskFilter selects tasks of the index of all tasks. Empty fields select
// everything.
type TaskFilter struct {
	Kind  string
	State tasks.State
	Owner string
	// CreatedAfter and CreatedBefore bound the creation time (exclusive).
	CreatedAfter, CreatedBefore time.Time
}

func (f *TaskFilter) matches(h map[string]string) bool {
	return (f.Kind == "" || h[tasks.FieldKind] == f.Kind) &&
		(f.State == "" || h[tasks.FieldState] == string(f.State)) &&
		(f.Owner == "" || h[tasks.FieldOwner] == f.Owner)
}

// TaskCursor is where a page of ListTasks ends: the creation time and id of
// its last task. Its text form is "<unix ms>-<id>".
type TaskCursor struct {
	Score int64
	ID    string
}

// String returns the text form of the cursor.
func (c TaskCursor) String() string { return strconv.FormatInt(c.Score, 10) + "-" + c.ID }

// ParseTaskCursor reads the text form of a cursor.
func ParseTaskCursor(s string) (TaskCursor, error) {
	ms, id, ok := strings.Cut(s, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 || id == "" || len(id) > 64 {
		return TaskCursor{}, fmt.Errorf("not a cursor of this API: %q", s)
	}
	return TaskCursor{Score: n, ID: id}, nil
}

// IndexedTask is a task as the operator sees it: the whole record with its
// owner, queue entry and retries.
type IndexedTask struct {
	*tasks.Record
	Owner      string `json:"owner"`
	QueueEntry string `json:"queueEntry,omitempty"`
	Retries    int    `json:"retries,omitempty"`
}

// TaskPage is one page of ListTasks.
type TaskPage struct {
	Tasks []IndexedTask `json:"tasks"`
	// Next is the cursor of the next page; nil at the end.
	Next *TaskCursor `json:"-"`
	// Scanned counts the index entries looked at; Expired those whose
	// record is gone (PurgeExpired removes them).
	Scanned int `json:"scanned"`
	Expired int `json:"expired"`
}

// MaxScan bounds the index entries one ListTasks call looks at: a filter that
// matches few tasks gets short pages with a cursor, never a slow answer.
const MaxScan = 20_000

// scanBatch is how many index entries are read per round trip.
const scanBatch = 500

// ListTasks returns the tasks of the index that match f, newest first, at most
// limit, starting after cursor (nil: from the newest). It looks at MaxScan
// entries at most; Next is set when there may be more.
func (s *Store) ListTasks(ctx context.Context, f TaskFilter, limit int, cursor *TaskCursor) (*TaskPage, error) {
	page := &TaskPage{Tasks: []IndexedTask{}}
	maxScore := "+inf"
	if !f.CreatedBefore.IsZero() {
		maxScore = "(" + strconv.FormatInt(f.CreatedBefore.UnixMilli(), 10)
	}
	if cursor != nil {
		maxScore = strconv.FormatInt(cursor.Score, 10)
		if !f.CreatedBefore.IsZero() && cursor.Score >= f.CreatedBefore.UnixMilli() {
			maxScore = "(" + strconv.FormatInt(f.CreatedBefore.UnixMilli(), 10)
		}
	}
	minScore := "-inf"
	if !f.CreatedAfter.IsZero() {
		minScore = "(" + strconv.FormatInt(f.CreatedAfter.UnixMilli(), 10)
	}
	var offset int64
	var last TaskCursor
	for page.Scanned < MaxScan {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, s.keys.AllTasks(), &redis.ZRangeBy{
			Max: maxScore, Min: minScore, Offset: offset, Count: scanBatch}).Result()
		if err != nil {
			return nil, fmt.Errorf("store: list tasks: %w", err)
		}
		if len(zs) == 0 {
			return page, nil
		}
		ids := make([]string, 0, len(zs))
		scores := make([]int64, 0, len(zs))
		for _, z := range zs {
			id, _ := z.Member.(string)
			sc := int64(z.Score)
			// Entries of the cursor's millisecond at or before its id (in
			// reverse order) were on earlier pages.
			if cursor != nil && sc == cursor.Score && id >= cursor.ID {
				continue
			}
			ids = append(ids, id)
			scores = append(scores, sc)
		}
		// The next batch starts after this one: at the last score, skipping
		// the entries of that score already read.
		lastScore := int64(zs[len(zs)-1].Score)
		same := int64(0)
		for i := len(zs) - 1; i >= 0 && int64(zs[i].Score) == lastScore; i-- {
			same++
		}
		if strconv.FormatInt(lastScore, 10) == strings.TrimPrefix(maxScore, "(") && !strings.HasPrefix(maxScore, "(") {
			offset += int64(len(zs))
		} else {
			maxScore, offset = strconv.FormatInt(lastScore, 10), same
		}
		// With a filter, the fields it reads come first, and only the records
		// that match are read whole.
		keep, gone, err := s.prefilter(ctx, f, ids)
		if err != nil {
			return nil, err
		}
		// Read as many of the kept records as the page still takes; when some
		// of them expired or changed since, read the next ones of the batch.
		for i := 0; i < len(ids); {
			room := limit - len(page.Tasks)
			want := make([]string, 0, room)
			at := make([]int, 0, room) // the position in ids of each of want
			for k := i; k < len(ids) && len(want) < room; k++ {
				if keep[k] {
					want, at = append(want, ids[k]), append(at, k)
				}
			}
			recs, err := s.readIndexed(ctx, want)
			if err != nil {
				return nil, err
			}
			end := len(ids) // the entries this round looks at: up to the last read
			if len(want) == room {
				end = at[len(at)-1] + 1
			}
			j := 0
			for ; i < end; i++ {
				page.Scanned++
				last = TaskCursor{Score: scores[i], ID: ids[i]}
				if gone[i] {
					page.Expired++
					continue
				}
				if j >= len(at) || at[j] != i {
					continue // filtered out
				}
				r := recs[j]
				j++
				if r == nil || !f.matches(r.raw) {
					if r == nil {
						page.Expired++
					}
					continue // expired or changed since the first look
				}
				page.Tasks = append(page.Tasks, r.IndexedTask)
				if len(page.Tasks) >= limit {
					next := last
					page.Next = &next
					return page, nil
				}
			}
		}
		if len(zs) < scanBatch {
			return page, nil
		}
	}
	if last.ID != "" {
		page.Next = &last
	}
	return page, nil
}

// prefilter reports which of ids may match f (keep) and which have no record
// (gone), reading only the fields f looks at; without a filter it keeps all
// and reads nothing.
func (s *Store) prefilter(ctx context.Context, f TaskFilter, ids []string) (keep, gone []bool, err error) {
	keep, gone = make([]bool, len(ids)), make([]bool, len(ids))
	if f.Kind == "" && f.State == "" && f.Owner == "" {
		for i := range keep {
			keep[i] = true
		}
		return keep, gone, nil
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.keys.Task(id), tasks.FieldID, tasks.FieldKind, tasks.FieldState, tasks.FieldOwner)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: list tasks: %w", err)
	}
	for i, c := range cmds {
		v := c.Val()
		if len(v) != 4 || v[0] == nil {
			gone[i] = true
			continue
		}
		h := map[string]string{}
		for k, name := range []string{tasks.FieldKind, tasks.FieldState, tasks.FieldOwner} {
			h[name], _ = v[k+1].(string)
		}
		keep[i] = f.matches(h)
	}
	return keep, gone, nil
}

type indexed struct {
	IndexedTask
	raw map[string]string
}

// readIndexed reads the records of ids in one round trip; nil for the gone.
func (s *Store) readIndexed(ctx context.Context, ids []string) ([]*indexed, error) {
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.keys.Task(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read tasks: %w", err)
	}
	out := make([]*indexed, len(ids))
	for i, c := range cmds {
		if h := c.Val(); len(h) > 0 {
			out[i] = toIndexed(h)
		}
	}
	return out, nil
}

func toIndexed(h map[string]string) *indexed {
	rec, err := tasks.RecordFromHash(h)
	if err != nil {
		return nil
	}
	n, _ := strconv.Atoi(h[FieldRetries])
	return &indexed{IndexedTask: IndexedTask{Record: rec, Owner: rec.Owner, QueueEntry: rec.QueueEntry, Retries: n}, raw: h}
}

// GetIndexed reads one task as the operator sees it, or ErrNotFound.
func (s *Store) GetIndexed(ctx context.Context, id string) (*IndexedTask, error) {
	h, err := s.rdb.HGetAll(ctx, s.keys.Task(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id, err)
	}
	r := toIndexed(h)
	if r == nil {
		return nil, ErrNotFound
	}
	return &r.IndexedTask, nil
}

// FailureGroup counts the failed tasks of one error code.
type FailureGroup struct {
	Code  string `json:"code"`
	Count int    `json:"count"`
	// Kinds counts them by kind.
	Kinds map[string]int `json:"kinds"`
	// Latest are the ids of the most recent ones (at most 5), newest first;
	// Message is the error message of the newest.
	Latest  []string `json:"latest"`
	Message string   `json:"message"`
}

// Failures groups the failed tasks among the newest MaxScan of the index by
// error code, most frequent first. scanned counts the entries looked at;
// more says that older entries were not.
func (s *Store) Failures(ctx context.Context) (groups []FailureGroup, scanned int, more bool, err error) {
	by := map[string]*FailureGroup{}
	for start := int64(0); start < MaxScan; start += scanBatch {
		ids, err := s.rdb.ZRevRange(ctx, s.keys.AllTasks(), start, start+scanBatch-1).Result()
		if err != nil {
			return nil, 0, false, fmt.Errorf("store: failures: %w", err)
		}
		cmds := make([]*redis.SliceCmd, len(ids))
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.HMGet(ctx, s.keys.Task(id), tasks.FieldState, tasks.FieldErrorCode, tasks.FieldKind, tasks.FieldErrorMessage)
			}
			return nil
		})
		if err != nil {
			return nil, 0, false, fmt.Errorf("store: failures: %w", err)
		}
		for i, c := range cmds {
			scanned++
			v := c.Val()
			if len(v) != 4 || v[0] != string(tasks.StateFailed) {
				continue
			}
			code, _ := v[1].(string)
			kind, _ := v[2].(string)
			g := by[code]
			if g == nil {
				msg, _ := v[3].(string)
				g = &FailureGroup{Code: code, Kinds: map[string]int{}, Latest: []string{}, Message: msg}
				by[code] = g
			}
			g.Count++
			g.Kinds[kind]++
			if len(g.Latest) < 5 {
				g.Latest = append(g.Latest, ids[i])
			}
		}
		if len(ids) < scanBatch {
			break
		}
		if start+scanBatch >= MaxScan {
			more = true
		}
	}
	groups = make([]FailureGroup, 0, len(by))
	for _, g := range by {
		groups = append(groups, *g)
	}
	sort.Slice(groups, func(i, j int) bool {
		if groups[i].Count != groups[j].Count {
			return groups[i].Count > groups[j].Count
		}
		return groups[i].Code < groups[j].Code
	})
	return groups, scanned, more, nil
}

// PurgeExpired removes from the index of all tasks the entries whose record
// expired, looking at limit entries at most from the oldest. It returns how
// many it removed and looked at, and whether entries were left unread.
func (s *Store) PurgeExpired(ctx context.Context, limit int) (removed, scanned int, more bool, err error) {
	idx := s.keys.AllTasks()
	for start := int64(0); scanned < limit; {
		ids, err := s.rdb.ZRange(ctx, idx, start, start+scanBatch-1).Result()
		if err != nil {
			return removed, scanned, false, fmt.Errorf("store: purge: %w", err)
		}
		cmds := make([]*redis.IntCmd, len(ids))
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.Exists(ctx, s.keys.Task(id))
			}
			return nil
		})
		if err != nil {
			return removed, scanned, false, fmt.Errorf("store: purge: %w", err)
		}
		var gone []any
		for i, c := range cmds {
			if c.Val() == 0 {
				gone = append(gone, ids[i])
			}
		}
		scanned += len(ids)
		if len(gone) > 0 {
			n, err := s.rdb.ZRem(ctx, idx, gone...).Result()
			if err != nil {
				return removed, scanned, false, fmt.Errorf("store: purge: %w", err)
			}
			removed += int(n)
		}
		if len(ids) < scanBatch {
			return removed, scanned, false, nil
		}
		start += int64(len(ids) - len(gone))
	}
	return removed, scanned, true, nil
}

// retryScript puts a failed task back to queued for another series of
// attempts: maxAttempts becomes attempts + the task's first maxAttempts (kept
// in retryBudget), retries + 1, the error, the end and the progress go, seq + 1;
// the task is back in its owner's active set. It returns the record, or -1 (no
// record) or -7 (not failed).
//
// KEYS[1] record; ARGV[1] now (Unix ms), ARGV[2] TTL (ms), ARGV[3] the budget
// when the record has no maxAttempts, ARGV[4] the prefix of the owners' keys
// ("<prefix>:user:"), ARGV[5] the task id.
var retryScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'state', 'seq', 'attempts', 'maxAttempts', 'retryBudget', 'owner')
if not cur[1] then return -1 end
if cur[1] ~= 'failed' then return -7 end
local budget = tonumber(cur[5] or '') or tonumber(cur[4] or '') or 0
if budget <= 0 then budget = tonumber(ARGV[3]) end
local attempts = tonumber(cur[3] or '') or 0
redis.call('HDEL', KEYS[1], 'errorCode', 'errorMessage', 'finishedAt', 'cancelRequested', 'nextAttemptAt',
  'etaSeconds', 'deliveredAt', 'seenAt', 'stageMessage')
redis.call('HSET', KEYS[1], 'state', 'queued', 'seq', (tonumber(cur[2] or '0') or 0) + 1,
  'maxAttempts', attempts + budget, 'retryBudget', budget, 'percent', '0', 'done', '0', 'stage', 'retrying')
redis.call('HINCRBY', KEYS[1], 'retries', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if cur[6] then
  local active = ARGV[4] .. cur[6] .. ':active'
  redis.call('SADD', active, ARGV[5])
  redis.call('PEXPIRE', active, ARGV[2])
end
return redis.call('HGETALL', KEYS[1])
`)

// Retry puts failed task id back to queued for another series of attempts
// (see retryScript) and returns the record; the caller then enqueues its
// message. budget is the number of attempts added when the record has no
// maxAttempts. It returns ErrNotFound, or ErrNotFailed with the record.
func (s *Store) Retry(ctx context.Context, id string, now time.Time, budget int) (*tasks.Record, error) {
	v, err := retryScript.Run(ctx, s.rdb, []string{s.keys.Task(id)},
		now.UnixMilli(), s.ttl.Milliseconds(), max(budget, 1), s.keys.Prefix+":user:", id).Result()
	if err != nil {
		return nil, fmt.Errorf("store: retry %s: %w", id, err)
	}
	if n, ok := v.(int64); ok {
		switch n {
		case -1:
			return nil, ErrNotFound
		case -7:
			rec, gerr := s.Get(ctx, id)
			if gerr != nil {
				return nil, gerr
			}
			return rec, ErrNotFailed
		}
		return nil, resultCode(int(n))
	}
	return recordFromReply(v)
}
