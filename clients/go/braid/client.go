package braid

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"time"

	braidv1 "github.com/braid-dev/braid/clients/go/gen/braid/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Client calls a Braid control plane: workflows, runs, dead letters, workers. It is safe for
// concurrent use. Every failed call returns an *Error.
type Client struct {
	conn      *grpc.ClientConn
	workflows braidv1.WorkflowServiceClient
	runs      braidv1.RunServiceClient
	admin     braidv1.AdminServiceClient
}

// Dial makes a client of the control plane at endpoint ("host:port", e.g. "127.0.0.1:7400";
// "http://" and "https://" prefixes are accepted). It connects lazily: ctx bounds nothing
// yet, and an unreachable server shows up as an Unavailable error on the first call. Extra
// grpc.DialOptions are appended to the defaults (plain text, keepalive); WithTLS configures the
// TLS of an "https://" endpoint (its CA, a client certificate for mTLS). Every call carries
// the API token of WithToken, else $BRAID_TOKEN, as "authorization: Bearer TOKEN".
func Dial(ctx context.Context, endpoint string, opts ...grpc.DialOption) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := newConn(endpoint, opts)
	if err != nil {
		return nil, err
	}
	return &Client{
		conn:      conn,
		workflows: braidv1.NewWorkflowServiceClient(conn),
		runs:      braidv1.NewRunServiceClient(conn),
		admin:     braidv1.NewAdminServiceClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the underlying gRPC connection, for the generated clients in gen/braid/v1.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// --- workflows -----------------------------------------------------------

// ApplyWorkflow validates and stores def as the workflow's next version, or returns the
// latest version with created = false when its content is the same. def is a *Workflow
// (NewWorkflow, ParseWorkflow, LoadWorkflow), a *braidv1.WorkflowDefinition, or the file form
// as a map[string]any or a struct encoding to it (snake_case names, durations as strings like
// "1s"). An invalid definition fails with an *Error whose Violations list every problem.
func (c *Client) ApplyWorkflow(ctx context.Context, def any) (*StoredWorkflow, bool, error) {
	d, err := toDefinition(def)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.workflows.PutWorkflow(ctx, &braidv1.PutWorkflowRequest{Definition: d})
	if err != nil {
		return nil, false, wrapErr(ctx, err)
	}
	return storedWorkflowFromProto(resp.GetWorkflow()), resp.GetCreated(), nil
}

// ValidateWorkflow checks def without storing it and returns every problem (none when valid).
func (c *Client) ValidateWorkflow(ctx context.Context, def any) ([]Violation, error) {
	d, err := toDefinition(def)
	if err != nil {
		return nil, err
	}
	resp, err := c.workflows.ValidateWorkflow(ctx, &braidv1.ValidateWorkflowRequest{Definition: d})
	if err != nil {
		return nil, wrapErr(ctx, err)
	}
	var out []Violation
	for _, e := range resp.GetErrors() {
		out = append(out, Violation{Path: e.GetPath(), Reason: e.GetReason()})
	}
	return out, nil
}

// GetWorkflow returns one stored version (the latest when version is 0).
func (c *Client) GetWorkflow(ctx context.Context, name string, version uint32) (*StoredWorkflow, error) {
	resp, err := c.workflows.GetWorkflow(ctx, &braidv1.GetWorkflowRequest{Name: name, Version: version})
	if err != nil {
		return nil, wrapErr(ctx, err)
	}
	return storedWorkflowFromProto(resp.GetWorkflow()), nil
}

// --- runs ----------------------------------------------------------------

// TriggerOptions are the optional parts of a trigger.
type TriggerOptions struct {
	// The run input: any value encoding/json can encode; json.RawMessage and []byte are sent
	// as they are. Nil means {}.
	Input any
	// With a key, a repeated trigger returns the existing run (created = false); the same key
	// with a different input fails with AlreadyExists.
	IdempotencyKey string
	// 0 for the latest version.
	Version uint32
	// PriorityHigh, PriorityNormal or PriorityLow; "" is normal. Any other value fails the
	// trigger before a call is made.
	Priority Priority
	// E.g. a customer id (at most 128 bytes): runs sharing it count against the workflow's
	// max_per_key; the rest wait in RunQueued (Run.Reason says why).
	ConcurrencyKey string
}

// triggerRequest is the TriggerRun request of a trigger.
func triggerRequest(workflow string, opts TriggerOptions) (*braidv1.TriggerRunRequest, error) {
	priority, err := opts.Priority.proto()
	if err != nil {
		return nil, err
	}
	input, err := encodeInput(opts.Input)
	if err != nil {
		return nil, err
	}
	return &braidv1.TriggerRunRequest{
		WorkflowName:    workflow,
		WorkflowVersion: opts.Version,
		InputJson:       input,
		IdempotencyKey:  opts.IdempotencyKey,
		Priority:        priority,
		ConcurrencyKey:  opts.ConcurrencyKey,
	}, nil
}

func encodeInput(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case json.RawMessage:
		return string(x), nil
	case []byte:
		return string(x), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("braid: the input does not encode as JSON: %w", err)
	}
	return string(b), nil
}

