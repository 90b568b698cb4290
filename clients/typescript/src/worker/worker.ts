// Worker: typed task handlers served over one WorkerService.Connect stream.
//
// A port of the Rust reference SDK (worker-rs): Hello/Welcome, heartbeats at the server's
// interval listing every held lease, results fenced by (task_id, attempt, lease_id) and resent
// on a new stream when their ack was lost, rejected results logged and never resent, local
// slots, cancellation through AbortSignal, reconnection with jittered exponential backoff and a
// bounded graceful drain.

import * as os from "node:os";
import type { ChannelCredentials, ClientDuplexStream, ServiceError } from "@grpc/grpc-js";
import { BraidClient } from "../client";
import { resolveEndpoint, type Target } from "../endpoint";
import { authMetadata, resolveToken } from "../token";
import type { TlsOptions } from "../tls";
import { BraidError, Code, codeName } from "../errors";
import { durationToMillis, formatMillis, toMillis, type DurationLike } from "../duration";
import { SDK_VERSION } from "../version";
import type { WorkflowInput } from "../workflow";
import {
  WorkerServiceClient,
  type CancelTask,
  type ConnectRequest,
  type ConnectResponse,
  type ResultAck,
  type TaskAssignment,
  type TaskResult,
  type Welcome,
} from "../gen/braid/v1/worker";
import { CancelledError, TaskContext, describeCancel, type CancelReason } from "./context";
import { FatalError, TaskError } from "./task-error";
import { stderrLogger, silentLogger, type Logger } from "./logger";
import { startHandlerSpan, type TracerProviderLike } from "./tracing";

/** Used when Welcome leaves heartbeat_interval unset or zero. */
const DEFAULT_HEARTBEAT_MS = 10_000;
/** Used when Welcome leaves lease_ttl unset or zero. */
const DEFAULT_LEASE_TTL_MS = 30_000;
/** After the drain timeout cancels the handlers: how long they have left to return. */
const CANCEL_GRACE_MS = 5_000;
/** Once every result is sent during a drain: how long to wait for their acks. */
const ACK_WAIT_MS = 5_000;
/** After half-closing: how long to wait for the server to end the stream. */
const CLOSE_WAIT_MS = 5_000;

/** A handler: the run input (the `input` part of the assignment) and the context in, a JSON-serializable output out. */
export type Handler<I = unknown, O = unknown> = (input: I, ctx: TaskContext) => O | Promise<O>;

export interface TaskHandlerOptions<I> {
  /**
   * Checks and converts the raw run input before the handler is called (e.g. a zod `parse`).
   * When it throws, the handler is not called and the attempt fails with a non-retryable
   * error of type "bad_input" (a thrown TaskError is reported as is).
   */
  decode?: (input: unknown) => I;
}

/**
 * `caCert`, `clientCert` and `clientKey` (TlsOptions: file paths or PEM) configure TLS for an
 * `https://` endpoint; with an `http://` one, or when unreadable, they throw a TypeError from the
 * constructor.
 */
export interface WorkerOptions extends TlsOptions {
  /** The control plane: "127.0.0.1:7400", "http://…" or "https://…" (default BRAID_ENDPOINT, else 127.0.0.1:7400). */
  endpoint?: string;
  /** A human-readable name; need not be unique (default `<hostname>-<pid>`). */
  name?: string;
  /** How many tasks run at once (default 1); the server leases at most this many. */
  slots?: number;
  /** Labels sent in Hello. */
  labels?: Record<string, string>;
  /** Channel credentials (default: from the endpoint's scheme and the TLS options; not together with those). */
  credentials?: ChannelCredentials;
  /**
   * The API token (a worker or admin token of the tenant whose tasks it serves), sent as
   * `authorization: Bearer TOKEN` on the stream and when applying workflows (default
   * BRAID_TOKEN; "" for none). A malformed one throws a TypeError from the constructor.
   */
  token?: string;
  /** How long a drain lets running tasks finish before cancelling them (default "30s"). */
  drainTimeout?: DurationLike;
  /** Bound on opening the stream and waiting for Welcome (default "10s"). */
  connectTimeout?: DurationLike;
  /** Reconnect delays: full jitter over a ceiling doubling from `initial` to `max` (default 100ms to 10s). */
  reconnectBackoff?: { initial?: DurationLike; max?: DurationLike };
  /** Where to log (default: stderr at BRAID_LOG or "info"); false for nothing. */
  logger?: Logger | false;
  /** Called for every WorkerEvent; keep it quick (it runs on the worker's event loop). */
  onEvent?: (event: WorkerEvent) => void;
  /**
   * An OpenTelemetry TracerProvider for the `handler` span of each attempt, a child of the
   * run's trace (default: the global one; no span at all without `@opentelemetry/api`).
   */
  tracerProvider?: TracerProviderLike;
}

/** One attempt of one task, as identified on the wire. */
export interface TaskRef {
  taskId: string;
  attempt: number;
  leaseId: string;
  taskType: string;
}

