package braid

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Violation is one problem the server found in a request: where (e.g. "tasks[3].depends_on[0]")
// and what is wrong.
type Violation struct {
	Path   string
	Reason string
}

func (v Violation) String() string { return v.Path + ": " + v.Reason }

// Error is a failed RPC: the gRPC status, with the google.rpc.BadRequest field violations the
// server attached (every problem of an invalid workflow definition, for example).
type Error struct {
	Code       codes.Code
	Message    string
	Violations []Violation

	status *status.Status
	cause  error // the context's error when the RPC ended because its context did
}

func (e *Error) Error() string { return fmt.Sprintf("braid: %s: %s", e.Code, e.Message) }

// GRPCStatus makes status.FromError and status.Code work on an *Error.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Unwrap returns context.Canceled or context.DeadlineExceeded when the call ended because
// its context did.
func (e *Error) Unwrap() error { return e.cause }

// ErrorCode is the gRPC code of err: codes.OK for nil, the code of an *Error or any error
// carrying a gRPC status, codes.Unknown otherwise.
func ErrorCode(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return status.Code(err)
}

// wrapErr turns an RPC error into an *Error.
func wrapErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.New(codes.Unknown, err.Error())
	}
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				e.Violations = append(e.Violations, Violation{Path: fv.GetField(), Reason: fv.GetDescription()})
			}
		}
	}
	if ctx != nil && ctx.Err() != nil && (e.Code == codes.Canceled || e.Code == codes.DeadlineExceeded) {
		e.cause = ctx.Err()
	}
	return e
}
