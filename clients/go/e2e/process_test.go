package e2e

import (
	"context"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/braid-dev/braid/clients/go/braid"
)

// sleepWorkflow is one "sleep" task, retried quickly when its lease is lost.
func sleepWorkflow(name string) *braid.Workflow {
	return braid.NewWorkflow(name).Task(braid.Task{Name: "nap", Type: "sleep", Timeout: time.Minute,
		Retry: &braid.Retry{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}})
}

func TestSIGTERMDrainsTheExampleWorkerWithoutLosingItsLease(t *testing.T) {
	s := startBraid(t, "1s")
	c := dial(t, s)
	ctx := timeout(t)
	if _, _, err := c.ApplyWorkflow(ctx, sleepWorkflow("drain")); err != nil {
		t.Fatal(err)
	}
	w := startExample(t, s, "go-drainer", "noop,sleep", 2)
	// 3s: three lease TTLs; only heartbeats during the drain keep the lease.
	run, _, err := c.Trigger(ctx, "drain", braid.TriggerOptions{Input: map[string]int{"ms": 3000}})
	if err != nil {
		t.Fatal(err)
	}
	start := w.waitLedger(t, "the start of the sleep", func(l ledgerLine) bool { return l.Event == "start" })
	if start.Attempt != 1 {
		t.Fatalf("first start is attempt %d", start.Attempt)
	}
	w.signal(t, syscall.SIGTERM)
	sigterm := time.Now()

	// The server marks the worker draining (on its next heartbeat). A run triggered now is not
	// sent to it: a lease taken while the Drain arrived is handed back (attempt "released").
	for deadline := time.Now().Add(waitTimeout); ; {
		workers, err := c.ListWorkers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		draining := false
		for _, info := range workers {
			draining = draining || (info.Name == "go-drainer" && info.Draining)
		}
		if draining {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker was never shown draining")
		}
		time.Sleep(50 * time.Millisecond)
	}
	late, _, err := c.ApplyWorkflow(ctx, braid.NewWorkflow("late").Task(braid.Task{Name: "n", Type: "noop"}))
	if err != nil {
		t.Fatal(err)
	}
	lateRun, _, err := c.Trigger(ctx, late.Name, braid.TriggerOptions{})
	if err != nil {
		t.Fatal(err)
	}

	state := w.wait(t)
	if !state.Success() {
		t.Fatalf("the worker exited with %v", state)
	}
	if took := time.Since(sigterm); took < 2*time.Second {
		t.Fatalf("the worker exited %v after SIGTERM, before its sleep could have finished", took)
	}
	lines := w.lines(t)
	var finish, ack *ledgerLine
	for i := range lines {
		l := &lines[i]
		if l.TaskID != start.TaskID {
			continue
		}
		switch {
		case l.Event == "start" && l.Attempt != 1:
			t.Errorf("the task was reassigned: %+v", l)
		case l.Event == "finish":
			finish = l
		case l.Event == "ack":
			ack = l
		}
	}
	if finish == nil || finish.Attempt != 1 || finish.Outcome != "succeeded" {
		t.Fatalf("finish: %+v", finish)
	}
	if ack == nil || ack.Outcome != "accepted" || ack.Code != 0 || ack.LeaseID != start.LeaseID {
		t.Fatalf("ack: %+v", ack)
	}
	done := waitState(t, c, run.ID, braid.RunSucceeded)
	nap := done.Task("nap")
	if nap.Attempt != 1 || len(nap.Attempts) != 1 || nap.Attempts[0].Outcome != "succeeded" || string(nap.Output) != `{"slept_ms":3000}` {
		t.Fatalf("nap: %+v", nap)
	}
	got, err := c.GetRun(ctx, lateRun.ID)
	if err != nil {
		t.Fatal(err)
	}
	switch n := got.Task("n"); {
	case n.State == braid.TaskReady && n.Attempt == 0: // not leased to the draining worker
	case n.State == braid.TaskReady && len(n.Attempts) == 1 && n.Attempts[0].Outcome == "released":
		// leased just as the drain arrived: handed back by the server, not sent
	case n.State == braid.TaskSucceeded && n.Attempt == 1: // sent before the drain arrived, and finished
	default:
		t.Fatalf("the task triggered during the drain: %+v", n)
	}
}