/** Something that happened in a worker. */
export type WorkerEvent =
  | { type: "connected"; workerId: string; serverVersion: string; heartbeatIntervalMs: number; leaseTtlMs: number }
  | { type: "disconnected"; error: string }
  | { type: "taskStarted"; task: TaskRef; runId: string; taskName: string }
  | { type: "taskFinished"; task: TaskRef; outcome: "succeeded" | "failed"; error?: TaskError; started: boolean }
  | { type: "resultAcked"; task: TaskRef; accepted: boolean; code: number; reason: string }
  | { type: "draining"; reason: string };

/** A snapshot of a worker's counters. */
export interface WorkerStats {
  /** Handlers started. */
  started: number;
  /** Results produced with an output. */
  succeeded: number;
  /** Results produced with an error (including tasks cancelled before they started). */
  failed: number;
  /** Results the server accepted. */
  accepted: number;
  /** Results the server rejected (never sent again). */
  rejected: number;
  /** Of those, rejected as stale (code 9, FAILED_PRECONDITION: the lease was no longer current). */
  stale: number;
  /** Streams established (Welcome received). */
  connects: number;
  /** Leases held now: tasks running or waiting for a slot. */
  inFlight: number;
}

/** The server refused the worker for good (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT). */
export class WorkerRefusedError extends BraidError {
  constructor(error: BraidError) {
    super(error.code, `the server refused the worker: ${error.details}`, error.violations, error.metadata, { cause: error });
    this.name = "WorkerRefusedError";
  }
}

const TASK_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The default worker name: `<hostname>-<pid>`. */
export function defaultWorkerName(): string {
  return `${os.hostname() || "worker"}-${process.pid}`;
}

type Registered = { handler: Handler<any, any>; decode?: (input: unknown) => unknown };

interface Finished {
  result: { ok: true; outputJson: string } | { ok: false; error: TaskError };
  started: boolean;
}

interface Held {
  task: TaskRef;
  controller: AbortController;
}

interface Pending {
  task: TaskRef;
  result: TaskResult;
}

interface Drain {
  reason: string;
  /** Handlers still running then are cancelled. */
  deadline: number;
  /** Whatever is still held or unsent then is abandoned. */
  hardDeadline: number;
  cancelled: boolean;
  /** When every held task had finished and every result was sent. */
  settledAt?: number;
}

/** One stream. */
class Conn {
  phase: "opening" | "up" | "ended" = "opening";
  /** False once half-closed (or ended). */
  open = true;
  workerId = "";
  closeBy?: number;
  heartbeat?: NodeJS.Timeout;
  welcomeTimer?: NodeJS.Timeout;

  constructor(
    readonly client: InstanceType<typeof WorkerServiceClient>,
    readonly call: ClientDuplexStream<ConnectRequest, ConnectResponse>,
  ) {}

  send(message: ConnectRequest["message"]): boolean {
    if (!this.open || this.phase === "ended") return false;
    try {
      this.call.write({ message });
      return true;
    } catch {
      return false;
    }
  }

  halfClose(): void {
    this.open = false;
    this.closeBy = Date.now() + CLOSE_WAIT_MS;
    clearInterval(this.heartbeat);
    try {
      this.call.end();
    } catch {
      // already gone
    }
  }

  /** Forgets the stream: stops its timers, cancels the call if it is still going, closes its channel. */
  dispose(): void {
    if (this.phase === "ended") return;
    this.phase = "ended";
    this.open = false;
    clearInterval(this.heartbeat);
    clearTimeout(this.welcomeTimer);
    try {
      this.call.cancel();
    } catch {
      // already over
    }
    this.client.close();
  }
}

/** A counting semaphore whose waiters can give up when their signal aborts. */
class Slots {
  private waiters: Array<() => void> = [];
  constructor(private free: number) {}

  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        resolve(true);
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== grant);
        resolve(false);
      };
      this.waiters.push(grant);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}

/** Reconnect delays: delay n is drawn uniformly from [0, min(max, initial * 2^n)]. */
class Backoff {
  failures = 0;
  constructor(
    private readonly initial: number,
    private readonly max: number,
  ) {}

  next(): number {
    const ceiling = Math.min(Math.max(this.max, this.initial), this.initial * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return Math.random() * ceiling;
  }

  reset(): void {
    this.failures = 0;
  }
}

function keyOf(t: { taskId: string; attempt: number; leaseId: string }): string {
  return `${t.taskId}/${t.attempt}/${t.leaseId}`;
}

/**
 * A Braid worker: register handlers with `task()`, then `await worker.run()`.
 *
 * ```ts
 * const worker = new Worker({ endpoint: "127.0.0.1:7400", name: "thumbnailer", slots: 4 });
 * worker.task<{ width: number }, { url: string }>("resize", async (input, ctx) => {
 *   const fetched = ctx.dep<{ url: string }>("fetch");
 *   ctx.signal.throwIfAborted();
 *   return { url: `${fetched.url}?w=${input.width}` };
 * });
 * await worker.run(); // until SIGINT/SIGTERM, then a graceful drain
 * ```
 */
export class Worker {
  readonly name: string;
  readonly slots: number;
  readonly labels: Readonly<Record<string, string>>;
  private readonly options: WorkerOptions;
  private readonly handlers = new Map<string, Registered>();
  private readonly workflows: WorkflowInput[] = [];
  private readonly log: Logger;
  private readonly drainTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly token: string | undefined;
  /** The endpoint's address and channel credentials (TLS options read once, at construction). */
  private readonly resolved: Target;
  private readonly counters: WorkerStats = {
    started: 0,
    succeeded: 0,
    failed: 0,
    accepted: 0,
    rejected: 0,
    stale: 0,
    connects: 0,
    inFlight: 0,
  };

