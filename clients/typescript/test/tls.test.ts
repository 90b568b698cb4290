// TLS and mTLS against a real `braid dev --tls-cert … --tls-key …` (and `--tls-client-ca …`),
// with certificates the harness makes with openssl: the client authors and triggers over
// https://, an in-process worker and the example worker (--ca-cert, --client-cert,
// --client-key) complete runs; plaintext clients, clients trusting another CA and, with mTLS,
// clients without a certificate or with one from another CA are refused. Bad options throw at
// construction, naming the option.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { BraidClient, BraidError, Code, RunState, Worker, Workflow, type Logger } from "../src/index";
import { credentials } from "@grpc/grpc-js";
import { Dev, makeTlsFiles, tempDir, waitFor, within, type TlsFiles } from "./harness";

const RUN_TIMEOUT_MS = 30_000;

/** A refused connection: UNAVAILABLE, with the TLS reason (when given) in the message. */
function refused(reason?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof BraidError, String(e));
    assert.equal(e.code, Code.UNAVAILABLE, e.message);
    if (reason) assert.match(e.message, reason);
    return true;
  };
}

/** A logger keeping its warnings, for "the worker kept failing to connect". */
function recordingLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const none = () => undefined;
  return {
    warnings,
    logger: { debug: none, info: none, error: none, warn: (message, fields) => warnings.push(`${message} ${JSON.stringify(fields ?? {})}`) },
  };
}

let files: TlsFiles;
let cleanupFiles: () => void;

before(() => {
  delete process.env.BRAID_TOKEN;
  const { dir, cleanup } = tempDir("braid-ts-tls-");
  cleanupFiles = cleanup;
  files = makeTlsFiles(dir);
});

after(() => cleanupFiles?.());

