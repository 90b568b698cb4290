// Package e2e tests the Go SDK against a real control plane: each test starts its own
// `braid dev` (from $BRAID_BIN) and, where needed, the example worker built by TestMain.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/braid-dev/braid/clients/go/braid"
)

// How long any one wait may take before the test fails.
const (
	startTimeout = 30 * time.Second
	waitTimeout  = 30 * time.Second
)

var exampleWorkerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "braid-go-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exampleWorkerBin = filepath.Join(dir, "example-worker")
	build := exec.Command("go", "build", "-o", exampleWorkerBin, "github.com/braid-dev/braid/clients/go/cmd/example-worker")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the example worker:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lines reads r line by line into a channel (closed at EOF), copying each line to sink.
func lines(r io.Reader, sink io.Writer) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if sink != nil {
				fmt.Fprintln(sink, sc.Text())
			}
			ch <- sc.Text()
		}
	}()
	return ch
}

// waitLine waits for a line satisfying match.
func waitLine(t *testing.T, ch <-chan string, what string, match func(string) bool) string {
	t.Helper()
	deadline := time.After(startTimeout)
	for {
		select {
		case line, ok := <-ch:
			if !ok {
				t.Fatalf("%s: the output ended first", what)
			}
			if match(line) {
				return line
			}
		case <-deadline:
			t.Fatalf("%s: timed out after %s", what, startTimeout)
		}
	}
}

// dumpOnFailure logs the tail of a log file when the test failed.
func dumpOnFailure(t *testing.T, what, path string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		data, _ := os.ReadFile(path)
		text := string(data)
		if len(text) > 6000 {
			text = "…" + text[len(text)-6000:]
		}
		t.Logf("--- %s (%s) ---\n%s", what, path, text)
	})
}

// stop sends SIGTERM, waits up to 10s, then kills.
func stop(cmd *exec.Cmd, exited <-chan struct{}) {
	if cmd.Process == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// server is a `braid dev` started for one test.
type server struct {
	Addr     string
	Token    string // the admin token it printed, when auth is on
	auth     bool
	tlsArgs  []string // --tls-cert, --tls-key (and --tls-client-ca): the gRPC port serves TLS
	dir      string
	leaseTTL string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// startBraid starts `braid dev` with its own data dir on free ports and stops it (SIGTERM)
// when the test ends.
func startBraid(t *testing.T, leaseTTL string) *server {
	t.Helper()
	return startBraidWith(t, leaseTTL, false)
}

// startBraidAuth is startBraid with auth on (no --insecure); s.Token is the admin token
// `braid dev` printed ("Token brd_…").
func startBraidAuth(t *testing.T, leaseTTL string) *server {
	t.Helper()
	return startBraidWith(t, leaseTTL, true)
}

func startBraidWith(t *testing.T, leaseTTL string, auth bool) *server {
	t.Helper()
	s := &server{dir: t.TempDir(), leaseTTL: leaseTTL, auth: auth}
	s.start(t, "0")
	t.Cleanup(func() { s.stop() })
	dumpOnFailure(t, "braid dev", filepath.Join(s.dir, "braid.log"))
	return s
}

func (s *server) start(t *testing.T, port string) {
	t.Helper()
	bin := os.Getenv("BRAID_BIN")
	if bin == "" {
		t.Fatal("BRAID_BIN is not set: these tests need the braid binary. Run them via scripts/test or " +
			"clients/go/test.sh with BRAID_BIN=/path/to/braid (build it with " +
			"`CARGO_TARGET_DIR=$HOME/.cache/braid/target cargo build --bin braid`)")
	}
	logFile, err := os.OpenFile(filepath.Join(s.dir, "braid.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"dev", "--data-dir", filepath.Join(s.dir, "data"), "--grpc-port", port, "--http-port", "0",
		"--no-demo", "--lease-ttl", s.leaseTTL}
	if !s.auth {
		args = append(args, "--insecure")
	}
	args = append(args, s.tlsArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "RUST_LOG=info")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	out := lines(stdout, logFile)
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	line := waitLine(t, out, "braid dev to print its gRPC address", func(l string) bool { return strings.HasPrefix(l, "gRPC ") })
	if s.auth {
		tokenLine := waitLine(t, out, "braid dev to print its admin token", func(l string) bool { return strings.HasPrefix(l, "Token brd_") })
		s.Token = strings.TrimSpace(strings.TrimPrefix(tokenLine, "Token"))
	}
	go func() {
		for range out {
		}
		logFile.Close()
	}()
	s.Addr = strings.TrimSpace(strings.TrimPrefix(line, "gRPC"))
}

// Endpoint is s.Addr, as "https://host:port" when s serves TLS.
func (s *server) Endpoint() string {
	if len(s.tlsArgs) > 0 {
		return "https://" + s.Addr
	}
	return s.Addr
}

func (s *server) stop() { stop(s.cmd, s.exited) }

// restart stops the server and starts it again on the same port and data.
func (s *server) restart(t *testing.T) {
	t.Helper()
	s.stop()
	_, port, _ := strings.Cut(s.Addr, ":")
	s.start(t, port)
}

// dial makes a client of s, closed when the test ends.
func dial(t *testing.T, s *server) *braid.Client {
	t.Helper()
	c, err := braid.Dial(context.Background(), s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// timeout is a context bounded by waitTimeout, cancelled when the test ends.
func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// runWorker runs w in the background until the test ends (then drains it and waits), and
// waits for its first connection. opts.OnEvent is wrapped by the caller before NewWorker.
type runningWorker struct {
	W         *braid.Worker
	connected chan struct{}
}

// newWorker makes an in-process worker on s; call start after registering handlers.
func newWorker(t *testing.T, s *server, name string, slots int, onEvent func(braid.WorkerEvent)) *runningWorker {
	rw := &runningWorker{connected: make(chan struct{})}
	var once sync.Once
	rw.W = braid.NewWorker(braid.WorkerOptions{
		Endpoint:     s.Addr,
		Name:         name,
		Slots:        slots,
		Labels:       map[string]string{"test": t.Name()},
		DrainTimeout: 5 * time.Second,
		OnEvent: func(ev braid.WorkerEvent) {
			if ev.Kind == braid.EventConnected {
				once.Do(func() { close(rw.connected) })
			}
			if onEvent != nil {
				onEvent(ev)
			}
		},
	})
	return rw
}

func (rw *runningWorker) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rw.W.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker %s: Run: %v", rw.W.Name(), err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("worker %s did not stop", rw.W.Name())
		}
	})
	select {
	case <-rw.connected:
	case err := <-done:
		t.Fatalf("worker %s stopped before connecting: %v", rw.W.Name(), err)
	case <-time.After(startTimeout):
		t.Fatalf("worker %s did not connect within %s", rw.W.Name(), startTimeout)
	}
}

// child is an example-worker process.
type child struct {
	Name   string
	Ledger string
	cmd    *exec.Cmd
	exited chan struct{}
	state  *os.ProcessState
}

// startExample starts the example worker on s serving types and waits for its readiness line.
func startExample(t *testing.T, s *server, name, types string, slots int, extra ...string) *child {
	t.Helper()
	dir := t.TempDir()
	c := &child{Name: name, Ledger: filepath.Join(dir, "ledger.jsonl"), exited: make(chan struct{})}
	args := append([]string{"-endpoint", s.Endpoint(), "-name", name, "-slots", fmt.Sprint(slots), "-types", types,
		"-ledger", c.Ledger}, extra...)
	c.cmd = exec.Command(exampleWorkerBin, args...)
	logPath := filepath.Join(dir, "worker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = logFile
	c.cmd.Env = append(os.Environ(), "BRAID_LOG=debug")
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := lines(stdout, nil)
	go func() {
		_ = c.cmd.Wait()
		c.state = c.cmd.ProcessState
		logFile.Close()
		close(c.exited)
	}()
	t.Cleanup(func() { stop(c.cmd, c.exited) })
	dumpOnFailure(t, "example worker "+name, logPath)
	dumpOnFailure(t, "ledger of "+name, c.Ledger)
	want := "worker " + name + " connected"
	waitLine(t, out, want, func(l string) bool { return strings.TrimSpace(l) == want })
	go func() {
		for range out {
		}
	}()
	return c
}

func (c *child) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, c.Name, err)
	}
}

