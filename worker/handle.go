package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/app"
	"github.com/taskwire/taskwire/worker/internal/runner"
	"github.com/taskwire/taskwire/worker/internal/schema"
)

// KindOption sets one setting of a kind, for Handle.
type KindOption func(*kindSettings)

type kindSettings struct {
	title, description string
	maxAttempts        int
	timeout            time.Duration
	resultMaxBytes     int64
	progressRate       float64
	allowUnknown       bool
	totalParam         string
}

// Title sets the kind's short name for people ("Thumbnail").
func Title(s string) KindOption { return func(k *kindSettings) { k.title = s } }

// Description says in a sentence or two what the kind does.
func Description(s string) KindOption { return func(k *kindSettings) { k.description = s } }

// MaxAttempts bounds the runs of one task of the kind, retries included
// (default: the worker's MaxAttempts).
func MaxAttempts(n int) KindOption { return func(k *kindSettings) { k.maxAttempts = n } }

// Timeout bounds one attempt: past it the handler's context ends with the cause
// ErrTimeout and the task is retried while it has attempts left (code
// "timeout"). Default: no bound.
func Timeout(d time.Duration) KindOption { return func(k *kindSettings) { k.timeout = d } }

// ResultMaxBytes bounds the size of a result of the kind (default: the worker's
// ResultMaxBytes). A result over it fails the task with "result_too_large".
func ResultMaxBytes(n int64) KindOption { return func(k *kindSettings) { k.resultMaxBytes = n } }

// ProgressRate sets the most progress events (and stream chunks, metadata
// events) per second of one task (default: the worker's ProgressMaxRate).
func ProgressRate(perSecond float64) KindOption {
	return func(k *kindSettings) { k.progressRate = perSecond }
}

// AllowUnknownFields accepts parameters the struct does not name (by default
// they are refused: the schema says additionalProperties false).
func AllowUnknownFields() KindOption { return func(k *kindSettings) { k.allowUnknown = true } }

// TotalParam names an integer parameter whose value is the amount of work of a
// task (an export's "rows"), so a queued task already shows its size.
func TotalParam(name string) KindOption { return func(k *kindSettings) { k.totalParam = name } }

// Handle registers fn as the handler of kind. P is the type of the task's
// parameters: a struct whose JSON Schema (draft 2020-12) is derived from its
// fields and their `json` and `jsonschema` tags (the syntax of
// github.com/invopop/jsonschema, for example
// `jsonschema:"required,minimum=1,maximum=5000,default=100,description=..."`).
// The servers validate every new task's parameters against that schema; fn gets
// them decoded, with defaults filled in.
//
// Handle panics on programmer errors, as http.HandleFunc does: an invalid or
// duplicate kind name, a P that is not a struct, a call after Run. A schema
// that does not compile makes Run fail.
//
// Kind names are 1 to 64 lowercase letters, digits, '.', '-' and '_', starting
// with a letter or a digit.
func Handle[P any](w *Worker, kind string, fn func(ctx context.Context, t *Task, params P) (*Result, error), opts ...KindOption) {
	if w == nil || fn == nil {
		panic("worker.Handle: nil worker or handler")
	}
	if !tasks.ValidKindName(kind) {
		panic(fmt.Sprintf("worker.Handle: invalid kind name %q (want 1-64 of a-z, 0-9, '.', '-', '_')", kind))
	}
	var set kindSettings
	for _, o := range opts {
		o(&set)
	}
	raw, err := schema.Derive(reflect.TypeFor[P](), set.allowUnknown)
	if err != nil {
		panic(fmt.Sprintf("worker.Handle(%q): %v", kind, err))
	}
	info := tasks.KindInfo{
		Name: kind, Title: set.title, Description: set.description, ParamsSchema: raw,
		MaxAttempts: set.maxAttempts, TimeoutSeconds: set.timeout.Seconds(), ResultMaxBytes: set.resultMaxBytes,
		ProgressRate: set.progressRate, TotalParam: set.totalParam,
	}
	info.SchemaHash = info.Hash()
	sch, cerr := schema.Compile(raw)

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running {
		panic(fmt.Sprintf("worker.Handle(%q): called after Run", kind))
	}
	if w.names[kind] {
		panic(fmt.Sprintf("worker.Handle: kind %q registered twice", kind))
	}
	w.names[kind] = true
	if cerr != nil {
		w.errs = append(w.errs, fmt.Errorf("kind %q: the parameters schema derived from %s %w", kind, reflect.TypeFor[P](), cerr))
		return
	}
	handler := func(ctx context.Context, rt *runner.Task) (*tasks.Result, error) {
		params, err := sch.Check(rt.Params)
		if err != nil {
			return nil, runner.Permanent(runner.CodeInvalidParams, err)
		}
		var p P
		dec := json.NewDecoder(bytes.NewReader(params))
		if !set.allowUnknown {
			dec.DisallowUnknownFields()
		}
		if err := dec.Decode(&p); err != nil {
			return nil, runner.Permanent(runner.CodeInvalidParams, fmt.Errorf("params: %v", err))
		}
		t := &Task{ID: rt.ID, Kind: string(rt.Kind), Attempt: rt.Attempt, Owner: rt.Owner, rt: rt}
		res, err := fn(ctx, t, p)
		if err != nil {
			return nil, mapError(err)
		}
		if res == nil {
			return nil, runner.Permanent(runner.CodeInternal, errors.New("the handler returned neither a result nor an error"))
		}
		return res.finish(ctx, t)
	}
	w.kinds = append(w.kinds, app.Kind{Info: info, Run: runner.Kind{
		Handler: handler, Timeout: set.timeout, ProgressRate: set.progressRate, ResultMaxBytes: set.resultMaxBytes,
	}})
}

// mapError turns the errors of this package into the runner's.
func mapError(err error) error {
	var te *taskError
	if errors.As(err, &te) {
		if te.transient {
			return runner.Transient(te.code, err)
		}
		return runner.Permanent(te.code, err)
	}
	if errors.Is(err, ErrResultTooLarge) {
		return runner.Permanent(runner.CodeResultTooLarge, err)
	}
	return err
}
