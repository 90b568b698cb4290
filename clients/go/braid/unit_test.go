package braid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	braidv1 "github.com/braid-dev/braid/clients/go/gen/braid/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// thumbnails is docs/examples/thumbnails.yaml written in code.
func thumbnails() *Workflow {
	return NewWorkflow("thumbnails").
		Describe("Fetch an image, resize it three ways, publish the results.").
		Settings(Settings{
			DefaultRetry:       &Retry{MaxAttempts: 3, InitialBackoff: time.Second, Multiplier: 2, MaxBackoff: time.Minute},
			DefaultTaskTimeout: 2 * time.Minute,
		}).
		Task(
			Task{Name: "fetch", Type: "http-get"},
			Task{Name: "small", Type: "resize", DependsOn: []string{"fetch"}},
			Task{Name: "medium", Type: "resize", DependsOn: []string{"fetch"}},
			Task{Name: "large", Type: "resize", DependsOn: []string{"fetch"}, Retry: &Retry{MaxAttempts: 5}},
			Task{Name: "publish", Type: "upload", DependsOn: []string{"small", "medium", "large"}, Timeout: 30 * time.Second},
		)
}

func TestFileFormsAndCodeGiveTheSameDefinition(t *testing.T) {
	want := thumbnails().Definition()
	for _, path := range []string{"testdata/thumbnails.yaml", "testdata/thumbnails.json"} {
		w, err := LoadWorkflow(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Definition(); !proto.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", path, got, want)
		}
	}
	asMap := map[string]any{
		"name":        "thumbnails",
		"description": "Fetch an image, resize it three ways, publish the results.",
		"settings": map[string]any{
			"default_retry":        map[string]any{"max_attempts": 3, "initial_backoff": "1s", "multiplier": 2.0, "max_backoff": "1m"},
			"default_task_timeout": "2m",
		},
		"tasks": []any{
			map[string]any{"name": "fetch", "task_type": "http-get"},
			map[string]any{"name": "small", "task_type": "resize", "depends_on": []string{"fetch"}},
			map[string]any{"name": "medium", "task_type": "resize", "depends_on": []string{"fetch"}},
			map[string]any{"name": "large", "task_type": "resize", "depends_on": []string{"fetch"}, "retry": map[string]any{"max_attempts": 5}},
			map[string]any{"name": "publish", "task_type": "upload", "depends_on": []string{"small", "medium", "large"}, "timeout": "30s"},
		},
	}
	got, err := toDefinition(asMap)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Errorf("map form:\n got %v\nwant %v", got, want)
	}
	// Round trip through the wire form.
	if back := WorkflowFromDefinition(want).Definition(); !proto.Equal(back, want) {
		t.Errorf("round trip:\n got %v\nwant %v", back, want)
	}
}

func TestFileFormRefusesUnknownFieldsAndBadDurations(t *testing.T) {
	for _, doc := range []string{
		"name: x\ntasks: [{name: a, task_type: t, tiemout: 1s}]\n",
		"name: x\ntasks: [{name: a, task_type: t, timeout: 1.5s}]\n",
		"name: x\ntasks: [{name: a, task_type: t, timeout: 3 parsecs}]\n",
		`{"name": "x", "bogus": 1, "tasks": []}`,
		"- just a list\n",
	} {
		if _, err := ParseWorkflow([]byte(doc)); err == nil {
			t.Errorf("%q parsed", doc)
		}
	}
	if _, err := toDefinition("name: x"); err == nil {
		t.Error("a string was taken as a definition")
	}
}

