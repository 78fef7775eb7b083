// Package admin is the server side of the operator dashboard: the operator
// credential (ADMIN_TOKEN), what the dashboard reads (queues, workers, servers,
// tasks, failures) and does (cancel, retry, purge), this server's heartbeat, and
// the operator Socket.IO namespace (operator.Namespace) that pushes changes to
// the page.
//
// No user token, API key, session or viewer token opens any of it: the only
// credential is the operator's, compared in constant time.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/realtime"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/operator"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// HeartbeatEvery is how often a server writes its heartbeat and sends it (and
// the queues) to the operator sockets; a heartbeat lasts three times as long.
const HeartbeatEvery = 2 * time.Second

// Config configures a Service.
type Config struct {
	// Token is the operator credential; empty turns the dashboard off.
	Token []byte
	Store *store.Store
	Tasks *taskservice.Service
	// Realtime, when set, gets the operator namespace.
	Realtime *realtime.Server
	// Addr is the address the server listens on, shown in its heartbeat.
	Addr   string
	Logger *slog.Logger
}

// Service is the operator dashboard's server side. It is safe for concurrent
// use. A nil *Service is off.
type Service struct {
	cfg   Config
	sum   [32]byte
	id    string
	start time.Time
	nsp   socket.Namespace
}

// New returns the Service, or nil when cfg has no token (the dashboard is off).
func New(cfg Config) *Service {
	if len(cfg.Token) == 0 {
		return nil
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	s := &Service{cfg: cfg, sum: sha256.Sum256(cfg.Token), start: time.Now().UTC(),
		id: host + "-" + strconv.Itoa(os.Getpid()) + "-" + tasks.NewID()[:6]}
	if cfg.Realtime != nil {
		s.nsp = cfg.Realtime.IO().Of(operator.Namespace, nil)
		s.nsp.Use(s.authenticate)
	}
	return s
}

// Enabled reports whether the dashboard is on.
func (s *Service) Enabled() bool { return s != nil }

// ID returns the id of this server in the heartbeats.
func (s *Service) ID() string { return s.id }

// Check reports whether token is the operator credential, in constant time.
func (s *Service) Check(token string) bool {
	if s == nil || token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], s.sum[:]) == 1
}

// authenticate is the operator namespace's middleware: only the operator
// credential, as auth.token, connects.
func (s *Service) authenticate(sock *socket.Socket, next func(*socket.ExtendedError)) {
	token := ""
	if m, ok := sock.Handshake().Auth.(map[string]any); ok {
		token, _ = m["token"].(string)
	}
	if !s.Check(token) {
		next(socket.NewExtendedError(realtime.ErrUnauthorized,
			map[string]any{"code": "unauthorized", "message": "the operator namespace needs the operator credential (ADMIN_TOKEN) as auth.token"}))
		return
	}
	sock.Handshake().Auth = nil
	next(nil)
}

// Notify sends a task change to every operator socket, on every server.
func (s *Service) Notify(c operator.TaskChange) {
	if s == nil || s.nsp == nil {
		return
	}
	if c.At.IsZero() {
		c.At = time.Now().UTC()
	}
	s.emit(s.nsp.Emit, operator.EventTask, c)
}

// emit sends v in its JSON form (what encoding/json writes), so that the
// adapter sends the same to other servers.
func (s *Service) emit(send func(string, ...any) error, event string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	var plain any
	if json.Unmarshal(b, &plain) != nil {
		return
	}
	if err := send(event, plain); err != nil {
		s.cfg.Logger.Debug("operator event not sent", "event", event, "err", err)
	}
}

// Run writes this server's heartbeat every HeartbeatEvery and sends it to the
// operator sockets, with the queues to this server's own, until ctx is done;
// then it removes the heartbeat.
func (s *Service) Run(ctx context.Context) {
	if s == nil {
		return
	}
	t := time.NewTicker(HeartbeatEvery)
	defer t.Stop()
	for {
		s.beat(ctx)
		select {
		case <-ctx.Done():
			c, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = s.cfg.Store.DeleteServer(c, s.id)
			cancel()
			return
		case <-t.C:
		}
	}
}

func (s *Service) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, HeartbeatEvery)
	defer cancel()
	info := s.info()
	if err := s.cfg.Store.PutServer(ctx, &info, 3*HeartbeatEvery); err != nil {
		s.cfg.Logger.Debug("server heartbeat not written", "err", err)
		return
	}
	if s.nsp == nil {
		return
	}
	s.emit(s.nsp.Emit, operator.EventServer, info)
	if s.nsp.Sockets().Len() > 0 {
		if o, err := s.Queue(ctx); err == nil {
			s.emit(s.nsp.Local().Emit, operator.EventQueue, o)
		}
	}
}

func (s *Service) info() store.ServerInfo {
	host, _ := os.Hostname()
	info := store.ServerInfo{ID: s.id, Host: host, PID: os.Getpid(), Addr: s.cfg.Addr, Connections: map[string]int{},
		Version: store.BuildVersion(), StartedAt: s.start, LastHeartbeat: time.Now().UTC()}
	if rt := s.cfg.Realtime; rt != nil {
		st := rt.Stats()
		info.Sockets, info.Connections = st.Sockets, st.Transports
		info.Operators = s.nsp.Sockets().Len()
	}
	return info
}

