package braid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	braidv1 "github.com/braid-dev/braid/clients/go/gen/braid/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// Used when Welcome leaves heartbeat_interval unset or zero.
	defaultHeartbeat = 10 * time.Second
	// Used when Welcome leaves lease_ttl unset or zero.
	defaultLeaseTTL = 30 * time.Second
	// After the drain timeout cancels the handlers: how long they have left to return.
	cancelGrace = 5 * time.Second
	// Once every result is sent during a drain: how long to wait for their acks.
	ackWait = 5 * time.Second
	// After half-closing: how long to wait for the server to end the stream.
	closeWait = 5 * time.Second

	// google.rpc.Code values used in ResultAck.code.
	codeInvalidArgument = int32(codes.InvalidArgument)
	codeStaleLease      = int32(codes.FailedPrecondition)
)

// leaseKey is the fencing token of one attempt.
type leaseKey struct {
	taskID  string
	attempt uint32
	leaseID string
}

func keyOf(t TaskRef) leaseKey { return leaseKey{t.TaskID, t.Attempt, t.LeaseID} }

func (k leaseKey) proto() *braidv1.LeaseRef {
	return &braidv1.LeaseRef{TaskId: k.taskID, Attempt: k.attempt, LeaseId: k.leaseID}
}

// heldTask is a lease whose task runs or waits for a slot.
type heldTask struct {
	task    TaskRef
	cancel  context.CancelCauseFunc
	release context.CancelFunc
}

// pendingResult is a result not yet sent on the current stream, or sent and not yet acked.
type pendingResult struct {
	task   TaskRef
	result *braidv1.TaskResult
}

// Events posted to the loop by the worker's goroutines.
type (
	evOpened struct {
		s       *session
		welcome *braidv1.Welcome
		err     error
	}
	evMessage struct {
		s   *session
		msg *braidv1.ConnectResponse
	}
	evStreamEnd struct {
		s   *session
		err error
	}
	evFinished struct {
		key     leaseKey
		output  string
		err     *TaskError
		started bool
	}
)

// sendQueue is an unbounded queue of messages written to a stream by one goroutine, so that
// the loop never blocks on the network.
type sendQueue struct {
	mu      sync.Mutex
	items   []*braidv1.ConnectRequest
	closing bool
	broken  bool
	wake    chan struct{}
}

func newSendQueue() *sendQueue { return &sendQueue{wake: make(chan struct{}, 1)} }

// push queues a message; false when the stream is half-closed or broken.
func (q *sendQueue) push(m *braidv1.ConnectRequest) bool {
	q.mu.Lock()
	if q.closing || q.broken {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, m)
	q.mu.Unlock()
	q.notify()
	return true
}

// halfClose ends the send side once everything queued is written.
func (q *sendQueue) halfClose() {
	q.mu.Lock()
	q.closing = true
	q.mu.Unlock()
	q.notify()
}

func (q *sendQueue) notify() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *sendQueue) run(ctx context.Context, stream grpc.BidiStreamingClient[braidv1.ConnectRequest, braidv1.ConnectResponse]) {
	for {
		q.mu.Lock()
		items, closing := q.items, q.closing
		q.items = nil
		q.mu.Unlock()
		for _, m := range items {
			if err := stream.Send(m); err != nil {
				// The reader sees why the stream ended.
				q.mu.Lock()
				q.broken = true
				q.mu.Unlock()
				return
			}
		}
		if len(items) > 0 {
			continue
		}
		if closing {
			_ = stream.CloseSend()
			return
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return
		}
	}
}

// session is an established stream (Welcome received).
type session struct {
	cancel   context.CancelFunc
	q        *sendQueue
	workerID string
	// false once half-closed.
	open bool
	// After a half-close: when to stop waiting for the server to end the stream.
	closeBy time.Time
	ticker  *time.Ticker
}

func (s *session) send(m *braidv1.ConnectRequest) bool { return s.open && s.q.push(m) }

func (s *session) discard() {
	s.cancel()
	if s.ticker != nil {
		s.ticker.Stop()
	}
}

type linkState int

const (
	linkWaiting linkState = iota
	linkConnecting
	linkUp
)

// drainState is a drain in progress.
type drainState struct {
	reason string
	// Handlers still running then are cancelled.
	deadline time.Time
	// Whatever is still held or unsent then is abandoned.
	hardDeadline time.Time
	// Whether deadline has passed (contexts cancelled).
	cancelled bool
	// When every held task had finished and every result was sent.
	settledAt time.Time
}