  // Runtime state (one run per worker).
  private running = false;
  /** Set once start-up (workflows) is over and the worker connects. */
  private target?: Target;
  private conn?: Conn;
  private retryTimer?: NodeJS.Timeout;
  private timer?: NodeJS.Timeout;
  private slotPool: Slots;
  private backoff: Backoff;
  private readonly held = new Map<string, Held>();
  private unsent: Pending[] = [];
  private unacked: Pending[] = [];
  private heartbeatMs = DEFAULT_HEARTBEAT_MS;
  private leaseTtlMs = DEFAULT_LEASE_TTL_MS;
  /** When a heartbeat was last sent on a live stream: leases are good until + lease TTL. */
  private extendedAt?: number;
  private drain?: Drain;
  private drainRequested?: string;
  /** The server ended the stream after our half-close. */
  private closed = false;
  private finished = false;
  private done?: Promise<void>;
  private resolveDone?: () => void;
  private rejectDone?: (e: unknown) => void;
  private removeSignalHandlers?: () => void;

  constructor(options: WorkerOptions = {}) {
    this.options = { ...options };
    this.name = options.name ?? defaultWorkerName();
    this.slots = options.slots ?? 1;
    if (!Number.isInteger(this.slots) || this.slots < 1) {
      throw new RangeError(`slots must be a positive integer (got ${options.slots})`);
    }
    this.labels = Object.freeze({ ...(options.labels ?? {}) });
    this.log = options.logger === false ? silentLogger : (options.logger ?? stderrLogger());
    this.drainTimeoutMs = toMillis(options.drainTimeout ?? "30s", "drainTimeout");
    this.connectTimeoutMs = toMillis(options.connectTimeout ?? "10s", "connectTimeout");
    const initial = toMillis(options.reconnectBackoff?.initial ?? "100ms", "reconnectBackoff.initial");
    const max = toMillis(options.reconnectBackoff?.max ?? "10s", "reconnectBackoff.max");
    this.backoff = new Backoff(initial, max);
    this.slotPool = new Slots(this.slots);
    // Fails early on a bad endpoint or TLS option; the files are read once, here.
    this.resolved = resolveEndpoint(options.endpoint, options.credentials, options);
    this.token = resolveToken(options.token); // and on a malformed token
  }

  /**
   * Serves `taskType` with `handler`, an async function of the run input (the `input` part of
   * the assignment) and a TaskContext, returning a JSON-serializable output. Throw a TaskError
   * (retryable) or FatalError (not retried); any other Error is retryable with its name as type.
   */
  task<I = unknown, O = unknown>(taskType: string, handler: Handler<I, O>, options: TaskHandlerOptions<I> = {}): this {
    if (!TASK_TYPE_RE.test(taskType) || taskType.length > 64) {
      throw new TypeError(
        `invalid task type ${JSON.stringify(taskType)}: use 1 to 64 ASCII letters, digits, '_', '.' or '-', starting with a letter or digit`,
      );
    }
    if (this.handlers.has(taskType)) throw new TypeError(`task type ${JSON.stringify(taskType)} is registered twice`);
    this.handlers.set(taskType, { handler, decode: options.decode });
    return this;
  }

  /** Applies a code-declared (or file-form) workflow when the worker starts, before it connects. */
  registerWorkflow(workflow: WorkflowInput): this {
    this.workflows.push(workflow);
    return this;
  }

  /** The task types served, sorted. */
  get taskTypes(): string[] {
    return [...this.handlers.keys()].sort();
  }

  /** The server's id of the current stream ("" when not connected). */
  get workerId(): string {
    return this.conn?.phase === "up" ? this.conn.workerId : "";
  }

  /** The worker's counters now. */
  stats(): WorkerStats {
    return { ...this.counters, inFlight: this.held.size };
  }

  /**
   * Runs until stopped: connects (reconnecting as needed), serves tasks, and resolves after a
   * graceful drain. With `signals` (the default) the first SIGINT/SIGTERM drains and a second
   * stops at once. Rejects only when the server refuses the worker for good or a registered
   * workflow is invalid.
   */
  run(options: { signals?: boolean } = {}): Promise<void> {
    if (this.running) return Promise.reject(new Error("this worker has already run (a Worker runs once)"));
    if (this.handlers.size === 0) {
      return Promise.reject(new TypeError("no task handlers registered: add at least one with worker.task(...)"));
    }
    this.running = true;
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    if (options.signals ?? true) this.installSignalHandlers();
    void this.start();
    return this.done;
  }

