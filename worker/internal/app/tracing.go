package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/taskwire/taskwire/shared/tracing"
	"github.com/taskwire/taskwire/worker/internal/progress"
	"github.com/taskwire/taskwire/worker/internal/runner"
)

// traceFlushTimeout bounds the export of the last spans when the worker stops.
const traceFlushTimeout = 5 * time.Second

// setupTracing reads the OTEL_* variables (tracing.Setup): off without an
// endpoint.
func setupTracing(ctx context.Context, getenv func(string) string, log *slog.Logger) (*tracing.Provider, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	p, err := tracing.Setup(ctx, getenv, "taskwire-worker")
	if err != nil {
		return nil, fmt.Errorf("app: tracing: %w", err)
	}
	if p.Enabled() {
		u, _ := tracing.Endpoint(getenv)
		log.Info("tracing on", "endpoint", u)
	}
	return p, nil
}

// attemptTracer is the runner's tracer: nil when tracing is off, so that
// attempts make no span at all.
func attemptTracer(p *tracing.Provider) trace.Tracer {
	if !p.Enabled() {
		return nil
	}
	return p.Tracer()
}

// emitHook is the publisher's OnEmit: nil when tracing is off.
func emitHook(p *tracing.Provider) func(context.Context, progress.Emit) {
	if !p.Enabled() {
		return nil
	}
	return runner.TraceEmit
}

// flushTraces exports the spans still buffered when Run ends.
func flushTraces(p *tracing.Provider, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		log.Warn("exporting the last spans", "err", err)
	}
}
