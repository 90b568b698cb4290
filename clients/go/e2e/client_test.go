package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/braid-dev/braid/clients/go/braid"
	"google.golang.org/grpc/codes"
)

// thumbnails is braid/testdata/thumbnails.yaml (docs/examples/thumbnails.yaml) written in code.
func thumbnails() *braid.Workflow {
	return braid.NewWorkflow("thumbnails").
		Describe("Fetch an image, resize it three ways, publish the results.").
		Settings(braid.Settings{
			DefaultRetry:       &braid.Retry{MaxAttempts: 3, InitialBackoff: time.Second, Multiplier: 2, MaxBackoff: time.Minute},
			DefaultTaskTimeout: 2 * time.Minute,
		}).
		Task(braid.Task{Name: "fetch", Type: "http-get"}).
		Task(braid.Task{Name: "small", Type: "resize", DependsOn: []string{"fetch"}}).
		Task(braid.Task{Name: "medium", Type: "resize", DependsOn: []string{"fetch"}}).
		Task(braid.Task{Name: "large", Type: "resize", DependsOn: []string{"fetch"}, Retry: &braid.Retry{MaxAttempts: 5}}).
		Task(braid.Task{Name: "publish", Type: "upload", DependsOn: []string{"small", "medium", "large"}, Timeout: 30 * time.Second})
}