  /** Starts a graceful drain; resolves when the worker has stopped. */
  stop(reason = "shutdown requested"): Promise<void> {
    if (!this.running) return Promise.resolve();
    if (this.finished) return this.done!.catch(() => undefined);
    this.drainRequested ??= reason;
    if (this.target) {
      this.beginDrain(reason);
      this.step();
    }
    return this.done!.catch(() => undefined);
  }

  /** Stops at once: cancels every handler and returns without waiting for results. */
  abort(): void {
    if (!this.running || this.finished) return;
    if (this.held.size > 0) this.log.warn("stopping at once: abandoning running tasks", { held: this.held.size });
    for (const h of this.held.values()) h.controller.abort(new CancelledError({ kind: "shutdown" }));
    this.finish();
  }

  // ---- start-up --------------------------------------------------------------------------

  private installSignalHandlers(): void {
    let count = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      count++;
      if (count === 1) {
        this.log.info("shutdown requested: draining (send it again to stop at once)", { signal });
        void this.stop(`${signal} received`);
      } else {
        this.log.warn("second shutdown request: stopping at once", { signal });
        this.abort();
      }
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    this.removeSignalHandlers = () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    };
  }

  private async start(): Promise<void> {
    const target = this.resolved;
    try {
      await this.applyWorkflows();
    } catch (error) {
      this.fail(error);
      return;
    }
    if (this.finished) return;
    if (this.drainRequested !== undefined) {
      // Stopped before connecting: nothing to drain.
      this.finish();
      return;
    }
    this.target = target;
    this.log.info("connecting", { endpoint: target.address, name: this.name, types: this.taskTypes.join(",") });
    this.connect();
  }

  /** Applies registered workflows, retrying while the server is unreachable. */
  private async applyWorkflows(): Promise<void> {
    if (this.workflows.length === 0) return;
    const client = new BraidClient(this.options.endpoint, {
      credentials: this.resolved.credentials,
      timeoutMs: 10_000,
      token: this.token ?? "",
    });
    try {
      for (const wf of this.workflows) {
        for (;;) {
          if (this.finished || this.drainRequested !== undefined) return;
          try {
            const { workflow, created } = await client.applyWorkflow(wf);
            this.log.info(created ? "workflow applied" : "workflow unchanged", {
              workflow: workflow.name,
              version: workflow.version,
            });
            this.backoff.reset();
            break;
          } catch (error) {
            const e = BraidError.from(error);
            if (e.code !== Code.UNAVAILABLE && e.code !== Code.DEADLINE_EXCEEDED) throw e;
            const delay = this.backoff.next();
            this.log.warn("cannot apply a workflow yet; retrying", { error: e.message, delay_ms: Math.round(delay) });
            await new Promise((r) => setTimeout(r, delay));
          }
        }
      }
    } finally {
      client.close();
    }
  }

  // ---- the link ----------------------------------------------------------------------------

  private connect(): void {
    const target = this.target;
    if (this.finished || !target) return;
    this.retryTimer = undefined;
    // A channel per stream, with its own subchannel: reconnection follows this worker's backoff,
    // not the backoff of a channel (or a shared subchannel) that saw the server go away.
    const client = new WorkerServiceClient(target.address, target.credentials, {
      "grpc.use_local_subchannel_pool": 1,
      // Detects a dead connection while the server is silent, so leases are given up in time.
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 10_000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    });
    const call = client.connect(authMetadata(this.token));
    const conn = new Conn(client, call);
    this.conn = conn;
    call.on("data", (message: ConnectResponse) => this.onData(conn, message));
    call.on("error", (error: ServiceError) => this.onCallEnd(conn, error));
    call.on("end", () => this.onCallEnd(conn, undefined));
    conn.welcomeTimer = setTimeout(
      () => this.onOpenFailed(conn, new BraidError(Code.DEADLINE_EXCEEDED, "timed out waiting for Welcome")),
      this.connectTimeoutMs,
    );
    conn.send({
      $case: "hello",
      value: {
        workerName: this.name,
        taskTypes: this.taskTypes,
        slots: this.slots,
        labels: { ...this.labels },
        sdkLanguage: "typescript",
        sdkVersion: SDK_VERSION,
      },
    });
  }

  private onData(conn: Conn, response: ConnectResponse): void {
    if (conn !== this.conn || conn.phase === "ended" || this.finished) return;
    const m = response.message;
    if (conn.phase === "opening") {
      if (m?.$case === "welcome") this.onWelcome(conn, m.value);
      else this.onOpenFailed(conn, new BraidError(Code.INTERNAL, `protocol violation: expected Welcome first, got ${m?.$case ?? "an empty message"}`));
      this.step();
      return;
    }
    switch (m?.$case) {
      case "assignment":
        this.onAssignment(conn, m.value);
        break;
      case "cancel":
        this.onCancel(m.value);
        break;
      case "ack":
        this.onAck(m.value);
        break;
      case "welcome":
        this.log.warn("ignoring a second Welcome on the stream");
        break;
      default:
        this.log.debug("ignoring an empty ConnectResponse");
    }
    this.step();
  }

