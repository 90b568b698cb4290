package braid

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
)

func TestTheTokenComesFromWithTokenElseBraidToken(t *testing.T) {
	t.Setenv("BRAID_TOKEN", "")
	for _, c := range []struct {
		env  string
		opts []grpc.DialOption
		want string
	}{
		{"", nil, ""},
		{"brd_env", nil, "brd_env"},
		{"brd_env\n", nil, "brd_env"},
		{"brd_env", []grpc.DialOption{WithToken("brd_opt")}, "brd_opt"},
		{"brd_env", []grpc.DialOption{WithToken("")}, ""}, // an explicit empty token is none
		{"", []grpc.DialOption{WithToken("brd_a"), WithToken(" brd_b ")}, "brd_b"},
	} {
		t.Setenv("BRAID_TOKEN", c.env)
		got, err := resolveToken(c.opts)
		if err != nil || got != c.want {
			t.Errorf("env %q: got %q, %v; want %q", c.env, got, err, c.want)
		}
	}
	md, err := bearer("brd_x").GetRequestMetadata(context.Background())
	if err != nil || md["authorization"] != "Bearer brd_x" {
		t.Errorf("%v %v", md, err)
	}
}

func TestAMalformedTokenIsRefusedBeforeAnyCall(t *testing.T) {
	t.Setenv("BRAID_TOKEN", "")
	for token, what := range map[string]string{
		"brd_abc def":    "whitespace",
		"brd_abc\ndef":   "whitespace",
		"brd_abc\x00":    "a control character",
		"brd_é":          "a non-ASCII character",
		"Bearer brd_abc": "without 'Bearer '",
	} {
		if _, err := Dial(context.Background(), "127.0.0.1:1", WithToken(token)); err == nil || !strings.Contains(err.Error(), what) {
			t.Errorf("Dial with %q: %v", token, err)
		}
		w := NewWorker(WorkerOptions{Endpoint: "127.0.0.1:1", DialOptions: []grpc.DialOption{WithToken(token)}})
		Handle(w, "t", func(context.Context, any, *TaskContext) (any, error) { return nil, nil })
		if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "invalid token") {
			t.Errorf("Worker.Run with %q: %v", token, err)
		}
	}
	t.Setenv("BRAID_TOKEN", "brd_a b")
	if _, err := Dial(context.Background(), "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "invalid BRAID_TOKEN") {
		t.Errorf("Dial with a malformed BRAID_TOKEN: %v", err)
	}
}
