// Traces: each attempt's handler runs in a "handler" span whose parent is the assignment's W3C
// traceparent (the control plane's dispatch span), through the OpenTelemetry API; the tracer
// provider (WorkerOptions.TracerProvider, else the global one) decides where spans go.

package braid

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const tracerName = "github.com/braid-dev/braid/clients/go/braid"

// startHandlerSpan starts the attempt's "handler" span under its trace context; the returned
// context carries it to the handler.
func startHandlerSpan(ctx context.Context, tp trace.TracerProvider, tc *TaskContext) (context.Context, trace.Span) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	parent := propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(tc.TraceContext))
	return tp.Tracer(tracerName).Start(parent, "handler",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("braid.task_id", tc.TaskID),
			attribute.String("braid.run_id", tc.RunID),
			attribute.String("braid.task_name", tc.TaskName),
			attribute.String("braid.task_type", tc.TaskType),
			attribute.Int64("braid.attempt", int64(tc.Attempt)),
		))
}

// endHandlerSpan ends the span with the handler's outcome.
func endHandlerSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, err.Error())
	}
	span.End()
}