func TestAStaleResultIsRejectedAndNotRetried(t *testing.T) {
	s := startBraid(t, "1s")
	c := dial(t, s)
	ctx := timeout(t)
	if _, _, err := c.ApplyWorkflow(ctx, sleepWorkflow("stale")); err != nil {
		t.Fatal(err)
	}
	a := startExample(t, s, "go-a", "sleep", 1)
	run, _, err := c.Trigger(ctx, "stale", braid.TriggerOptions{Input: map[string]int{"ms": 2500}})
	if err != nil {
		t.Fatal(err)
	}
	startA := a.waitLedger(t, "A's start", func(l ledgerLine) bool { return l.Event == "start" })
	a.signal(t, syscall.SIGSTOP)

	// A's lease expires; B gets attempt 2 and finishes it.
	b := startExample(t, s, "go-b", "sleep", 1)
	ackB := b.waitLedger(t, "B's accepted result", func(l ledgerLine) bool { return l.Event == "ack" })
	if ackB.TaskID != startA.TaskID || ackB.Attempt != 2 || ackB.Outcome != "accepted" {
		t.Fatalf("B's ack: %+v", ackB)
	}
	done := waitState(t, c, run.ID, braid.RunSucceeded)

	// A wakes up; its result for attempt 1 is refused as stale and never sent again.
	a.signal(t, syscall.SIGCONT)
	ackA := a.waitLedger(t, "A's ack", func(l ledgerLine) bool { return l.Event == "ack" })
	if ackA.TaskID != startA.TaskID || ackA.Attempt != 1 || ackA.LeaseID != startA.LeaseID ||
		ackA.Outcome != "rejected" || ackA.Code != 9 {
		t.Fatalf("A's ack: %+v", ackA)
	}
	nap := done.Task("nap")
	if nap.Attempt != 2 || len(nap.Attempts) != 2 || nap.Attempts[0].Outcome != "lease_expired" ||
		nap.Attempts[1].Outcome != "succeeded" || nap.Attempts[1].LeaseID != ackB.LeaseID {
		t.Fatalf("nap: %+v", nap)
	}
	// Nothing changed after A's result, and A sent it once.
	after, err := c.GetRun(ctx, run.ID)
	if err != nil || after.State != braid.RunSucceeded || after.Task("nap").Attempt != 2 || string(after.Output) != string(done.Output) {
		t.Fatalf("after A's result: %+v %v", after, err)
	}
	a.signal(t, syscall.SIGTERM)
	if state := a.wait(t); !state.Success() {
		t.Fatalf("A exited with %v", state)
	}
	acks := 0
	for _, l := range a.lines(t) {
		if l.Event == "ack" {
			acks++
		}
	}
	if acks != 1 {
		t.Fatalf("A's result was acked %d times: %+v", acks, a.lines(t))
	}
}

func TestTheExampleWorkerServesItsTaskTypes(t *testing.T) {
	s := startBraid(t, "30s")
	c := dial(t, s)
	ctx := timeout(t)

	// "seed" stands in for the polyglot chain's Python step a.
	rw := newWorker(t, s, "go-seed", 1, nil)
	braid.Handle(rw.W, "seed", func(_ context.Context, in struct{ Value int }, _ *braid.TaskContext) (map[string]any, error) {
		return map[string]any{"value": in.Value * 2, "path": []string{"python"}}, nil
	})
	rw.start(t)
	ex := startExample(t, s, "go-ex", "noop,echo,fail,go-c", 2)
	quick := &braid.Retry{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond}
	if _, _, err := c.ApplyWorkflow(ctx, braid.NewWorkflow("tour").
		Task(braid.Task{Name: "a", Type: "seed"}).
		Task(braid.Task{Name: "c", Type: "go-c", DependsOn: []string{"a"}}).
		Task(braid.Task{Name: "e", Type: "echo", DependsOn: []string{"c"}}).
		Task(braid.Task{Name: "n", Type: "noop"}).
		Task(braid.Task{Name: "f", Type: "fail", Retry: quick})); err != nil {
		t.Fatal(err)
	}
	run, _, err := c.Trigger(ctx, "tour", braid.TriggerOptions{Input: map[string]int{"value": 3, "times": 1}})
	if err != nil {
		t.Fatal(err)
	}
	done := waitState(t, c, run.ID, braid.RunSucceeded)
	want := map[string]any{
		"e": map[string]any{
			"input": map[string]any{"value": 3.0, "times": 1.0},
			"deps":  map[string]any{"c": map[string]any{"value": 36.0, "path": []any{"python", "go"}}},
		},
		"n": map[string]any{},
		"f": map[string]any{"attempt": 2.0},
	}
	if got := mustJSON(t, done.Output); !reflect.DeepEqual(got, want) {
		t.Fatalf("output %v, want %v", got, want)
	}
	f := done.Task("f")
	if f.Attempt != 2 || f.Attempts[0].Error == nil || f.Attempts[0].Error.Type != "injected" || !f.Attempts[0].Error.Retryable {
		t.Fatalf("f: %+v", f)
	}
	finish := ex.waitLedger(t, "f's failed attempt", func(l ledgerLine) bool {
		return l.Event == "finish" && l.TaskID == f.ID && l.Attempt == 1
	})
	if finish.Outcome != "failed" || finish.ErrorType != "injected" || finish.Worker != "go-ex" {
		t.Fatalf("ledger: %+v", finish)
	}
	// c, e, n and f twice: five accepted results.
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(20 * time.Millisecond) {
		acks := 0
		for _, l := range ex.lines(t) {
			if l.Event == "ack" && l.Outcome == "accepted" && l.Code == 0 {
				acks++
			}
		}
		if acks == 5 {
			break
		}
		if acks > 5 || time.Now().After(deadline) {
			t.Fatalf("%d accepted acks in the ledger: %+v", acks, ex.lines(t))
		}
	}
}
