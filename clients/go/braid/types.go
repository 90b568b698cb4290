package braid

import (
	"encoding/json"
	"fmt"
	"time"

	braidv1 "github.com/braid-dev/braid/clients/go/gen/braid/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// RunState is the state of a run.
type RunState string

// Run states.
const (
	RunQueued    RunState = "queued"
	RunRunning   RunState = "running"
	RunSucceeded RunState = "succeeded"
	RunFailed    RunState = "failed"
	RunCancelled RunState = "cancelled"
)

// Terminal reports whether a run in this state is finished (succeeded, failed or cancelled).
func (s RunState) Terminal() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCancelled
}

var runStates = map[braidv1.RunState]RunState{
	braidv1.RunState_RUN_STATE_QUEUED:    RunQueued,
	braidv1.RunState_RUN_STATE_RUNNING:   RunRunning,
	braidv1.RunState_RUN_STATE_SUCCEEDED: RunSucceeded,
	braidv1.RunState_RUN_STATE_FAILED:    RunFailed,
	braidv1.RunState_RUN_STATE_CANCELLED: RunCancelled,
}

func (s RunState) proto() braidv1.RunState {
	for p, v := range runStates {
		if v == s {
			return p
		}
	}
	return braidv1.RunState_RUN_STATE_UNSPECIFIED
}

// Priority is how urgently a run's ready tasks are dispatched: a worker takes ready tasks of
// higher priority first; a task that has waited long enough is offered as high, so low never
// starves.
type Priority string

// Priorities. The zero value "" leaves the choice to the server, which takes it as normal.
const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"
)

var priorities = map[braidv1.Priority]Priority{
	braidv1.Priority_PRIORITY_HIGH:   PriorityHigh,
	braidv1.Priority_PRIORITY_NORMAL: PriorityNormal,
	braidv1.Priority_PRIORITY_LOW:    PriorityLow,
}

// proto is the wire value of p; "" is unspecified, an unknown value an error.
func (p Priority) proto() (braidv1.Priority, error) {
	if p == "" {
		return braidv1.Priority_PRIORITY_UNSPECIFIED, nil
	}
	for w, v := range priorities {
		if v == p {
			return w, nil
		}
	}
	return braidv1.Priority_PRIORITY_UNSPECIFIED, fmt.Errorf("braid: unknown priority %q: expected %q, %q or %q",
		string(p), PriorityHigh, PriorityNormal, PriorityLow)
}

func priorityFromProto(p braidv1.Priority) Priority {
	if v, ok := priorities[p]; ok {
		return v
	}
	return PriorityNormal // unspecified is normal
}

// TaskState is the state of one task of a run.
type TaskState string

// Task states.
const (
	TaskPending   TaskState = "pending"
	TaskReady     TaskState = "ready"
	TaskLeased    TaskState = "leased"
	TaskSucceeded TaskState = "succeeded"
	TaskFailed    TaskState = "failed"
	TaskCancelled TaskState = "cancelled"
	TaskSkipped   TaskState = "skipped"
)

var taskStates = map[braidv1.TaskState]TaskState{
	braidv1.TaskState_TASK_STATE_PENDING:   TaskPending,
	braidv1.TaskState_TASK_STATE_READY:     TaskReady,
	braidv1.TaskState_TASK_STATE_LEASED:    TaskLeased,
	braidv1.TaskState_TASK_STATE_SUCCEEDED: TaskSucceeded,
	braidv1.TaskState_TASK_STATE_FAILED:    TaskFailed,
	braidv1.TaskState_TASK_STATE_CANCELLED: TaskCancelled,
	braidv1.TaskState_TASK_STATE_SKIPPED:   TaskSkipped,
}

