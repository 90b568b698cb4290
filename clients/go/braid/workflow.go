package braid

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	braidv1 "github.com/braid-dev/braid/clients/go/gen/braid/v1"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Retry is a task's retry policy. Zero fields take the defaults (from the workflow's
// Settings.DefaultRetry, then the built-in ones: 3 attempts, 1s initial backoff, multiplier 2,
// 5m max backoff, jitter on).
type Retry struct {
	// Total attempts including the first; 1 means no retry.
	MaxAttempts uint32
	// Delay before the second attempt.
	InitialBackoff time.Duration
	// Growth factor between attempts, in [1, 10].
	Multiplier float64
	// Upper bound of any delay.
	MaxBackoff time.Duration
	// Full jitter; nil takes the default (true).
	Jitter *bool
}

// Task is one node of a workflow's DAG.
type Task struct {
	// Unique within the workflow.
	Name string
	// The task type workers serve (Hello.task_types).
	Type string
	// Names of tasks that must succeed first; their outputs become part of this task's input.
	DependsOn []string
	// Nil takes the workflow's default retry policy.
	Retry *Retry
	// How long one attempt may run; 0 takes the workflow's default (5m).
	Timeout     time.Duration
	Description string
}

// Settings apply to every run of a workflow version.
type Settings struct {
	DefaultRetry       *Retry
	DefaultTaskTimeout time.Duration
	// At most this many runs in RUNNING at once; 0 = unlimited.
	MaxConcurrentRuns uint32
	// What happens to a run that does not fit under MaxConcurrentRuns or MaxPerKey; "" takes
	// the server's default (ConcurrencyQueue). Any other policy needs one of the two limits.
	ConcurrencyPolicy ConcurrencyPolicy
	// At most this many running runs per concurrency key (TriggerOptions.ConcurrencyKey);
	// 0 = unlimited.
	MaxPerKey uint32
	// Finished runs older than this are deleted; 0 takes the server's default (--retention).
	Retention time.Duration
}

// ConcurrencyPolicy is the fate of a run that does not fit under its workflow's concurrency
// limits (Settings.MaxConcurrentRuns, Settings.MaxPerKey); in the file form it is
// settings.concurrency_policy.
type ConcurrencyPolicy string

// Concurrency policies. The zero value "" leaves the choice to the server, which takes it as
// ConcurrencyQueue.
const (
	// The run waits in RUN_STATE_QUEUED; runs are admitted first come, first served.
	ConcurrencyQueue ConcurrencyPolicy = "queue"
	// The new run is cancelled at once.
	ConcurrencyCancelNewest ConcurrencyPolicy = "cancel_newest"
	// The oldest running run is cancelled to make room; the new one starts when it has ended.
	ConcurrencyCancelInProgress ConcurrencyPolicy = "cancel_in_progress"
)

var concurrencyPolicies = map[braidv1.ConcurrencyPolicy]ConcurrencyPolicy{
	braidv1.ConcurrencyPolicy_CONCURRENCY_POLICY_QUEUE:              ConcurrencyQueue,
	braidv1.ConcurrencyPolicy_CONCURRENCY_POLICY_CANCEL_NEWEST:      ConcurrencyCancelNewest,
	braidv1.ConcurrencyPolicy_CONCURRENCY_POLICY_CANCEL_IN_PROGRESS: ConcurrencyCancelInProgress,
}

// invalidConcurrencyPolicy is what Definition sends for a policy this client does not know:
// no such wire value exists, so the server refuses it.
const invalidConcurrencyPolicy = braidv1.ConcurrencyPolicy(-1)

// proto is the wire value of p; "" is unspecified, an unknown value an error.
func (p ConcurrencyPolicy) proto() (braidv1.ConcurrencyPolicy, error) {
	if p == "" {
		return braidv1.ConcurrencyPolicy_CONCURRENCY_POLICY_UNSPECIFIED, nil
	}
	for w, v := range concurrencyPolicies {
		if v == p {
			return w, nil
		}
	}
	return invalidConcurrencyPolicy, fmt.Errorf("settings.concurrency_policy: unknown concurrency policy %q: expected %q, %q or %q",
		string(p), ConcurrencyQueue, ConcurrencyCancelNewest, ConcurrencyCancelInProgress)
}

