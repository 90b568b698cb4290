package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braid-dev/braid/clients/go/braid"
)

type fetchInput struct {
	URL string `json:"url"`
}

type fetched struct {
	URL   string `json:"url"`
	Bytes int    `json:"bytes"`
}

type resized struct {
	URL   string `json:"url"`
	Width int    `json:"width"`
}

func TestADAGServedByTheGoWorkerSucceedsWithDepsPassed(t *testing.T) {
	s := startBraid(t, "30s")
	c := dial(t, s)
	ctx := timeout(t)

	wf := braid.NewWorkflow("thumbs-go").Describe("fetch, resize twice, publish").
		Task(braid.Task{Name: "fetch", Type: "fetch-go"}).
		Task(braid.Task{Name: "small", Type: "resize-go", DependsOn: []string{"fetch"}}).
		Task(braid.Task{Name: "large", Type: "resize-go", DependsOn: []string{"fetch"}, Retry: &braid.Retry{MaxAttempts: 4}}).
		Task(braid.Task{Name: "publish", Type: "publish-go", DependsOn: []string{"small", "large"}, Timeout: 20 * time.Second})

	var mu sync.Mutex
	seen := map[string]braid.TaskContext{}
	record := func(tc *braid.TaskContext) {
		mu.Lock()
		defer mu.Unlock()
		seen[tc.TaskName] = *tc
	}
	rw := newWorker(t, s, "go-dag", 3, nil)
	rw.W.RegisterWorkflow(wf) // applied by Run before it connects
	braid.Handle(rw.W, "fetch-go", func(_ context.Context, in fetchInput, tc *braid.TaskContext) (fetched, error) {
		record(tc)
		return fetched{URL: in.URL, Bytes: len(in.URL) * 100}, nil
	})
	braid.Handle(rw.W, "resize-go", func(_ context.Context, in fetchInput, tc *braid.TaskContext) (resized, error) {
		record(tc)
		var f fetched
		if err := tc.Dep("fetch", &f); err != nil {
			return resized{}, err
		}
		width := map[string]int{"small": 64, "large": 1024}[tc.TaskName]
		return resized{URL: fmt.Sprintf("%s@%d", f.URL, width), Width: width}, nil
	})
	braid.Handle(rw.W, "publish-go", func(_ context.Context, _ json.RawMessage, tc *braid.TaskContext) ([]string, error) {
		record(tc)
		var small, large resized
		if err := errors.Join(tc.Dep("small", &small), tc.Dep("large", &large)); err != nil {
			return nil, err
		}
		return []string{small.URL, large.URL}, nil
	})
	rw.start(t)

	run, created, err := c.Trigger(ctx, "thumbs-go", braid.TriggerOptions{Input: fetchInput{URL: "cat.png"}})
	if err != nil || !created {
		t.Fatal(err)
	}
	done := waitState(t, c, run.ID, braid.RunSucceeded)
	want := map[string]any{"publish": []any{"cat.png@64", "cat.png@1024"}}
	if got := mustJSON(t, done.Output); !reflect.DeepEqual(got, want) {
		t.Fatalf("run output %v, want %v", got, want)
	}
	outputs := map[string]string{
		"fetch": `{"url":"cat.png","bytes":700}`,
		"small": `{"url":"cat.png@64","width":64}`,
		"large": `{"url":"cat.png@1024","width":1024}`,
	}
	for name, out := range outputs {
		task := done.Task(name)
		if task.State != braid.TaskSucceeded || task.Attempt != 1 || string(task.Output) != out {
			t.Errorf("task %s: %s attempt %d output %s", name, task.State, task.Attempt, task.Output)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	pub := seen["publish"]
	if pub.RunID != run.ID || pub.WorkflowName != "thumbs-go" || pub.WorkflowVersion != 1 || pub.TaskType != "publish-go" ||
		pub.Attempt != 1 || pub.MaxAttempts != 3 || pub.LeaseID == "" || pub.WorkerID == "" || pub.IsLastAttempt() {
		t.Errorf("publish context: %+v", pub)
	}
	if pub.TaskID != done.Task("publish").ID || pub.Deadline.IsZero() || time.Until(pub.Deadline) > 20*time.Second {
		t.Errorf("publish id/deadline: %s %v", pub.TaskID, pub.Deadline)
	}
	if len(pub.Deps) != 2 || string(pub.Deps["small"]) != outputs["small"] || string(pub.Deps["large"]) != outputs["large"] {
		t.Errorf("publish deps: %s", pub.Deps)
	}
	if seen["large"].MaxAttempts != 4 || len(seen["fetch"].Deps) != 0 || string(seen["fetch"].Input) != `{"url":"cat.png"}` {
		t.Errorf("large/fetch contexts: %+v %+v", seen["large"], seen["fetch"])
	}

	workers, err := c.ListWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var me *braid.WorkerInfo
	for _, w := range workers {
		if w.Name == "go-dag" {
			me = w
		}
	}
	if me == nil || me.SDKLanguage != "go" || me.SDKVersion != braid.SDKVersion || me.Slots != 3 ||
		!reflect.DeepEqual(me.TaskTypes, []string{"fetch-go", "publish-go", "resize-go"}) || me.Labels["test"] != t.Name() {
		t.Fatalf("ListWorkers: %+v", me)
	}
	waitStats(t, rw.W, func(st braid.WorkerStats) bool {
		return st.Started == 4 && st.Succeeded == 4 && st.Accepted == 4 && st.Rejected == 0 && st.Connects == 1 && st.InFlight == 0
	})
}

func TestAFailingTaskIsRetriedThenDeadLetteredThenRedriven(t *testing.T) {
	s := startBraid(t, "30s")
	c := dial(t, s)
	ctx := timeout(t)

	var healed atomic.Bool
	var attempts sync.Map // attempt number -> true
	rw := newWorker(t, s, "go-flaky", 2, nil)
	braid.Handle(rw.W, "flaky-go", func(_ context.Context, _ any, tc *braid.TaskContext) (map[string]uint32, error) {
		attempts.Store(tc.Attempt, true)
		if healed.Load() {
			return map[string]uint32{"attempt": tc.Attempt}, nil
		}
		return nil, &braid.TaskError{Message: fmt.Sprintf("injected failure, attempt %d", tc.Attempt), Type: "injected",
			Retryable: true, Details: map[string]any{"attempt": tc.Attempt}}
	})
	braid.Handle(rw.W, "broken-go", func(context.Context, any, *braid.TaskContext) (any, error) {
		return nil, braid.Fatal(errors.New("this input can never work"))
	})
	rw.start(t)

	retry := &braid.Retry{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	if _, _, err := c.ApplyWorkflow(ctx, braid.NewWorkflow("flaky").
		Task(braid.Task{Name: "first", Type: "flaky-go", Retry: retry}).
		Task(braid.Task{Name: "after", Type: "flaky-go", DependsOn: []string{"first"}})); err != nil {
		t.Fatal(err)
	}
	run, _, err := c.Trigger(ctx, "flaky", braid.TriggerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	failed := waitState(t, c, run.ID, braid.RunFailed)
	first := failed.Task("first")
	if first.State != braid.TaskFailed || first.Attempt != 2 || len(first.Attempts) != 2 ||
		first.Attempts[0].Outcome != "failed" || first.Attempts[1].Outcome != "failed" ||
		first.LastError == nil || first.LastError.Type != "injected" || !first.LastError.Retryable ||
		string(first.LastError.Details.(json.RawMessage)) != `{"attempt":2}` {
		t.Fatalf("first: %+v (last error %+v)", first, first.LastError)
	}
	if after := failed.Task("after"); after.State != braid.TaskSkipped || after.Attempt != 0 {
		t.Fatalf("after: %+v", after)
	}
	letters, _, err := c.ListDeadLetters(ctx, braid.ListDeadLettersOptions{Filter: braid.DeadLetterFilter{Workflow: "flaky"}})
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters: %v %v", letters, err)
	}
	dl := letters[0]
	if dl.TaskID != first.ID || dl.RunID != run.ID || dl.TaskName != "first" || dl.TaskType != "flaky-go" ||
		dl.Attempts != 2 || dl.LastError.Type != "injected" {
		t.Fatalf("dead letter: %+v (%+v)", dl, dl.LastError)
	}

	// Fixed: redriving the dead letter resumes the run with fresh attempts.
	healed.Store(true)
	n, taskIDs, err := c.Redrive(ctx, braid.RedriveOptions{IDs: []string{dl.ID}})
	if err != nil || n != 1 || len(taskIDs) != 1 || taskIDs[0] != first.ID {
		t.Fatalf("Redrive: %d %v %v", n, taskIDs, err)
	}
	done := waitState(t, c, run.ID, braid.RunSucceeded)
	if got := done.Task("after"); got.State != braid.TaskSucceeded {
		t.Fatalf("after the redrive: %+v", got)
	}

	// A fatal error ends the task at once, whatever attempts remain.
	if _, _, err := c.ApplyWorkflow(ctx, braid.NewWorkflow("hopeless").
		Task(braid.Task{Name: "only", Type: "broken-go", Retry: &braid.Retry{MaxAttempts: 5}})); err != nil {
		t.Fatal(err)
	}
	run2, _, err := c.Trigger(ctx, "hopeless", braid.TriggerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	only := waitState(t, c, run2.ID, braid.RunFailed).Task("only")
	if only.Attempt != 1 || only.LastError.Retryable || only.LastError.Type != "error" ||
		only.LastError.Message != "this input can never work" {
		t.Fatalf("hopeless: %+v %+v", only, only.LastError)
	}
	letters, _, err = c.ListDeadLetters(ctx, braid.ListDeadLettersOptions{Filter: braid.DeadLetterFilter{Workflow: "hopeless"}})
	if err != nil || len(letters) != 1 || letters[0].Attempts != 1 {
		t.Fatalf("hopeless dead letters: %+v %v", letters, err)
	}
}

func TestCancelReachesTheRunningHandlersContext(t *testing.T) {
	s := startBraid(t, "30s")
	c := dial(t, s)
	ctx := timeout(t)

	started := make(chan *braid.TaskContext, 1)
	causes := make(chan error, 1)
	rw := newWorker(t, s, "go-cancel", 1, nil)
	braid.Handle(rw.W, "block-go", func(hctx context.Context, _ any, tc *braid.TaskContext) (any, error) {
		started <- tc
		select {
		case <-hctx.Done():
			causes <- context.Cause(hctx)
			return nil, hctx.Err()
		case <-time.After(time.Minute):
			causes <- nil
			return "not cancelled", nil
		}
	})
	rw.start(t)
	if _, _, err := c.ApplyWorkflow(ctx, braid.NewWorkflow("blocker").
		Task(braid.Task{Name: "wait", Type: "block-go"}).
		Task(braid.Task{Name: "later", Type: "block-go", DependsOn: []string{"wait"}})); err != nil {
		t.Fatal(err)
	}
	run, _, err := c.Trigger(ctx, "blocker", braid.TriggerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tc *braid.TaskContext
	select {
	case tc = <-started:
	case <-ctx.Done():
		t.Fatal("the handler did not start")
	}
	if tc.CancelReason() != nil {
		t.Fatalf("cancelled before CancelRun: %v", tc.CancelReason())
	}
	if _, err := c.CancelRun(ctx, run.ID, "the test is done with it"); err != nil {
		t.Fatal(err)
	}
	select {
	case cause := <-causes:
		if !errors.Is(cause, braid.ErrCancelled) || !errors.Is(tc.CancelReason(), braid.ErrCancelled) {
			t.Fatalf("the handler's context ended with cause %v", cause)
		}
	case <-ctx.Done():
		t.Fatal("the cancellation did not reach the handler")
	}
	done := waitState(t, c, run.ID, braid.RunCancelled)
	if done.Task("wait").State != braid.TaskCancelled || done.Task("later").State != braid.TaskCancelled {
		t.Fatalf("tasks: %+v", done.Tasks)
	}
}

func TestTheWorkerReconnectsAndKeepsItsLeaseAcrossAServerRestart(t *testing.T) {
	s := startBraid(t, "30s")
	c := dial(t, s)
	ctx := timeout(t)

	started := make(chan struct{}, 1)
	release := make(chan struct{})
	connects := make(chan string, 4)
	rw := newWorker(t, s, "go-restart", 1, func(ev braid.WorkerEvent) {
		if ev.Kind == braid.EventConnected {
			connects <- ev.WorkerID
		}
	})
	braid.Handle(rw.W, "hold-go", func(_ context.Context, _ any, tc *braid.TaskContext) (map[string]uint32, error) {
		started <- struct{}{}
		<-release
		return map[string]uint32{"attempt": tc.Attempt}, nil
	})
	rw.start(t)
	first := <-connects
	if _, _, err := c.ApplyWorkflow(ctx, braid.NewWorkflow("held").Task(braid.Task{Name: "h", Type: "hold-go"})); err != nil {
		t.Fatal(err)
	}
	run, _, err := c.Trigger(ctx, "held", braid.TriggerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the handler did not start")
	}

	// The stream breaks; the worker reconnects to the new process and lists its lease, which
	// keeps it; the result goes out on the new stream.
	s.restart(t)
	select {
	case second := <-connects:
		if second == first {
			t.Fatalf("the same stream id after a restart: %s", second)
		}
	case <-ctx.Done():
		t.Fatal("the worker did not reconnect")
	}
	close(release)
	done := waitState(t, c, run.ID, braid.RunSucceeded)
	if h := done.Task("h"); h.Attempt != 1 || len(h.Attempts) != 1 || string(h.Output) != `{"attempt":1}` {
		t.Fatalf("h: %+v", h)
	}
	waitStats(t, rw.W, func(st braid.WorkerStats) bool { return st.Connects == 2 && st.Accepted == 1 && st.Rejected == 0 })
}

// waitStats waits until the worker's counters satisfy ok (acks arrive after the server
// records a result, so just after a run ends they may still be on their way).
func waitStats(t *testing.T, w *braid.Worker, ok func(braid.WorkerStats) bool) {
	t.Helper()
	for deadline := time.Now().Add(waitTimeout); !ok(w.Stats()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stats: %+v", w.Stats())
		}
	}
}