// Run is one execution of a workflow version.
type Run struct {
	ID              string
	WorkflowName    string
	WorkflowVersion uint32
	State           RunState
	Input           json.RawMessage
	// {"task name": output} of the tasks nothing depends on; set once succeeded.
	Output         json.RawMessage
	IdempotencyKey string
	// "api", "schedule" or "redrive".
	TriggerSource string
	CreatedAt     time.Time
	StartedAt     time.Time
	FinishedAt    time.Time
	// Filled by GetRun, Trigger and CancelRun; empty in ListRuns.
	Tasks []RunTask
	// Why the run failed or was cancelled; while queued, what it waits for (which concurrency
	// limit, or the schedule's previous run).
	Reason string
	// PriorityNormal when the trigger gave none.
	Priority Priority
	// The trigger's concurrency key, if any (runs sharing it count against max_per_key).
	ConcurrencyKey string
	// Set when a cron schedule made the run: the schedule and the tick's nominal fire time.
	ScheduleID   string
	ScheduledFor time.Time
	// Set (and Input empty) when the input is kept in the control plane's object storage.
	InputRef *PayloadRef
	// Set (and Output empty) when the output is assembled from its tasks' payloads; its
	// SHA256 is empty (each task's OutputRef has one).
	OutputRef *PayloadRef
}

// PayloadRef stands for a payload larger than the control plane's inline limit, kept in its
// object storage: the read APIs return it instead of the bytes, and the HTTP API
// (/api/v1/runs/{id}/input, …/output, …/tasks/{name}/output) serves the whole document.
type PayloadRef struct {
	// Bytes of JSON text.
	Size uint64
	// Lowercase hex SHA-256 of those bytes.
	SHA256 string
}

func payloadRefFromProto(p *braidv1.PayloadRef) *PayloadRef {
	if p == nil {
		return nil
	}
	return &PayloadRef{Size: p.GetSize(), SHA256: p.GetSha256()}
}

// Task returns the task named name, or nil.
func (r *Run) Task(name string) *RunTask {
	for i := range r.Tasks {
		if r.Tasks[i].Name == name {
			return &r.Tasks[i]
		}
	}
	return nil
}

// RunTask is one task of one run.
type RunTask struct {
	ID        string
	Name      string
	Type      string
	State     TaskState
	DependsOn []string
	// The current (or last) attempt; 0 before the first lease.
	Attempt     uint32
	MaxAttempts uint32
	Output      json.RawMessage
	// Set (and Output empty) when the output is kept in object storage.
	OutputRef   *PayloadRef
	LastError   *TaskError
	AvailableAt time.Time
	CreatedAt   time.Time
	FinishedAt  time.Time
	// Every attempt so far, oldest first (GetRun only).
	Attempts []TaskAttempt
}

// TaskAttempt is one attempt of a task.
type TaskAttempt struct {
	Attempt    uint32
	LeaseID    string
	WorkerID   string
	StartedAt  time.Time
	FinishedAt time.Time
	// "succeeded", "failed", "lease_expired", "cancelled", or "" while running.
	Outcome string
	Error   *TaskError
}

// RunEvent is one entry of a run's event log.
type RunEvent struct {
	RunID    string
	Sequence uint64
	// "run_created", "task_ready", "task_leased", "task_succeeded", "task_failed", ...
	Kind     string
	TaskName string
	Attempt  uint32
	At       time.Time
	Detail   json.RawMessage
}

// DeadLetter is a task that ran out of attempts or failed with a non-retryable error.
type DeadLetter struct {
	ID              string
	TaskID          string
	RunID           string
	WorkflowName    string
	WorkflowVersion uint32
	TaskName        string
	TaskType        string
	LastError       *TaskError
	Attempts        uint32
	CreatedAt       time.Time
}

// StoredWorkflow is a stored, immutable workflow version.
type StoredWorkflow struct {
	Name    string
	Version uint32
	// SHA-256 of the canonical definition: equal hashes mean equal content.
	ContentHash string
	CreatedAt   time.Time
	// The definition with every default written out.
	Definition *braidv1.WorkflowDefinition
}

// Workflow returns the stored definition as a Workflow.
func (s *StoredWorkflow) Workflow() *Workflow { return WorkflowFromDefinition(s.Definition) }