// runtime is the worker's event loop and everything it owns. Only the loop goroutine touches
// its fields; other goroutines talk to it through events.
type runtime struct {
	w        *Worker
	log      *slog.Logger
	client   braidv1.WorkerServiceClient
	handlers map[string]handlerFunc
	values   context.Context

	slots  chan struct{}
	events chan any
	done   chan struct{}

	held    map[leaseKey]*heldTask
	unsent  []*pendingResult
	unacked []*pendingResult

	heartbeatEvery time.Duration
	leaseTTL       time.Duration
	// When a heartbeat was last handed to a live stream: leases are good until + leaseTTL.
	extendedAt time.Time
	drain      *drainState
	// The server ended the stream after our half-close: done.
	closed bool
	// The server refused the worker for good.
	fatal error

	backoff    *backoff
	state      linkState
	sess       *session
	retryTimer *time.Timer
}

func newRuntime(w *Worker, conn *grpc.ClientConn, handlers map[string]handlerFunc, values context.Context) *runtime {
	return &runtime{
		w:              w,
		log:            w.log,
		client:         braidv1.NewWorkerServiceClient(conn),
		handlers:       handlers,
		values:         context.WithoutCancel(values),
		slots:          make(chan struct{}, w.opts.Slots),
		events:         make(chan any),
		done:           make(chan struct{}),
		held:           map[leaseKey]*heldTask{},
		heartbeatEvery: defaultHeartbeat,
		leaseTTL:       defaultLeaseTTL,
		backoff:        newBackoff(w.opts.ReconnectBackoff, w.opts.MaxReconnectBackoff),
	}
}

// post hands an event to the loop; false once the loop has returned.
func (r *runtime) post(ev any) bool {
	select {
	case r.events <- ev:
		return true
	case <-r.done:
		return false
	}
}

