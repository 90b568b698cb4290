// A Braid worker serving demo task types, for tests and drills (the TypeScript twin of
// braid-example-worker).
//
//   node dist/examples/example-worker.js --endpoint 127.0.0.1:7400 --name ts-1 --slots 2 \
//        --types noop,echo,sleep,fail,ts-b --ledger /tmp/ts-1.jsonl
//
// Task types:
//   noop   returns {}
//   echo   returns {"input": <run input>, "deps": <dependency outputs>}
//   sleep  {"ms": N}: sleeps N ms unless cancelled (then a retryable error of type "cancelled"),
//          returns {"slept_ms": N}
//   fail   {"times": N, "fatal": bool, "always": bool}: fails (type "injected") while
//          attempt <= times, or always; returns {"attempt": N}
//   ts-b   a polyglot chain step: from deps.a {"value", "path"} returns
//          {"value": a.value + 10, "path": [...a.path, "typescript"]}
//
// --token TOKEN (default BRAID_TOKEN) is the API token, a worker token of the tenant whose tasks
// to serve. --ca-cert FILE (default BRAID_CA_CERT) is the CA an https:// endpoint's certificate
// must chain to; --client-cert FILE and --client-key FILE (default BRAID_CLIENT_CERT,
// BRAID_CLIENT_KEY) are the worker's certificate for a server that requires one (mTLS). --ledger FILE appends one JSON line per task start, finish and result ack, written
// synchronously. Prints "worker NAME connected" on stdout once Welcome arrives.

import * as fs from "node:fs";
import { FatalError, TaskError, Worker, type TaskContext, type WorkerEvent } from "../src/index";

const KINDS = ["noop", "echo", "sleep", "fail", "ts-b"] as const;
type Kind = (typeof KINDS)[number];

interface Args {
  endpoint?: string;
  name?: string;
  token?: string;
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
  slots: number;
  types: Kind[];
  ledger?: string;
  drainTimeout: string;
}

function usage(problem?: string): never {
  if (problem) process.stderr.write(`example-worker: ${problem}\n`);
  process.stderr.write(
    "usage: example-worker [--endpoint HOST:PORT] [--name NAME] [--slots N] [--types noop,echo,sleep,fail,ts-b] [--ledger FILE] [--drain-timeout 30s] [--token TOKEN] [--ca-cert FILE] [--client-cert FILE --client-key FILE]\n",
  );
  process.exit(problem ? 2 : 0);
}

function parseArgs(argv: string[]): Args {
  const env = (name: string) => process.env[name] || undefined;
  const args: Args = {
    slots: 4,
    types: ["noop", "sleep", "fail", "echo"],
    drainTimeout: "30s",
    caCert: env("BRAID_CA_CERT"),
    clientCert: env("BRAID_CLIENT_CERT"),
    clientKey: env("BRAID_CLIENT_KEY"),
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const eq = flag.indexOf("=");
    const [name, inline] = flag.startsWith("--") && eq > 0 ? [flag.slice(0, eq), flag.slice(eq + 1)] : [flag, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case "--endpoint":
        args.endpoint = value();
        break;
      case "--name":
        args.name = value();
        break;
      case "--slots": {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) usage("--slots must be a positive integer");
        args.slots = n;
        break;
      }
      case "--types": {
        const types = value()
          .split(",")
          .map((t) => t.trim())
          .filter((t) => t !== "");
        for (const t of types) if (!KINDS.includes(t as Kind)) usage(`unknown task type ${JSON.stringify(t)} (known: ${KINDS.join(", ")})`);
        args.types = [...new Set(types as Kind[])];
        break;
      }
      case "--ledger":
        args.ledger = value();
        break;
      case "--drain-timeout":
        args.drainTimeout = value();
        break;
      case "--token":
        args.token = value();
        break;
      case "--ca-cert":
        args.caCert = value();
        break;
      case "--client-cert":
        args.clientCert = value();
        break;
      case "--client-key":
        args.clientKey = value();
        break;
      case "-h":
      case "--help":
        usage();
      // eslint-disable-next-line no-fallthrough
      default:
        usage(`unknown argument ${JSON.stringify(flag)}`);
    }
  }
  return args;
}

/** The --ledger file: one JSON line per task start, finish and result ack. */
class Ledger {
  private workerId = "";
  constructor(
    private readonly path: string,
    private readonly worker: string,
  ) {}

