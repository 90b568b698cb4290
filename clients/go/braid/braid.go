// Package braid is the Go client and worker SDK of Braid, a distributed workflow orchestrator.
//
// A [Client] authors workflows, triggers and follows runs, cancels them and manages dead
// letters over gRPC. A [Worker] serves task types over one WorkerService.Connect stream: it
// sends Hello, heartbeats at the server's interval listing the leases it holds, runs typed
// handlers registered with [Handle] (at most Slots at once), reports results fenced by
// (task_id, attempt, lease_id), reconnects with jittered exponential backoff, and drains
// gracefully when the context given to [Worker.Run] is cancelled.
//
//	c, _ := braid.Dial(ctx, "127.0.0.1:7400")
//	c.ApplyWorkflow(ctx, braid.NewWorkflow("thumbnails").Task(braid.Task{Name: "fetch", Type: "http-get"}))
//	run, created, _ := c.Trigger(ctx, "thumbnails", braid.TriggerOptions{Input: map[string]any{"url": "a.png"}})
//
//	w := braid.NewWorker(braid.WorkerOptions{Endpoint: "127.0.0.1:7400", Slots: 4})
//	braid.Handle(w, "http-get", func(ctx context.Context, in FetchInput, tc *braid.TaskContext) (FetchOutput, error) { ... })
//	ctx, stop := braid.SignalContext()
//	defer stop()
//	err := w.Run(ctx) // drains on SIGINT/SIGTERM
package braid

// SDKVersion is sent in Hello.sdk_version.
const SDKVersion = "0.1.0"

// DefaultEndpoint is used when no endpoint is given.
const DefaultEndpoint = "127.0.0.1:7400"
