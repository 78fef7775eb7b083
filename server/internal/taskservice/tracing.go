package taskservice

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/shared/tracing"
)

// enqueue puts msg on its kind's queue in a span of its own ("taskwire.enqueue",
// a child of the request's), whose trace context travels in the message
// (tasks.Message.TraceParent) so that the worker's attempt continues the trace.
// The request's span gets the task id too. With tracing off the spans are the
// no-op ones and the message has no trace context.
func (s *Service) enqueue(ctx context.Context, msg *tasks.Message) error {
	id := tracing.AttrTaskID.String(msg.ID)
	trace.SpanFromContext(ctx).SetAttributes(id)
	ctx, span := s.tracer.Start(ctx, "taskwire.enqueue", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(id, tracing.AttrKind.String(string(msg.Kind))))
	defer span.End()
	msg.TraceParent = tracing.TraceParent(ctx)
	err := s.store.Enqueue(ctx, msg)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}
