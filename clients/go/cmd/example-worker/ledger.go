package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/braid-dev/braid/clients/go/braid"
)

// Ledger is an append-only JSON-lines file: one line per task start, finish and result ack,
// synced to disk line by line.
type Ledger struct {
	worker   string
	mu       sync.Mutex
	file     *os.File
	workerID string
}

// OpenLedger opens (creates) path for appending.
func OpenLedger(path, worker string) (*Ledger, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open the ledger: %w", err)
	}
	return &Ledger{worker: worker, file: f}, nil
}

// Close closes the file.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.file.Close()
}

// Record writes the line of ev, if it has one: "start", "finish" (outcome "succeeded" or
// "failed") or "ack" (outcome "accepted" or "rejected", with the code).
func (l *Ledger) Record(ev braid.WorkerEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := map[string]any{}
	switch ev.Kind {
	case braid.EventConnected:
		l.workerID = ev.WorkerID
		return
	case braid.EventTaskStarted:
		line["event"] = "start"
		line["outcome"] = nil
	case braid.EventTaskFinished:
		line["event"] = "finish"
		line["started"] = ev.Started
		if ev.Error == nil {
			line["outcome"] = "succeeded"
		} else {
			line["outcome"] = "failed"
			line["error_type"] = ev.Error.Type
			line["retryable"] = ev.Error.Retryable
			line["message"] = ev.Error.Message
		}
	case braid.EventResultAcked:
		line["event"] = "ack"
		line["outcome"] = map[bool]string{true: "accepted", false: "rejected"}[ev.Accepted]
		line["code"] = ev.Code
		line["reason"] = ev.Reason
	default:
		return
	}
	line["task_id"] = ev.Task.TaskID
	line["attempt"] = ev.Task.Attempt
	line["lease_id"] = ev.Task.LeaseID
	line["task_type"] = ev.Task.TaskType
	line["worker"] = l.worker
	line["worker_id"] = l.workerID
	line["ts"] = time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	b, err := json.Marshal(line)
	if err == nil {
		b = append(b, '\n')
		if _, err = l.file.Write(b); err == nil {
			err = l.file.Sync()
		}
	}
	if err != nil {
		slog.Error("cannot write the ledger", "error", err)
	}
}
