// example-worker child processes against a real `braid dev --lease-ttl 1s`: a SIGTERM drain, a
// stale result from a paused worker, and the polyglot chain step.

import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { BraidClient, RunState, TaskState, Worker, parseJson, type Run, type TaskContext } from "../src/index";
import { Dev, deferred, within, type ExampleWorker } from "./harness";

const RUN_TIMEOUT_MS = 45_000;

function task(run: Run, name: string) {
  const t = run.tasks.find((x) => x.name === name);
  assert.ok(t, `no task ${name} in run ${run.id}`);
  return t;
}

describe("example-worker processes", () => {
  let dev: Dev;
  let client: BraidClient;
  let workers: ExampleWorker[] = [];
  let cleanup: Array<() => void> = [];

  beforeEach(async () => {
    dev = await Dev.start({ leaseTtl: "1s" });
    client = new BraidClient(dev.address);
    workers = [];
  });

  afterEach(async () => {
    for (const f of cleanup.splice(0)) f();
    for (const w of workers) await w.proc.stop();
    client?.close();
    await dev?.stop();
  });

  it("a SIGTERM drain finishes a task longer than the lease TTL on attempt 1, never reassigned", async () => {
    const w = await dev.exampleWorker("drainer", 1, "sleep");
    workers.push(w);
    await client.applyWorkflow({ name: "drain", tasks: [{ name: "s", task_type: "sleep" }] });
    // 3 s is three lease TTLs: only heartbeats sent while draining keep the lease.
    const { run } = await client.trigger("drain", { input: { ms: 3000 } });
    await w.waitForLedger("the task's start", (l) => l.event === "start");
    w.proc.signal("SIGTERM");
    const exit = await w.proc.wait(30_000);
    assert.deepEqual(exit, { code: 0, signal: null }, w.proc.logTail());
    const finished = await client.getRun(run.id);
    assert.equal(finished.state, RunState.RUN_STATE_SUCCEEDED, finished.reason);
    const s = task(finished, "s");
    assert.equal(s.attempts.length, 1, "never reassigned");
    assert.equal(s.attempts[0].outcome, "succeeded");
    assert.deepEqual(parseJson(s.outputJson), { slept_ms: 3000 });
    const acks = w.lines().filter((l) => l.event === "ack");
    assert.deepEqual(
      acks.map((l) => [l.attempt, l.outcome, l.code]),
      [[1, "accepted", 0]],
    );
  });

  it("a paused worker's late result is rejected as stale (code 9) and the output comes from attempt 2", async () => {
    const zombie = await dev.exampleWorker("zombie", 1, "sleep");
    workers.push(zombie);
    await client.applyWorkflow({
      name: "slow",
      tasks: [{ name: "s", task_type: "sleep", retry: { max_attempts: 3, initial_backoff: "10ms" } }],
    });
    const { run } = await client.trigger("slow", { input: { ms: 2500 } });
    await zombie.waitForLedger("the zombie's start", (l) => l.event === "start");
    zombie.proc.signal("SIGSTOP");
    const fresh = await dev.exampleWorker("fresh", 1, "sleep");
    workers.push(fresh);
    const finished = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(finished.state, RunState.RUN_STATE_SUCCEEDED, finished.reason);
    zombie.proc.signal("SIGCONT");
    const rejected = await zombie.waitForLedger("the zombie's rejected ack", (l) => l.event === "ack");
    assert.deepEqual([rejected.attempt, rejected.outcome, rejected.code], [1, "rejected", 9]);

    const after = await client.getRun(run.id);
    const s = task(after, "s");
    assert.deepEqual(
      s.attempts.map((a) => [a.attempt, a.outcome]),
      [
        [1, "lease_expired"],
        [2, "succeeded"],
      ],
    );
    const accepted = fresh.lines().filter((l) => l.event === "ack");
    assert.deepEqual(
      accepted.map((l) => [l.attempt, l.outcome, l.code]),
      [[2, "accepted", 0]],
    );
    // The recorded output is attempt 2's, from the fresh worker's stream.
    assert.equal(s.attempts[1].workerId, accepted[0].worker_id);
    assert.equal(s.attempt, 2);
    assert.deepEqual(parseJson(s.outputJson), { slept_ms: 2500 });
    // The zombie never resent its rejected result.
    assert.equal(zombie.lines().filter((l) => l.event === "ack").length, 1);
  });

  it("ts-b extends a polyglot chain from its dependency's output", async () => {
    const w = await dev.exampleWorker("poly", 2, "ts-b,echo");
    workers.push(w);
    const connected = deferred();
    const stepA = new Worker({
      endpoint: dev.address,
      name: "step-a",
      logger: false,
      onEvent: (e) => e.type === "connected" && connected.resolve(),
    });
    stepA.task("chain-a", (input: { start: number }, _ctx: TaskContext) => ({ value: input.start, path: ["rust"] }));
    const stopped = stepA.run({ signals: false });
    cleanup.push(() => stepA.abort());
    await within("step-a to connect", connected.promise, 20_000);
    await client.applyWorkflow({
      name: "chain",
      tasks: [
        { name: "a", task_type: "chain-a" },
        { name: "b", task_type: "ts-b", depends_on: ["a"] },
      ],
    });
    const { run } = await client.trigger("chain", { input: { start: 1 } });
    const finished = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(finished.state, RunState.RUN_STATE_SUCCEEDED, finished.reason);
    assert.deepEqual(parseJson(task(finished, "b").outputJson), { value: 11, path: ["rust", "typescript"] });
    assert.equal(task(finished, "b").state, TaskState.TASK_STATE_SUCCEEDED);
    await within("step-a to drain", stepA.stop(), 15_000);
    await stopped;
  });
});