describe("TLS options (no server)", () => {
  const make = [
    (endpoint: string, o: object) => new BraidClient(endpoint, o),
    (endpoint: string, o: object) => new Worker({ endpoint, logger: false, ...o }),
  ];

  it("accepts paths, PEM text and Buffers with an https:// endpoint", () => {
    for (const m of make) {
      m("https://127.0.0.1:1", {});
      m("https://127.0.0.1:1", { caCert: files.ca });
      m("https://127.0.0.1:1", { caCert: fs.readFileSync(files.ca, "utf8"), clientCert: files.clientCert, clientKey: fs.readFileSync(files.clientKey) });
      m("127.0.0.1:1", { caCert: "", clientCert: undefined }); // empty is unset
    }
  });

  it("refuses bad options at construction, naming the option", () => {
    const cases: Array<[string, object, RegExp]> = [
      ["http://127.0.0.1:1", { caCert: files.ca }, /caCert set but the endpoint "http:\/\/127\.0\.0\.1:1" is not https:\/\//],
      ["127.0.0.1:1", { clientCert: files.clientCert, clientKey: files.clientKey }, /clientCert, clientKey set but the endpoint "127\.0\.0\.1:1" is not https:\/\//],
      ["https://127.0.0.1:1", { clientCert: files.clientCert }, /clientCert is set without clientKey/],
      ["https://127.0.0.1:1", { caCert: files.ca, clientKey: files.clientKey }, /clientKey is set without clientCert/],
      ["https://127.0.0.1:1", { caCert: "/nonexistent/ca.pem" }, /caCert \/nonexistent\/ca\.pem: cannot read: ENOENT/],
      ["https://127.0.0.1:1", { caCert: files.clientKey }, /caCert .*client\.key: holds no PEM certificate/],
      ["https://127.0.0.1:1", { clientCert: files.clientCert, clientKey: files.clientCert }, /clientKey .*client\.pem: holds no PEM private key/],
      ["https://127.0.0.1:1", { clientCert: Buffer.from("nope"), clientKey: files.clientKey }, /clientCert \(Buffer\): holds no PEM certificate/],
      ["https://127.0.0.1:1", { clientCert: files.clientCert, clientKey: files.otherClientKey }, /invalid clientCert, clientKey: .*key values mismatch/],
      ["https://127.0.0.1:1", { caCert: files.ca, credentials: credentials.createSsl() }, /caCert and credentials are exclusive/],
    ];
    for (const [endpoint, options, message] of cases) {
      for (const m of make) assert.throws(() => m(endpoint, options), (e: unknown) => e instanceof TypeError && message.test(e.message), `${endpoint} ${JSON.stringify(options)}`);
    }
  });
});

describe("TLS against braid dev", () => {
  let dev: Dev;
  let client: BraidClient;

  before(async () => {
    dev = await Dev.start({ tls: { cert: files.serverCert, key: files.serverKey } });
    client = new BraidClient(dev.endpoint, { caCert: files.ca });
  });

  after(async () => {
    client?.close();
    await dev?.stop();
  });

  it("authors and lists workflows over https://", async () => {
    const { workflow, created } = await client.applyWorkflow(new Workflow("tls-list").task({ name: "a", taskType: "noop" }));
    assert.equal(created, true);
    assert.equal(workflow.version, 1);
    const { workflows } = await client.listWorkflows();
    assert.ok(workflows.some((w) => w.name === "tls-list"), JSON.stringify(workflows));
  });

  it("an in-process worker (CA as a Buffer) completes a run", async () => {
    const worker = new Worker({ endpoint: dev.endpoint, caCert: fs.readFileSync(files.ca), name: "ts-tls", logger: false })
      .task("tls-echo", (input: unknown) => ({ got: input }))
      .registerWorkflow(new Workflow("tls-inproc").task({ name: "a", taskType: "tls-echo" }));
    const running = worker.run({ signals: false });
    try {
      const { run } = await waitFor("the workflow applied by the worker", async () => {
        try {
          return await client.trigger("tls-inproc", { input: { n: 1 } });
        } catch (e) {
          if (e instanceof BraidError && e.code === Code.NOT_FOUND) return undefined;
          throw e;
        }
      });
      const done = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
      assert.equal(done.state, RunState.RUN_STATE_SUCCEEDED);
      assert.deepEqual(JSON.parse(done.outputJson), { a: { got: { n: 1 } } });
    } finally {
      await within("the worker to stop", worker.stop(), 20_000);
      await running;
    }
  });

  it("the example worker with --ca-cert completes a run", async () => {
    await client.applyWorkflow(new Workflow("tls-example").task({ name: "a", taskType: "echo" }));
    const worker = await dev.exampleWorker("ts-tls-example", 1, "echo", ["--ca-cert", files.ca]);
    try {
      const { run } = await client.trigger("tls-example", { input: { x: 2 } });
      const done = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
      assert.equal(done.state, RunState.RUN_STATE_SUCCEEDED);
      await worker.waitForLedger("the accepted result", (l) => l.event === "ack" && l.outcome === "accepted");
    } finally {
      await worker.proc.stop();
    }
  });

  it("refuses a plaintext client and clients that do not trust its CA", async () => {
    const clients: Array<[BraidClient, RegExp | undefined]> = [
      [new BraidClient(`http://${dev.address}`, { timeoutMs: 5_000 }), undefined],
      [new BraidClient(dev.endpoint, { timeoutMs: 5_000 }), /unable to verify/], // system roots
      [new BraidClient(dev.endpoint, { caCert: files.otherCa, timeoutMs: 5_000 }), /unable to verify/],
    ];
    try {
      for (const [c, reason] of clients) await assert.rejects(c.listWorkflows(), refused(reason));
    } finally {
      for (const [c] of clients) c.close();
    }
  });

  it("the example worker with --ca-cert and an http:// endpoint exits naming the option", async () => {
    const worker = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const script = path.resolve(__dirname, "..", "examples", "example-worker.js");
      const child = spawn(process.execPath, [script, "--endpoint", `http://${dev.address}`, "--ca-cert", files.ca], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      child.on("exit", (code) => resolve({ code, stderr }));
    });
    assert.equal(worker.code, 1);
    assert.match(worker.stderr, /example-worker: caCert set but the endpoint "http:\/\/127\.0\.0\.1:\d+" is not https:\/\//);
  });
});

describe("mTLS against braid dev", () => {
  let dev: Dev;
  let client: BraidClient;

  before(async () => {
    dev = await Dev.start({ tls: { cert: files.serverCert, key: files.serverKey, clientCa: files.ca } });
    client = new BraidClient(dev.endpoint, { caCert: files.ca, clientCert: files.clientCert, clientKey: files.clientKey });
  });

  after(async () => {
    client?.close();
    await dev?.stop();
  });

  it("a client with a certificate authors, and the example worker with one completes a run", async () => {
    await client.applyWorkflow(new Workflow("mtls-example").task({ name: "a", taskType: "echo" }));
    assert.ok((await client.listWorkflows()).workflows.some((w) => w.name === "mtls-example"));
    const worker = await dev.exampleWorker("ts-mtls-example", 1, "echo", [
      "--ca-cert",
      files.ca,
      "--client-cert",
      files.clientCert,
      "--client-key",
      files.clientKey,
    ]);
    try {
      const { run } = await client.trigger("mtls-example", { input: { y: 3 } });
      const done = await client.waitForRun(run.id, { timeoutMs: RUN_TIMEOUT_MS });
      assert.equal(done.state, RunState.RUN_STATE_SUCCEEDED);
      const { workers } = await client.listWorkers();
      assert.deepEqual(
        workers.map((w) => w.name),
        ["ts-mtls-example"],
      );
    } finally {
      await worker.proc.stop();
    }
  });

  it("refuses a client without a certificate or with one from another CA", async () => {
    // UNAVAILABLE; the message is the server's alert (certificate required, unknown ca) or, when
    // the connection was closed first, a reset: not checked.
    const clients = [
      new BraidClient(dev.endpoint, { caCert: files.ca, timeoutMs: 5_000 }),
      new BraidClient(dev.endpoint, { caCert: files.ca, clientCert: files.otherClientCert, clientKey: files.otherClientKey, timeoutMs: 5_000 }),
    ];
    try {
      for (const c of clients) await assert.rejects(c.listWorkflows(), refused());
    } finally {
      for (const c of clients) c.close();
    }
  });

  it("a worker without a certificate or with one from another CA never connects", async () => {
    for (const extra of [{}, { clientCert: files.otherClientCert, clientKey: files.otherClientKey }]) {
      const { logger, warnings } = recordingLogger();
      const worker = new Worker({
        endpoint: dev.endpoint,
        caCert: files.ca,
        ...extra,
        name: "ts-mtls-refused",
        logger,
        reconnectBackoff: { initial: "50ms", max: "200ms" },
      }).task("echo", (input: unknown) => input);
      const running = worker.run({ signals: false });
      try {
        await waitFor("two failed connection attempts", () => warnings.filter((w) => w.startsWith("reconnecting after a delay")).length >= 2, 20_000, () => warnings.join("\n"));
        assert.equal(worker.stats().connects, 0);
      } finally {
        worker.abort();
        await running;
      }
    }
    const { workers } = await client.listWorkers();
    assert.ok(!workers.some((w) => w.name === "ts-mtls-refused"), JSON.stringify(workers.map((w) => w.name)));
  });
});
