// Command example-worker serves Braid's demo task types (noop, echo, sleep, fail, go-c) with
// the Go SDK, for tests and drills.
//
//	example-worker -endpoint 127.0.0.1:7400 -name go-1 -slots 2 -types noop,echo,sleep,fail,go-c -ledger ledger.jsonl
//
// It prints "worker NAME connected" on stdout each time a stream is established, logs to stderr
// (BRAID_LOG=debug|info|warn|error), and drains on SIGINT/SIGTERM (a second signal stops it at
// once). With -ledger it appends one JSON line per task start, finish and result ack. -token
// (default $BRAID_TOKEN) is the API token, a worker token of the tenant whose tasks to serve.
// With an https:// endpoint, -ca-cert (default $BRAID_CA_CERT) is the CA the server's
// certificate must chain to, and -client-cert and -client-key ($BRAID_CLIENT_CERT,
// $BRAID_CLIENT_KEY) the worker's certificate for a server that requires one (mTLS).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/braid-dev/braid/clients/go/braid"
	"google.golang.org/grpc"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "example-worker:", err)
		os.Exit(1)
	}
}

func run() error {
	endpoint := os.Getenv("BRAID_ENDPOINT")
	if endpoint == "" {
		endpoint = braid.DefaultEndpoint
	}
	flag.StringVar(&endpoint, "endpoint", endpoint, "the control plane's gRPC endpoint: host:port, http://host:port or https://host:port (env BRAID_ENDPOINT)")
	name := flag.String("name", "", "the worker's name (default HOSTNAME-PID)")
	slots := flag.Int("slots", 4, "tasks run at once")
	types := flag.String("types", "noop,echo,sleep,fail", "task types to serve, comma-separated: "+strings.Join(sortedKinds(), ","))
	ledgerPath := flag.String("ledger", "", "append one JSON line per task start, finish and result ack to this file")
	drainTimeout := flag.Duration("drain-timeout", 30*time.Second, "how long a drain (SIGTERM/SIGINT) lets running tasks finish")
	heal := flag.Bool("heal", false, "serve fail as if its bug were fixed: it succeeds whatever its input says")
	token := flag.String("token", os.Getenv("BRAID_TOKEN"), "API token, a worker token of the tenant whose tasks to serve (env BRAID_TOKEN)")
	caCert := flag.String("ca-cert", os.Getenv("BRAID_CA_CERT"), "PEM CA the server's certificate must chain to, for an https:// endpoint (env BRAID_CA_CERT; default: the system roots)")
	clientCert := flag.String("client-cert", os.Getenv("BRAID_CLIENT_CERT"), "PEM client certificate for a server that requires one (mTLS); with -client-key (env BRAID_CLIENT_CERT)")
	clientKey := flag.String("client-key", os.Getenv("BRAID_CLIENT_KEY"), "PEM private key of -client-cert (env BRAID_CLIENT_KEY)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", flag.Args())
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(os.Getenv("BRAID_LOG"))}))
	slog.SetDefault(logger)
	if *name == "" {
		*name = braid.DefaultWorkerName()
	}
	var ledger *Ledger
	if *ledgerPath != "" {
		var err error
		if ledger, err = OpenLedger(*ledgerPath, *name); err != nil {
			return err
		}
		defer ledger.Close()
	}
	workerName := *name
	w := braid.NewWorker(braid.WorkerOptions{
		Endpoint:     endpoint,
		Name:         workerName,
		Slots:        *slots,
		DrainTimeout: *drainTimeout,
		Logger:       logger,
		DialOptions:  []grpc.DialOption{braid.WithToken(*token), braid.WithTLSFiles(*caCert, *clientCert, *clientKey)},
		OnEvent: func(ev braid.WorkerEvent) {
			if ev.Kind == braid.EventConnected {
				fmt.Printf("worker %s connected\n", workerName)
			}
			if ledger != nil {
				ledger.Record(ev)
			}
		},
	})
	seen := map[string]bool{}
	for _, t := range strings.Split(*types, ",") {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		register, ok := kinds[t]
		if !ok {
			return fmt.Errorf("unknown task type %q (known: %s)", t, strings.Join(sortedKinds(), ", "))
		}
		register(w, *heal)
	}
	ctx, stop := braid.SignalContext()
	defer stop()
	return w.Run(ctx)
}

func logLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// kinds registers each task type the example serves.
var kinds = map[string]func(w *braid.Worker, heal bool){
	// noop returns {}, whatever the input.
	"noop": func(w *braid.Worker, _ bool) {
		braid.Handle(w, "noop", func(context.Context, json.RawMessage, *braid.TaskContext) (map[string]any, error) {
			return map[string]any{}, nil
		})
	},
	// echo returns {"input": <input>, "deps": <dependency outputs>}.
	"echo": func(w *braid.Worker, _ bool) {
		braid.Handle(w, "echo", func(_ context.Context, in json.RawMessage, tc *braid.TaskContext) (any, error) {
			return map[string]any{"input": in, "deps": tc.Deps}, nil
		})
	},
	"sleep": func(w *braid.Worker, _ bool) { braid.Handle(w, "sleep", sleep) },
	"fail": func(w *braid.Worker, heal bool) {
		if heal {
			braid.Handle(w, "fail", func(_ context.Context, _ json.RawMessage, tc *braid.TaskContext) (any, error) {
				return map[string]any{"attempt": tc.Attempt, "healed": true}, nil
			})
			return
		}
		braid.Handle(w, "fail", fail)
	},
	"go-c": func(w *braid.Worker, _ bool) { braid.Handle(w, "go-c", chainStep) },
}

func sortedKinds() []string {
	var out []string
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type sleepInput struct {
	MS int64 `json:"ms"`
}

// sleep sleeps {"ms": N} milliseconds unless cancelled, and returns {"slept_ms": N}; when
// cancelled it fails with a retryable error of type "cancelled".
func sleep(ctx context.Context, in sleepInput, _ *braid.TaskContext) (any, error) {
	t := time.NewTimer(time.Duration(in.MS) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return map[string]any{"slept_ms": in.MS}, nil
	case <-ctx.Done():
		why := fmt.Sprint(context.Cause(ctx))
		return nil, &braid.TaskError{Message: "cancelled", Type: "cancelled", Retryable: true, Details: map[string]string{"why": why}}
	}
}

type failInput struct {
	Times  uint32 `json:"times"`
	Fatal  bool   `json:"fatal"`
	Always bool   `json:"always"`
}

// fail fails on purpose (type "injected"): always with {"always": true}, else while the attempt
// is at most times (fatally with "fatal": true); then returns {"attempt": N}.
func fail(_ context.Context, in *failInput, tc *braid.TaskContext) (any, error) {
	if in == nil {
		in = &failInput{}
	}
	if in.Always {
		return nil, &braid.TaskError{Message: fmt.Sprintf("injected failure (always), attempt %d", tc.Attempt), Type: "injected", Retryable: true}
	}
	if tc.Attempt <= in.Times {
		return nil, &braid.TaskError{Message: fmt.Sprintf("injected failure %d of %d", tc.Attempt, in.Times), Type: "injected", Retryable: !in.Fatal}
	}
	return map[string]any{"attempt": tc.Attempt}, nil
}

// chainStep is the Go step of the polyglot chain: from deps.a = {"value": V, "path": P} it
// returns {"value": V*V, "path": P + ["go"]}.
func chainStep(_ context.Context, _ json.RawMessage, tc *braid.TaskContext) (any, error) {
	var a struct {
		Value *int64            `json:"value"`
		Path  []json.RawMessage `json:"path"`
	}
	if err := tc.Dep("a", &a); err != nil {
		return nil, err
	}
	if a.Value == nil {
		return nil, braid.Fatal(fmt.Errorf("dependency a has no integer value"))
	}
	path := append(a.Path, json.RawMessage(`"go"`))
	return map[string]any{"value": *a.Value * *a.Value, "path": path}, nil
}