func TestConcurrencySettingsAndRetentionRoundTrip(t *testing.T) {
	code := NewWorkflow("report").
		Settings(Settings{
			MaxConcurrentRuns: 4,
			ConcurrencyPolicy: ConcurrencyCancelInProgress,
			MaxPerKey:         1,
			Retention:         30 * 24 * time.Hour,
		}).
		Task(Task{Name: "a", Type: "ta"})
	want := code.Definition()
	s := want.GetSettings()
	if s.GetConcurrencyPolicy() != braidv1.ConcurrencyPolicy_CONCURRENCY_POLICY_CANCEL_IN_PROGRESS ||
		s.GetMaxConcurrentRuns() != 4 || s.GetMaxPerKey() != 1 || s.GetRetention().AsDuration() != 720*time.Hour {
		t.Fatalf("settings on the wire: %v", s)
	}
	yamlDoc := "name: report\nsettings:\n  max_concurrent_runs: 4\n  concurrency_policy: cancel_in_progress\n" +
		"  max_per_key: 1\n  retention: 30d\ntasks:\n  - name: a\n    task_type: ta\n"
	jsonDoc := `{"name": "report", "settings": {"max_concurrent_runs": 4, "concurrency_policy": "cancel_in_progress",
		"max_per_key": 1, "retention": "720h"}, "tasks": [{"name": "a", "task_type": "ta"}]}`
	for _, doc := range []string{yamlDoc, jsonDoc} {
		w, err := ParseWorkflow([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Definition(); !proto.Equal(got, want) {
			t.Errorf("%q:\n got %v\nwant %v", doc, got, want)
		}
	}
	asMap := map[string]any{
		"name":     "report",
		"settings": map[string]any{"max_concurrent_runs": 4, "concurrency_policy": "cancel_in_progress", "max_per_key": 1, "retention": "30d"},
		"tasks":    []any{map[string]any{"name": "a", "task_type": "ta"}},
	}
	if got, err := toDefinition(asMap); err != nil || !proto.Equal(got, want) {
		t.Errorf("map form: %v, %v", got, err)
	}
	// Wire form -> Workflow -> wire form.
	back := WorkflowFromDefinition(want)
	if back.settings.ConcurrencyPolicy != ConcurrencyCancelInProgress || back.settings.MaxPerKey != 1 ||
		back.settings.Retention != 720*time.Hour {
		t.Errorf("from the wire: %+v", *back.settings)
	}
	if got := back.Definition(); !proto.Equal(got, want) {
		t.Errorf("round trip:\n got %v\nwant %v", got, want)
	}
	// Omitted: the wire defaults. The server fills in QUEUE, which reads back as "queue".
	plain, err := ParseWorkflow([]byte("name: w\ntasks: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := plain.Definition(); d.GetSettings() != nil {
		t.Errorf("settings without any: %v", d.GetSettings())
	}
	stored := &braidv1.WorkflowDefinition{Name: "w", Settings: &braidv1.RunSettings{
		ConcurrencyPolicy: braidv1.ConcurrencyPolicy_CONCURRENCY_POLICY_QUEUE}}
	if got := WorkflowFromDefinition(stored).settings.ConcurrencyPolicy; got != ConcurrencyQueue {
		t.Errorf("QUEUE read back as %q", got)
	}
}

func TestUnknownConcurrencyPolicyIsRefused(t *testing.T) {
	const expected = `expected "queue", "cancel_newest" or "cancel_in_progress"`
	for _, bad := range []string{`"cancel_oldest"`, `""`, `"QUEUE"`, `"CONCURRENCY_POLICY_QUEUE"`, `2`} {
		doc := `{"name": "x", "tasks": [], "settings": {"concurrency_policy": ` + bad + `}}`
		_, err := ParseWorkflow([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), "settings.concurrency_policy") {
			t.Errorf("%s: %v", bad, err)
			continue
		}
		if bad != "2" && !strings.Contains(err.Error(), expected) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, err := ParseWorkflow([]byte("name: x\ntasks: []\nsettings: {concurrency_policy: cancel_oldest}\n")); err == nil ||
		!strings.Contains(err.Error(), `unknown concurrency policy "cancel_oldest"`) {
		t.Errorf("YAML: %v", err)
	}
	if _, err := ParseWorkflow([]byte("name: x\ntasks: []\nsettings: {retention: forever}\n")); err == nil {
		t.Error("a bad retention parsed")
	}
	// In code: ApplyWorkflow and ValidateWorkflow refuse it before calling.
	w := NewWorkflow("x").Settings(Settings{MaxPerKey: 1, ConcurrencyPolicy: "cancel_oldest"})
	if err := w.Check(); err == nil || !strings.Contains(err.Error(), "settings.concurrency_policy: unknown concurrency policy") {
		t.Errorf("Check: %v", err)
	}
	if _, err := toDefinition(w); err == nil || !strings.Contains(err.Error(), expected) {
		t.Errorf("toDefinition: %v", err)
	}
	if got := w.Definition().GetSettings().GetConcurrencyPolicy(); got != invalidConcurrencyPolicy {
		t.Errorf("an unknown policy went on the wire as %v", got)
	}
	// An unknown wire value reads back as its number, which is then refused.
	unknown := WorkflowFromDefinition(&braidv1.WorkflowDefinition{Name: "x", Settings: &braidv1.RunSettings{ConcurrencyPolicy: 99}})
	if err := unknown.Check(); err == nil || !strings.Contains(err.Error(), `"99"`) {
		t.Errorf("unknown wire value: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for text, want := range map[string]time.Duration{
		"500ms": 500 * time.Millisecond, "1s": time.Second, "5m": 5 * time.Minute, "1m 30s": 90 * time.Second,
		"1h30m": 90 * time.Minute, "90000ms": 90 * time.Second, "2days": 48 * time.Hour, "1day": 24 * time.Hour,
		" 3 min ": 3 * time.Minute, "1d 2h": 26 * time.Hour,
	} {
		got, err := ParseDuration(text)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", text, got, err, want)
		}
	}
	for _, bad := range []string{"", "s", "10", "1.5s", "1 fortnight", "-1s"} {
		if d, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, d)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 90 * time.Second: "1m 30s", 1500 * time.Millisecond: "1s 500ms"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestBackoffDoublesToTheCapWithJitterBelowTheCeiling(t *testing.T) {
	b := newBackoff(100*time.Millisecond, 10*time.Second)
	var ceilings []time.Duration
	for range 10 {
		c := b.ceiling()
		ceilings = append(ceilings, c)
		if d := b.next(); d < 0 || d > c {
			t.Fatalf("delay %v outside [0, %v]", d, c)
		}
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000}
	for i := range want {
		if ceilings[i] != want[i]*time.Millisecond {
			t.Fatalf("ceilings %v", ceilings)
		}
	}
	b.reset()
	if b.ceiling() != 100*time.Millisecond {
		t.Fatal("reset")
	}
}

func TestEnvelopeShapes(t *testing.T) {
	in, deps, terr := parseEnvelope(`{"input": {"a": 1}, "deps": {"fetch": [1, 2]}}`)
	if terr != nil || string(in) != `{"a": 1}` || string(deps["fetch"]) != `[1, 2]` {
		t.Fatalf("%s %v %v", in, deps, terr)
	}
	if in, deps, terr := parseEnvelope("  "); terr != nil || string(in) != "null" || len(deps) != 0 {
		t.Fatalf("blank: %s %v %v", in, deps, terr)
	}
	if in, deps, terr := parseEnvelope(`{"deps": null}`); terr != nil || string(in) != "null" || deps == nil {
		t.Fatalf("no input: %s %v %v", in, deps, terr)
	}
	for _, bad := range []string{"[1]", "{", `{"deps": 3}`, "null"} {
		_, _, terr := parseEnvelope(bad)
		if terr == nil || terr.Type != "bad_input" || terr.Retryable {
			t.Errorf("%q: %v", bad, terr)
		}
	}
}

func TestErrorsReportedByHandlers(t *testing.T) {
	ctx := context.Background()
	plain := toTaskError(errors.New("disk full"), ctx)
	if plain.Type != "error" || !plain.Retryable || plain.Message != "disk full" {
		t.Errorf("plain: %+v", plain)
	}
	fatal := toTaskError(Fatal(fmt.Errorf("wrapped: %w", errors.New("no"))), ctx)
	if fatal.Type != "error" || fatal.Retryable {
		t.Errorf("fatal: %+v", fatal)
	}
	typed := &TaskError{Message: "m", Type: "quota", Details: map[string]int{"left": 0}}
	if got := toTaskError(Retryable(typed), ctx); got.Type != "quota" || !got.Retryable || got.proto().GetDetailsJson() != `{"left":0}` {
		t.Errorf("retryable typed: %+v", got)
	}
	if got := toTaskError(fmt.Errorf("ctx: %w", typed), ctx); got != typed {
		t.Errorf("wrapped TaskError not found: %+v", got)
	}
	if Retryable(nil) != nil || Fatal(nil) != nil {
		t.Error("nil must stay nil")
	}
	cctx, cancel := context.WithCancelCause(ctx)
	cancel(fmt.Errorf("%w: run cancelled", ErrCancelled))
	if got := toTaskError(cctx.Err(), cctx); got.Type != "cancelled" || !got.Retryable {
		t.Errorf("cancelled: %+v", got)
	}
	if p := (&TaskError{Message: "x"}).proto(); p.GetType() != "error" || p.GetDetailsJson() != "" {
		t.Errorf("proto: %v", p)
	}
}

func TestHandleDecodesInputAndEncodesOutput(t *testing.T) {
	w := NewWorker(WorkerOptions{})
	type in struct{ N int }
	Handle(w, "double", func(_ context.Context, v in, tc *TaskContext) (map[string]int, error) {
		var dep struct{ K int }
		if err := tc.Dep("up", &dep); err != nil {
			return nil, err
		}
		return map[string]int{"n": v.N * 2, "k": dep.K}, nil
	})
	h := w.handlers["double"]
	if _, terr := h(json.RawMessage(`"nope"`)); terr == nil || terr.Type != "bad_input" || terr.Retryable {
		t.Fatalf("bad input: %v", terr)
	}
	run, terr := h(json.RawMessage(`{"N": 21}`))
	if terr != nil {
		t.Fatal(terr)
	}
	tc := &TaskContext{Deps: map[string]json.RawMessage{"up": json.RawMessage(`{"K": 7}`)}}
	out, err := run(context.Background(), tc)
	if err != nil || out != `{"k":7,"n":42}` {
		t.Fatalf("%s %v", out, err)
	}
	_, err = run(context.Background(), &TaskContext{})
	var te *TaskError
	if !errors.As(err, &te) || te.Type != "bad_input" || te.Retryable {
		t.Fatalf("missing dep: %v", err)
	}
	Handle(w, "double", func(context.Context, any, *TaskContext) (any, error) { return nil, nil })
	Handle(w, "bad name", func(context.Context, any, *TaskContext) (any, error) { return nil, nil })
	if err := w.Run(context.Background()); err == nil {
		t.Fatal("Run accepted a duplicate and an invalid task type")
	}
	if err := NewWorker(WorkerOptions{}).Run(context.Background()); err == nil {
		t.Fatal("Run accepted a worker without handlers")
	}
}

func TestErrorDecodesBadRequestViolations(t *testing.T) {
	st, err := status.New(codes.InvalidArgument, "invalid workflow definition (2 problems)").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "tasks[0].depends_on[0]", Description: "cycle: a -> b -> c -> a"},
			{Field: "tasks[2].depends_on[1]", Description: `unknown task "missing"`},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := wrapErr(context.Background(), st.Err())
	var e *Error
	if !errors.As(got, &e) || e.Code != codes.InvalidArgument || len(e.Violations) != 2 ||
		e.Violations[1] != (Violation{Path: "tasks[2].depends_on[1]", Reason: `unknown task "missing"`}) {
		t.Fatalf("%#v", got)
	}
	if status.Code(got) != codes.InvalidArgument || ErrorCode(got) != codes.InvalidArgument {
		t.Fatal("codes")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := wrapErr(ctx, status.Error(codes.Canceled, "context canceled")); !errors.Is(got, context.Canceled) {
		t.Fatalf("%v does not unwrap to context.Canceled", got)
	}
}

func TestRunStateConversions(t *testing.T) {
	for p, s := range runStates {
		if s.proto() != p {
			t.Errorf("%s", s)
		}
	}
	if !RunCancelled.Terminal() || RunRunning.Terminal() {
		t.Error("terminal")
	}
	r := runFromProto(&braidv1.Run{Id: "r", State: braidv1.RunState_RUN_STATE_FAILED, OutputJson: "",
		Tasks: []*braidv1.Task{{Name: "a", State: braidv1.TaskState_TASK_STATE_SKIPPED}}})
	if r.State != RunFailed || r.Output != nil || r.Task("a").State != TaskSkipped || r.Task("b") != nil {
		t.Errorf("%+v", r)
	}
}

func TestTriggerRequestCarriesPriorityAndConcurrencyKey(t *testing.T) {
	for prio, want := range map[Priority]braidv1.Priority{
		"":             braidv1.Priority_PRIORITY_UNSPECIFIED,
		PriorityHigh:   braidv1.Priority_PRIORITY_HIGH,
		PriorityNormal: braidv1.Priority_PRIORITY_NORMAL,
		PriorityLow:    braidv1.Priority_PRIORITY_LOW,
	} {
		req, err := triggerRequest("wf", TriggerOptions{Input: map[string]int{"a": 1}, IdempotencyKey: "idem-1",
			Version: 3, Priority: prio, ConcurrencyKey: "customer-42"})
		if err != nil {
			t.Fatalf("%q: %v", prio, err)
		}
		expect := &braidv1.TriggerRunRequest{WorkflowName: "wf", WorkflowVersion: 3, InputJson: `{"a":1}`,
			IdempotencyKey: "idem-1", Priority: want, ConcurrencyKey: "customer-42"}
		if !proto.Equal(req, expect) {
			t.Errorf("%q: got %v, want %v", prio, req, expect)
		}
	}
	req, err := triggerRequest("wf", TriggerOptions{})
	if err != nil || req.GetPriority() != braidv1.Priority_PRIORITY_UNSPECIFIED || req.GetConcurrencyKey() != "" {
		t.Errorf("defaults: %v, %v", req, err)
	}
}

func TestTriggerRefusesAnUnknownPriority(t *testing.T) {
	for _, bad := range []Priority{"urgent", "HIGH", "PRIORITY_HIGH", " high"} {
		req, err := triggerRequest("wf", TriggerOptions{Priority: bad})
		if err == nil || req != nil {
			t.Fatalf("%q: accepted: %v", bad, req)
		}
		want := fmt.Sprintf(`braid: unknown priority %q: expected "high", "normal" or "low"`, string(bad))
		if err.Error() != want {
			t.Errorf("got %q, want %q", err, want)
		}
	}
	// The check comes before any call: nothing listens on port 1.
	c, err := Dial(context.Background(), "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, _, err := c.Trigger(ctx, "wf", TriggerOptions{Priority: "urgent"}); err == nil ||
		!strings.Contains(err.Error(), "unknown priority") {
		t.Errorf("Trigger: %v", err)
	}
}

func TestRunFromProtoReadsPriorityConcurrencyKeyAndSchedule(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := runFromProto(&braidv1.Run{Id: "r", State: braidv1.RunState_RUN_STATE_QUEUED, Priority: braidv1.Priority_PRIORITY_LOW,
		ConcurrencyKey: "customer-42", ScheduleId: "nightly", ScheduledFor: timestamppb.New(at),
		Reason: "waiting for max_per_key"})
	if r.State != RunQueued || r.Priority != PriorityLow || r.ConcurrencyKey != "customer-42" ||
		r.ScheduleID != "nightly" || !r.ScheduledFor.Equal(at) || r.Reason != "waiting for max_per_key" {
		t.Errorf("%+v", r)
	}
	bare := runFromProto(&braidv1.Run{Id: "r"})
	if bare.Priority != PriorityNormal || bare.ConcurrencyKey != "" || bare.ScheduleID != "" || !bare.ScheduledFor.IsZero() {
		t.Errorf("unspecified: %+v", bare)
	}
}
