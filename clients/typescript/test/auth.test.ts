// API tokens against a real `braid dev` with auth on (no --insecure): no token is
// UNAUTHENTICATED; the admin token it printed authors, triggers and serves tasks (the client, an
// in-process worker, the example worker with --token and with BRAID_TOKEN).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { BraidClient, BraidError, Code, RunState, Worker, WorkerRefusedError, Workflow, resolveToken } from "../src/index";
import { Dev, deferred, within } from "./harness";

const RUN_TIMEOUT_MS = 30_000;

function isCode(code: Code) {
  return (e: unknown) => {
    assert.ok(e instanceof BraidError, String(e));
    assert.equal(e.code, code, e.message);
    return true;
  };
}

describe("tokens (no server)", () => {
  it("takes the token, else BRAID_TOKEN; empty is none", () => {
    const saved = process.env.BRAID_TOKEN;
    try {
      delete process.env.BRAID_TOKEN;
      assert.equal(resolveToken(undefined), undefined);
      assert.equal(resolveToken("  brd_x\n"), "brd_x");
      process.env.BRAID_TOKEN = "brd_env";
      assert.equal(resolveToken(undefined), "brd_env");
      assert.equal(resolveToken(""), undefined);
      process.env.BRAID_TOKEN = "brd_a b";
      assert.throws(() => resolveToken(undefined), /invalid BRAID_TOKEN: it contains whitespace/);
    } finally {
      if (saved === undefined) delete process.env.BRAID_TOKEN;
      else process.env.BRAID_TOKEN = saved;
    }
  });

  it("refuses a malformed token before any call", () => {
    const cases: Array<[string, RegExp]> = [
      ["brd_abc def", /whitespace/],
      ["brd_abc\ndef", /whitespace/],
      ["brd_abc\u0000", /a control character/],
      ["brd_é", /a non-ASCII character/],
      ["Bearer brd_abc", /without 'Bearer '/],
    ];
    for (const [token, message] of cases) {
      assert.throws(() => new BraidClient("127.0.0.1:1", { token }), message);
      assert.throws(() => new Worker({ endpoint: "127.0.0.1:1", token, logger: false }), message);
    }
  });
});

describe("tokens against braid dev with auth on", () => {
  let dev: Dev;
  let token: string;

  before(async () => {
    // Each test says which token it uses; one in the environment would change what "none" means.
    delete process.env.BRAID_TOKEN;
    dev = await Dev.start({ auth: true });
    assert.ok(dev.token, "braid dev printed a token");
    token = dev.token;
  });

  after(async () => {
    await dev?.stop();
  });

  it("prints the admin token and keeps it in DATA_DIR/admin-token", () => {
    assert.match(token, /^brd_[A-Za-z0-9_-]{43}$/);
    assert.equal(fs.readFileSync(path.join(dev.dir, "data", "admin-token"), "utf8").trim(), token);
  });

  it("a client without a token (or with an unknown one) is UNAUTHENTICATED", async () => {
    const anonymous = new BraidClient(dev.address);
    const unknown = new BraidClient(dev.address, { token: `brd_${"A".repeat(43)}` });
    try {
      await assert.rejects(anonymous.listWorkflows(), isCode(Code.UNAUTHENTICATED));
      await assert.rejects(
        anonymous.applyWorkflow(new Workflow("auth-anon").task({ name: "a", taskType: "noop" })),
        isCode(Code.UNAUTHENTICATED),
      );
      await assert.rejects(unknown.listWorkflows(), isCode(Code.UNAUTHENTICATED));
    } finally {
      anonymous.close();
      unknown.close();
    }
  });

  it("a client with the token applies a workflow and triggers a run; the token may come from BRAID_TOKEN", async () => {
    const client = new BraidClient(dev.address, { token });
    process.env.BRAID_TOKEN = token;
    const fromEnv = new BraidClient(dev.address);
    delete process.env.BRAID_TOKEN;
    try {
      const { created } = await client.applyWorkflow(new Workflow("auth-apply").task({ name: "a", taskType: "auth-none" }));
      assert.equal(created, true);
      const { run } = await client.trigger("auth-apply", { input: { n: 1 } });
      assert.equal((await fromEnv.getRun(run.id)).id, run.id);
      await client.cancelRun(run.id, "no worker serves auth-none");
    } finally {
      client.close();
      fromEnv.close();
    }
  });

  it("a worker with the token connects and completes a run", async () => {
    const client = new BraidClient(dev.address, { token });
    const connected = deferred();
    const seen: unknown[] = [];
    const worker = new Worker({
      endpoint: dev.address,
      token,
      logger: false,
      drainTimeout: "5s",
      onEvent: (e) => {
        if (e.type === "connected") connected.resolve();
      },
    })
      .task("auth-work", (input) => {
        seen.push(input);
        return { ok: true };
      })
      // Applied with the worker's token.
      .registerWorkflow(new Workflow("auth-work").task({ name: "a", taskType: "auth-work" }));
    const done = worker.run({ signals: false });
    try {
      await within("the worker to connect", Promise.race([connected.promise, done]), 20_000);
      const { run } = await client.trigger("auth-work", { input: { n: 7 } });
      const finished = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
      assert.equal(finished.state, RunState.RUN_STATE_SUCCEEDED);
      assert.deepEqual(seen, [{ n: 7 }]);
    } finally {
      await within("the worker to drain", worker.stop(), 15_000);
      await done;
      client.close();
    }
  });

  it("a worker without a token is refused with UNAUTHENTICATED", async () => {
    const worker = new Worker({ endpoint: dev.address, logger: false }).task("auth-refused", () => null);
    await assert.rejects(within("the refusal", worker.run({ signals: false }), 20_000), (e: unknown) => {
      assert.ok(e instanceof WorkerRefusedError, String(e));
      assert.equal(e.code, Code.UNAUTHENTICATED);
      return true;
    });
  });

  for (const via of ["--token", "BRAID_TOKEN"] as const) {
    it(`the example worker takes the token from ${via} and completes a run`, async () => {
      const client = new BraidClient(dev.address, { token });
      const extra = via === "--token" ? ["--token", token] : [];
      const env = via === "BRAID_TOKEN" ? { ...process.env, BRAID_TOKEN: token } : undefined;
      const name = `ts-auth-${via === "--token" ? "flag" : "env"}`;
      const worker = await dev.exampleWorker(name, 1, "echo", extra, env);
      try {
        await client.applyWorkflow(new Workflow("auth-example").task({ name: "a", taskType: "echo" }));
        const { run } = await client.trigger("auth-example", { input: { via } });
        const finished = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
        assert.equal(finished.state, RunState.RUN_STATE_SUCCEEDED);
        await worker.waitForLedger("the echo task's accepted result", (l) => l.event === "ack" && l.code === 0);
      } finally {
        await worker.proc.stop();
        client.close();
      }
    });
  }
});