func (r *runtime) run(ctx context.Context) error {
	defer r.cleanup()
	r.log.Info("connecting", "endpoint", r.w.opts.Endpoint)
	r.startOpen()
	for {
		if done, err := r.exitCheck(); done {
			return err
		}
		var drainC <-chan struct{}
		if r.drain == nil {
			drainC = ctx.Done()
		}
		var heartbeatC, retryC, timerC <-chan time.Time
		if r.sess != nil && r.sess.open {
			heartbeatC = r.sess.ticker.C
		}
		if r.state == linkWaiting {
			retryC = r.retryTimer.C
		}
		var timer *time.Timer
		if at, ok := r.nextTimer(); ok {
			timer = time.NewTimer(time.Until(at))
			timerC = timer.C
		}
		select {
		case <-drainC:
			r.beginDrain("shutdown requested")
		case ev := <-r.events:
			r.onEvent(ev)
		case <-heartbeatC:
			r.heartbeat()
		case <-retryC:
			r.startOpen()
		case <-timerC:
			r.onTimer()
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// cleanup ends everything the loop started: the stream, and handlers still running (their
// results are abandoned; their leases expire).
func (r *runtime) cleanup() {
	close(r.done)
	if r.sess != nil {
		r.sess.discard()
		r.sess = nil
	}
	if r.retryTimer != nil {
		r.retryTimer.Stop()
	}
	for _, h := range r.held {
		h.cancel(ErrShutdown)
		h.release()
	}
	r.w.counters.inFlight.Store(0)
}

func (r *runtime) onEvent(ev any) {
	switch e := ev.(type) {
	case evOpened:
		r.onOpened(e)
	case evMessage:
		if e.s == r.sess {
			r.onMessage(e.msg)
		}
	case evStreamEnd:
		if e.s == r.sess {
			r.onStreamEnd(e.err)
		}
	case evFinished:
		r.onFinished(e)
	}
}

// --- the link ------------------------------------------------------------

func (r *runtime) startOpen() {
	r.state = linkConnecting
	go r.open()
}

// open connects, sends Hello, waits for Welcome, then reads the stream until it ends.
func (r *runtime) open() {
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(r.w.opts.ConnectTimeout, cancel)
	fail := func(err error) {
		cancel()
		if !timer.Stop() {
			err = fmt.Errorf("timed out after %s waiting for Welcome: %w", r.w.opts.ConnectTimeout, err)
		}
		r.post(evOpened{err: err})
	}
	stream, err := r.client.Connect(ctx)
	if err != nil {
		fail(err)
		return
	}
	hello := &braidv1.Hello{
		WorkerName:  r.w.opts.Name,
		TaskTypes:   sortedKeys(r.handlers),
		Slots:       uint32(r.w.opts.Slots),
		Labels:      r.w.opts.Labels,
		SdkLanguage: "go",
		SdkVersion:  SDKVersion,
	}
	if err := stream.Send(&braidv1.ConnectRequest{Message: &braidv1.ConnectRequest_Hello{Hello: hello}}); err != nil && err != io.EOF {
		fail(err)
		return
	}
	first, err := stream.Recv()
	if err == io.EOF {
		err = errors.New("the server closed the stream before Welcome")
	}
	if err != nil {
		fail(err)
		return
	}
	welcome := first.GetWelcome()
	if welcome == nil {
		fail(fmt.Errorf("protocol violation: expected Welcome first, got %T", first.GetMessage()))
		return
	}
	if !timer.Stop() {
		fail(errors.New("the stream was cancelled"))
		return
	}
	s := &session{cancel: cancel, q: newSendQueue(), workerID: welcome.GetWorkerId(), open: true}
	go s.q.run(ctx, stream)
	if !r.post(evOpened{s: s, welcome: welcome}) {
		cancel()
		return
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			r.post(evStreamEnd{s: s, err: err})
			return
		}
		if !r.post(evMessage{s: s, msg: msg}) {
			return
		}
	}
}

// permanent reports a refusal that retrying cannot fix.
func permanent(err error) bool {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument:
		return true
	}
	return false
}

func (r *runtime) onOpened(e evOpened) {
	if e.err != nil {
		if permanent(e.err) {
			r.log.Error("the server refused the worker; stopping", "error", e.err)
			r.fatal = fmt.Errorf("braid: the server refused the worker: %w", wrapErr(nil, e.err))
			return
		}
		r.retryLater(e.err.Error())
		return
	}
	r.onWelcome(e.s, e.welcome)
}

// onWelcome adopts a new stream: the server's timings, held leases re-announced, a drain
// resumed, pending results sent.
func (r *runtime) onWelcome(s *session, welcome *braidv1.Welcome) {
	r.heartbeatEvery = r.durationOr(welcome.GetHeartbeatInterval(), defaultHeartbeat, "heartbeat_interval")
	r.leaseTTL = r.durationOr(welcome.GetLeaseTtl(), defaultLeaseTTL, "lease_ttl")
	if r.heartbeatEvery >= r.leaseTTL {
		r.log.Warn("heartbeat interval is not shorter than the lease TTL", "heartbeat", r.heartbeatEvery, "lease_ttl", r.leaseTTL)
	}
	r.backoff.reset()
	r.w.counters.connects.Add(1)
	r.log.Info("connected", "worker_id", welcome.GetWorkerId(), "server_version", welcome.GetServerVersion(),
		"heartbeat", r.heartbeatEvery, "lease_ttl", r.leaseTTL, "held", len(r.held), "pending_results", len(r.unsent))
	s.ticker = time.NewTicker(r.heartbeatEvery)
	r.sess = s
	r.state = linkUp
	r.heartbeat()
	if r.drain != nil {
		s.send(drainMessage(r.drain.reason))
	}
	r.flush()
	r.w.emit(WorkerEvent{Kind: EventConnected, WorkerID: welcome.GetWorkerId(), ServerVersion: welcome.GetServerVersion()})
}

func (r *runtime) durationOr(d *durationpb.Duration, def time.Duration, field string) time.Duration {
	if d == nil || d.CheckValid() != nil || d.AsDuration() <= 0 {
		r.log.Warn("Welcome has no usable "+field+"; using the default", "default", def)
		return def
	}
	return d.AsDuration()
}

func (r *runtime) onStreamEnd(err error) {
	if r.sess != nil && !r.sess.open {
		r.log.Info("stream closed after drain")
		r.closed = true
		return
	}
	why := "the server ended the stream"
	if err != nil && err != io.EOF {
		why = fmt.Sprintf("the stream failed: %s: %s", status.Code(err), status.Convert(err).Message())
	}
	r.log.Warn("disconnected", "error", why, "held", len(r.held), "unacked", len(r.unacked))
	r.w.emit(WorkerEvent{Kind: EventDisconnected, Err: errors.New(why)})
	// Results sent on the broken stream and not acknowledged are sent again on the next one.
	r.unsent = append(r.unacked, r.unsent...)
	r.unacked = nil
	r.retryLater(why)
}

func (r *runtime) retryLater(why string) {
	if r.sess != nil {
		r.sess.discard()
		r.sess = nil
	}
	delay := r.backoff.next()
	r.log.Warn("reconnecting after a delay", "attempt", r.backoff.failures, "delay", delay, "endpoint", r.w.opts.Endpoint, "error", why)
	r.state = linkWaiting
	r.retryTimer = time.NewTimer(delay)
}

func drainMessage(reason string) *braidv1.ConnectRequest {
	return &braidv1.ConnectRequest{Message: &braidv1.ConnectRequest_Drain{Drain: &braidv1.Drain{Reason: reason}}}
}

// --- what the server sends -------------------------------------------------

func (r *runtime) onMessage(msg *braidv1.ConnectResponse) {
	switch m := msg.GetMessage().(type) {
	case *braidv1.ConnectResponse_Assignment:
		r.onAssignment(m.Assignment)
	case *braidv1.ConnectResponse_Cancel:
		r.onCancel(m.Cancel)
	case *braidv1.ConnectResponse_Ack:
		r.onAck(m.Ack)
	case *braidv1.ConnectResponse_Welcome:
		r.log.Warn("ignoring a second Welcome on the stream")
	default:
		r.log.Debug("ignoring an empty ConnectResponse")
	}
}

// onAssignment starts the task; it waits for a local slot if all are busy.
func (r *runtime) onAssignment(a *braidv1.TaskAssignment) {
	task := TaskRef{TaskID: a.GetTaskId(), Attempt: a.GetAttempt(), LeaseID: a.GetLeaseId(), TaskType: a.GetTaskType()}
	key := keyOf(task)
	log := r.log.With("task_id", task.TaskID, "attempt", task.Attempt, "lease_id", task.LeaseID)
	if !r.sess.open {
		log.Warn("assignment after the stream was closed: not run; its lease will expire")
		return
	}
	known := r.held[key] != nil
	for _, p := range append(r.unsent[:len(r.unsent):len(r.unsent)], r.unacked...) {
		known = known || keyOf(p.task) == key
	}
	if known {
		log.Warn("duplicate assignment ignored")
		return
	}
	if task.LeaseID == "" {
		log.Warn("assignment without a lease id: its result will be refused")
	}
	for k, h := range r.held {
		if k.taskID == key.taskID && k.attempt < key.attempt {
			log.Info("a newer attempt was assigned: cancelling the older one", "old_attempt", k.attempt)
			h.cancel(fmt.Errorf("%w: superseded by attempt %d", ErrCancelled, key.attempt))
		}
	}
	ctx, cancel := context.WithCancelCause(r.values)
	release := context.CancelFunc(func() {})
	var deadline time.Time
	if d := a.GetDeadline(); d != nil && d.CheckValid() == nil {
		deadline = d.AsTime()
		ctx, release = context.WithDeadlineCause(ctx, deadline, ErrDeadline)
	}
	switch {
	case r.drain != nil && r.drain.cancelled:
		cancel(ErrShutdown)
	case r.drain != nil:
		log.Info("assignment received while draining: running it")
	default:
		log.Debug("assignment received", "task_type", task.TaskType)
	}
	r.held[key] = &heldTask{task: task, cancel: cancel, release: release}
	r.updateInFlight()
	tc := &TaskContext{
		TaskID:          a.GetTaskId(),
		RunID:           a.GetRunId(),
		WorkflowName:    a.GetWorkflowName(),
		WorkflowVersion: a.GetWorkflowVersion(),
		TaskName:        a.GetTaskName(),
		TaskType:        a.GetTaskType(),
		Attempt:         a.GetAttempt(),
		MaxAttempts:     a.GetMaxAttempts(),
		LeaseID:         a.GetLeaseId(),
		Deadline:        deadline,
		TraceContext:    a.GetTraceContext(),
		WorkerID:        r.sess.workerID,
		ctx:             ctx,
	}
	go r.execute(ctx, tc, a.GetInputJson(), task, key, r.handlers[task.TaskType])
}

// onCancel cancels the matching handler's context; it still reports a result.
func (r *runtime) onCancel(c *braidv1.CancelTask) {
	found := false
	for k, h := range r.held {
		if k.taskID == c.GetTaskId() && (c.GetAttempt() == 0 || k.attempt == c.GetAttempt()) &&
			(c.GetLeaseId() == "" || k.leaseID == c.GetLeaseId()) {
			found = true
			r.log.Info("the server cancelled the task", "task_id", k.taskID, "attempt", k.attempt, "reason", c.GetReason())
			cause := ErrCancelled
			if c.GetReason() != "" {
				cause = fmt.Errorf("%w: %s", ErrCancelled, c.GetReason())
			}
			h.cancel(cause)
		}
	}
	if !found {
		r.log.Debug("CancelTask for a task not running here", "task_id", c.GetTaskId(), "attempt", c.GetAttempt())
	}
}

// onAck settles a sent result. A rejected result is logged and never sent again.
func (r *runtime) onAck(ack *braidv1.ResultAck) {
	pos := -1
	for i, p := range r.unacked {
		if p.task.TaskID == ack.GetTaskId() && p.task.Attempt == ack.GetAttempt() && p.task.LeaseID == ack.GetLeaseId() {
			pos = i
			break
		}
	}
	if pos < 0 {
		for i, p := range r.unacked {
			if p.task.TaskID == ack.GetTaskId() && p.task.Attempt == ack.GetAttempt() {
				pos = i
				break
			}
		}
	}
	if pos < 0 {
		r.log.Debug("ResultAck for no pending result", "task_id", ack.GetTaskId(), "attempt", ack.GetAttempt())
		return
	}
	task := r.unacked[pos].task
	r.unacked = append(r.unacked[:pos], r.unacked[pos+1:]...)
	c := &r.w.counters
	log := r.log.With("task_id", task.TaskID, "attempt", task.Attempt, "lease_id", task.LeaseID, "reason", ack.GetReason())
	if ack.GetAccepted() {
		c.accepted.Add(1)
		log.Debug("result accepted")
	} else {
		c.rejected.Add(1)
		switch ack.GetCode() {
		case codeStaleLease:
			c.stale.Add(1)
			log.Warn("result rejected: the lease is no longer current (stale); it is not sent again")
		case codeInvalidArgument:
			log.Error("result rejected as malformed; it is not sent again")
		default:
			log.Warn("result rejected; it is not sent again", "code", ack.GetCode())
		}
	}
	r.w.emit(WorkerEvent{Kind: EventResultAcked, Task: task, Accepted: ack.GetAccepted(), Code: ack.GetCode(),
		Reason: ack.GetReason(), WorkerID: r.workerID()})
}

func (r *runtime) workerID() string {
	if r.sess == nil {
		return ""
	}
	return r.sess.workerID
}

// --- running a task --------------------------------------------------------

// execute waits for a slot (unless cancelled or past the deadline first), runs the handler
// and posts the result.
func (r *runtime) execute(ctx context.Context, tc *TaskContext, inputJSON string, task TaskRef, key leaseKey, h handlerFunc) {
	output, terr, started := r.runTask(ctx, tc, inputJSON, task, h)
	r.post(evFinished{key: key, output: output, err: terr, started: started})
}

func notStarted(ctx context.Context) *TaskError {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = ErrShutdown
	}
	return &TaskError{Message: fmt.Sprintf("not started: %v", cause), Type: cancelType(cause), Retryable: true,
		Details: map[string]bool{"started": false}}
}