// concurrencyPolicyFromProto is "" for unspecified, and the wire value's number (e.g. "7")
// for a policy this client does not know (which Definition and ApplyWorkflow then refuse).
func concurrencyPolicyFromProto(p braidv1.ConcurrencyPolicy) ConcurrencyPolicy {
	if p == braidv1.ConcurrencyPolicy_CONCURRENCY_POLICY_UNSPECIFIED {
		return ""
	}
	if v, ok := concurrencyPolicies[p]; ok {
		return v
	}
	return ConcurrencyPolicy(fmt.Sprint(int32(p)))
}

// UnmarshalJSON accepts only the known policy names, so that the file form refuses a typo.
func (p *ConcurrencyPolicy) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("settings.concurrency_policy: must be a string such as %q (got %s)", ConcurrencyQueue, b)
	}
	if _, err := ConcurrencyPolicy(s).proto(); err != nil || s == "" {
		return fmt.Errorf("settings.concurrency_policy: unknown concurrency policy %q: expected %q, %q or %q",
			s, ConcurrencyQueue, ConcurrencyCancelNewest, ConcurrencyCancelInProgress)
	}
	*p = ConcurrencyPolicy(s)
	return nil
}

// Workflow is a workflow definition built in code (NewWorkflow) or read from its file form
// (ParseWorkflow, LoadWorkflow). The same content gives the same definition, content hash and
// version whichever way it was written.
type Workflow struct {
	name        string
	description string
	tasks       []Task
	settings    *Settings
}

// NewWorkflow starts a workflow definition.
func NewWorkflow(name string) *Workflow { return &Workflow{name: name} }

// Describe sets the description.
func (w *Workflow) Describe(description string) *Workflow {
	w.description = description
	return w
}

// Task appends a task (tasks keep their order; order is part of the content).
func (w *Workflow) Task(tasks ...Task) *Workflow {
	w.tasks = append(w.tasks, tasks...)
	return w
}

// Settings sets the run-level settings.
func (w *Workflow) Settings(s Settings) *Workflow {
	w.settings = &s
	return w
}

// Name is the workflow's name.
func (w *Workflow) Name() string { return w.name }

// Tasks returns the tasks in order.
func (w *Workflow) Tasks() []Task { return append([]Task(nil), w.tasks...) }

// Definition is the wire form (braid.v1.WorkflowDefinition). An unknown
// Settings.ConcurrencyPolicy becomes a wire value the server refuses; ApplyWorkflow and
// ValidateWorkflow refuse it before calling (see Check).
func (w *Workflow) Definition() *braidv1.WorkflowDefinition {
	def := &braidv1.WorkflowDefinition{Name: w.name, Description: w.description}
	for _, t := range w.tasks {
		def.Tasks = append(def.Tasks, &braidv1.TaskDefinition{
			Name:        t.Name,
			TaskType:    t.Type,
			DependsOn:   append([]string(nil), t.DependsOn...),
			Retry:       retryProto(t.Retry),
			Timeout:     durationProto(t.Timeout),
			Description: t.Description,
		})
	}
	if s := w.settings; s != nil {
		policy, _ := s.ConcurrencyPolicy.proto()
		def.Settings = &braidv1.RunSettings{
			DefaultRetry:       retryProto(s.DefaultRetry),
			DefaultTaskTimeout: durationProto(s.DefaultTaskTimeout),
			MaxConcurrentRuns:  s.MaxConcurrentRuns,
			ConcurrencyPolicy:  policy,
			MaxPerKey:          s.MaxPerKey,
			Retention:          durationProto(s.Retention),
		}
	}
	return def
}

// Check reports what the client can tell is wrong before the server sees the workflow: an
// unknown Settings.ConcurrencyPolicy. The other rules (names, cycles, ranges) are the server's.
func (w *Workflow) Check() error {
	if s := w.settings; s != nil {
		if _, err := s.ConcurrencyPolicy.proto(); err != nil {
			return fmt.Errorf("braid: invalid workflow %q: %w", w.name, err)
		}
	}
	return nil
}