func ts(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func raw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

func taskErrorFromProto(e *braidv1.TaskError) *TaskError {
	if e == nil {
		return nil
	}
	out := &TaskError{Message: e.GetMessage(), Type: e.GetType(), Retryable: e.GetRetryable()}
	if d := e.GetDetailsJson(); d != "" {
		out.Details = json.RawMessage(d)
	}
	return out
}

func runFromProto(p *braidv1.Run) *Run {
	if p == nil {
		return nil
	}
	r := &Run{
		ID:              p.GetId(),
		WorkflowName:    p.GetWorkflowName(),
		WorkflowVersion: p.GetWorkflowVersion(),
		State:           runStates[p.GetState()],
		Input:           raw(p.GetInputJson()),
		Output:          raw(p.GetOutputJson()),
		IdempotencyKey:  p.GetIdempotencyKey(),
		CreatedAt:       ts(p.GetCreatedAt()),
		StartedAt:       ts(p.GetStartedAt()),
		FinishedAt:      ts(p.GetFinishedAt()),
		Reason:          p.GetReason(),
		Priority:        priorityFromProto(p.GetPriority()),
		ConcurrencyKey:  p.GetConcurrencyKey(),
		ScheduleID:      p.GetScheduleId(),
		ScheduledFor:    ts(p.GetScheduledFor()),
		InputRef:        payloadRefFromProto(p.GetInputRef()),
		OutputRef:       payloadRefFromProto(p.GetOutputRef()),
	}
	switch p.GetTriggerSource() {
	case braidv1.TriggerSource_TRIGGER_SOURCE_API:
		r.TriggerSource = "api"
	case braidv1.TriggerSource_TRIGGER_SOURCE_SCHEDULE:
		r.TriggerSource = "schedule"
	case braidv1.TriggerSource_TRIGGER_SOURCE_REDRIVE:
		r.TriggerSource = "redrive"
	}
	for _, t := range p.GetTasks() {
		task := RunTask{
			ID:          t.GetId(),
			Name:        t.GetName(),
			Type:        t.GetTaskType(),
			State:       taskStates[t.GetState()],
			DependsOn:   t.GetDependsOn(),
			Attempt:     t.GetAttempt(),
			MaxAttempts: t.GetMaxAttempts(),
			Output:      raw(t.GetOutputJson()),
			OutputRef:   payloadRefFromProto(t.GetOutputRef()),
			LastError:   taskErrorFromProto(t.GetLastError()),
			AvailableAt: ts(t.GetAvailableAt()),
			CreatedAt:   ts(t.GetCreatedAt()),
			FinishedAt:  ts(t.GetFinishedAt()),
		}
		for _, a := range t.GetAttempts() {
			task.Attempts = append(task.Attempts, TaskAttempt{
				Attempt:    a.GetAttempt(),
				LeaseID:    a.GetLeaseId(),
				WorkerID:   a.GetWorkerId(),
				StartedAt:  ts(a.GetStartedAt()),
				FinishedAt: ts(a.GetFinishedAt()),
				Outcome:    a.GetOutcome(),
				Error:      taskErrorFromProto(a.GetError()),
			})
		}
		r.Tasks = append(r.Tasks, task)
	}
	return r
}

func eventFromProto(e *braidv1.RunEvent) *RunEvent {
	return &RunEvent{
		RunID:    e.GetRunId(),
		Sequence: e.GetSequence(),
		Kind:     e.GetKind(),
		TaskName: e.GetTaskName(),
		Attempt:  e.GetAttempt(),
		At:       ts(e.GetAt()),
		Detail:   raw(e.GetDetailJson()),
	}
}

func deadLetterFromProto(d *braidv1.DeadLetter) *DeadLetter {
	return &DeadLetter{
		ID:              d.GetId(),
		TaskID:          d.GetTaskId(),
		RunID:           d.GetRunId(),
		WorkflowName:    d.GetWorkflowName(),
		WorkflowVersion: d.GetWorkflowVersion(),
		TaskName:        d.GetTaskName(),
		TaskType:        d.GetTaskType(),
		LastError:       taskErrorFromProto(d.GetLastError()),
		Attempts:        d.GetAttempts(),
		CreatedAt:       ts(d.GetCreatedAt()),
	}
}

func storedWorkflowFromProto(w *braidv1.Workflow) *StoredWorkflow {
	if w == nil {
		return nil
	}
	return &StoredWorkflow{
		Name:        w.GetName(),
		Version:     w.GetVersion(),
		ContentHash: w.GetContentHash(),
		CreatedAt:   ts(w.GetCreatedAt()),
		Definition:  w.GetDefinition(),
	}
}
