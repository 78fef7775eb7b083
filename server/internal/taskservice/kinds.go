package taskservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/taskwire/taskwire/server/internal/paramschema"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// DefaultKindsCacheTTL is how long Create trusts what it read of the kinds
// registry, when Config.KindsCacheTTL is 0. A kind that is not in what was read
// is looked up in Redis at once, so a kind registered a moment ago is usable
// right away; a new version of a known kind, or its workers coming and going,
// are seen within this time.
const DefaultKindsCacheTTL = time.Second

// ErrUnknownKind: no worker ever registered the kind (or its registration
// expired). Create returns it as an *UnknownKindError.
var ErrUnknownKind = errors.New("taskservice: unknown kind")

// ErrInvalidParams: the params do not match the kind's schema. Create returns it
// as a *ParamsError.
var ErrInvalidParams = errors.New("taskservice: invalid params")

// ErrKindUnavailable: the kind's current schema, as its workers published it,
// does not compile, so no params can be checked. Create returns it as a
// *KindUnavailableError.
var ErrKindUnavailable = errors.New("taskservice: kind unavailable")

// UnknownKindError says that a task names a kind no worker serves, and which
// kinds are known. It matches ErrUnknownKind.
type UnknownKindError struct {
	// Kind is the name asked for ("" when the body named none).
	Kind string
	// Known are the kinds in the registry, sorted.
	Known []string
}

func (e *UnknownKindError) Error() string { return "kind: " + e.Reason() }

// Reason says what is wrong with the kind, without naming the field.
func (e *UnknownKindError) Reason() string {
	known := "no kind is known yet (no worker has registered one)"
	if len(e.Known) > 0 {
		q := make([]string, len(e.Known))
		for i, k := range e.Known {
			q[i] = strconv.Quote(k)
		}
		known = "known kinds: " + strings.Join(q, ", ")
	}
	if e.Kind == "" {
		return "is required; " + known
	}
	return fmt.Sprintf("unknown kind %q; %s", e.Kind, known)
}

// Is reports whether target is ErrUnknownKind.
func (e *UnknownKindError) Is(target error) bool { return target == ErrUnknownKind }

// ParamsError says that a task's params do not match its kind's schema, field
// by field. It matches ErrInvalidParams.
type ParamsError struct {
	Kind string
	// Details name every offending field (see paramschema.Error).
	Details []paramschema.FieldError
}

func (e *ParamsError) Error() string { return (&paramschema.Error{Details: e.Details}).Error() }

// Is reports whether target is ErrInvalidParams.
func (e *ParamsError) Is(target error) bool { return target == ErrInvalidParams }

// KindUnavailableError says that the schema of a kind does not compile. It
// matches ErrKindUnavailable.
type KindUnavailableError struct {
	Kind, SchemaHash string
	// Err is why the schema does not compile.
	Err error
}

func (e *KindUnavailableError) Error() string {
	return fmt.Sprintf("the params schema that the workers of kind %q published (version %s) does not compile, so no task of this kind can be accepted; fix the kind's parameters type and restart its workers", e.Kind, e.SchemaHash)
}

// Is reports whether target is ErrKindUnavailable.
func (e *KindUnavailableError) Is(target error) bool { return target == ErrKindUnavailable }

// Unwrap returns why the schema does not compile.
func (e *KindUnavailableError) Unwrap() error { return e.Err }

// Kind is a kind as GET /api/v1/kinds shows it: its current version (the one
// with the most live workers, see store.KindStatus) and every version known.
type Kind struct {
	Name         string          `json:"name"`
	Title        string          `json:"title,omitempty"`
	Description  string          `json:"description,omitempty"`
	ParamsSchema json.RawMessage `json:"paramsSchema"`
	SchemaHash   string          `json:"schemaHash"`
	// Workers counts the live workers of the current version.
	Workers  int           `json:"workers"`
	Settings KindSettings  `json:"settings"`
	Versions []KindVersion `json:"versions"`
	// Conflict is set when more than one version has live workers: tasks may
	// run on either, and their params were checked against the current one.
	Conflict bool `json:"conflict"`
}