  private onCallEnd(conn: Conn, error: ServiceError | undefined): void {
    if (conn !== this.conn || conn.phase === "ended" || this.finished) return;
    if (conn.phase === "opening") {
      const e = error ? BraidError.from(error) : new BraidError(Code.UNAVAILABLE, "the server closed the stream before Welcome");
      this.onOpenFailed(conn, e);
    } else {
      const why = error
        ? `the stream failed: ${codeName(error.code)}: ${error.details}`
        : "the server ended the stream";
      this.onStreamEnd(conn, why);
    }
    this.step();
  }

  private onOpenFailed(conn: Conn, error: BraidError): void {
    if (conn !== this.conn || conn.phase !== "opening") return;
    conn.dispose();
    this.conn = undefined;
    const permanent =
      error.code === Code.UNAUTHENTICATED || error.code === Code.PERMISSION_DENIED || error.code === Code.INVALID_ARGUMENT;
    if (permanent) {
      this.log.error("the server refused the worker; stopping", { error: error.message });
      for (const h of this.held.values()) h.controller.abort(new CancelledError({ kind: "shutdown" }));
      this.fail(new WorkerRefusedError(error));
      return;
    }
    this.retryLater(error.message);
  }

  private retryLater(why: string): void {
    const delay = this.backoff.next();
    this.log.warn("reconnecting after a delay", {
      attempt: this.backoff.failures,
      delay_ms: Math.round(delay),
      error: why,
    });
    this.retryTimer = setTimeout(() => {
      this.connect();
      this.step();
    }, delay);
  }

  /** A new stream: adopt the server's timings, re-announce held leases, resume a drain, send pending results. */
  private onWelcome(conn: Conn, welcome: Welcome): void {
    clearTimeout(conn.welcomeTimer);
    conn.phase = "up";
    conn.workerId = welcome.workerId;
    this.heartbeatMs = positiveOr(durationToMillis(welcome.heartbeatInterval), DEFAULT_HEARTBEAT_MS, "heartbeat_interval", this.log);
    this.leaseTtlMs = positiveOr(durationToMillis(welcome.leaseTtl), DEFAULT_LEASE_TTL_MS, "lease_ttl", this.log);
    if (this.heartbeatMs >= this.leaseTtlMs) {
      this.log.warn("heartbeat interval is not shorter than the lease TTL", {
        heartbeat_ms: this.heartbeatMs,
        lease_ttl_ms: this.leaseTtlMs,
      });
    }
    this.backoff.reset();
    this.counters.connects++;
    this.log.info("connected", {
      worker_id: welcome.workerId,
      server_version: welcome.serverVersion,
      heartbeat: formatMillis(this.heartbeatMs),
      lease_ttl: formatMillis(this.leaseTtlMs),
      held: this.held.size,
      pending_results: this.unsent.length,
    });
    conn.heartbeat = setInterval(() => {
      if (conn === this.conn && conn.phase === "up" && conn.open) {
        this.heartbeat(conn);
        this.step();
      }
    }, this.heartbeatMs);
    this.heartbeat(conn);
    if (this.drain) conn.send({ $case: "drain", value: { reason: this.drain.reason } });
    this.flush(conn);
    this.emit({
      type: "connected",
      workerId: welcome.workerId,
      serverVersion: welcome.serverVersion,
      heartbeatIntervalMs: this.heartbeatMs,
      leaseTtlMs: this.leaseTtlMs,
    });
  }

  private onStreamEnd(conn: Conn, why: string): void {
    const halfClosed = !conn.open;
    conn.dispose();
    if (halfClosed) {
      this.log.info("stream closed after drain");
      this.closed = true;
      return;
    }
    this.conn = undefined;
    this.log.warn("disconnected", { error: why, held: this.held.size, unacked: this.unacked.length });
    this.emit({ type: "disconnected", error: why });
    // Results sent on the broken stream and not acknowledged are sent again on the next one.
    this.unsent = [...this.unacked, ...this.unsent];
    this.unacked = [];
    this.retryLater(why);
  }

  private upConn(): Conn | undefined {
    const c = this.conn;
    return c && c.phase === "up" ? c : undefined;
  }

  // ---- what the worker sends -------------------------------------------------------------

  /** Lists every lease held (running, waiting for a slot, or with a result not yet sent on this stream). */
  private heartbeat(conn: Conn): void {
    const leases = [...this.held.values()].map((h) => h.task).concat(this.unsent.map((p) => p.task));
    const sent = conn.send({
      $case: "heartbeat",
      value: { leases: leases.map((t) => ({ taskId: t.taskId, attempt: t.attempt, leaseId: t.leaseId })) },
    });
    if (sent) this.extendedAt = Date.now();
  }

  /** Sends every unsent result, oldest first; they wait for their acks in `unacked`. */
  private flush(conn: Conn): void {
    while (this.unsent.length > 0) {
      const pending = this.unsent[0];
      if (!conn.send({ $case: "result", value: pending.result })) break;
      this.unsent.shift();
      this.unacked.push(pending);
    }
  }

  // ---- what the server sends -------------------------------------------------------------