// Trigger creates a run of workflow. created is false when the idempotency key matched an
// existing run, which is returned as it is now.
func (c *Client) Trigger(ctx context.Context, workflow string, opts TriggerOptions) (*Run, bool, error) {
	req, err := triggerRequest(workflow, opts)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.runs.TriggerRun(ctx, req)
	if err != nil {
		return nil, false, wrapErr(ctx, err)
	}
	return runFromProto(resp.GetRun()), resp.GetCreated(), nil
}

// GetRun returns a run with its tasks and their attempts.
func (c *Client) GetRun(ctx context.Context, runID string) (*Run, error) {
	resp, err := c.runs.GetRun(ctx, &braidv1.GetRunRequest{RunId: runID})
	if err != nil {
		return nil, wrapErr(ctx, err)
	}
	return runFromProto(resp.GetRun()), nil
}

// ListRunsOptions filter and page ListRuns; zero fields match everything.
type ListRunsOptions struct {
	Workflow      string
	States        []RunState
	CreatedAfter  time.Time // inclusive
	CreatedBefore time.Time // exclusive
	PageSize      uint32    // 0 = 50, capped at 500
	PageToken     string    // the previous page's next token
}

func timestampOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// ListRuns returns one page of runs, newest first, without their tasks, and the token of the
// next page ("" on the last page).
func (c *Client) ListRuns(ctx context.Context, opts ListRunsOptions) ([]*Run, string, error) {
	req := &braidv1.ListRunsRequest{
		WorkflowName:  opts.Workflow,
		CreatedAfter:  timestampOrNil(opts.CreatedAfter),
		CreatedBefore: timestampOrNil(opts.CreatedBefore),
		Page:          &braidv1.PageRequest{PageSize: opts.PageSize, PageToken: opts.PageToken},
	}
	for _, s := range opts.States {
		req.States = append(req.States, s.proto())
	}
	resp, err := c.runs.ListRuns(ctx, req)
	if err != nil {
		return nil, "", wrapErr(ctx, err)
	}
	runs := make([]*Run, 0, len(resp.GetRuns()))
	for _, r := range resp.GetRuns() {
		runs = append(runs, runFromProto(r))
	}
	return runs, resp.GetNextPageToken(), nil
}

// CancelRun cancels a run: pending and ready tasks are cancelled, workers holding leases are
// told to stop (their handlers' contexts are cancelled), and the run ends cancelled.
func (c *Client) CancelRun(ctx context.Context, runID, reason string) (*Run, error) {
	resp, err := c.runs.CancelRun(ctx, &braidv1.CancelRunRequest{RunId: runID, Reason: reason})
	if err != nil {
		return nil, wrapErr(ctx, err)
	}
	return runFromProto(resp.GetRun()), nil
}

// WatchRun follows a run's event log: every event with a sequence greater than after (0: the
// whole log), then new ones as they happen, until the run is terminal and every event was
// sent. Stop early by breaking out of the loop or cancelling ctx. An error ends the sequence.
//
//	for ev, err := range c.WatchRun(ctx, id, 0) { ... }
func (c *Client) WatchRun(ctx context.Context, runID string, after uint64) iter.Seq2[*RunEvent, error] {
	return func(yield func(*RunEvent, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.runs.WatchRun(ctx, &braidv1.WatchRunRequest{RunId: runID, AfterSequence: after})
		if err != nil {
			yield(nil, wrapErr(ctx, err))
			return
		}
		for {
			msg, err := stream.Recv()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(nil, wrapErr(ctx, err))
				return
			}
			if !yield(eventFromProto(msg.GetEvent()), nil) {
				return
			}
		}
	}
}