func retryProto(r *Retry) *braidv1.RetryPolicy {
	if r == nil {
		return nil
	}
	p := &braidv1.RetryPolicy{
		InitialBackoff: durationProto(r.InitialBackoff),
		MaxBackoff:     durationProto(r.MaxBackoff),
	}
	if r.MaxAttempts != 0 {
		p.MaxAttempts = proto.Uint32(r.MaxAttempts)
	}
	if r.Multiplier != 0 {
		p.Multiplier = proto.Float64(r.Multiplier)
	}
	if r.Jitter != nil {
		p.Jitter = proto.Bool(*r.Jitter)
	}
	return p
}

func durationProto(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// WorkflowFromDefinition converts the wire form back into a Workflow.
func WorkflowFromDefinition(def *braidv1.WorkflowDefinition) *Workflow {
	w := &Workflow{name: def.GetName(), description: def.GetDescription()}
	for _, t := range def.GetTasks() {
		w.tasks = append(w.tasks, Task{
			Name:        t.GetName(),
			Type:        t.GetTaskType(),
			DependsOn:   append([]string(nil), t.GetDependsOn()...),
			Retry:       retryFromProto(t.GetRetry()),
			Timeout:     t.GetTimeout().AsDuration(),
			Description: t.GetDescription(),
		})
	}
	if s := def.GetSettings(); s != nil {
		w.settings = &Settings{
			DefaultRetry:       retryFromProto(s.GetDefaultRetry()),
			DefaultTaskTimeout: s.GetDefaultTaskTimeout().AsDuration(),
			MaxConcurrentRuns:  s.GetMaxConcurrentRuns(),
			ConcurrencyPolicy:  concurrencyPolicyFromProto(s.GetConcurrencyPolicy()),
			MaxPerKey:          s.GetMaxPerKey(),
			Retention:          s.GetRetention().AsDuration(),
		}
	}
	return w
}

func retryFromProto(p *braidv1.RetryPolicy) *Retry {
	if p == nil {
		return nil
	}
	r := &Retry{
		MaxAttempts:    p.GetMaxAttempts(),
		InitialBackoff: p.GetInitialBackoff().AsDuration(),
		Multiplier:     p.GetMultiplier(),
		MaxBackoff:     p.GetMaxBackoff().AsDuration(),
	}
	if p.Jitter != nil {
		r.Jitter = proto.Bool(p.GetJitter())
	}
	return r
}

// --- the file form ----------------------------------------------------------

// The document `braid workflow apply -f` reads: snake_case fields, humantime durations,
// unknown fields refused.
type fileWorkflow struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Tasks       []fileTask    `json:"tasks"`
	Settings    *fileSettings `json:"settings,omitempty"`
}

type fileTask struct {
	Name        string        `json:"name"`
	TaskType    string        `json:"task_type"`
	DependsOn   []string      `json:"depends_on,omitempty"`
	Retry       *fileRetry    `json:"retry,omitempty"`
	Timeout     *fileDuration `json:"timeout,omitempty"`
	Description string        `json:"description,omitempty"`
}

type fileRetry struct {
	MaxAttempts    *uint32       `json:"max_attempts,omitempty"`
	InitialBackoff *fileDuration `json:"initial_backoff,omitempty"`
	Multiplier     *float64      `json:"multiplier,omitempty"`
	MaxBackoff     *fileDuration `json:"max_backoff,omitempty"`
	Jitter         *bool         `json:"jitter,omitempty"`
}

type fileSettings struct {
	DefaultRetry       *fileRetry        `json:"default_retry,omitempty"`
	DefaultTaskTimeout *fileDuration     `json:"default_task_timeout,omitempty"`
	MaxConcurrentRuns  uint32            `json:"max_concurrent_runs,omitempty"`
	ConcurrencyPolicy  ConcurrencyPolicy `json:"concurrency_policy,omitempty"`
	MaxPerKey          uint32            `json:"max_per_key,omitempty"`
	Retention          *fileDuration     `json:"retention,omitempty"`
}