  private onAssignment(conn: Conn, a: TaskAssignment): void {
    const task: TaskRef = { taskId: a.taskId, attempt: a.attempt, leaseId: a.leaseId, taskType: a.taskType };
    const key = keyOf(task);
    const fields = { task_id: a.taskId, attempt: a.attempt, lease_id: a.leaseId };
    if (!conn.open) {
      this.log.warn("assignment after the stream was closed: not run; its lease will expire", fields);
      return;
    }
    const known = this.held.has(key) || [...this.unsent, ...this.unacked].some((p) => keyOf(p.task) === key);
    if (known) {
      this.log.warn("duplicate assignment ignored", fields);
      return;
    }
    if (!a.leaseId) this.log.warn("assignment without a lease id: its result will be refused", fields);
    for (const h of this.held.values()) {
      if (h.task.taskId === a.taskId && h.task.attempt < a.attempt) {
        this.log.info("a newer attempt was assigned: cancelling the older one", {
          task_id: a.taskId,
          old_attempt: h.task.attempt,
          attempt: a.attempt,
        });
        h.controller.abort(new CancelledError({ kind: "server", reason: `superseded by attempt ${a.attempt}` }));
      }
    }
    const controller = new AbortController();
    if (this.drain?.cancelled) controller.abort(new CancelledError({ kind: "shutdown" }));
    else if (this.drain) this.log.info("assignment received while draining: running it", fields);
    else this.log.debug("assignment received", { ...fields, task_type: a.taskType });
    this.held.set(key, { task, controller });
    this.counters.inFlight = this.held.size;
    void this.execute(a, task, controller, conn.workerId).then(
      (finished) => this.onJoined(key, finished),
      (error) =>
        this.onJoined(key, {
          result: { ok: false, error: new TaskError(`the task runner failed: ${String(error)}`, { type: "internal" }) },
          started: false,
        }),
    );
  }

  private onCancel(cancel: CancelTask): void {
    let found = false;
    for (const h of this.held.values()) {
      const t = h.task;
      const matches =
        t.taskId === cancel.taskId &&
        (cancel.attempt === 0 || t.attempt === cancel.attempt) &&
        (cancel.leaseId === "" || t.leaseId === cancel.leaseId);
      if (!matches) continue;
      found = true;
      this.log.info("the server cancelled the task", { task_id: t.taskId, attempt: t.attempt, reason: cancel.reason });
      h.controller.abort(new CancelledError({ kind: "server", reason: cancel.reason }));
    }
    if (!found) this.log.debug("CancelTask for a task not running here", { task_id: cancel.taskId, attempt: cancel.attempt });
  }

  /** Settles a sent result. A rejected result is logged and never sent again. */
  private onAck(ack: ResultAck): void {
    let i = this.unacked.findIndex(
      (p) => p.task.taskId === ack.taskId && p.task.attempt === ack.attempt && p.task.leaseId === ack.leaseId,
    );
    if (i < 0) i = this.unacked.findIndex((p) => p.task.taskId === ack.taskId && p.task.attempt === ack.attempt);
    if (i < 0) {
      this.log.debug("ResultAck for no pending result", { task_id: ack.taskId, attempt: ack.attempt });
      return;
    }
    const [pending] = this.unacked.splice(i, 1);
    const task = pending.task;
    const fields = { task_id: task.taskId, attempt: task.attempt, lease_id: task.leaseId, reason: ack.reason };
    if (ack.accepted) {
      this.counters.accepted++;
      this.log.debug("result accepted", fields);
    } else {
      this.counters.rejected++;
      if (ack.code === Code.FAILED_PRECONDITION) {
        this.counters.stale++;
        this.log.warn("result rejected: the lease is no longer current (stale); it is not sent again", fields);
      } else if (ack.code === Code.INVALID_ARGUMENT) {
        this.log.error("result rejected as malformed; it is not sent again", fields);
      } else {
        this.log.warn("result rejected; it is not sent again", { ...fields, code: ack.code });
      }
    }
    this.emit({ type: "resultAcked", task, accepted: ack.accepted, code: ack.code, reason: ack.reason });
  }

  // ---- running one assignment ------------------------------------------------------------

  /** Waits for a slot (unless cancelled first), then runs the handler; the deadline aborts its signal. */
  private async execute(a: TaskAssignment, task: TaskRef, controller: AbortController, workerId: string): Promise<Finished> {
    const signal = controller.signal;
    let deadlineTimer: NodeJS.Timeout | undefined;
    if (a.deadline) {
      const left = a.deadline.getTime() - Date.now();
      if (left <= 0) controller.abort(new CancelledError({ kind: "deadline" }));
      else {
        deadlineTimer = setTimeout(() => {
          if (!signal.aborted) {
            this.log.info("deadline passed: cancelling the handler", { task_id: task.taskId, attempt: task.attempt });
            controller.abort(new CancelledError({ kind: "deadline" }));
          }
        }, Math.min(left, 2_147_483_647));
      }
    }
    try {
      const gotSlot = await this.slotPool.acquire(signal);
      if (!gotSlot) return cancelledBeforeStart(signal);
      try {
        return await this.runHandler(a, task, signal, workerId);
      } finally {
        this.slotPool.release();
      }
    } finally {
      clearTimeout(deadlineTimer);
    }
  }

