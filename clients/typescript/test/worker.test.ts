// The worker SDK in this process against a real `braid dev`: a DAG with dependency outputs,
// retries and dead letters (and a redrive), cancellation reaching the handler's AbortSignal.

import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  BraidClient,
  BraidError,
  Code,
  FatalError,
  WorkerRefusedError,
  RunState,
  TaskError,
  TaskState,
  Worker,
  Workflow,
  parseJson,
  type CancelReason,
  type Run,
  type TaskContext,
  type WorkerEvent,
} from "../src/index";
import { Dev, deferred, waitFor, within } from "./harness";

const RUN_TIMEOUT_MS = 30_000;

/** Every worker a test started, aborted after it (so a failed test leaves nothing running). */
const started: Worker[] = [];

function task(run: Run, name: string) {
  const t = run.tasks.find((x) => x.name === name);
  assert.ok(t, `no task ${name} in run ${run.id}`);
  return t;
}

/** Starts a worker in this process and waits until it is connected. */
async function startWorker(dev: Dev, setup: (w: Worker) => void, events: WorkerEvent[] = []): Promise<{ worker: Worker; done: Promise<void> }> {
  const connected = deferred();
  const worker = new Worker({
    endpoint: dev.address,
    name: "in-process",
    slots: 4,
    logger: process.env.BRAID_TEST_VERBOSE === "1" ? undefined : false,
    drainTimeout: "10s",
    onEvent: (e) => {
      events.push(e);
      if (e.type === "connected") connected.resolve();
    },
  });
  setup(worker);
  started.push(worker);
  const done = worker.run({ signals: false });
  await within("the worker to connect", Promise.race([connected.promise, done]), 20_000);
  return { worker, done };
}