// WaitRun waits until the run is terminal (following its events) and returns it.
func (c *Client) WaitRun(ctx context.Context, runID string) (*Run, error) {
	var after uint64
	for {
		for ev, err := range c.WatchRun(ctx, runID, after) {
			if err != nil {
				if ErrorCode(err) != codes.Unavailable || ctx.Err() != nil {
					return nil, err
				}
				break
			}
			after = ev.Sequence
		}
		run, err := c.GetRun(ctx, runID)
		if err != nil {
			return nil, err
		}
		if run.State.Terminal() {
			return run, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// --- dead letters and workers --------------------------------------------

// DeadLetterFilter selects dead letters; zero fields match everything.
type DeadLetterFilter struct {
	Workflow      string
	TaskName      string
	ErrorType     string
	CreatedAfter  time.Time
	CreatedBefore time.Time
}

func (f *DeadLetterFilter) proto() *braidv1.DeadLetterFilter {
	if f == nil {
		return nil
	}
	return &braidv1.DeadLetterFilter{
		WorkflowName:  f.Workflow,
		TaskName:      f.TaskName,
		ErrorType:     f.ErrorType,
		CreatedAfter:  timestampOrNil(f.CreatedAfter),
		CreatedBefore: timestampOrNil(f.CreatedBefore),
	}
}

// ListDeadLettersOptions filter and page ListDeadLetters.
type ListDeadLettersOptions struct {
	Filter    DeadLetterFilter
	PageSize  uint32
	PageToken string
}

// ListDeadLetters returns one page of dead letters and the next page's token.
func (c *Client) ListDeadLetters(ctx context.Context, opts ListDeadLettersOptions) ([]*DeadLetter, string, error) {
	resp, err := c.admin.ListDeadLetters(ctx, &braidv1.ListDeadLettersRequest{
		Filter: opts.Filter.proto(),
		Page:   &braidv1.PageRequest{PageSize: opts.PageSize, PageToken: opts.PageToken},
	})
	if err != nil {
		return nil, "", wrapErr(ctx, err)
	}
	out := make([]*DeadLetter, 0, len(resp.GetDeadLetters()))
	for _, d := range resp.GetDeadLetters() {
		out = append(out, deadLetterFromProto(d))
	}
	return out, resp.GetNextPageToken(), nil
}

// RedriveOptions choose the dead letters to redrive: explicit ids, or a filter (not both).
type RedriveOptions struct {
	IDs    []string
	Filter *DeadLetterFilter
}

// Redrive makes dead-lettered tasks ready again with fresh attempts; their runs resume. It
// returns how many were redriven and their task ids.
func (c *Client) Redrive(ctx context.Context, opts RedriveOptions) (uint32, []string, error) {
	resp, err := c.admin.RedriveDeadLetters(ctx, &braidv1.RedriveDeadLettersRequest{Ids: opts.IDs, Filter: opts.Filter.proto()})
	if err != nil {
		return 0, nil, wrapErr(ctx, err)
	}
	return resp.GetRedriven(), resp.GetTaskIds(), nil
}

// WorkerInfo is a worker stream connected to the control plane.
type WorkerInfo struct {
	ID              string
	Name            string
	TaskTypes       []string
	Slots           uint32
	FreeSlots       uint32
	Labels          map[string]string
	SDKLanguage     string
	SDKVersion      string
	Draining        bool
	ConnectedAt     time.Time
	LastHeartbeatAt time.Time
}

// ListWorkers returns the connected workers (the first page of up to 500).
func (c *Client) ListWorkers(ctx context.Context) ([]*WorkerInfo, error) {
	resp, err := c.admin.ListWorkers(ctx, &braidv1.ListWorkersRequest{Page: &braidv1.PageRequest{PageSize: 500}})
	if err != nil {
		return nil, wrapErr(ctx, err)
	}
	var out []*WorkerInfo
	for _, w := range resp.GetWorkers() {
		out = append(out, &WorkerInfo{
			ID: w.GetId(), Name: w.GetName(), TaskTypes: w.GetTaskTypes(), Slots: w.GetSlots(),
			FreeSlots: w.GetFreeSlots(), Labels: w.GetLabels(), SDKLanguage: w.GetSdkLanguage(),
			SDKVersion: w.GetSdkVersion(), Draining: w.GetDraining(),
			ConnectedAt: ts(w.GetConnectedAt()), LastHeartbeatAt: ts(w.GetLastHeartbeatAt()),
		})
	}
	return out, nil
}
