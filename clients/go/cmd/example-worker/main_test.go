package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/braid-dev/braid/clients/go/braid"
)

func TestSleepIsCancellable(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(fmt.Errorf("%w: run cancelled", braid.ErrCancelled))
	_, err := sleep(ctx, sleepInput{MS: 600_000}, &braid.TaskContext{})
	var te *braid.TaskError
	if !errors.As(err, &te) || te.Type != "cancelled" || !te.Retryable {
		t.Fatalf("%v", err)
	}
	out, err := sleep(context.Background(), sleepInput{MS: 1}, &braid.TaskContext{})
	if err != nil || fmt.Sprint(out) != "map[slept_ms:1]" {
		t.Fatalf("%v %v", out, err)
	}
}

func TestFailInjectsWhatItIsAskedTo(t *testing.T) {
	for _, c := range []struct {
		in        *failInput
		attempt   uint32
		fails     bool
		retryable bool
	}{
		{nil, 1, false, false},
		{&failInput{Times: 1}, 1, true, true},
		{&failInput{Times: 1}, 2, false, false},
		{&failInput{Times: 2, Fatal: true}, 2, true, false},
		{&failInput{Always: true}, 9, true, true},
	} {
		out, err := fail(context.Background(), c.in, &braid.TaskContext{Attempt: c.attempt})
		var te *braid.TaskError
		if c.fails != (err != nil) || (err != nil && (!errors.As(err, &te) || te.Type != "injected" || te.Retryable != c.retryable)) {
			t.Errorf("%+v attempt %d: %v %v", c.in, c.attempt, out, err)
		}
	}
}

func TestChainStep(t *testing.T) {
	tc := &braid.TaskContext{Deps: map[string]json.RawMessage{"a": json.RawMessage(`{"value": 6, "path": ["python"]}`)}}
	out, err := chainStep(context.Background(), nil, tc)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	if string(b) != `{"path":["python","go"],"value":36}` {
		t.Fatalf("%s", b)
	}
	_, err = chainStep(context.Background(), nil, &braid.TaskContext{})
	var te *braid.TaskError
	if !errors.As(err, &te) || te.Retryable || te.Type != "bad_input" {
		t.Fatalf("%v", err)
	}
}