func (r *runtime) runTask(ctx context.Context, tc *TaskContext, inputJSON string, task TaskRef, h handlerFunc) (string, *TaskError, bool) {
	if ctx.Err() != nil {
		return "", notStarted(ctx), false
	}
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return "", notStarted(ctx), false
	}
	defer func() { <-r.slots }()
	if ctx.Err() != nil {
		return "", notStarted(ctx), false
	}
	if h == nil {
		return "", &TaskError{Message: fmt.Sprintf("this worker has no handler for task type %q", task.TaskType),
			Type: "unknown_task_type", Retryable: true}, false
	}
	input, deps, terr := parseEnvelope(inputJSON)
	if terr != nil {
		return "", terr, false
	}
	tc.Input, tc.Deps = input, deps
	run, terr := h(input)
	if terr != nil {
		return "", terr, false
	}
	r.w.counters.started.Add(1)
	r.w.emit(WorkerEvent{Kind: EventTaskStarted, Task: task, WorkerID: tc.WorkerID})
	ctx, span := startHandlerSpan(ctx, r.w.opts.TracerProvider, tc)
	tc.ctx = ctx
	output, err := callHandler(ctx, run, tc)
	endHandlerSpan(span, err)
	if err != nil {
		return "", toTaskError(err, ctx), true
	}
	return output, nil, true
}