// Errors of the actions.
var (
	// ErrNotFound: no such task (or its record expired).
	ErrNotFound = errors.New("admin: no such task")
	// ErrConflict: the task is not in a state the action applies to.
	ErrConflict = errors.New("admin: the task is not in a state for this")
	// ErrUnavailable: Redis failed.
	ErrUnavailable = errors.New("admin: unavailable")
)

// Overview is what GET /api/v1/admin/queue answers.
type Overview struct {
	Kinds []store.KindQueue `json:"kinds"`
	// Totals sums the kinds.
	Totals store.KindQueue `json:"totals"`
	// Tasks counts the entries of the index of all tasks.
	Tasks int64 `json:"tasks"`
}

// Queue returns the queues of every kind and their totals.
func (s *Service) Queue(ctx context.Context) (*Overview, error) {
	qs, err := s.cfg.Store.Queues(ctx, time.Now())
	if err != nil {
		return nil, s.unavailable(ctx, "queues", err)
	}
	o := &Overview{Kinds: qs, Totals: store.KindQueue{Kind: "*"}}
	for _, q := range qs {
		o.Totals.Length += q.Length
		o.Totals.Lag += q.Lag
		o.Totals.Pending += q.Pending
		o.Totals.Delayed += q.Delayed
		o.Totals.Workers += q.Workers
		o.Totals.OldestWaitingMs = max(o.Totals.OldestWaitingMs, q.OldestWaitingMs)
	}
	o.Tasks, _ = s.cfg.Store.Client().ZCard(ctx, s.cfg.Store.Keys().AllTasks()).Result()
	return o, nil
}

// Workers returns the live workers.
func (s *Service) Workers(ctx context.Context) ([]store.WorkerInfo, error) {
	ws, err := s.cfg.Store.Workers(ctx, time.Now())
	if err != nil {
		return nil, s.unavailable(ctx, "workers", err)
	}
	return ws, nil
}

// Servers returns the live servers.
func (s *Service) Servers(ctx context.Context) ([]store.ServerInfo, error) {
	vs, err := s.cfg.Store.Servers(ctx, time.Now())
	if err != nil {
		return nil, s.unavailable(ctx, "servers", err)
	}
	return vs, nil
}

// Tasks returns a page of the tasks that match f.
func (s *Service) Tasks(ctx context.Context, f store.TaskFilter, limit int, cursor *store.TaskCursor) (*store.TaskPage, error) {
	p, err := s.cfg.Store.ListTasks(ctx, f, limit, cursor)
	if err != nil {
		return nil, s.unavailable(ctx, "tasks", err)
	}
	return p, nil
}

// Task returns one task.
func (s *Service) Task(ctx context.Context, id string) (*store.IndexedTask, error) {
	t, err := s.cfg.Store.GetIndexed(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, s.unavailable(ctx, "task", err)
	}
	return t, nil
}

// Failures groups the failed tasks by error code.
func (s *Service) Failures(ctx context.Context) (groups []store.FailureGroup, scanned int, more bool, err error) {
	groups, scanned, more, err = s.cfg.Store.Failures(ctx)
	if err != nil {
		return nil, 0, false, s.unavailable(ctx, "failures", err)
	}
	return groups, scanned, more, nil
}

// Cancel cancels task id as its owner would (a queued task at once, a running
// one by its worker) and reports whether its worker was asked to stop it.
func (s *Service) Cancel(ctx context.Context, id string) (*store.IndexedTask, bool, error) {
	_, outcome, err := s.cfg.Tasks.Cancel(ctx, taskservice.Anyone, id)
	switch {
	case errors.Is(err, taskservice.ErrNotFound):
		return nil, false, ErrNotFound
	case errors.Is(err, taskservice.ErrFinished):
		return nil, false, ErrConflict
	case err != nil:
		return nil, false, ErrUnavailable
	}
	t, err := s.Task(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return t, outcome == taskservice.Requested, nil
}

// Retry runs failed task id again (see taskservice.Service.Retry).
func (s *Service) Retry(ctx context.Context, id string) (*store.IndexedTask, error) {
	_, err := s.cfg.Tasks.Retry(ctx, id)
	switch {
	case errors.Is(err, taskservice.ErrNotFound):
		return nil, ErrNotFound
	case errors.Is(err, taskservice.ErrNotFailed):
		return nil, ErrConflict
	case err != nil:
		return nil, ErrUnavailable
	}
	return s.Task(ctx, id)
}

// MaxPurge bounds the index entries one purge looks at.
const MaxPurge = 100_000

// Purge removes the index entries whose record expired.
func (s *Service) Purge(ctx context.Context) (removed, scanned int, more bool, err error) {
	removed, scanned, more, err = s.cfg.Store.PurgeExpired(ctx, MaxPurge)
	if err != nil {
		return removed, scanned, more, s.unavailable(ctx, "purge", err)
	}
	return removed, scanned, more, nil
}

func (s *Service) unavailable(ctx context.Context, what string, err error) error {
	s.cfg.Logger.ErrorContext(ctx, "operator api", "what", what, "err", err)
	return fmt.Errorf("%w: %s", ErrUnavailable, what)
}