// fileDuration is a humantime string ("1s", "1m 30s"); a time.Duration value (a number of
// nanoseconds) is accepted too.
type fileDuration time.Duration

func (d *fileDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*d = fileDuration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("a duration must be a string such as \"30s\" (got %s)", b)
	}
	*d = fileDuration(n)
	return nil
}

func (d fileDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(FormatDuration(time.Duration(d)))
}

func (d *fileDuration) value() time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(*d)
}

func (r *fileRetry) toRetry() *Retry {
	if r == nil {
		return nil
	}
	out := &Retry{InitialBackoff: r.InitialBackoff.value(), MaxBackoff: r.MaxBackoff.value(), Jitter: r.Jitter}
	if r.MaxAttempts != nil {
		out.MaxAttempts = *r.MaxAttempts
	}
	if r.Multiplier != nil {
		out.Multiplier = *r.Multiplier
	}
	return out
}

func (f *fileWorkflow) toWorkflow() *Workflow {
	w := &Workflow{name: f.Name, description: f.Description}
	for _, t := range f.Tasks {
		w.tasks = append(w.tasks, Task{
			Name:        t.Name,
			Type:        t.TaskType,
			DependsOn:   t.DependsOn,
			Retry:       t.Retry.toRetry(),
			Timeout:     t.Timeout.value(),
			Description: t.Description,
		})
	}
	if s := f.Settings; s != nil {
		w.settings = &Settings{
			DefaultRetry:       s.DefaultRetry.toRetry(),
			DefaultTaskTimeout: s.DefaultTaskTimeout.value(),
			MaxConcurrentRuns:  s.MaxConcurrentRuns,
			ConcurrencyPolicy:  s.ConcurrencyPolicy,
			MaxPerKey:          s.MaxPerKey,
			Retention:          s.Retention.value(),
		}
	}
	return w
}

// workflowFromJSON decodes the JSON file form strictly (unknown fields are errors).
func workflowFromJSON(data []byte) (*Workflow, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileWorkflow
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("braid: invalid workflow document: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("braid: invalid workflow document: more than one JSON value")
	}
	return f.toWorkflow(), nil
}

// ParseWorkflow reads the file form of a workflow, in YAML or JSON (JSON is YAML), with the
// same field names as `braid workflow apply -f`; unknown fields are errors.
func ParseWorkflow(data []byte) (*Workflow, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return workflowFromJSON(trimmed)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("braid: invalid workflow YAML: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, fmt.Errorf("braid: invalid workflow YAML: the document is not a mapping")
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("braid: invalid workflow YAML: %w", err)
	}
	return workflowFromJSON(js)
}

// LoadWorkflow reads a workflow file: .json files as JSON, anything else as YAML.
func LoadWorkflow(path string) (*Workflow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		w, err := workflowFromJSON(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return w, nil
	}
	w, err := ParseWorkflow(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// toDefinition accepts what ApplyWorkflow and ValidateWorkflow take: a *Workflow (or
// Workflow), a *braidv1.WorkflowDefinition, or the file form as a map or any struct that
// encodes to it with encoding/json (durations as strings such as "1s").
func toDefinition(def any) (*braidv1.WorkflowDefinition, error) {
	switch d := def.(type) {
	case nil:
		return nil, fmt.Errorf("braid: no workflow definition given")
	case *Workflow:
		if d == nil {
			return nil, fmt.Errorf("braid: no workflow definition given")
		}
		if err := d.Check(); err != nil {
			return nil, err
		}
		return d.Definition(), nil
	case Workflow:
		if err := d.Check(); err != nil {
			return nil, err
		}
		return d.Definition(), nil
	case *braidv1.WorkflowDefinition:
		return d, nil
	case []byte, string, json.RawMessage:
		return nil, fmt.Errorf("braid: parse workflow text with ParseWorkflow first")
	}
	js, err := json.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("braid: the workflow definition does not encode as JSON: %w", err)
	}
	w, err := workflowFromJSON(js)
	if err != nil {
		return nil, err
	}
	return w.Definition(), nil
}