// KindSettings are the settings of a kind's current version. MaxAttempts is the
// one tasks get (the server's default when the kind sets none); a zero
// TimeoutSeconds, ResultMaxBytes or ProgressRate means the worker's default.
type KindSettings struct {
	MaxAttempts    int     `json:"maxAttempts"`
	TimeoutSeconds float64 `json:"timeoutSeconds"`
	ResultMaxBytes int64   `json:"resultMaxBytes"`
	ProgressRate   float64 `json:"progressRate"`
	// TotalParam names the integer parameter that is the amount of work of a
	// task ("rows" for export), when the kind names one.
	TotalParam string `json:"totalParam,omitempty"`
}

// KindVersion is one version of a kind, by schema hash, with its live workers.
type KindVersion struct {
	SchemaHash string    `json:"schemaHash"`
	Workers    int       `json:"workers"`
	LastSeen   time.Time `json:"lastSeen"`
}

// Kinds returns every kind in the registry, by name, read from Redis now.
func (s *Service) Kinds(ctx context.Context) ([]Kind, error) {
	list, err := s.store.Kinds(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "read kinds", "err", err)
		return nil, ErrUnavailable
	}
	s.kinds.set(list, s.now())
	out := make([]Kind, 0, len(list))
	for i := range list {
		if k, ok := s.kindView(&list[i]); ok {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Service) kindView(ks *store.KindStatus) (Kind, bool) {
	if len(ks.Versions) == 0 {
		return Kind{}, false
	}
	cur := ks.Versions[0]
	k := Kind{
		Name: ks.Name, Title: cur.Info.Title, Description: cur.Info.Description,
		ParamsSchema: cur.Info.ParamsSchema, SchemaHash: cur.Info.SchemaHash, Workers: cur.Workers,
		Settings: KindSettings{
			MaxAttempts: s.maxAttemptsOf(cur.Info), TimeoutSeconds: cur.Info.TimeoutSeconds,
			ResultMaxBytes: cur.Info.ResultMaxBytes, ProgressRate: cur.Info.ProgressRate, TotalParam: cur.Info.TotalParam,
		},
		Versions: make([]KindVersion, len(ks.Versions)),
	}
	if len(k.ParamsSchema) == 0 {
		k.ParamsSchema = json.RawMessage("{}")
	}
	for i, v := range ks.Versions {
		k.Versions[i] = KindVersion{SchemaHash: v.Info.SchemaHash, Workers: v.Workers, LastSeen: v.LastSeen.UTC()}
	}
	k.Conflict = ks.Conflict()
	return k, true
}

func (s *Service) maxAttemptsOf(info tasks.KindInfo) int {
	if info.MaxAttempts > 0 {
		return info.MaxAttempts
	}
	return s.maxAttempts
}

// kindCache keeps the last read of the whole registry for a short while, for
// the hot path of Create.
type kindCache struct {
	ttl time.Duration

	mu     sync.Mutex
	readAt time.Time
	byName map[string]*store.KindStatus
	names  []string
	flight *kindsRead // the read under way, if any
}

// kindsRead is one read of the registry that concurrent callers share.
type kindsRead struct {
	done chan struct{}
	list []store.KindStatus
	err  error
}

// readKinds reads the whole registry and fills the cache. Callers that come
// while a read is under way wait for it instead of reading again, so a busy
// server reads the registry once per TTL, not once per request that saw it
// stale.
func (s *Service) readKinds(ctx context.Context) ([]store.KindStatus, error) {
	c := &s.kinds
	c.mu.Lock()
	if f := c.flight; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.list, f.err
		case <-ctx.Done():
			return nil, ErrUnavailable
		}
	}
	f := &kindsRead{done: make(chan struct{})}
	c.flight = f
	c.mu.Unlock()

	// The read is shared: it must not end with the request that started it.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	f.list, f.err = s.store.Kinds(rctx)
	cancel()
	if f.err != nil {
		s.log.ErrorContext(ctx, "read kinds", "err", f.err)
		f.err = ErrUnavailable
	} else {
		c.set(f.list, s.now())
	}
	c.mu.Lock()
	c.flight = nil
	c.mu.Unlock()
	close(f.done)
	return f.list, f.err
}

