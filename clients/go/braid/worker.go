package braid

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	braidv1 "github.com/braid-dev/braid/clients/go/gen/braid/v1"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// WorkerOptions configure a Worker. Zero fields take the defaults.
type WorkerOptions struct {
	// The control plane's gRPC address, "host:port" (default "127.0.0.1:7400"); "https://host:port"
	// for TLS (see WithTLS).
	Endpoint string
	// A human-readable name; need not be unique (default "<hostname>-<pid>").
	Name string
	// How many tasks run at once (default 1); the server leases at most this many.
	Slots int
	// Sent in Hello.labels.
	Labels map[string]string
	// How long a drain lets running tasks finish before cancelling them (default 30s).
	DrainTimeout time.Duration
	// Bound on opening a stream and waiting for Welcome (default 10s).
	ConnectTimeout time.Duration
	// Reconnect delays: full jitter over a ceiling that starts at ReconnectBackoff and
	// doubles up to MaxReconnectBackoff (default 100ms to 10s).
	ReconnectBackoff    time.Duration
	MaxReconnectBackoff time.Duration
	// Where the worker logs (default slog.Default()).
	Logger *slog.Logger
	// Called for every WorkerEvent, from the worker's goroutines (concurrently for task
	// starts): keep it quick and safe for concurrent use.
	OnEvent func(WorkerEvent)
	// Appended to the default dial options (plain text, keepalive). WithToken here sets the
	// API token (a worker or admin token of the tenant whose tasks it serves) sent on the
	// stream and when applying workflows; without it, $BRAID_TOKEN. WithTLS sets the TLS of an
	// "https://" Endpoint (CA, client certificate); a bad TLS setting makes Run fail.
	DialOptions []grpc.DialOption
	// Receives each attempt's "handler" span, a child of the run's trace (default: the global
	// provider, otel.GetTracerProvider(), a no-op unless the application set one).
	TracerProvider trace.TracerProvider
}

// EventKind says what a WorkerEvent reports.
type EventKind int

// Worker event kinds.
const (
	// A stream is established (Welcome received): WorkerID, ServerVersion.
	EventConnected EventKind = iota + 1
	// The stream broke or the server closed it; the worker reconnects: Err.
	EventDisconnected
	// A handler started: Task.
	EventTaskStarted
	// An attempt produced its result (the handler returned, or the task ended before it
	// started): Task, Error (nil when it succeeded), Started.
	EventTaskFinished
	// The server answered a result: Task, Accepted, Code, Reason.
	EventResultAcked
	// The worker started draining: Reason.
	EventDraining
)

func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	case EventTaskStarted:
		return "task_started"
	case EventTaskFinished:
		return "task_finished"
	case EventResultAcked:
		return "result_acked"
	case EventDraining:
		return "draining"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// TaskRef identifies one attempt of one task, as on the wire.
type TaskRef struct {
	TaskID   string
	Attempt  uint32
	LeaseID  string
	TaskType string
}

// WorkerEvent is something that happened in a worker (see EventKind for which fields are set).
type WorkerEvent struct {
	Kind          EventKind
	WorkerID      string // the server's id of the current stream
	ServerVersion string
	Task          TaskRef
	Error         *TaskError
	Started       bool
	Accepted      bool
	Code          int32 // a google.rpc.Code: 0 accepted, 9 stale lease, 3 malformed result
	Reason        string
	Err           error
}

// WorkerStats are a worker's counters since it was made.
type WorkerStats struct {
	Started   uint64 // handlers started
	Succeeded uint64 // results with an output
	Failed    uint64 // results with an error
	Accepted  uint64 // results the server accepted
	Rejected  uint64 // results the server rejected (never sent again)
	Stale     uint64 // of those, rejected as stale (code 9, FAILED_PRECONDITION)
	Connects  uint64 // streams established
	InFlight  uint64 // leases held now
}

type counters struct {
	started, succeeded, failed, accepted, rejected, stale, connects, inFlight atomic.Uint64
}

// Worker serves task types over one WorkerService.Connect stream. Register handlers with
// Handle, then call Run.
type Worker struct {
	opts      WorkerOptions
	log       *slog.Logger
	mu        sync.Mutex
	handlers  map[string]handlerFunc
	problems  []error
	workflows []any
	running   bool
	counters  counters
}

