// The client against a real `braid dev`: authoring (code-declared workflows equal their
// YAML/object twins), validation errors with their violations, triggers with idempotency keys.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Metadata } from "@grpc/grpc-js";
import {
  BraidClient,
  BraidError,
  FatalError,
  TaskError,
  parseEnvelope,
  Code,
  ConcurrencyPolicy,
  concurrencyPolicyName,
  Priority,
  RunState,
  SDK_VERSION,
  TaskState,
  Workflow,
  parseHumantime,
  toProtoDuration,
  toWorkflowDefinition,
  type TriggerPriority,
  type WorkflowFile,
} from "../src/index";
import { triggerRunRequest } from "../src/client";
import { Dev } from "./harness";

describe("durations and definitions (no server)", () => {
  it("parses humantime durations like the server's files", () => {
    assert.equal(parseHumantime("500ms"), 500_000_000n);
    assert.equal(parseHumantime("1m 30s"), 90_000_000_000n);
    assert.equal(parseHumantime("90000ms"), 90_000_000_000n);
    assert.equal(parseHumantime("1day"), 86_400_000_000_000n);
    assert.deepEqual(toProtoDuration("1s"), { seconds: 1, nanos: 0 });
    assert.deepEqual(toProtoDuration("1500ms"), { seconds: 1, nanos: 500_000_000 });
    assert.deepEqual(toProtoDuration(250), { seconds: 0, nanos: 250_000_000 });
    assert.throws(() => toProtoDuration("1.5s"), /invalid duration/);
    assert.throws(() => toProtoDuration("5 parsecs"), /unknown unit/);
  });

  it("reports every shape problem of a file-form definition at once", () => {
    const bad = {
      name: "x",
      tasks: [{ name: "a", task_type: "t", retry: { max_attempts: "3", backoff: "1s" }, timeout: "soon" }],
      extra: 1,
    } as unknown as WorkflowFile;
    let caught: unknown;
    try {
      toWorkflowDefinition(bad);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof BraidError);
    assert.equal(caught.code, Code.INVALID_ARGUMENT);
    assert.deepEqual(
      caught.violations.map((v) => v.path),
      ["extra", "tasks[0].retry.backoff", "tasks[0].retry.max_attempts", "tasks[0].timeout"],
    );
  });

  it("reads and writes the concurrency policy, max_per_key and retention settings", () => {
    const file: WorkflowFile = {
      name: "report",
      settings: { max_concurrent_runs: 4, concurrency_policy: "cancel_in_progress", max_per_key: 1, retention: "30d" },
      tasks: [{ name: "a", task_type: "ta" }],
    };
    const def = toWorkflowDefinition(file);
    assert.equal(def.settings?.concurrencyPolicy, ConcurrencyPolicy.CONCURRENCY_POLICY_CANCEL_IN_PROGRESS);
    assert.equal(def.settings?.maxConcurrentRuns, 4);
    assert.equal(def.settings?.maxPerKey, 1);
    assert.deepEqual(def.settings?.retention, { seconds: 30 * 86_400, nanos: 0 });

    // The code form gives the same message; the wire form reads back to the same workflow.
    const code = new Workflow("report", {
      maxConcurrentRuns: 4,
      concurrencyPolicy: "cancel_in_progress",
      maxPerKey: 1,
      retention: "720h",
    }).task({ name: "a", taskType: "ta" });
    assert.deepEqual(code.toProto(), def);
    const back = Workflow.fromProto(def);
    assert.deepEqual(back.toFile(), file);
    assert.deepEqual(back.toProto(), def);
    // The camelCase spellings are accepted too.
    assert.deepEqual(toWorkflowDefinition(back.toFile()), def);

    // Omitted: the wire defaults (unspecified = queue, unlimited per key, the server's retention).
    const plain = toWorkflowDefinition({ name: "w", tasks: [] });
    assert.equal(plain.settings?.concurrencyPolicy, ConcurrencyPolicy.CONCURRENCY_POLICY_UNSPECIFIED);
    assert.equal(plain.settings?.maxPerKey, 0);
    assert.equal(plain.settings?.retention, undefined);
    assert.equal(Workflow.fromProto(plain).toFile().settings, undefined);
    // The server fills in QUEUE; it reads back as "queue".
    assert.equal(concurrencyPolicyName(ConcurrencyPolicy.CONCURRENCY_POLICY_QUEUE), "queue");
    assert.equal(concurrencyPolicyName(ConcurrencyPolicy.CONCURRENCY_POLICY_UNSPECIFIED), undefined);
  });

  it("refuses an unknown concurrency policy with its path", () => {
    for (const bad of ["cancel_oldest", "", "QUEUE", "CONCURRENCY_POLICY_QUEUE", 2]) {
      const file = { name: "x", tasks: [], settings: { concurrency_policy: bad } } as unknown as WorkflowFile;
      assert.throws(
        () => toWorkflowDefinition(file),
        (e: unknown) =>
          e instanceof BraidError &&
          e.code === Code.INVALID_ARGUMENT &&
          e.violations.length === 1 &&
          e.violations[0].path === "settings.concurrency_policy" &&
          /unknown concurrency policy .*expected one of queue, cancel_newest, cancel_in_progress/.test(e.violations[0].reason),
        String(bad),
      );
    }
    const code = new Workflow("x", { concurrencyPolicy: "cancel_oldest" as never });
    assert.throws(() => code.toProto(), /settings\.concurrency_policy: unknown concurrency policy "cancel_oldest"/);
    assert.throws(
      () => toWorkflowDefinition({ name: "x", tasks: [], settings: { retention: "forever" } }),
      /settings\.retention/,
    );
    assert.throws(() => concurrencyPolicyName(99 as ConcurrencyPolicy), /settings\.concurrency_policy: unknown value 99/);
  });

  it("parses the task envelope like the Rust SDK", () => {
    assert.deepEqual(parseEnvelope('{"input": {"a": 1}, "deps": {"fetch": [1, 2]}}'), { input: { a: 1 }, deps: { fetch: [1, 2] } });
    assert.deepEqual(parseEnvelope("  "), { input: null, deps: {} });
    assert.deepEqual(parseEnvelope('{"deps": null}'), { input: null, deps: {} });
    for (const bad of ["[1]", "{", '{"deps": 3}']) {
      assert.throws(
        () => parseEnvelope(bad),
        (e: unknown) => e instanceof FatalError && e.type === "bad_input" && !e.retryable,
        bad,
      );
    }
  });

  it("maps thrown values to TaskErrors", () => {
    const plain = TaskError.from(new TypeError("x is undefined", { cause: new Error("root") }));
    assert.deepEqual([plain.type, plain.retryable, plain.message], ["TypeError", true, "x is undefined: root"]);
    const fatal = TaskError.from(new FatalError("nope", { type: "bad", details: { k: 1 } }));
    assert.deepEqual(fatal.toProto(), { message: "nope", type: "bad", retryable: false, detailsJson: '{"k":1}' });
    assert.deepEqual(TaskError.from("text").toProto(), { message: "text", type: "error", retryable: true, detailsJson: "" });
  });

  it("decodes google.rpc.BadRequest from grpc-status-details-bin", () => {
    const violation = (field: string, description: string) => {
      const w = new BinaryWriter();
      w.uint32(10).string(field).uint32(18).string(description);
      return w.finish();
    };
    const badRequest = new BinaryWriter();
    badRequest.uint32(10).bytes(violation("tasks[0].name", "must not be empty"));
    badRequest.uint32(10).bytes(violation("name", "too long"));
    const any = new BinaryWriter().uint32(10).string("type.googleapis.com/google.rpc.BadRequest").uint32(18).bytes(badRequest.finish());
    const status = new BinaryWriter().uint32(8).int32(3).uint32(18).string("invalid").uint32(26).bytes(any.finish());
    const md = new Metadata();
    md.set("grpc-status-details-bin", Buffer.from(status.finish()));
    const e = BraidError.from({ code: 3, details: "invalid", message: "3 INVALID_ARGUMENT: invalid", metadata: md });
    assert.deepEqual(e.violations, [
      { path: "tasks[0].name", reason: "must not be empty" },
      { path: "name", reason: "too long" },
    ]);
    assert.equal(e.codeName, "INVALID_ARGUMENT");
  });

  it("keeps SDK_VERSION equal to package.json", () => {
    const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, "..", "..", "package.json"), "utf8"));
    assert.equal(SDK_VERSION, pkg.version);
  });
});

