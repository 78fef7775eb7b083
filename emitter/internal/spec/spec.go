// Package spec reads emitter call specs: a small JSON language that describes one
// emitter call, shared with the Node side (e2e/lib/spec.mjs), which performs the same
// calls with @socket.io/redis-emitter. The golden vectors in wire/testdata and the
// interop tests are written in it.
//
//	{"key": "socket.io", "nsp": "/admin",
//	 "ops": [{"to": "r1"}, {"in": ["r2", "r3"]}, {"except": "x"}, {"volatile": true}, {"compress": false}],
//	 "call": "emit", "args": ["event", 1, {"$bin": "AQID"}]}
//
// "sharded": true performs the call with a sharded emitter (Options.Sharded), and
// "subscriptionMode" sets its Options.SubscriptionMode.
//
// call is emit, socketsJoin, socketsLeave, disconnectSockets or serverSideEmit; args
// are the call's arguments (for emit and serverSideEmit the event name first). Values
// are JSON plus the one-key forms {"$bin": base64}, {"$binpat": n},
// {"$repeat": s, "times": n}, {"$date": unixMillis}, {"$num": "NaN"|"Infinity"|
// "-Infinity"|"-0"} and {"$float": x}. Integral JSON numbers become int, others
// float64. goArgs names Go values (see GoArgs) that replace args[1:].
package spec

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/taskwire/taskwire/emitter"
)

// OpKind is the kind of one operator step.
type OpKind string

// The operator steps of a spec.
const (
	OpTo       OpKind = "to"
	OpIn       OpKind = "in"
	OpExcept   OpKind = "except"
	OpVolatile OpKind = "volatile"
	OpCompress OpKind = "compress"
)

// Op is one operator step: Rooms for to/in/except, Bool for compress.
type Op struct {
	Kind  OpKind
	Rooms []string
	Bool  bool
}

// The calls a spec can make.
const (
	CallEmit              = "emit"
	CallSocketsJoin       = "socketsJoin"
	CallSocketsLeave      = "socketsLeave"
	CallDisconnectSockets = "disconnectSockets"
	CallServerSideEmit    = "serverSideEmit"
)

// Spec is one parsed call spec.
type Spec struct {
	// Key is the channel prefix; "" means the default.
	Key string
	// Sharded and SubscriptionMode are the emitter's options of those names.
	Sharded          bool
	SubscriptionMode string
	// Nsp is the argument of Of, when HasNsp.
	Nsp    string
	HasNsp bool
	// Ops are the operator steps, in order.
	Ops []Op
	// Call is the method called last.
	Call string
	// Args are the call's arguments as Go values (event name first for emit and
	// serverSideEmit), with args[1:] replaced by the GoArgs values when GoArgs is set.
	Args []any
	// GoArgs names the Go values used instead of the JSON args[1:], or "".
	GoArgs string
	// JSONArgs are the arguments as written in the spec (what a JavaScript caller
	// passes), even when GoArgs replaces them in Args.
	JSONArgs []any
}

type rawSpec struct {
	Key              *string                      `json:"key"`
	Sharded          bool                         `json:"sharded"`
	SubscriptionMode string                       `json:"subscriptionMode"`
	Nsp              *string                      `json:"nsp"`
	Ops              []map[string]json.RawMessage `json:"ops"`
	Call             string                       `json:"call"`
	Args             []json.RawMessage            `json:"args"`
	GoArgs           string                       `json:"goArgs"`
}