// NewWorker makes a worker; nothing connects until Run.
func NewWorker(opts WorkerOptions) *Worker {
	if opts.Endpoint == "" {
		opts.Endpoint = DefaultEndpoint
	}
	if opts.Name == "" {
		opts.Name = DefaultWorkerName()
	}
	if opts.Slots == 0 {
		opts.Slots = 1
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.ReconnectBackoff == 0 {
		opts.ReconnectBackoff = 100 * time.Millisecond
	}
	if opts.MaxReconnectBackoff == 0 {
		opts.MaxReconnectBackoff = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Worker{opts: opts, log: log.With("worker", opts.Name), handlers: map[string]handlerFunc{}}
}

// Name is the name sent in Hello.worker_name.
func (w *Worker) Name() string { return w.opts.Name }

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (w *Worker) register(taskType string, h handlerFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !namePattern.MatchString(taskType) || len(taskType) > 64:
		w.problems = append(w.problems, fmt.Errorf("braid: invalid task type %q: use 1 to 64 ASCII letters, digits, '_', '.' or '-', starting with a letter or digit", taskType))
	case w.handlers[taskType] != nil:
		w.problems = append(w.problems, fmt.Errorf("braid: task type %q is registered twice", taskType))
	default:
		w.handlers[taskType] = h
	}
}

// RegisterWorkflow makes Run apply def (as Client.ApplyWorkflow does) before it connects, so
// that workflows declared in code exist wherever their workers run. An invalid definition
// makes Run fail.
func (w *Worker) RegisterWorkflow(def any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.workflows = append(w.workflows, def)
}

// Stats returns the worker's counters now.
func (w *Worker) Stats() WorkerStats {
	c := &w.counters
	return WorkerStats{
		Started: c.started.Load(), Succeeded: c.succeeded.Load(), Failed: c.failed.Load(),
		Accepted: c.accepted.Load(), Rejected: c.rejected.Load(), Stale: c.stale.Load(),
		Connects: c.connects.Load(), InFlight: c.inFlight.Load(),
	}
}

func (w *Worker) emit(ev WorkerEvent) {
	if w.opts.OnEvent != nil {
		w.opts.OnEvent(ev)
	}
}

// Run applies the registered workflows, connects, and serves tasks until ctx is cancelled;
// then it drains: it sends Drain (no more work), keeps heartbeating, lets running tasks finish
// (up to DrainTimeout, then cancels them and waits up to 5s more), sends their results, waits
// up to 5s for the acks, half-closes the stream and returns nil. It returns an error when the
// worker is misconfigured, a registered workflow is invalid, or the server refuses the worker
// for good (Unauthenticated, PermissionDenied, InvalidArgument). Handlers' contexts carry
// ctx's values but are not cancelled by it.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("braid: the worker is already running")
	}
	if len(w.problems) > 0 {
		w.mu.Unlock()
		return errors.Join(w.problems...)
	}
	if len(w.handlers) == 0 {
		w.mu.Unlock()
		return errors.New("braid: no task handlers registered: add at least one with braid.Handle")
	}
	if w.opts.Slots < 1 {
		w.mu.Unlock()
		return errors.New("braid: Slots must be at least 1")
	}
	w.running = true
	handlers := make(map[string]handlerFunc, len(w.handlers))
	for k, v := range w.handlers {
		handlers[k] = v
	}
	workflows := append([]any(nil), w.workflows...)
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}()

	conn, err := newConn(w.opts.Endpoint, w.opts.DialOptions)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := w.applyWorkflows(ctx, conn, workflows); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	r := newRuntime(w, conn, handlers, ctx)
	return r.run(ctx)
}

// applyWorkflows puts each registered workflow, retrying while the server is unreachable.
func (w *Worker) applyWorkflows(ctx context.Context, conn *grpc.ClientConn, workflows []any) error {
	if len(workflows) == 0 {
		return nil
	}
	c := &Client{conn: conn, workflows: braidv1.NewWorkflowServiceClient(conn)}
	b := newBackoff(w.opts.ReconnectBackoff, w.opts.MaxReconnectBackoff)
	for _, def := range workflows {
		for {
			callCtx, cancel := context.WithTimeout(ctx, w.opts.ConnectTimeout)
			stored, created, err := c.ApplyWorkflow(callCtx, def)
			cancel()
			if err == nil {
				w.log.Info("workflow applied", "workflow", stored.Name, "version", stored.Version, "created", created)
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			var e *Error
			if !errors.As(err, &e) || !transient(e.Code) {
				return fmt.Errorf("braid: cannot apply a registered workflow: %w", err)
			}
			delay := b.next()
			w.log.Warn("cannot apply a registered workflow yet; retrying", "error", err, "delay", delay)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
		}
	}
	return nil
}

// DefaultWorkerName is "<hostname>-<pid>".
func DefaultWorkerName() string {
	host, err := os.Hostname()
	host = strings.TrimSpace(host)
	if err != nil || host == "" {
		host = "worker"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// SignalContext returns a context cancelled by the first SIGINT or SIGTERM, for Worker.Run:
// the first signal starts a graceful drain; after it, the signals' default action is restored,
// so a second one stops the process at once. Call stop to release the signal handlers early.
func SignalContext() (ctx context.Context, stop context.CancelFunc) {
	ctx, stop = signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// backoff: delay n (from 0) is drawn uniformly from [0, min(max, initial * 2^n)].
type backoff struct {
	initial, max time.Duration
	failures     uint32
}

func newBackoff(initial, max time.Duration) *backoff {
	if max < initial {
		max = initial
	}
	return &backoff{initial: initial, max: max}
}

func (b *backoff) ceiling() time.Duration {
	c := b.initial
	for i := uint32(0); i < b.failures && c < b.max; i++ {
		c *= 2
	}
	return min(c, b.max)
}

func (b *backoff) next() time.Duration {
	c := b.ceiling()
	b.failures++
	return time.Duration(rand.Int64N(int64(c) + 1))
}

func (b *backoff) reset() { b.failures = 0 }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// transient reports whether a call failing with code may succeed later.
func transient(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted:
		return true
	}
	return false
}