func TestCodeDeclaredWorkflowEqualsTheFileForm(t *testing.T) {
	s := startBraid(t, "30s")
	c := dial(t, s)
	ctx := timeout(t)

	// The file form, applied by the braid CLI (the server's own file parser).
	apply := exec.Command(os.Getenv("BRAID_BIN"), "workflow", "apply", "-f", "../braid/testdata/thumbnails.yaml",
		"--endpoint", "http://"+s.Addr)
	out, err := apply.CombinedOutput()
	if err != nil {
		t.Fatalf("braid workflow apply: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "version 1 created") {
		t.Fatalf("braid workflow apply said: %s", out)
	}
	fromFile, err := c.GetWorkflow(ctx, "thumbnails", 0)
	if err != nil {
		t.Fatal(err)
	}

	// The same content built in code, read by the SDK from YAML and JSON, and as a map.
	yamlForm, err := braid.LoadWorkflow("../braid/testdata/thumbnails.yaml")
	if err != nil {
		t.Fatal(err)
	}
	jsonForm, err := braid.LoadWorkflow("../braid/testdata/thumbnails.json")
	if err != nil {
		t.Fatal(err)
	}
	mapForm := map[string]any{
		"name":        "thumbnails",
		"description": "Fetch an image, resize it three ways, publish the results.",
		"settings": map[string]any{
			"default_retry":        map[string]any{"max_attempts": 3, "initial_backoff": "1s", "multiplier": 2, "max_backoff": "1m"},
			"default_task_timeout": "120s",
		},
		"tasks": []map[string]any{
			{"name": "fetch", "task_type": "http-get"},
			{"name": "small", "task_type": "resize", "depends_on": []string{"fetch"}},
			{"name": "medium", "task_type": "resize", "depends_on": []string{"fetch"}},
			{"name": "large", "task_type": "resize", "depends_on": []string{"fetch"}, "retry": map[string]any{"max_attempts": 5}},
			{"name": "publish", "task_type": "upload", "depends_on": []string{"small", "medium", "large"}, "timeout": "30s"},
		},
	}
	for name, def := range map[string]any{"code": thumbnails(), "yaml": yamlForm, "json": jsonForm, "map": mapForm} {
		stored, created, err := c.ApplyWorkflow(ctx, def)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if created || stored.Version != fromFile.Version || stored.ContentHash != fromFile.ContentHash {
			t.Errorf("%s form: created=%v version=%d hash=%s; the file form is version %d hash %s",
				name, created, stored.Version, stored.ContentHash, fromFile.Version, fromFile.ContentHash)
		}
	}
	violations, err := c.ValidateWorkflow(ctx, thumbnails())
	if err != nil || len(violations) != 0 {
		t.Fatalf("ValidateWorkflow: %v %v", violations, err)
	}

	// Different content makes the next version.
	changed := thumbnails().Task(braid.Task{Name: "notify", Type: "email", DependsOn: []string{"publish"}})
	stored, created, err := c.ApplyWorkflow(ctx, changed)
	if err != nil || !created || stored.Version != 2 || stored.ContentHash == fromFile.ContentHash {
		t.Fatalf("changed: %+v created=%v err=%v", stored, created, err)
	}
	// The stored form has every default written out and reads back as a Workflow.
	if got := stored.Workflow().Tasks()[5]; got.Timeout != 2*time.Minute || got.Retry.MaxAttempts != 3 {
		t.Errorf("stored notify task: %+v (retry %+v)", got, got.Retry)
	}
}

func TestInvalidWorkflowsReportEveryViolation(t *testing.T) {
	s := startBraid(t, "30s")
	c := dial(t, s)
	ctx := timeout(t)
	broken, err := braid.LoadWorkflow("../braid/testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []braid.Violation{
		{Path: "tasks[0].depends_on[0]", Reason: "cycle: a -> b -> c -> a"},
		{Path: "tasks[2].depends_on[1]", Reason: `unknown task "missing"`},
	}
	violations, err := c.ValidateWorkflow(ctx, broken)
	if err != nil || !equalViolations(violations, want) {
		t.Fatalf("ValidateWorkflow: %v %v", violations, err)
	}
	_, _, err = c.ApplyWorkflow(ctx, broken)
	var e *braid.Error
	if !errors.As(err, &e) || e.Code != codes.InvalidArgument || !equalViolations(e.Violations, want) {
		t.Fatalf("ApplyWorkflow: %#v", err)
	}
	// Built in code, with a bad retry policy and timeout.
	bad := braid.NewWorkflow("bad").Task(braid.Task{Name: "a", Type: "t", Timeout: 50 * time.Millisecond,
		Retry: &braid.Retry{MaxAttempts: 101}})
	_, _, err = c.ApplyWorkflow(ctx, bad)
	if !errors.As(err, &e) || len(e.Violations) != 2 || e.Violations[0].Path != "tasks[0].retry.max_attempts" ||
		e.Violations[1].Path != "tasks[0].timeout" {
		t.Fatalf("bad: %#v", err)
	}
	if _, err := c.GetWorkflow(ctx, "bad", 0); braid.ErrorCode(err) != codes.NotFound {
		t.Fatalf("nothing is stored: %v", err)
	}

	// A worker with an invalid registered workflow, or one the server refuses, stops with an error.
	w := braid.NewWorker(braid.WorkerOptions{Endpoint: s.Addr})
	braid.Handle(w, "step", func(context.Context, any, *braid.TaskContext) (any, error) { return nil, nil })
	w.RegisterWorkflow(broken)
	if err := w.Run(ctx); !errors.As(err, &e) || !equalViolations(e.Violations, want) {
		t.Fatalf("Run with an invalid workflow: %v", err)
	}
	w = braid.NewWorker(braid.WorkerOptions{Endpoint: s.Addr, Slots: 100_000})
	braid.Handle(w, "step", func(context.Context, any, *braid.TaskContext) (any, error) { return nil, nil })
	if err := w.Run(ctx); braid.ErrorCode(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "slots") {
		t.Fatalf("Run with too many slots: %v", err)
	}
}

func equalViolations(a, b []braid.Violation) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTriggerWithAnIdempotencyKeyTwiceReturnsTheSameRun(t *testing.T) {
	s := startBraid(t, "30s")
	c := dial(t, s)
	ctx := timeout(t)
	wf := braid.NewWorkflow("idem").Task(braid.Task{Name: "only", Type: "noop"})
	if _, _, err := c.ApplyWorkflow(ctx, wf); err != nil {
		t.Fatal(err)
	}
	opts := braid.TriggerOptions{Input: map[string]any{"a": 1, "b": []int{2}}, IdempotencyKey: "order-42"}
	first, created, err := c.Trigger(ctx, "idem", opts)
	if err != nil || !created {
		t.Fatalf("first trigger: created=%v err=%v", created, err)
	}
	if first.State != braid.RunRunning || first.WorkflowVersion != 1 || first.TriggerSource != "api" ||
		first.IdempotencyKey != "order-42" || first.Task("only").State != braid.TaskReady {
		t.Fatalf("first run: %+v", first)
	}
	// The same input in another key order is the same input.
	opts.Input = map[string]any{"b": []int{2}, "a": 1}
	second, created, err := c.Trigger(ctx, "idem", opts)
	if err != nil || created || second.ID != first.ID {
		t.Fatalf("second trigger: id=%s created=%v err=%v; first id %s", second.ID, created, err, first.ID)
	}
	// The same key with another input is refused.
	opts.Input = map[string]any{"a": 2}
	_, _, err = c.Trigger(ctx, "idem", opts)
	if braid.ErrorCode(err) != codes.AlreadyExists || !strings.Contains(err.Error(), first.ID) {
		t.Fatalf("third trigger: %v", err)
	}
	// Without a key every trigger makes a run.
	other, created, err := c.Trigger(ctx, "idem", braid.TriggerOptions{})
	if err != nil || !created || other.ID == first.ID {
		t.Fatalf("unkeyed trigger: %+v %v %v", other, created, err)
	}

	runs, next, err := c.ListRuns(ctx, braid.ListRunsOptions{Workflow: "idem", States: []braid.RunState{braid.RunRunning}})
	if err != nil || next != "" || len(runs) != 2 || runs[0].ID != other.ID || runs[1].ID != first.ID {
		t.Fatalf("ListRuns: %d runs, next %q, err %v", len(runs), next, err)
	}
	got, err := c.GetRun(ctx, first.ID)
	if err != nil || string(got.Input) != `{"a":1,"b":[2]}` {
		t.Fatalf("GetRun: %+v %v", got, err)
	}
	// The run's log so far; the watch stays open (the run is not terminal), so stop early.
	var kinds []string
	for ev, err := range c.WatchRun(ctx, first.ID, 0) {
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, ev.Kind+":"+ev.TaskName)
		if len(kinds) == 2 {
			break
		}
	}
	if strings.Join(kinds, ",") != "run_created:,task_ready:only" {
		t.Fatalf("events: %v", kinds)
	}
	if _, err := c.GetRun(ctx, "nope"); braid.ErrorCode(err) != codes.InvalidArgument {
		t.Fatalf("GetRun(nope): %v", err)
	}
	if _, _, err := c.Trigger(ctx, "missing", braid.TriggerOptions{}); braid.ErrorCode(err) != codes.NotFound {
		t.Fatalf("Trigger(missing): %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.GetRun(cctx, first.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled call: %v", err)
	}
}