// Parse parses one spec.
func Parse(b []byte) (*Spec, error) {
	var r rawSpec
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	s := &Spec{Call: r.Call, GoArgs: r.GoArgs, Sharded: r.Sharded, SubscriptionMode: r.SubscriptionMode}
	if s.SubscriptionMode != "" && !s.Sharded {
		return nil, errors.New("spec: subscriptionMode needs sharded")
	}
	if r.Key != nil {
		s.Key = *r.Key
	}
	if r.Nsp != nil {
		s.Nsp, s.HasNsp = *r.Nsp, true
	}
	for i, m := range r.Ops {
		if len(m) != 1 {
			return nil, fmt.Errorf("spec: op %d: want one key, got %d", i, len(m))
		}
		for k, v := range m {
			op := Op{Kind: OpKind(k)}
			switch op.Kind {
			case OpTo, OpIn, OpExcept:
				rooms, err := roomsOf(v)
				if err != nil {
					return nil, fmt.Errorf("spec: op %d (%s): %w", i, k, err)
				}
				op.Rooms = rooms
			case OpVolatile, OpCompress:
				if err := json.Unmarshal(v, &op.Bool); err != nil {
					return nil, fmt.Errorf("spec: op %d (%s): %w", i, k, err)
				}
				if op.Kind == OpVolatile && !op.Bool {
					return nil, fmt.Errorf("spec: op %d: volatile must be true", i)
				}
			default:
				return nil, fmt.Errorf("spec: op %d: unknown op %q", i, k)
			}
			s.Ops = append(s.Ops, op)
		}
	}
	for i, raw := range r.Args {
		v, err := Value(raw)
		if err != nil {
			return nil, fmt.Errorf("spec: args[%d]: %w", i, err)
		}
		s.Args = append(s.Args, v)
	}
	switch s.Call {
	case CallEmit, CallServerSideEmit:
		if len(s.Args) == 0 {
			return nil, fmt.Errorf("spec: %s needs an event name", s.Call)
		}
		if _, ok := s.Args[0].(string); !ok {
			return nil, fmt.Errorf("spec: %s: event name is %T", s.Call, s.Args[0])
		}
		if s.Call == CallServerSideEmit && len(s.Ops) > 0 {
			return nil, errors.New("spec: serverSideEmit takes no ops")
		}
	case CallSocketsJoin, CallSocketsLeave:
		if len(r.Args) != 1 {
			return nil, fmt.Errorf("spec: %s takes one argument", s.Call)
		}
		rooms, err := roomsOf(r.Args[0])
		if err != nil {
			return nil, fmt.Errorf("spec: %s: %w", s.Call, err)
		}
		s.Args = []any{rooms}
	case CallDisconnectSockets:
		if len(s.Args) > 1 {
			return nil, errors.New("spec: disconnectSockets takes [] or [close]")
		}
		if len(s.Args) == 1 {
			if _, ok := s.Args[0].(bool); !ok {
				return nil, errors.New("spec: disconnectSockets: close must be a boolean")
			}
		}
	default:
		return nil, fmt.Errorf("spec: unknown call %q", s.Call)
	}
	s.JSONArgs = s.Args
	if s.GoArgs != "" {
		vals, err := GoArgs(s.GoArgs)
		if err != nil {
			return nil, err
		}
		s.Args = append(append([]any(nil), s.Args[0]), vals...)
	}
	return s, nil
}

func roomsOf(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("rooms must be a string or an array of strings: %s", raw)
	}
	if many == nil {
		many = []string{}
	}
	return many, nil
}

// Rooms returns the rooms of a socketsJoin/socketsLeave spec.
func (s *Spec) Rooms() []string {
	if r, ok := s.Args[0].([]string); ok {
		return r
	}
	return nil
}

// Close returns the close argument of a disconnectSockets spec (false by default).
func (s *Spec) Close() bool {
	return len(s.Args) == 1 && s.Args[0] == true
}

// Event returns the event name of an emit or serverSideEmit spec.
func (s *Spec) Event() string {
	ev, _ := s.Args[0].(string)
	return ev
}

// Value decodes one spec value (JSON plus the one-key forms) into a Go value.
func Value(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return convert(v)
}

func convert(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return int(n), nil
		}
		return v.Float64()
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			c, err := convert(x)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		for k := range v {
			if strings.HasPrefix(k, "$") {
				return special(k, v)
			}
		}
		out := make(map[string]any, len(v))
		for k, x := range v {
			c, err := convert(x)
			if err != nil {
				return nil, fmt.Errorf(".%s: %w", k, err)
			}
			out[k] = c
		}
		return out, nil
	}
	return v, nil
}

func intOf(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("want a number, got %T", v)
	}
	return n.Int64()
}