// wait waits for the process to exit and returns its state.
func (c *child) wait(t *testing.T) *os.ProcessState {
	t.Helper()
	select {
	case <-c.exited:
		return c.state
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not exit within %s", c.Name, waitTimeout)
		return nil
	}
}

// ledgerLine is one line of an example worker's ledger.
type ledgerLine struct {
	Event     string `json:"event"`
	TaskID    string `json:"task_id"`
	Attempt   uint32 `json:"attempt"`
	LeaseID   string `json:"lease_id"`
	Worker    string `json:"worker"`
	Outcome   string `json:"outcome"`
	Code      int32  `json:"code"`
	ErrorType string `json:"error_type"`
	TS        string `json:"ts"`
}

func (c *child) lines(t *testing.T) []ledgerLine {
	t.Helper()
	data, err := os.ReadFile(c.Ledger)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []ledgerLine
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var line ledgerLine
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			// A line being written; the next read sees it whole.
			continue
		}
		out = append(out, line)
	}
	return out
}

// waitLedger waits until some ledger line satisfies pred and returns it.
func (c *child) waitLedger(t *testing.T, what string, pred func(ledgerLine) bool) ledgerLine {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, l := range c.lines(t) {
			if pred(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s in the ledger of %s", waitTimeout, what, c.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitState follows the run's events until GetRun shows it in state want (or fails the test).
func waitState(t *testing.T, c *braid.Client, runID string, want braid.RunState) *braid.Run {
	t.Helper()
	ctx := timeout(t)
	var after uint64
	var last *braid.Run
	for {
		for ev, err := range c.WatchRun(ctx, runID, after) {
			if err != nil {
				break
			}
			after = ev.Sequence
			if ev.Kind != "run_created" && strings.HasPrefix(ev.Kind, "run_") {
				break
			}
		}
		run, err := c.GetRun(ctx, runID)
		if err == nil {
			last = run
			if run.State == want {
				return run
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("run %s is not %s after %s; last seen: %+v", runID, want, waitTimeout, last)
		}
		if last != nil && last.State.Terminal() {
			// A terminal run's watch ends at once; poll until a redrive resumes it.
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func mustJSON(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not JSON: %q: %v", raw, err)
	}
	return v
}
