package braid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	braidv1 "github.com/braid-dev/braid/clients/go/gen/braid/v1"
)

// TaskError is a failed attempt as reported to the server (TaskResult.error), and a task's
// recorded failure as read back (RunTask.LastError, DeadLetter.LastError).
//
// A handler returns one to choose the error type and whether the server may retry; any other
// error is reported as retryable with type "error".
type TaskError struct {
	Message string
	// A short machine-readable kind, e.g. "timeout" or "bad_input"; "" is sent as "error".
	Type string
	// False ends the task at once, whatever attempts remain.
	Retryable bool
	// Anything encoding/json can encode, kept with the error (details_json). When read back
	// from the server it is a json.RawMessage.
	Details any
	// The error this one was made from (Retryable, Fatal), for errors.Is and errors.As.
	Err error
}

func (e *TaskError) Error() string {
	kind := "fatal"
	if e.Retryable {
		kind = "retryable"
	}
	return fmt.Sprintf("%s (%s, %s)", e.Message, e.errType(), kind)
}

func (e *TaskError) Unwrap() error { return e.Err }

func (e *TaskError) errType() string {
	if e.Type == "" {
		return "error"
	}
	return e.Type
}

func (e *TaskError) proto() *braidv1.TaskError {
	p := &braidv1.TaskError{Message: e.Message, Type: e.errType(), Retryable: e.Retryable}
	switch d := e.Details.(type) {
	case nil:
	case json.RawMessage:
		p.DetailsJson = string(d)
	default:
		if b, err := json.Marshal(d); err == nil {
			p.DetailsJson = string(b)
		} else {
			p.DetailsJson = fmt.Sprintf("%q", fmt.Sprintf("details do not encode as JSON: %v", err))
		}
	}
	return p
}

// Retryable marks err as a failure the server may retry (if attempts remain). A *TaskError in
// err's chain keeps its type, message and details; otherwise the type is "error". Nil stays nil.
func Retryable(err error) error { return mark(err, true) }

// Fatal marks err as a failure that ends the task at once, whatever attempts remain. A
// *TaskError in err's chain keeps its type, message and details; otherwise the type is "error".
// Nil stays nil.
func Fatal(err error) error { return mark(err, false) }

func mark(err error, retryable bool) error {
	if err == nil {
		return nil
	}
	var te *TaskError
	if errors.As(err, &te) {
		c := *te
		c.Retryable = retryable
		if c.Err == nil {
			c.Err = te
		}
		return &c
	}
	return &TaskError{Message: err.Error(), Type: "error", Retryable: retryable, Err: err}
}

// Cancellation causes of a handler's context, as returned by context.Cause(ctx) and
// TaskContext.CancelReason. A server cancellation wraps ErrCancelled with the server's reason.
var (
	// The server sent CancelTask (e.g. the run was cancelled), or a newer attempt of the same
	// task was assigned.
	ErrCancelled = errors.New("cancelled by the server")
	// The attempt's deadline (the task's execution timeout) passed.
	ErrDeadline = errors.New("the attempt's deadline passed")
	// No heartbeat reached the server for a whole lease TTL: the lease has probably expired.
	ErrLeaseLost = errors.New("the lease could not be extended for a whole lease TTL")
	// The worker is shutting down and the drain timeout passed.
	ErrShutdown = errors.New("the worker is shutting down")
)

// cancelType is the TaskError type reported for a task cancelled for cause.
func cancelType(cause error) string {
	switch {
	case errors.Is(cause, ErrCancelled):
		return "cancelled"
	case errors.Is(cause, ErrDeadline):
		return "timeout"
	case errors.Is(cause, ErrLeaseLost):
		return "lease_expired"
	default:
		return "worker_shutdown"
	}
}

