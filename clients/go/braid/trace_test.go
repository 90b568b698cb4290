package braid

import (
	"context"
	"errors"
	"testing"

	otelcodes "go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestHandlerSpanContinuesTheAssignmentTraceContext(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tc := &TaskContext{TaskID: "t1", RunID: "r1", TaskName: "a", TaskType: "echo", Attempt: 1,
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	ctx, span := startHandlerSpan(context.Background(), tp, tc)
	if got := trace.SpanContextFromContext(ctx).TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("the handler's context carries trace %s", got)
	}
	endHandlerSpan(span, errors.New("boom"))
	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("want one span, got %d", len(ended))
	}
	s := ended[0]
	if s.Name() != "handler" || s.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("span %q kind %v", s.Name(), s.SpanKind())
	}
	if s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id %s", s.SpanContext().TraceID())
	}
	if s.Parent().SpanID().String() != "00f067aa0ba902b7" || !s.Parent().IsRemote() {
		t.Errorf("parent %v", s.Parent())
	}
	if s.Status().Code != otelcodes.Error {
		t.Errorf("status %v", s.Status())
	}
}

func TestHandlerSpanWithoutTraceContextIsARoot(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, span := startHandlerSpan(context.Background(), tp, &TaskContext{TaskType: "echo"})
	endHandlerSpan(span, nil)
	if ended := rec.Ended(); len(ended) != 1 || ended[0].Parent().IsValid() {
		t.Fatalf("want one root span, got %v", ended)
	}
}
