package app

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/taskwire/taskwire/shared/tracing"
)

// apiTracer is the tracer of the HTTP API's spans: nil when tracing is off, so
// that the router installs no middleware at all.
func apiTracer(p *tracing.Provider) trace.Tracer {
	if !p.Enabled() {
		return nil
	}
	return p.Tracer()
}

// traceEndpoint is the export URL, for the log.
func traceEndpoint(getenv func(string) string) string {
	u, _ := tracing.Endpoint(getenv)
	return u
}

// flushTraces exports the spans still buffered, within timeout, at the end of
// Run.
func flushTraces(p *tracing.Provider, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		log.Warn("exporting the last spans", "err", err)
	}
}
