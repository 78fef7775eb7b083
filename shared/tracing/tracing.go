// Package tracing sets up the OpenTelemetry traces of taskwire-server and
// taskwire-worker from the standard OTEL_* variables, and carries a task's trace
// context from one to the other as a W3C traceparent string (in the queue
// message and in the task record).
//
// Tracing is off unless an OTLP endpoint is set: the tracer is then the no-op
// one of the OpenTelemetry API, spans cost a few nanoseconds, nothing is
// exported, and no traceparent is written anywhere (TraceParent returns "").
//
// The variables, read through the getenv of the binary (so tests can set them
// without touching the process environment):
//
//	OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  URL that spans are POSTed to, as is
//	OTEL_EXPORTER_OTLP_ENDPOINT         base URL; "/v1/traces" is appended
//	OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL http/json (default); http/protobuf is
//	                                    taken as OTLP/HTTP too, sent as JSON; grpc is refused
//	OTEL_EXPORTER_OTLP_(TRACES_)HEADERS  "key=value,..." sent with every export
//	OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT  milliseconds per export (default 10000)
//	OTEL_SERVICE_NAME                   service.name (default: the binary's name)
//	OTEL_RESOURCE_ATTRIBUTES            "key=value,..." added to the resource
//	OTEL_TRACES_SAMPLER(_ARG)           always_on, always_off, traceidratio,
//	                                    parentbased_* (default parentbased_always_on)
//	OTEL_TRACES_EXPORTER                "otlp" (default) or "none" (off)
//	OTEL_SDK_DISABLED                   "true": off
//
// The batch span processor reads its own OTEL_BSP_* variables from the process
// environment.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Attributes of taskwire's spans.
const (
	// AttrTaskID is the id of the task a span works for; every span of a
	// task's trace has it.
	AttrTaskID = attribute.Key("taskwire.task_id")
	// AttrKind is the task kind.
	AttrKind = attribute.Key("taskwire.kind")
	// AttrAttempt is the number of the attempt, from 1.
	AttrAttempt = attribute.Key("taskwire.attempt")
	// AttrEvent is the name of a task event (task:progress, task:completed...).
	AttrEvent = attribute.Key("taskwire.event")
	// AttrSeq is the sequence number of a task event.
	AttrSeq = attribute.Key("taskwire.seq")
	// AttrOutcome is how an attempt ended (runner.Outcome).
	AttrOutcome = attribute.Key("taskwire.outcome")
	// AttrErrorCode is the error code of a failed or retried attempt.
	AttrErrorCode = attribute.Key("taskwire.error_code")
	// AttrRecipients is the number of local sockets a relayed event reached.
	AttrRecipients = attribute.Key("taskwire.recipients")
)

// ScopeName is the instrumentation scope of taskwire's tracers.
const ScopeName = "github.com/taskwire/taskwire"

// Provider is the tracer provider of a binary. A nil *Provider, like one made
// without an endpoint, is off: its tracer is the no-op one.
type Provider struct {
	sdk    *sdktrace.TracerProvider
	tracer trace.Tracer
}

// Off returns a provider whose spans are not recorded.
func Off() *Provider { return &Provider{tracer: noop.NewTracerProvider().Tracer(ScopeName)} }

// Setup reads the OTEL_* variables through getenv and returns the provider they
// describe: off without an endpoint (or with OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none), otherwise an OTLP/HTTP exporter (JSON) behind a
// batch span processor. service is the default service.name. Setup connects to
// nothing: the first export does. The error names the variable that is wrong.
func Setup(ctx context.Context, getenv func(string) string, service string) (*Provider, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return Off(), nil
	}
	switch e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e {
	case "", "otlp":
	case "none":
		return Off(), nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (otlp or none)", e)
	}
	endpoint, err := Endpoint(getenv)
	if err != nil || endpoint == "" {
		return Off(), err
	}
	switch proto := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"); proto {
	case "", "http/json", "http/protobuf": // OTLP/HTTP either way; the body is JSON (see exporter)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported; use http/json (OTLP over HTTP, a collector's port 4318)", proto)
	}
	var headers map[string]string
	if h := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"); h != "" {
		headers, err = keyValues(h)
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: %w", err)
		}
	}
	timeout := 10 * time.Second
	if s := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"); s != "" {
		ms, err := strconv.Atoi(s)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TIMEOUT: %q is not a positive number of milliseconds", s)
		}
		timeout = time.Duration(ms) * time.Millisecond
	}
	sampler, err := samplerOf(getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		return nil, err
	}
	res, err := resourceOf(getenv, service)
	if err != nil {
		return nil, err
	}
	exp := newExporter(endpoint, headers, timeout)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sampler), sdktrace.WithResource(res))
	return &Provider{sdk: tp, tracer: tp.Tracer(ScopeName)}, nil
}

// Endpoint returns the URL that spans are exported to, from
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT (to which
// "/v1/traces" is appended), or "" when neither is set.
func Endpoint(getenv func(string) string) (string, error) {
	name, raw := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
	signal := false
	if raw == "" {
		name, raw, signal = "OTEL_EXPORTER_OTLP_ENDPOINT", strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")), true
	}
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s: %q is not an http(s) URL", name, raw)
	}
	if signal {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u.String(), nil
}

func firstSet(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

// keyValues parses the "key=value,key2=value2" lists of the OTEL_* variables
// (values URL-encoded).
func keyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", part)
		}
		dv, err := url.QueryUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		out[k] = dv
	}
	return out, nil
}

func samplerOf(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(arg), 64)
		if err != nil || f < 0 || f > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: %q is not a ratio from 0 to 1", arg)
		}
		return f, nil
	}
	switch strings.TrimSpace(name) {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		r, err := ratio()
		return sdktrace.TraceIDRatioBased(r), err
	case "parentbased_traceidratio":
		r, err := ratio()
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), err
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER: %q is not supported (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)", name)
}

func resourceOf(getenv func(string) string, service string) (*resource.Resource, error) {
	var attrs []attribute.KeyValue
	if s := strings.TrimSpace(getenv("OTEL_RESOURCE_ATTRIBUTES")); s != "" {
		kv, err := keyValues(s)
		if err != nil {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
		}
		for k, v := range kv {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	if s := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); s != "" {
		service = s
	}
	attrs = append(attrs, attribute.String("service.name", service))
	return resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
}

// Enabled reports whether spans are recorded and exported.
func (p *Provider) Enabled() bool { return p != nil && p.sdk != nil }

// Tracer returns the tracer of taskwire's spans (the no-op one when off).
func (p *Provider) Tracer() trace.Tracer {
	if p == nil || p.tracer == nil {
		return noop.NewTracerProvider().Tracer(ScopeName)
	}
	return p.tracer
}

// Shutdown exports the spans still buffered and stops the exporter, within
// ctx. It does nothing when tracing is off.
func (p *Provider) Shutdown(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	return p.sdk.Shutdown(ctx)
}

// TraceParent returns the W3C traceparent of the span in ctx, or "" when ctx
// has no valid span context (always so when tracing is off).
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceParent returns ctx with the remote span context of traceparent, so
// that spans started from it join that trace. A malformed or empty
// traceparent leaves ctx as it is.
func WithTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// ErrMalformed is returned by Parse for a string that is no W3C traceparent.
var ErrMalformed = errors.New("tracing: malformed traceparent")

// Parse returns the span context of a W3C traceparent.
func Parse(traceparent string) (trace.SpanContext, error) {
	sc := trace.SpanContextFromContext(WithTraceParent(context.Background(), traceparent))
	if !sc.IsValid() {
		return sc, ErrMalformed
	}
	return sc, nil
}