// TaskContext is what a handler knows about the attempt it runs.
type TaskContext struct {
	TaskID          string
	RunID           string
	WorkflowName    string
	WorkflowVersion uint32
	TaskName        string
	TaskType        string
	// This attempt's number: 1 for the first.
	Attempt uint32
	// Attempts in total, the first included.
	MaxAttempts uint32
	// The lease (fencing token) of this attempt.
	LeaseID string
	// When the attempt must be finished (zero if the server set none); the handler's context
	// is cancelled then, with cause ErrDeadline.
	Deadline time.Time
	// The run's W3C trace context (traceparent, tracestate).
	TraceContext map[string]string
	// The server's id of the stream that received this assignment.
	WorkerID string
	// The run input (the "input" part of the assignment), as JSON.
	Input json.RawMessage
	// The outputs of the task's dependencies by task name (the "deps" part).
	Deps map[string]json.RawMessage

	ctx context.Context
}

// Dep decodes the output of the dependency task name into v. It fails with a fatal
// *TaskError of type "bad_input" when there is no such dependency or the output does not fit.
func (tc *TaskContext) Dep(name string, v any) error {
	raw, ok := tc.Deps[name]
	if !ok {
		return &TaskError{Message: fmt.Sprintf("task has no dependency output named %q", name), Type: "bad_input"}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return &TaskError{Message: fmt.Sprintf("output of dependency %q does not fit: %v", name, err), Type: "bad_input", Err: err}
	}
	return nil
}

// IsLastAttempt reports whether a retryable failure of this attempt will not be retried.
func (tc *TaskContext) IsLastAttempt() bool { return tc.Attempt >= tc.MaxAttempts }

// CancelReason is why the handler's context was cancelled (ErrCancelled, ErrDeadline,
// ErrLeaseLost or ErrShutdown, possibly wrapped), or nil while it is not.
func (tc *TaskContext) CancelReason() error {
	if tc.ctx == nil || tc.ctx.Err() == nil {
		return nil
	}
	return context.Cause(tc.ctx)
}

// prepared runs a handler whose input is decoded: it returns the output as JSON.
type prepared func(ctx context.Context, tc *TaskContext) (string, error)

// handlerFunc decodes the run input for a typed handler; a *TaskError means it did not fit.
type handlerFunc func(input json.RawMessage) (prepared, *TaskError)

// Handle serves taskType on w with fn, a function of the typed run input (the "input" part
// of the assignment, decoded with encoding/json) returning an output encoded with
// encoding/json. When the input does not decode into I, fn is not called and the attempt
// fails with a fatal error of type "bad_input". Read dependency outputs with tc.Dep or tc.Deps.
//
// ctx is cancelled when the server cancels the task, when its deadline passes, when the lease
// is probably lost, and when a drain times out; context.Cause(ctx) (or tc.CancelReason) says
// which. Cancellation is cooperative: the handler should return soon, and its result is still
// reported. Return Retryable(err), Fatal(err) or a *TaskError to control retries; any other
// error is retryable with type "error". A panic fails the attempt (retryable, type "panic").
//
// Registering the same task type twice, or a name the server would refuse, makes Run fail.
func Handle[I, O any](w *Worker, taskType string, fn func(ctx context.Context, in I, tc *TaskContext) (O, error)) {
	w.register(taskType, func(input json.RawMessage) (prepared, *TaskError) {
		var in I
		if len(input) > 0 {
			if err := json.Unmarshal(input, &in); err != nil {
				return nil, &TaskError{Message: fmt.Sprintf("input does not fit the handler: %v", err), Type: "bad_input", Err: err}
			}
		}
		return func(ctx context.Context, tc *TaskContext) (string, error) {
			out, err := fn(ctx, in, tc)
			if err != nil {
				return "", err
			}
			b, err := json.Marshal(out)
			if err != nil {
				return "", &TaskError{Message: fmt.Sprintf("output cannot be encoded as JSON: %v", err), Type: "bad_output", Err: err}
			}
			return string(b), nil
		}, nil
	})
}

// toTaskError is how a handler's error is reported: a *TaskError as it is; the handler's own
// context error (returned after a cancellation) as a retryable error typed by the cause;
// anything else retryable with type "error".
func toTaskError(err error, ctx context.Context) *TaskError {
	var te *TaskError
	if errors.As(err, &te) {
		return te
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		cause := context.Cause(ctx)
		return &TaskError{Message: fmt.Sprintf("%v: %v", err, cause), Type: cancelType(cause), Retryable: true, Err: err}
	}
	return &TaskError{Message: err.Error(), Type: "error", Retryable: true, Err: err}
}
