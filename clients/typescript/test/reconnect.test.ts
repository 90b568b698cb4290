// Reconnection: the control plane restarts while a handler runs; the worker reconnects with
// backoff, its heartbeat on the new stream keeps the lease, and the result lands on attempt 1.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { BraidClient, RunState, Worker, parseJson, type TaskContext, type WorkerEvent } from "../src/index";
import { Dev, deferred, freePort, waitFor, within } from "./harness";

describe("reconnection", () => {
  let dev: Dev;
  let client: BraidClient;
  let worker: Worker | undefined;

  before(async () => {
    // A fixed port, so the restarted server is at the same address; a lease TTL long enough
    // to cover the restart.
    dev = await Dev.start({ leaseTtl: "5s", grpcPort: await freePort() });
    client = new BraidClient(dev.address);
  });

  after(async () => {
    worker?.abort();
    client?.close();
    await dev?.stop();
  });

  it("a worker keeps its lease across a server restart and its result is accepted", async () => {
    const events: WorkerEvent[] = [];
    const connected = deferred();
    const handlerStarted = deferred();
    const release = deferred();
    worker = new Worker({
      endpoint: dev.address,
      name: "reconnecting",
      logger: process.env.BRAID_TEST_VERBOSE === "1" ? undefined : false,
      reconnectBackoff: { initial: "50ms", max: "500ms" },
      onEvent: (e) => {
        events.push(e);
        if (e.type === "connected") connected.resolve();
      },
    });
    worker.task("rc-hold", async (_input: unknown, ctx: TaskContext) => {
      handlerStarted.resolve();
      await within("the test to release the handler", release.promise, 30_000);
      return { attempt: ctx.attempt, cancelled: ctx.signal.aborted };
    });
    const done = worker.run({ signals: false });
    await within("the worker to connect", connected.promise, 20_000);
    await client.applyWorkflow({ name: "rc", tasks: [{ name: "h", task_type: "rc-hold" }] });
    const { run } = await client.trigger("rc");
    await within("the handler to start", handlerStarted.promise, 20_000);

    await dev.restart();
    await waitFor("the worker to reconnect", () => events.filter((e) => e.type === "connected").length >= 2, 20_000);
    assert.ok(events.some((e) => e.type === "disconnected"));
    release.resolve();

    const finished = await client.waitForRun(run.id, { timeoutMs: 30_000 });
    assert.equal(finished.state, RunState.RUN_STATE_SUCCEEDED, finished.reason);
    const h = finished.tasks[0];
    assert.deepEqual(
      h.attempts.map((a) => [a.attempt, a.outcome]),
      [[1, "succeeded"]],
    );
    assert.deepEqual(parseJson(h.outputJson), { attempt: 1, cancelled: false });
    await within("the worker to drain", worker.stop(), 15_000);
    await done;
    const stats = worker.stats();
    assert.deepEqual([stats.connects, stats.accepted, stats.rejected], [2, 1, 0]);
  });
});