  record(event: WorkerEvent): void {
    let line: Record<string, unknown>;
    switch (event.type) {
      case "connected":
        this.workerId = event.workerId;
        return;
      case "taskStarted":
        line = { event: "start", ...this.base(event.task) };
        break;
      case "taskFinished":
        line = {
          event: "finish",
          ...this.base(event.task),
          outcome: event.outcome,
          started: event.started,
          error_type: event.error?.type ?? null,
          retryable: event.error?.retryable ?? null,
          message: event.error?.message ?? null,
        };
        break;
      case "resultAcked":
        line = {
          event: "ack",
          ...this.base(event.task),
          outcome: event.accepted ? "accepted" : "rejected",
          code: event.code,
          reason: event.reason,
        };
        break;
      default:
        return;
    }
    try {
      fs.appendFileSync(this.path, JSON.stringify(line) + "\n");
    } catch (e) {
      process.stderr.write(`example-worker: cannot write the ledger: ${(e as Error).message}\n`);
    }
  }

  private base(task: { taskId: string; attempt: number; leaseId: string; taskType: string }) {
    return {
      task_id: task.taskId,
      attempt: task.attempt,
      lease_id: task.leaseId,
      task_type: task.taskType,
      worker: this.worker,
      worker_id: this.workerId,
      outcome: null as string | null,
      code: null as number | null,
      error_type: null as string | null,
      ts: new Date().toISOString(),
    };
  }
}

function asObject(input: unknown): Record<string, unknown> {
  return typeof input === "object" && input !== null && !Array.isArray(input) ? (input as Record<string, unknown>) : {};
}

async function sleep(input: unknown, ctx: TaskContext): Promise<{ slept_ms: number }> {
  const ms = asObject(input).ms;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
    throw new FatalError(`sleep needs {"ms": N} (got ${JSON.stringify(input)})`, { type: "bad_input" });
  }
  try {
    await ctx.sleep(ms);
  } catch {
    const why = ctx.cancelReason;
    throw new TaskError("cancelled", { type: "cancelled", retryable: true, details: { why: why ?? null } });
  }
  return { slept_ms: ms };
}

async function fail(input: unknown, ctx: TaskContext): Promise<{ attempt: number }> {
  const o = asObject(input);
  const times = typeof o.times === "number" ? o.times : 0;
  if (o.always === true) {
    throw new TaskError(`injected failure (always), attempt ${ctx.attempt}`, { type: "injected" });
  }
  if (ctx.attempt <= times) {
    const message = `injected failure ${ctx.attempt} of ${times}`;
    throw o.fatal === true ? new FatalError(message, { type: "injected" }) : new TaskError(message, { type: "injected" });
  }
  return { attempt: ctx.attempt };
}

function tsB(_input: unknown, ctx: TaskContext): { value: number; path: unknown[] } {
  const a = asObject(ctx.dep("a"));
  if (typeof a.value !== "number" || !Array.isArray(a.path)) {
    throw new FatalError(`ts-b needs deps.a = {"value": number, "path": [...]} (got ${JSON.stringify(a)})`, {
      type: "bad_input",
    });
  }
  return { value: a.value + 10, path: [...a.path, "typescript"] };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const name = args.name ?? `ts-worker-${process.pid}`;
  const ledger = args.ledger ? new Ledger(args.ledger, name) : undefined;
  const worker = new Worker({
    endpoint: args.endpoint,
    token: args.token, // undefined: BRAID_TOKEN
    caCert: args.caCert,
    clientCert: args.clientCert,
    clientKey: args.clientKey,
    name,
    slots: args.slots,
    drainTimeout: args.drainTimeout,
    onEvent: (event) => {
      if (event.type === "connected") process.stdout.write(`worker ${name} connected\n`);
      ledger?.record(event);
    },
  });
  for (const kind of [...args.types].sort()) {
    switch (kind) {
      case "noop":
        worker.task("noop", () => ({}));
        break;
      case "echo":
        worker.task("echo", (input, ctx) => ({ input, deps: ctx.deps }));
        break;
      case "sleep":
        worker.task("sleep", sleep);
        break;
      case "fail":
        worker.task("fail", fail);
        break;
      case "ts-b":
        worker.task("ts-b", tsB);
        break;
    }
  }
  await worker.run();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`example-worker: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