func callHandler(ctx context.Context, run prepared, tc *TaskContext) (output string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &TaskError{Message: fmt.Sprintf("handler panicked: %v", p), Type: "panic", Retryable: true}
		}
	}()
	return run(ctx, tc)
}

// parseEnvelope splits {"input": ..., "deps": {...}}. Blank text is an empty envelope; a
// missing input is null, missing or null deps are empty. Anything else is a fatal bad_input.
func parseEnvelope(text string) (json.RawMessage, map[string]json.RawMessage, *TaskError) {
	null := json.RawMessage("null")
	trimmed := bytes.TrimSpace([]byte(text))
	if len(trimmed) == 0 {
		return null, map[string]json.RawMessage{}, nil
	}
	bad := func(why string) *TaskError {
		return &TaskError{Message: "input_json is not a task envelope: " + why, Type: "bad_input"}
	}
	if trimmed[0] != '{' {
		return nil, nil, bad("not a JSON object")
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &doc); err != nil {
		return nil, nil, bad(err.Error())
	}
	input, ok := doc["input"]
	if !ok {
		input = null
	}
	deps := map[string]json.RawMessage{}
	if d, ok := doc["deps"]; ok && string(bytes.TrimSpace(d)) != "null" {
		if bytes.TrimSpace(d)[0] != '{' {
			return nil, nil, bad(`"deps" is not an object`)
		}
		if err := json.Unmarshal(d, &deps); err != nil {
			return nil, nil, bad(err.Error())
		}
	}
	return input, deps, nil
}