func (c *kindCache) set(list []store.KindStatus, now time.Time) {
	byName := make(map[string]*store.KindStatus, len(list))
	names := make([]string, 0, len(list))
	for i := range list {
		if len(list[i].Versions) == 0 {
			continue
		}
		byName[list[i].Name] = &list[i]
		names = append(names, list[i].Name)
	}
	sort.Strings(names)
	c.mu.Lock()
	c.readAt, c.byName, c.names = now, byName, names
	c.mu.Unlock()
}

// get returns the cached status of name, and whether the cache is fresh.
func (c *kindCache) get(name string, now time.Time) (*store.KindStatus, []string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byName == nil || c.ttl <= 0 || now.Sub(c.readAt) >= c.ttl || now.Before(c.readAt) {
		return nil, nil, false
	}
	return c.byName[name], c.names, true
}

// resolveKind returns the registry's status of kind name: from the cache when
// it is fresh and holds it; else from a read of the whole registry when the
// cache is stale; else (a fresh cache without it: maybe it was registered a
// moment ago) from a read of that one kind. An unknown kind gives an
// *UnknownKindError listing the known ones.
func (s *Service) resolveKind(ctx context.Context, name string) (*store.KindStatus, error) {
	now := s.now()
	ks, names, fresh := s.kinds.get(name, now)
	if ks != nil {
		return ks, nil
	}
	if !fresh {
		list, err := s.readKinds(ctx)
		if err != nil {
			return nil, err
		}
		for i := range list {
			if list[i].Name == name && len(list[i].Versions) > 0 {
				return &list[i], nil
			}
		}
		return nil, &UnknownKindError{Kind: name, Known: knownNames(list)}
	}
	if tasks.ValidKindName(name) {
		ks, err := s.store.Kind(ctx, name)
		switch {
		case err == nil && len(ks.Versions) > 0:
			return ks, nil
		case err != nil && !errors.Is(err, store.ErrUnknownKind):
			s.log.ErrorContext(ctx, "read kind", "kind", name, "err", err)
			return nil, ErrUnavailable
		}
	}
	return nil, &UnknownKindError{Kind: name, Known: names}
}

func knownNames(list []store.KindStatus) []string {
	var names []string
	for _, k := range list {
		if len(k.Versions) > 0 {
			names = append(names, k.Name)
		}
	}
	sort.Strings(names)
	return names
}

// checkParams validates raw against the current version of ks and returns the
// params to store, with the defaults filled in.
func (s *Service) checkParams(ctx context.Context, ks *store.KindStatus, raw json.RawMessage) (json.RawMessage, error) {
	info := ks.Versions[0].Info
	sch, err := s.schemas.Get(info.SchemaHash, info.ParamsSchema)
	if err != nil {
		s.logBadSchema(ctx, ks.Name, info.SchemaHash, err)
		return nil, &KindUnavailableError{Kind: ks.Name, SchemaHash: info.SchemaHash, Err: err}
	}
	params, err := sch.Apply(raw)
	if err != nil {
		var pe *paramschema.Error
		if errors.As(err, &pe) {
			return nil, &ParamsError{Kind: ks.Name, Details: pe.Details}
		}
		return nil, err
	}
	return params, nil
}

// logBadSchema logs, once per schema version, that a kind's schema does not
// compile.
func (s *Service) logBadSchema(ctx context.Context, kind, hash string, err error) {
	key := kind + "\x00" + hash
	s.badMu.Lock()
	seen := s.badSchemas[key]
	if !seen && len(s.badSchemas) < 1024 {
		s.badSchemas[key] = true
	}
	s.badMu.Unlock()
	if !seen {
		s.log.ErrorContext(ctx, "the params schema of a kind does not compile; tasks of this kind are refused with 503 kind_unavailable",
			"kind", kind, "schemaHash", hash, "err", err)
	}
}

// totalOf returns the amount of work announced by params: the integer param
// the kind names as its total, else 0.
func totalOf(info tasks.KindInfo, params json.RawMessage) int64 {
	if info.TotalParam == "" {
		return 0
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(params, &m) != nil {
		return 0
	}
	n, err := strconv.ParseInt(string(m[info.TotalParam]), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