func special(k string, m map[string]any) (any, error) {
	switch k {
	case "$bin":
		s, ok := m[k].(string)
		if !ok {
			return nil, errors.New("$bin needs a base64 string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("$bin: %w", err)
		}
		if b == nil {
			b = []byte{}
		}
		return b, nil
	case "$binpat":
		n, err := intOf(m[k])
		if err != nil || n < 0 {
			return nil, fmt.Errorf("$binpat needs a length: %v", m[k])
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b, nil
	case "$repeat":
		s, ok := m[k].(string)
		n, err := intOf(m["times"])
		if !ok || err != nil || n < 0 {
			return nil, errors.New(`$repeat needs a string and "times"`)
		}
		return strings.Repeat(s, int(n)), nil
	case "$date":
		ms, err := intOf(m[k])
		if err != nil {
			return nil, fmt.Errorf("$date needs integral milliseconds: %w", err)
		}
		return time.UnixMilli(ms).UTC(), nil
	case "$num":
		switch m[k] {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		case "-0":
			return math.Copysign(0, -1), nil
		}
		return nil, fmt.Errorf("bad $num %v", m[k])
	case "$float":
		n, ok := m[k].(json.Number)
		if !ok {
			return nil, errors.New("$float needs a number")
		}
		return n.Float64()
	}
	return nil, fmt.Errorf("unknown value form %s", k)
}

// Build returns the Emitter of s (New with s.Key, then Of when s has a namespace)
// publishing through pub, and the operator its ops select (nil when it has none).
func Build(pub emitter.Publisher, s *Spec) (*emitter.Emitter, *emitter.BroadcastOperator) {
	em := emitter.New(pub, &emitter.Options{Key: s.Key, Sharded: s.Sharded,
		SubscriptionMode: emitter.SubscriptionMode(s.SubscriptionMode)})
	if s.HasNsp {
		em = em.Of(s.Nsp)
	}
	if len(s.Ops) == 0 {
		return em, nil
	}
	op := startOp(em, s.Ops[0])
	for _, o := range s.Ops[1:] {
		op = nextOp(op, o)
	}
	return em, &op
}

// Run performs s with taskwire's emitter, publishing through pub.
func Run(ctx context.Context, pub emitter.Publisher, s *Spec) error {
	em, op := Build(pub, s)
	if op == nil {
		return callEmitter(ctx, em, s)
	}
	return callOperator(ctx, *op, s)
}

func startOp(em *emitter.Emitter, o Op) emitter.BroadcastOperator {
	switch o.Kind {
	case OpTo:
		return em.To(o.Rooms...)
	case OpIn:
		return em.In(o.Rooms...)
	case OpExcept:
		return em.Except(o.Rooms...)
	case OpVolatile:
		return em.Volatile()
	default:
		return em.Compress(o.Bool)
	}
}

func nextOp(b emitter.BroadcastOperator, o Op) emitter.BroadcastOperator {
	switch o.Kind {
	case OpTo:
		return b.To(o.Rooms...)
	case OpIn:
		return b.In(o.Rooms...)
	case OpExcept:
		return b.Except(o.Rooms...)
	case OpVolatile:
		return b.Volatile()
	default:
		return b.Compress(o.Bool)
	}
}

func callEmitter(ctx context.Context, em *emitter.Emitter, s *Spec) error {
	switch s.Call {
	case CallEmit:
		return em.Emit(ctx, s.Event(), s.Args[1:]...)
	case CallServerSideEmit:
		return em.ServerSideEmit(ctx, s.Event(), s.Args[1:]...)
	case CallSocketsJoin:
		return em.SocketsJoin(ctx, s.Rooms()...)
	case CallSocketsLeave:
		return em.SocketsLeave(ctx, s.Rooms()...)
	case CallDisconnectSockets:
		return em.DisconnectSockets(ctx, s.Close())
	}
	return fmt.Errorf("spec: unknown call %q", s.Call)
}

func callOperator(ctx context.Context, b emitter.BroadcastOperator, s *Spec) error {
	switch s.Call {
	case CallEmit:
		return b.Emit(ctx, s.Event(), s.Args[1:]...)
	case CallSocketsJoin:
		return b.SocketsJoin(ctx, s.Rooms()...)
	case CallSocketsLeave:
		return b.SocketsLeave(ctx, s.Rooms()...)
	case CallDisconnectSockets:
		return b.DisconnectSockets(ctx, s.Close())
	}
	return fmt.Errorf("spec: %s cannot follow operators", s.Call)
}