// onFinished frees the task's lease entry, queues its result and sends it if connected.
func (r *runtime) onFinished(e evFinished) {
	h, ok := r.held[e.key]
	if !ok {
		return
	}
	delete(r.held, e.key)
	h.release()
	h.cancel(context.Canceled)
	r.updateInFlight()
	task := h.task
	result := &braidv1.TaskResult{TaskId: task.TaskID, Attempt: task.Attempt, LeaseId: task.LeaseID}
	c := &r.w.counters
	if e.err == nil {
		c.succeeded.Add(1)
		r.log.Debug("task succeeded", "task_id", task.TaskID, "attempt", task.Attempt)
		result.Outcome = &braidv1.TaskResult_OutputJson{OutputJson: e.output}
	} else {
		c.failed.Add(1)
		r.log.Info("task failed", "task_id", task.TaskID, "attempt", task.Attempt, "error", e.err.Error())
		result.Outcome = &braidv1.TaskResult_Error{Error: e.err.proto()}
	}
	r.w.emit(WorkerEvent{Kind: EventTaskFinished, Task: task, Error: e.err, Started: e.started, WorkerID: r.workerID()})
	r.unsent = append(r.unsent, &pendingResult{task: task, result: result})
	r.flush()
}

// --- what the worker sends -------------------------------------------------

// heartbeat lists every lease held (running, waiting for a slot, or with a result not yet
// sent on this stream); handing it to a live stream extends them all.
func (r *runtime) heartbeat() {
	if r.sess == nil {
		return
	}
	leases := make([]*braidv1.LeaseRef, 0, len(r.held)+len(r.unsent))
	for k := range r.held {
		leases = append(leases, k.proto())
	}
	for _, p := range r.unsent {
		leases = append(leases, keyOf(p.task).proto())
	}
	hb := &braidv1.ConnectRequest{Message: &braidv1.ConnectRequest_Heartbeat{Heartbeat: &braidv1.Heartbeat{Leases: leases}}}
	if r.sess.send(hb) {
		r.extendedAt = time.Now()
	}
}

// flush sends every unsent result, oldest first; they wait for their acks in unacked.
func (r *runtime) flush() {
	if r.sess == nil {
		return
	}
	for len(r.unsent) > 0 {
		p := r.unsent[0]
		if !r.sess.send(&braidv1.ConnectRequest{Message: &braidv1.ConnectRequest_Result{Result: p.result}}) {
			return
		}
		r.unsent = r.unsent[1:]
		r.unacked = append(r.unacked, p)
	}
}