  private async runHandler(a: TaskAssignment, task: TaskRef, signal: AbortSignal, workerId: string): Promise<Finished> {
    const registered = this.handlers.get(a.taskType);
    if (!registered) {
      const error = new TaskError(`this worker has no handler for task type ${JSON.stringify(a.taskType)}`, {
        type: "unknown_task_type",
      });
      return { result: { ok: false, error }, started: false };
    }
    let envelope: { input: unknown; deps: Record<string, unknown> };
    let input: unknown;
    try {
      envelope = parseEnvelope(a.inputJson);
      input = envelope.input;
      if (registered.decode) {
        try {
          input = registered.decode(envelope.input);
        } catch (e) {
          if (e instanceof TaskError) throw e;
          throw new FatalError(`input does not fit the handler: ${e instanceof Error ? e.message : String(e)}`, {
            type: "bad_input",
            cause: e,
          });
        }
      }
    } catch (e) {
      return { result: { ok: false, error: TaskError.from(e) }, started: false };
    }
    const ctx = new TaskContext(
      {
        taskId: a.taskId,
        runId: a.runId,
        workflowName: a.workflowName,
        workflowVersion: a.workflowVersion,
        taskName: a.taskName,
        taskType: a.taskType,
        attempt: a.attempt,
        maxAttempts: a.maxAttempts,
        leaseId: a.leaseId,
        deadline: a.deadline,
        traceContext: a.traceContext,
        workerId,
      },
      envelope.deps,
      signal,
    );
    this.counters.started++;
    this.emit({ type: "taskStarted", task, runId: a.runId, taskName: a.taskName });
    const span = startHandlerSpan(
      {
        "braid.task_id": a.taskId,
        "braid.run_id": a.runId,
        "braid.task_name": a.taskName,
        "braid.task_type": a.taskType,
        "braid.attempt": a.attempt,
      },
      a.traceContext,
      this.options.tracerProvider,
    );
    try {
      const output = await span.run(() => registered.handler(input, ctx));
      let outputJson: string | undefined;
      try {
        outputJson = JSON.stringify(output);
      } catch (e) {
        throw new FatalError(`output cannot be serialized as JSON: ${(e as Error).message}`, { type: "bad_output" });
      }
      span.end();
      return { result: { ok: true, outputJson: outputJson ?? "null" }, started: true };
    } catch (e) {
      const error = TaskError.from(e);
      span.end(error.message);
      return { result: { ok: false, error }, started: true };
    }
  }

  /** A task ended: free its lease entry, queue its result and send it if connected. */
  private onJoined(key: string, finished: Finished): void {
    const held = this.held.get(key);
    if (!held || this.finished) return;
    this.held.delete(key);
    this.counters.inFlight = this.held.size;
    const task = held.task;
    let outcome: TaskResult["outcome"];
    if (finished.result.ok) {
      this.counters.succeeded++;
      this.log.debug("task succeeded", { task_id: task.taskId, attempt: task.attempt });
      outcome = { $case: "outputJson", value: finished.result.outputJson };
      this.emit({ type: "taskFinished", task, outcome: "succeeded", started: finished.started });
    } else {
      const error = finished.result.error;
      this.counters.failed++;
      this.log.info("task failed", {
        task_id: task.taskId,
        attempt: task.attempt,
        error: error.message,
        type: error.type,
        retryable: error.retryable,
      });
      outcome = { $case: "error", value: error.toProto() };
      this.emit({ type: "taskFinished", task, outcome: "failed", error, started: finished.started });
    }
    this.unsent.push({
      task,
      result: { taskId: task.taskId, attempt: task.attempt, leaseId: task.leaseId, outcome },
    });
    const conn = this.upConn();
    if (conn) this.flush(conn);
    this.step();
  }

  // ---- timers, the drain and the end -------------------------------------------------------

  private beginDrain(reason: string): void {
    if (this.drain || this.finished) return;
    const now = Date.now();
    this.drain = {
      reason,
      deadline: now + this.drainTimeoutMs,
      hardDeadline: now + this.drainTimeoutMs + CANCEL_GRACE_MS,
      cancelled: false,
    };
    this.log.info("draining: asking for no more work, finishing held tasks", {
      held: this.held.size,
      timeout: formatMillis(this.drainTimeoutMs),
      reason,
    });
    this.upConn()?.send({ $case: "drain", value: { reason } });
    this.emit({ type: "draining", reason });
  }