describe("Worker against braid dev", () => {
  let dev: Dev;
  let client: BraidClient;

  before(async () => {
    dev = await Dev.start({ leaseTtl: "1s" });
    client = new BraidClient(dev.address);
  });

  afterEach(() => {
    for (const w of started.splice(0)) w.abort();
  });

  after(async () => {
    client?.close();
    await dev?.stop();
  });

  it("serves a small DAG, passing dependency outputs along", async () => {
    const seen: Array<{ name: string; attempt: number; maxAttempts: number; deadline?: Date }> = [];
    const wf = new Workflow("dag", { description: "a diamond" })
      .task({ name: "a", taskType: "dag-step" })
      .task({ name: "b1", taskType: "dag-step", dependsOn: ["a"] })
      .task({ name: "b2", taskType: "dag-step", dependsOn: ["a"], timeout: "45s" })
      .task({ name: "c", taskType: "dag-join", dependsOn: ["b1", "b2"], retry: { maxAttempts: 2 } });
    const { worker, done } = await startWorker(dev, (w) => {
      w.registerWorkflow(wf);
      w.task<{ x: number }, { from: string; x: number; deps: Record<string, unknown> }>("dag-step", (input, ctx) => {
        seen.push({ name: ctx.taskName, attempt: ctx.attempt, maxAttempts: ctx.maxAttempts, deadline: ctx.deadline });
        return { from: ctx.taskName, x: input.x + 1, deps: { ...ctx.deps } };
      });
      w.task("dag-join", async (_input: unknown, ctx: TaskContext) => {
        const b1 = ctx.dep<{ x: number }>("b1");
        const b2 = ctx.dep<{ x: number }>("b2");
        assert.throws(() => ctx.dep("a"), (e: unknown) => e instanceof FatalError && e.type === "bad_input");
        return { sum: b1.x + b2.x, names: Object.keys(ctx.deps).sort(), last: ctx.isLastAttempt };
      });
    });
    // registerWorkflow applied it before the worker connected.
    assert.equal((await client.getWorkflow("dag")).version, 1);

    const { run } = await client.trigger("dag", { input: { x: 1 } });
    const finished = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(finished.state, RunState.RUN_STATE_SUCCEEDED, finished.reason);
    const a = parseJson(task(finished, "a").outputJson);
    assert.deepEqual(a, { from: "a", x: 2, deps: {} });
    assert.deepEqual(parseJson(task(finished, "b1").outputJson), { from: "b1", x: 2, deps: { a } });
    assert.deepEqual(parseJson(task(finished, "c").outputJson), { sum: 4, names: ["b1", "b2"], last: false });
    // The run output holds the tasks nothing depends on.
    assert.deepEqual(parseJson(finished.outputJson), { c: { sum: 4, names: ["b1", "b2"], last: false } });
    const b2 = seen.find((s) => s.name === "b2");
    assert.ok(b2?.deadline, "the assignment carries a deadline");
    assert.ok(b2.deadline.getTime() - Date.now() < 45_000 && b2.deadline.getTime() > Date.now());
    assert.deepEqual([b2.attempt, b2.maxAttempts], [1, 3]);

    await within("the worker to drain", worker.stop(), 15_000);
    await done;
    const stats = worker.stats();
    assert.deepEqual([stats.started, stats.succeeded, stats.accepted, stats.rejected, stats.inFlight], [4, 4, 4, 0, 0]);
  });

  it("retries a failing task, dead-letters it after max_attempts, and a redrive resumes the run", async () => {
    let healed = false;
    const attempts: number[] = [];
    const { worker, done } = await startWorker(dev, (w) => {
      w.task("dl-fail", (_input: unknown, ctx: TaskContext) => {
        attempts.push(ctx.attempt);
        if (!healed) throw new TaskError(`injected failure, attempt ${ctx.attempt}`, { type: "injected", details: { n: ctx.attempt } });
        return { attempt: ctx.attempt };
      });
      w.task("dl-after", () => "after");
    });
    await client.applyWorkflow({
      name: "dl",
      tasks: [
        { name: "f", task_type: "dl-fail", retry: { max_attempts: 2, initial_backoff: "50ms", jitter: false } },
        { name: "after", task_type: "dl-after", depends_on: ["f"] },
      ],
    });
    const { run } = await client.trigger("dl", { input: {} });
    const failed = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(failed.state, RunState.RUN_STATE_FAILED);
    const f = task(failed, "f");
    assert.equal(f.state, TaskState.TASK_STATE_FAILED);
    assert.equal(f.attempt, 2);
    assert.deepEqual(
      f.attempts.map((x) => [x.attempt, x.outcome, x.error?.type]),
      [
        [1, "failed", "injected"],
        [2, "failed", "injected"],
      ],
    );
    assert.equal(f.lastError?.retryable, true);
    assert.deepEqual(parseJson(f.lastError?.detailsJson), { n: 2 });
    assert.equal(task(failed, "after").state, TaskState.TASK_STATE_SKIPPED);
    const { deadLetters } = await client.listDeadLetters({ workflowName: "dl" });
    assert.equal(deadLetters.length, 1);
    assert.equal(deadLetters[0].attempts, 2);
    assert.equal(deadLetters[0].taskName, "f");
    assert.equal(deadLetters[0].lastError?.type, "injected");
    assert.deepEqual(attempts, [1, 2]);

    healed = true;
    const redriven = await client.redrive({ ids: [deadLetters[0].id] });
    assert.equal(redriven.redriven, 1);
    const resumed = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(resumed.state, RunState.RUN_STATE_SUCCEEDED, resumed.reason);
    assert.equal(task(resumed, "f").attempt, 3, "attempt numbers keep rising after a redrive");
    assert.deepEqual(parseJson(task(resumed, "after").outputJson), "after");

    await within("the worker to drain", worker.stop(), 15_000);
    await done;
  });

  it("maps thrown errors: FatalError is not retried, other Errors are retryable with their name as type", async () => {
    const { worker, done } = await startWorker(dev, (w) => {
      w.task("err-fatal", () => {
        throw new FatalError("no such image", { type: "not_found" });
      });
      w.task("err-plain", (_input: unknown, ctx: TaskContext) => {
        if (ctx.attempt === 1) throw new RangeError("index out of range");
        return { ok: ctx.attempt };
      });
    });
    await client.applyWorkflow(
      new Workflow("errs")
        .task({ name: "fatal", taskType: "err-fatal", retry: { maxAttempts: 3, initialBackoff: "10ms" } })
        .task({ name: "plain", taskType: "err-plain", retry: { maxAttempts: 3, initialBackoff: "10ms" } }),
    );
    const { run } = await client.trigger("errs");
    const finished = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(finished.state, RunState.RUN_STATE_FAILED);
    const fatal = task(finished, "fatal");
    assert.equal(fatal.attempts.length, 1, "a FatalError ends the task at once");
    assert.deepEqual([fatal.lastError?.type, fatal.lastError?.retryable, fatal.lastError?.message], ["not_found", false, "no such image"]);
    // `plain` either succeeded on attempt 2 or was cancelled/skipped when the run failed; when it
    // ran twice, its first error is typed by the Error's name.
    const plain = task(finished, "plain");
    const first = plain.attempts.find((x) => x.attempt === 1);
    if (first?.outcome === "failed") {
      assert.deepEqual([first.error?.type, first.error?.retryable, first.error?.message], ["RangeError", true, "index out of range"]);
    }
    await within("the worker to drain", worker.stop(), 15_000);
    await done;
  });

  it("a worker the server refuses (or with an invalid workflow) stops with an error", async () => {
    const greedy = new Worker({ endpoint: dev.address, slots: 20_000, logger: false }).task("refused", () => null);
    await assert.rejects(within("the refusal", greedy.run({ signals: false }), 20_000), (e: unknown) => {
      assert.ok(e instanceof WorkerRefusedError, String(e));
      assert.equal(e.code, Code.INVALID_ARGUMENT);
      assert.match(e.message, /slots/);
      return true;
    });
    const invalid = new Worker({ endpoint: dev.address, logger: false })
      .task("refused", () => null)
      .registerWorkflow(new Workflow("bad name!").task({ name: "a", taskType: "refused" }));
    await assert.rejects(within("the invalid workflow", invalid.run({ signals: false }), 20_000), (e: unknown) => {
      assert.ok(e instanceof BraidError && e.code === Code.INVALID_ARGUMENT, String(e));
      assert.deepEqual(e.violations.map((v) => v.path), ["name"]);
      return true;
    });
  });

  it("runs at most `slots` handlers at once", async () => {
    let running = 0;
    let most = 0;
    const { worker, done } = await startWorker(dev, (w) => {
      w.task("slot-busy", async (_input: unknown, ctx: TaskContext) => {
        running++;
        most = Math.max(most, running);
        try {
          await ctx.sleep(150);
        } finally {
          running--;
        }
        return ctx.taskName;
      });
    });
    const wf = new Workflow("slots");
    for (let i = 0; i < 8; i++) wf.task({ name: `t${i}`, taskType: "slot-busy" });
    await client.applyWorkflow(wf);
    const { run } = await client.trigger("slots");
    const finished = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(finished.state, RunState.RUN_STATE_SUCCEEDED, finished.reason);
    assert.ok(most >= 2, `some tasks ran in parallel (most ${most})`);
    assert.ok(most <= 4, `never more than 4 slots (most ${most})`);
    await within("the worker to drain", worker.stop(), 15_000);
    await done;
  });

  it("the attempt's deadline aborts the handler's signal with a timeout", async () => {
    const reasons: Array<CancelReason | undefined> = [];
    const { worker, done } = await startWorker(dev, (w) => {
      w.task("dl-slow", async (_input: unknown, ctx: TaskContext) => {
        await ctx.whenCancelled();
        reasons.push(ctx.cancelReason);
        ctx.signal.throwIfAborted();
      });
    });
    await client.applyWorkflow({ name: "deadline", tasks: [{ name: "slow", task_type: "dl-slow", timeout: "300ms", retry: { max_attempts: 1 } }] });
    const { run } = await client.trigger("deadline");
    const finished = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(finished.state, RunState.RUN_STATE_FAILED);
    assert.deepEqual(reasons, [{ kind: "deadline" }]);
    const slow = task(finished, "slow");
    assert.equal(slow.attempts.length, 1);
    assert.equal(slow.attempts[0].error?.type, "timeout", JSON.stringify(slow.attempts[0]));
    await within("the worker to drain", worker.stop(), 15_000);
    await done;
  });

  it("cancelling the run aborts the running handler's signal and the run ends cancelled", async () => {
    const handlerStarted = deferred<TaskContext>();
    const aborted = deferred<CancelReason | undefined>();
    const events: WorkerEvent[] = [];
    const { worker, done } = await startWorker(
      dev,
      (w) => {
        w.task("cx-wait", async (_input: unknown, ctx: TaskContext) => {
          handlerStarted.resolve(ctx);
          await ctx.whenCancelled();
          aborted.resolve(ctx.cancelReason);
          ctx.signal.throwIfAborted();
          return "not reached";
        });
      },
      events,
    );
    await client.applyWorkflow(
      new Workflow("cx").task({ name: "s", taskType: "cx-wait" }).task({ name: "t", taskType: "cx-wait", dependsOn: ["s"] }),
    );
    const { run } = await client.trigger("cx", { input: { ms: 30_000 } });
    const ctx = await within("the handler to start", handlerStarted.promise, 20_000);
    assert.equal(ctx.runId, run.id);
    assert.equal(ctx.signal.aborted, false);
    await client.cancelRun(run.id, "test cancel");
    const reason = await within("the handler's signal to abort", aborted.promise, 10_000);
    assert.equal(reason?.kind, "server");
    assert.match(reason.kind === "server" ? reason.reason : "", /cancelled/);
    const finished = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(finished.state, RunState.RUN_STATE_CANCELLED);
    assert.ok(finished.tasks.every((t) => t.state === TaskState.TASK_STATE_CANCELLED), JSON.stringify(finished.tasks));
    // The handler's result (a "cancelled" error) is still reported, and answered.
    const finishedEvent = await waitFor("the cancelled result", () =>
      events.find((e) => e.type === "taskFinished" && e.error?.type === "cancelled"),
    );
    assert.ok(finishedEvent);
    await waitFor("its ack", () => events.find((e) => e.type === "resultAcked"));
    await within("the worker to drain", worker.stop(), 15_000);
    await done;
  });
});