func (r *runtime) updateInFlight() { r.w.counters.inFlight.Store(uint64(len(r.held))) }

// --- timers and endings ----------------------------------------------------

func (r *runtime) beginDrain(reason string) {
	if r.drain != nil {
		return
	}
	now := time.Now()
	timeout := r.w.opts.DrainTimeout
	r.drain = &drainState{reason: reason, deadline: now.Add(timeout), hardDeadline: now.Add(timeout + cancelGrace)}
	r.log.Info("draining: asking for no more work, finishing held tasks", "held", len(r.held), "timeout", timeout, "reason", reason)
	if r.sess != nil {
		r.sess.send(drainMessage(reason))
	}
	r.w.emit(WorkerEvent{Kind: EventDraining, Reason: reason})
}

// nextTimer is the next instant at which onTimer or exitCheck has something to do.
func (r *runtime) nextTimer() (time.Time, bool) {
	var at time.Time
	add := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if r.sess == nil && len(r.held) > 0 && !r.extendedAt.IsZero() {
		add(r.extendedAt.Add(r.leaseTTL))
	}
	if d := r.drain; d != nil {
		if !d.cancelled {
			add(d.deadline)
		}
		add(d.hardDeadline)
		if !d.settledAt.IsZero() {
			add(d.settledAt.Add(ackWait))
		}
	}
	if r.sess != nil {
		add(r.sess.closeBy)
	}
	return at, !at.IsZero()
}

// onTimer cancels handlers whose lease is probably gone, and handlers past the drain timeout.
func (r *runtime) onTimer() {
	now := time.Now()
	leaseGone := !r.extendedAt.IsZero() && !now.Before(r.extendedAt.Add(r.leaseTTL))
	if r.sess == nil && leaseGone && len(r.held) > 0 {
		r.log.Warn("no heartbeat reached the server for a whole lease TTL: the leases have probably expired; cancelling their handlers",
			"held", len(r.held), "lease_ttl", r.leaseTTL)
		for _, h := range r.held {
			h.cancel(ErrLeaseLost)
		}
		r.extendedAt = time.Time{}
	}
	if d := r.drain; d != nil && !d.cancelled && !now.Before(d.deadline) {
		d.cancelled = true
		if len(r.held) > 0 {
			r.log.Warn("drain timeout passed: cancelling the tasks still running", "held", len(r.held))
		}
		for _, h := range r.held {
			h.cancel(ErrShutdown)
		}
	}
}

// exitCheck says whether Run is done: after a refusal; during a drain, once nothing is held or
// unsent, the acks came (or ackWait passed) and the stream is closed, or at the hard deadline.
func (r *runtime) exitCheck() (bool, error) {
	if r.fatal != nil {
		return true, r.fatal
	}
	if r.closed {
		return true, nil
	}
	d := r.drain
	if d == nil {
		return false, nil
	}
	now := time.Now()
	if !now.Before(d.hardDeadline) {
		if results := len(r.unsent) + len(r.unacked); len(r.held) > 0 || results > 0 {
			r.log.Error("drain deadline passed: abandoning tasks and results (their leases will expire)",
				"held", len(r.held), "results", results)
		}
		return true, nil
	}
	if len(r.held) > 0 || len(r.unsent) > 0 {
		d.settledAt = time.Time{}
		return false, nil
	}
	if r.sess == nil {
		// Nothing to deliver and no stream: done.
		return true, nil
	}
	if r.sess.open {
		if d.settledAt.IsZero() {
			d.settledAt = now
		}
		if len(r.unacked) == 0 || !now.Before(d.settledAt.Add(ackWait)) {
			if len(r.unacked) > 0 {
				r.log.Warn("no ack for some results; closing anyway", "unacked", len(r.unacked))
			}
			r.log.Info("drained: closing the stream")
			r.sess.open = false
			r.sess.q.halfClose()
			r.sess.closeBy = now.Add(closeWait)
		}
		return false, nil
	}
	if !r.sess.closeBy.IsZero() && !now.Before(r.sess.closeBy) {
		r.log.Warn("the server did not end the stream after the drain; leaving")
		return true, nil
	}
	return false, nil
}