  /** After every event: decide whether to exit, then arm the one timer for what is due next. */
  private step(): void {
    if (this.finished) return;
    this.onTimer();
    if (this.exitCheck()) {
      this.finish();
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    const next = this.nextTimer();
    if (next !== undefined) {
      this.timer = setTimeout(() => this.step(), Math.max(0, next - Date.now()) + 1);
    }
  }

  private nextTimer(): number | undefined {
    const candidates: number[] = [];
    if (!this.upConn() && this.held.size > 0 && this.extendedAt !== undefined) {
      candidates.push(this.extendedAt + this.leaseTtlMs);
    }
    if (this.drain) {
      if (!this.drain.cancelled) candidates.push(this.drain.deadline);
      candidates.push(this.drain.hardDeadline);
      if (this.drain.settledAt !== undefined) candidates.push(this.drain.settledAt + ACK_WAIT_MS);
    }
    if (this.conn?.closeBy !== undefined) candidates.push(this.conn.closeBy);
    return candidates.length ? Math.min(...candidates) : undefined;
  }

  /** Cancels handlers whose lease is probably gone, and handlers past the drain timeout. */
  private onTimer(): void {
    const now = Date.now();
    const leaseGone = this.extendedAt !== undefined && now >= this.extendedAt + this.leaseTtlMs;
    if (!this.upConn() && leaseGone && this.held.size > 0) {
      this.log.warn(
        "no heartbeat reached the server for a whole lease TTL: the leases have probably expired; cancelling their handlers",
        { held: this.held.size, lease_ttl: formatMillis(this.leaseTtlMs) },
      );
      for (const h of this.held.values()) h.controller.abort(new CancelledError({ kind: "lease_lost" }));
      this.extendedAt = undefined;
    }
    const d = this.drain;
    if (d && !d.cancelled && now >= d.deadline) {
      d.cancelled = true;
      if (this.held.size > 0) this.log.warn("drain timeout passed: cancelling the tasks still running", { held: this.held.size });
      for (const h of this.held.values()) h.controller.abort(new CancelledError({ kind: "shutdown" }));
    }
  }

  /**
   * During a drain: whether the worker is done. It is once nothing is held or unsent and the
   * acks came (or ACK_WAIT passed) and the stream is closed, or at the hard deadline.
   */
  private exitCheck(): boolean {
    if (this.closed) return true;
    const d = this.drain;
    if (!d) return false;
    const now = Date.now();
    if (now >= d.hardDeadline) {
      const results = this.unsent.length + this.unacked.length;
      if (this.held.size > 0 || results > 0) {
        this.log.error("drain deadline passed: abandoning tasks and results (their leases will expire)", {
          held: this.held.size,
          results,
        });
      }
      return true;
    }
    if (this.held.size > 0 || this.unsent.length > 0) {
      d.settledAt = undefined;
      return false;
    }
    const conn = this.upConn();
    if (!conn) return true; // nothing to deliver and no stream
    if (conn.open) {
      d.settledAt ??= now;
      if (this.unacked.length === 0 || now >= d.settledAt + ACK_WAIT_MS) {
        if (this.unacked.length > 0) this.log.warn("no ack for some results; closing anyway", { unacked: this.unacked.length });
        this.log.info("drained: closing the stream");
        conn.halfClose();
      }
      return false;
    }
    if (conn.closeBy !== undefined && now >= conn.closeBy) {
      this.log.warn("the server did not end the stream after the drain; leaving");
      return true;
    }
    return false;
  }

  private teardown(): void {
    this.finished = true;
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    this.conn?.dispose();
    this.conn = undefined;
    this.removeSignalHandlers?.();
    this.removeSignalHandlers = undefined;
  }

  private finish(): void {
    if (this.finished) return;
    this.teardown();
    this.log.info("stopped", { ...this.stats() });
    this.resolveDone?.();
  }

  private fail(error: unknown): void {
    if (this.finished) return;
    this.teardown();
    this.rejectDone?.(error);
  }

  private emit(event: WorkerEvent): void {
    const hook = this.options.onEvent;
    if (!hook) return;
    try {
      hook(event);
    } catch (e) {
      this.log.error("onEvent hook threw", { error: e instanceof Error ? e.message : String(e) });
    }
  }
}

function cancelledBeforeStart(signal: AbortSignal): Finished {
  const reason: CancelReason = signal.reason instanceof CancelledError ? signal.reason.reason : { kind: "shutdown" };
  const base = new CancelledError(reason);
  const error = new TaskError(`not started: ${describeCancel(reason)}`, {
    type: base.type,
    retryable: true,
    details: { started: false },
  });
  return { result: { ok: false, error }, started: false };
}

/**
 * Parses `{"input": ..., "deps": {...}}`. Blank text is an empty envelope; a missing `input` is
 * null, a missing or null `deps` is empty; anything else is a FatalError of type "bad_input".
 */
export function parseEnvelope(text: string): { input: unknown; deps: Record<string, unknown> } {
  if (text.trim() === "") return { input: null, deps: {} };
  const bad = (why: string) => new FatalError(`input_json is not a task envelope: ${why}`, { type: "bad_input" });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw bad("not a JSON object");
  const obj = doc as Record<string, unknown>;
  const input = obj.input === undefined ? null : obj.input;
  const deps = obj.deps;
  if (deps === undefined || deps === null) return { input, deps: {} };
  if (typeof deps !== "object" || Array.isArray(deps)) throw bad('"deps" is not an object');
  return { input, deps: deps as Record<string, unknown> };
}

function positiveOr(value: number | undefined, fallback: number, field: string, log: Logger): number {
  if (value !== undefined && value > 0) return value;
  log.warn(`Welcome has no usable ${field}; using the default`, { default_ms: fallback });
  return fallback;
}
