package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/braid-dev/braid/clients/go/braid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// API tokens against `braid dev` with auth on (no --insecure): no token is Unauthenticated; the
// admin token it printed authors, triggers and serves tasks (client, worker, example worker).

func dialWith(t *testing.T, s *server, opts ...grpc.DialOption) *braid.Client {
	t.Helper()
	c, err := braid.Dial(context.Background(), s.Addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	var e *braid.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Errorf("%s: got %v, want %s", what, err, code)
	}
}

func TestWithAuthOnAClientNeedsTheToken(t *testing.T) {
	t.Setenv("BRAID_TOKEN", "") // each call below says which token it uses
	s := startBraidAuth(t, "30s")
	ctx := timeout(t)
	if !regexp.MustCompile(`^brd_[A-Za-z0-9_-]{43}$`).MatchString(s.Token) {
		t.Fatalf("braid dev printed the token %q", s.Token)
	}
	kept, err := os.ReadFile(filepath.Join(s.dir, "data", "admin-token"))
	if err != nil || strings.TrimSpace(string(kept)) != s.Token {
		t.Errorf("DATA_DIR/admin-token: %q, %v", kept, err)
	}

	wf := braid.NewWorkflow("auth-go").Task(braid.Task{Name: "a", Type: "auth-none-go"})
	_, _, err = dialWith(t, s).ApplyWorkflow(ctx, wf)
	wantCode(t, "ApplyWorkflow without a token", err, codes.Unauthenticated)
	_, err = dialWith(t, s).GetWorkflow(ctx, "auth-go", 0)
	wantCode(t, "GetWorkflow without a token", err, codes.Unauthenticated)
	_, err = dialWith(t, s, braid.WithToken("brd_"+strings.Repeat("A", 43))).GetWorkflow(ctx, "auth-go", 0)
	wantCode(t, "GetWorkflow with an unknown token", err, codes.Unauthenticated)

	c := dialWith(t, s, braid.WithToken(s.Token))
	if _, created, err := c.ApplyWorkflow(ctx, wf); err != nil || !created {
		t.Fatalf("ApplyWorkflow with the token: %v", err)
	}
	run, created, err := c.Trigger(ctx, "auth-go", braid.TriggerOptions{Input: map[string]int{"n": 1}})
	if err != nil || !created {
		t.Fatalf("Trigger with the token: %v", err)
	}
	t.Setenv("BRAID_TOKEN", s.Token)
	if got, err := dialWith(t, s).GetRun(ctx, run.ID); err != nil || got.ID != run.ID {
		t.Errorf("GetRun with BRAID_TOKEN: %v", err)
	}
	if _, err := c.CancelRun(ctx, run.ID, "no worker serves auth-none-go"); err != nil {
		t.Error(err)
	}
}

func TestWithAuthOnAWorkerWithTheTokenCompletesARun(t *testing.T) {
	t.Setenv("BRAID_TOKEN", "")
	s := startBraidAuth(t, "30s")
	c := dialWith(t, s, braid.WithToken(s.Token))
	ctx := timeout(t)

	// Without a token the server refuses the worker for good.
	anonymous := braid.NewWorker(braid.WorkerOptions{Endpoint: s.Addr, Name: "go-anonymous", ConnectTimeout: 5 * time.Second})
	braid.Handle(anonymous, "auth-work-go", func(context.Context, any, *braid.TaskContext) (any, error) { return nil, nil })
	wantCode(t, "a worker without a token", anonymous.Run(ctx), codes.Unauthenticated)

	rw := &runningWorker{connected: make(chan struct{})}
	var once sync.Once
	rw.W = braid.NewWorker(braid.WorkerOptions{
		Endpoint:     s.Addr,
		Name:         "go-auth",
		DrainTimeout: 5 * time.Second,
		DialOptions:  []grpc.DialOption{braid.WithToken(s.Token)},
		OnEvent: func(ev braid.WorkerEvent) {
			if ev.Kind == braid.EventConnected {
				once.Do(func() { close(rw.connected) })
			}
		},
	})
	// Applied by Run with the worker's token.
	rw.W.RegisterWorkflow(braid.NewWorkflow("auth-work-go").Task(braid.Task{Name: "a", Type: "auth-work-go"}))
	braid.Handle(rw.W, "auth-work-go", func(_ context.Context, in map[string]int, _ *braid.TaskContext) (map[string]int, error) {
		return map[string]int{"doubled": in["n"] * 2}, nil
	})
	rw.start(t)

	run, _, err := c.Trigger(ctx, "auth-work-go", braid.TriggerOptions{Input: map[string]int{"n": 21}})
	if err != nil {
		t.Fatal(err)
	}
	done := waitState(t, c, run.ID, braid.RunSucceeded)
	want := map[string]any{"a": map[string]any{"doubled": float64(42)}}
	if got := mustJSON(t, done.Output); !reflect.DeepEqual(got, want) {
		t.Errorf("output %v, want %v", got, want)
	}
}

func TestWithAuthOnTheExampleWorkerTakesTheToken(t *testing.T) {
	for _, via := range []string{"-token", "BRAID_TOKEN"} {
		t.Run(via, func(t *testing.T) {
			t.Setenv("BRAID_TOKEN", "")
			s := startBraidAuth(t, "30s")
			c := dialWith(t, s, braid.WithToken(s.Token))
			ctx := timeout(t)
			var extra []string
			if via == "-token" {
				extra = []string{"-token", s.Token}
			} else {
				t.Setenv("BRAID_TOKEN", s.Token) // the child inherits it
			}
			w := startExample(t, s, "go-auth-example", "echo", 1, extra...)
			if _, _, err := c.ApplyWorkflow(ctx, braid.NewWorkflow("auth-example-go").Task(braid.Task{Name: "a", Type: "echo"})); err != nil {
				t.Fatal(err)
			}
			run, _, err := c.Trigger(ctx, "auth-example-go", braid.TriggerOptions{Input: map[string]string{"via": via}})
			if err != nil {
				t.Fatal(err)
			}
			waitState(t, c, run.ID, braid.RunSucceeded)
			w.waitLedger(t, "the accepted result", func(l ledgerLine) bool { return l.Event == "ack" && l.Code == 0 })
		})
	}
}
