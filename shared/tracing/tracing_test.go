package tracing

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestSetupOffWithoutEndpoint(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"nothing set":    {},
		"sdk disabled":   {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
		"exporter none":  {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
		"only a service": {"OTEL_SERVICE_NAME": "x"},
	} {
		p, err := Setup(context.Background(), env(vars), "svc")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Enabled() {
			t.Fatalf("%s: tracing is on", name)
		}
		ctx, span := p.Tracer().Start(context.Background(), "x")
		if span.IsRecording() || TraceParent(ctx) != "" {
			t.Fatalf("%s: the span records (traceparent %q)", name, TraceParent(ctx))
		}
		span.End()
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var nilProvider *Provider
	if nilProvider.Enabled() || nilProvider.Tracer() == nil || nilProvider.Shutdown(context.Background()) != nil {
		t.Fatal("a nil provider is not off")
	}
}

func TestSetupOn(t *testing.T) {
	p, err := Setup(context.Background(), env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG": "1", "OTEL_EXPORTER_OTLP_HEADERS": "a=b%20c", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
	}), "svc")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled() {
		t.Fatal("tracing is off")
	}
	ctx, span := p.Tracer().Start(context.Background(), "x")
	tp := TraceParent(ctx)
	span.End()
	sc, err := Parse(tp)
	if err != nil || sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() || !sc.IsSampled() {
		t.Fatalf("traceparent %q parsed to %v, %v", tp, sc, err)
	}
	if got := TraceParent(WithTraceParent(context.Background(), tp)); got != tp {
		t.Fatalf("round trip: %q, want %q", got, tp)
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.Shutdown(sctx) // nothing listens: the export fails, which is fine here
}

func TestSetupErrors(t *testing.T) {
	for v, vars := range map[string]map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        {"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"},
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://x"},
		"OTEL_EXPORTER_OTLP_PROTOCOL":        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		"OTEL_TRACES_SAMPLER":                {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_SAMPLER": "sometimes"},
		"OTEL_TRACES_SAMPLER_ARG":            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
		"OTEL_EXPORTER_OTLP_HEADERS":         {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"},
		"OTEL_EXPORTER_OTLP_TIMEOUT":         {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
		"OTEL_TRACES_EXPORTER":               {"OTEL_TRACES_EXPORTER": "zipkin"},
	} {
		_, err := Setup(context.Background(), env(vars), "svc")
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("%v: error %v, want one naming %s", vars, err, v)
		}
	}
}

func TestEndpoint(t *testing.T) {
	for _, c := range []struct{ traces, base, want string }{
		{"", "http://collector:4318", "http://collector:4318/v1/traces"},
		{"", "https://collector:4318/otlp/", "https://collector:4318/otlp/v1/traces"},
		{"http://collector:4318/custom", "http://ignored", "http://collector:4318/custom"},
		{"", "", ""},
	} {
		got, err := Endpoint(env(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.traces, "OTEL_EXPORTER_OTLP_ENDPOINT": c.base}))
		if err != nil || got != c.want {
			t.Errorf("Endpoint(%q, %q) = %q, %v; want %q", c.traces, c.base, got, err, c.want)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	for _, s := range []string{"", "00-xyz", "00-00000000000000000000000000000000-0000000000000000-01"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

// A task's trace context travels as a string: the server writes it into the
// queue message, the worker starts its attempt from it.
func ExampleWithTraceParent() {
	p := Off() // tracing off: no traceparent is made, and none is needed
	ctx, span := p.Tracer().Start(context.Background(), "POST /api/v1/tasks")
	defer span.End()
	fmt.Printf("%q\n", TraceParent(ctx))

	remote := WithTraceParent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	fmt.Println(TraceParent(remote))
	// Output:
	// ""
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
}
