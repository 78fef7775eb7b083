package runner

import (
	"context"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/shared/tracing"
	"github.com/taskwire/taskwire/worker/internal/broker"
	"github.com/taskwire/taskwire/worker/internal/progress"
)

// traceAttempt starts the span of one attempt ("taskwire.attempt", from begin,
// when the entry was handed over) in the trace of the task: a child of the
// enqueue's span, whose context the queue message carried, or of the task's
// creation (the record's) for a message without one. Both contexts of the
// attempt get it, so the handler's events and the final one are written under
// it. Without Options.Tracer the contexts are returned as they are, with a
// span that records nothing.
func (r *Runner) traceAttempt(ctx, tctx context.Context, sig *mtasks.Signature, rec *tasks.Record, begin time.Time) (context.Context, context.Context, trace.Span) {
	if r.opts.Tracer == nil {
		return ctx, tctx, trace.SpanFromContext(context.Background()) // the no-op span
	}
	parent := broker.TraceParent(sig)
	if parent == "" {
		parent = rec.TraceParent
	}
	pctx := tracing.WithTraceParent(ctx, parent)
	_, span := r.opts.Tracer.Start(pctx, "taskwire.attempt", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(begin),
		trace.WithAttributes(tracing.AttrTaskID.String(rec.ID), tracing.AttrKind.String(string(rec.Kind)), tracing.AttrAttempt.Int(rec.Attempts)))
	return trace.ContextWithSpan(ctx, span), trace.ContextWithSpan(tctx, span), span
}

// endAttempt ends the span of an attempt with how its entry ended.
func endAttempt(span trace.Span, at *attempt) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(tracing.AttrOutcome.String(string(at.outcome)))
	if at.code != "" {
		span.SetAttributes(tracing.AttrErrorCode.String(at.code))
	}
	switch at.outcome {
	case OutcomeFailed:
		span.SetStatus(codes.Error, at.code)
	case OutcomeAbandoned:
		span.SetStatus(codes.Error, "abandoned")
	}
	span.End()
}

// TraceEmit is the progress.Options.OnEmit of a traced worker. The event that
// ends an attempt (completed, failed, cancelled, or the progress event of a
// retry or a hand-back) gets a child span of the attempt's ("taskwire.emit
// task:completed"), one per write; every other event (progress, stage,
// metadata, stream items) is an event of the attempt's span, which the SDK
// bounds per span (OTEL_SPAN_EVENT_COUNT_LIMIT, default 128), so a long task
// with throttled progress costs the same as a short one.
func TraceEmit(ctx context.Context, e progress.Emit) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := trace.WithAttributes(tracing.AttrEvent.String(e.Event), tracing.AttrSeq.Int64(e.Seq))
	if !e.Final {
		if e.Err != nil {
			span.AddEvent(e.Event, attrs, trace.WithAttributes(tracing.AttrErrorCode.String(e.Err.Error())))
			return
		}
		span.AddEvent(e.Event, attrs)
		return
	}
	_, child := span.TracerProvider().Tracer(tracing.ScopeName).Start(ctx, "taskwire.emit "+e.Event, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithTimestamp(e.Start), attrs,
		trace.WithAttributes(tracing.AttrTaskID.String(e.TaskID), tracing.AttrAttempt.Int(e.Attempt)))
	if e.Err != nil {
		child.SetStatus(codes.Error, e.Err.Error())
	}
	child.End()
}