describe("trigger requests (no server)", () => {
  it("carries priority and concurrency key", () => {
    const req = triggerRunRequest("wf", {
      input: { a: 1 },
      idempotencyKey: "idem-1",
      version: 3,
      priority: "high",
      concurrencyKey: "customer-42",
    });
    assert.deepEqual(req, {
      workflowName: "wf",
      workflowVersion: 3,
      inputJson: '{"a":1}',
      idempotencyKey: "idem-1",
      priority: Priority.PRIORITY_HIGH,
      concurrencyKey: "customer-42",
    });
    const expected: Record<TriggerPriority, Priority> = {
      high: Priority.PRIORITY_HIGH,
      normal: Priority.PRIORITY_NORMAL,
      low: Priority.PRIORITY_LOW,
    };
    for (const [priority, wire] of Object.entries(expected)) {
      assert.equal(triggerRunRequest("wf", { priority: priority as TriggerPriority }).priority, wire);
    }
  });

  it("leaves priority unspecified and the key empty by default", () => {
    const req = triggerRunRequest("wf");
    assert.equal(req.priority, Priority.PRIORITY_UNSPECIFIED);
    assert.equal(req.concurrencyKey, "");
  });

  it("refuses an unknown priority before any call", async () => {
    for (const bad of ["urgent", "", "HIGH", "PRIORITY_HIGH", "toString", 1]) {
      assert.throws(
        () => triggerRunRequest("wf", { priority: bad as unknown as TriggerPriority }),
        (e: unknown) => e instanceof RangeError && /unknown priority .*expected "high", "normal" or "low"/.test(e.message),
      );
    }
    // Nothing listens on port 1: the rejection must come from the option check.
    const client = new BraidClient("127.0.0.1:1", { timeoutMs: 500 });
    try {
      await assert.rejects(client.trigger("wf", { priority: "urgent" as TriggerPriority }), RangeError);
    } finally {
      client.close();
    }
  });
});

describe("BraidClient against braid dev", () => {
  let dev: Dev;
  let client: BraidClient;

  before(async () => {
    dev = await Dev.start();
    client = new BraidClient(dev.address);
  });

  after(async () => {
    client?.close();
    await dev?.stop();
  });

  const yaml = `# thumbnails, as a file
name: thumbs
description: Fetch an image, resize it, publish.
settings:
  default_retry:
    max_attempts: 3
    initial_backoff: 1s
    multiplier: 2.0
    max_backoff: 1m
  default_task_timeout: 2m
tasks:
  - name: fetch
    task_type: http-get
  - name: small
    task_type: resize
    depends_on: [fetch]
    retry:
      max_attempts: 5
      initial_backoff: 500ms
  - name: publish
    task_type: upload
    depends_on: [small]
    timeout: 30s
`;

  const objectForm: WorkflowFile = {
    name: "thumbs",
    description: "Fetch an image, resize it, publish.",
    settings: {
      default_retry: { max_attempts: 3, initial_backoff: "1s", multiplier: 2.0, max_backoff: "1m" },
      default_task_timeout: "2m",
    },
    tasks: [
      { name: "fetch", task_type: "http-get" },
      { name: "small", task_type: "resize", depends_on: ["fetch"], retry: { max_attempts: 5, initial_backoff: "500ms" } },
      { name: "publish", task_type: "upload", depends_on: ["small"], timeout: "30s" },
    ],
  };

  const inCode = () =>
    new Workflow("thumbs", {
      description: "Fetch an image, resize it, publish.",
      defaultRetry: { maxAttempts: 3, initialBackoff: "1s", multiplier: 2, maxBackoff: "60s" },
      defaultTaskTimeout: "120000ms",
    })
      .task({ name: "fetch", taskType: "http-get" })
      .task({ name: "small", taskType: "resize", dependsOn: ["fetch"], retry: { maxAttempts: 5, initialBackoff: "500ms" } })
      .task({ name: "publish", taskType: "upload", dependsOn: ["small"], timeout: "30s" });

  it("a code-declared workflow is the same definition as its YAML and object forms", async () => {
    // The YAML file through the braid CLI makes version 1.
    const file = dev.file("thumbs.yaml");
    fs.writeFileSync(file, yaml);
    const applied = await dev.cli(["workflow", "apply", "-f", file]);
    assert.equal(applied.code, 0, applied.stderr);
    const v1 = await client.getWorkflow("thumbs");
    assert.equal(v1.version, 1);

    // The object form and the code-declared workflow are both "unchanged" (same content hash).
    const fromObject = await client.applyWorkflow(objectForm);
    assert.equal(fromObject.created, false);
    assert.equal(fromObject.workflow.version, 1);
    assert.equal(fromObject.workflow.contentHash, v1.contentHash);

    const wf = inCode();
    const fromCode = await client.applyWorkflow(wf);
    assert.equal(fromCode.created, false);
    assert.equal(fromCode.workflow.version, 1);
    assert.equal(fromCode.workflow.contentHash, v1.contentHash);
    assert.deepEqual(toWorkflowDefinition(objectForm).tasks, wf.toProto().tasks);

    // A change makes version 2; applying the code form again makes 3 (only the latest is compared).
    const changed = await client.applyWorkflow({ ...objectForm, description: "changed" });
    assert.deepEqual([changed.created, changed.workflow.version], [true, 2]);
    const back = await client.applyWorkflow(inCode());
    assert.deepEqual([back.created, back.workflow.version], [true, 3]);
    assert.equal(back.workflow.contentHash, v1.contentHash);
  });

  it("an invalid definition throws INVALID_ARGUMENT with every violation", async () => {
    const broken = new Workflow("broken")
      .task({ name: "a", taskType: "x", dependsOn: ["c"] })
      .task({ name: "b", taskType: "x", dependsOn: ["a"] })
      .task({ name: "c", taskType: "x", dependsOn: ["b", "missing"] });
    await assert.rejects(client.applyWorkflow(broken), (e: unknown) => {
      assert.ok(e instanceof BraidError);
      assert.equal(e.code, Code.INVALID_ARGUMENT);
      assert.equal(e.codeName, "INVALID_ARGUMENT");
      assert.deepEqual(e.violations, [
        { path: "tasks[0].depends_on[0]", reason: "cycle: a -> b -> c -> a" },
        { path: "tasks[2].depends_on[1]", reason: 'unknown task "missing"' },
      ]);
      return true;
    });
    const checked = await client.validateWorkflow(broken);
    assert.equal(checked.valid, false);
    assert.deepEqual(
      checked.errors.map((e) => e.path),
      ["tasks[0].depends_on[0]", "tasks[2].depends_on[1]"],
    );
    assert.equal((await client.validateWorkflow(inCode())).valid, true);
  });

  it("a trigger repeated with an idempotency key returns the same run", async () => {
    await client.applyWorkflow(new Workflow("idem").task({ name: "only", taskType: "nobody-serves-this" }));
    const first = await client.trigger("idem", { input: { a: 1, b: 2 }, idempotencyKey: "key-1" });
    assert.equal(first.created, true);
    assert.equal(first.run.state, RunState.RUN_STATE_RUNNING);
    assert.equal(first.run.tasks[0].state, TaskState.TASK_STATE_READY);
    const again = await client.trigger("idem", { inputJson: '{ "b": 2, "a": 1 }', idempotencyKey: "key-1" });
    assert.equal(again.created, false);
    assert.equal(again.run.id, first.run.id);
    await assert.rejects(
      client.trigger("idem", { input: { a: 2 }, idempotencyKey: "key-1" }),
      (e: unknown) => e instanceof BraidError && e.code === Code.ALREADY_EXISTS,
    );
    const listed = await client.listRuns({ workflowName: "idem" });
    assert.deepEqual(
      listed.runs.map((r) => r.id),
      [first.run.id],
    );
    await assert.rejects(
      client.getRun("nope"),
      (e: unknown) => e instanceof BraidError && e.code === Code.INVALID_ARGUMENT && e.violations.length === 1,
    );
    const cancelled = await client.cancelRun(first.run.id, "not needed");
    assert.equal(cancelled.state, RunState.RUN_STATE_CANCELLED);
    const events: string[] = [];
    for await (const event of client.watchRun(first.run.id)) events.push(event.kind);
    assert.equal(events[0], "run_created");
    assert.equal(events.at(-1), "run_cancelled");
  });
});
