// TaskContext: what a handler knows about its attempt (ids, deadline, dependencies, cancellation).

import { FatalError, TaskError } from "./task-error";

/** Why a handler's signal was aborted. */
export type CancelReason =
  /** The server sent CancelTask (e.g. the run was cancelled, or a newer attempt superseded this one). */
  | { kind: "server"; reason: string }
  /** The attempt's deadline (execution timeout) passed. */
  | { kind: "deadline" }
  /** No heartbeat reached the server for a whole lease TTL: the lease has probably expired. */
  | { kind: "lease_lost" }
  /** The worker is shutting down and the drain timeout passed (or it was aborted). */
  | { kind: "shutdown" };

/** The TaskError type reported for an attempt cancelled for `reason`. */
export function cancelErrorType(reason: CancelReason): string {
  switch (reason.kind) {
    case "server":
      return "cancelled";
    case "deadline":
      return "timeout";
    case "lease_lost":
      return "lease_expired";
    case "shutdown":
      return "worker_shutdown";
  }
}

/** Words for a cancel reason. */
export function describeCancel(reason: CancelReason): string {
  switch (reason.kind) {
    case "server":
      return reason.reason ? `cancelled by the server: ${reason.reason}` : "cancelled by the server";
    case "deadline":
      return "the attempt's deadline passed";
    case "lease_lost":
      return "the lease could not be extended for a whole lease TTL";
    case "shutdown":
      return "the worker is shutting down";
  }
}

/**
 * The abort reason of a handler's signal (`ctx.signal.reason`): a retryable TaskError whose type
 * says why ("cancelled", "timeout", "lease_expired", "worker_shutdown"). So
 * `ctx.signal.throwIfAborted()` fails the attempt with a meaningful error.
 */
export class CancelledError extends TaskError {
  readonly reason: CancelReason;

  constructor(reason: CancelReason) {
    super(describeCancel(reason), { type: cancelErrorType(reason), retryable: true });
    this.name = "CancelledError";
    this.reason = reason;
  }
}

/** The facts of one assignment. */
export interface AttemptInfo {
  taskId: string;
  runId: string;
  workflowName: string;
  workflowVersion: number;
  taskName: string;
  taskType: string;
  attempt: number;
  maxAttempts: number;
  leaseId: string;
  deadline: Date | undefined;
  traceContext: Record<string, string>;
  workerId: string;
}

/** What a handler knows about the attempt it runs. */
export class TaskContext {
  /** The task's id (a UUID). */
  readonly taskId: string;
  /** The run's id (a UUID). */
  readonly runId: string;
  readonly workflowName: string;
  readonly workflowVersion: number;
  /** The task's name in the workflow. */
  readonly taskName: string;
  /** The task type (the handler's registration name). */
  readonly taskType: string;
  /** This attempt's number: 1 for the first. */
  readonly attempt: number;
  /** Attempts in total, the first included. */
  readonly maxAttempts: number;
  /** The lease (fencing token) of this attempt. */
  readonly leaseId: string;
  /** When the attempt must be finished; the signal is aborted when it passes. */
  readonly deadline: Date | undefined;
  /** The run's W3C trace context (traceparent, tracestate). */
  readonly traceContext: Readonly<Record<string, string>>;
  /** The server's id of the stream (session) that received this assignment. */
  readonly workerId: string;
  /** Every dependency output by task name (the `deps` object of the assignment). */
  readonly deps: Readonly<Record<string, unknown>>;
  /**
   * Aborted when the server sends CancelTask, a newer attempt is assigned, the deadline passes,
   * the lease is probably lost, or the drain timeout passes. Its `reason` is a CancelledError.
   * Cancellation is cooperative: the handler should return (or throw) soon.
   */
  readonly signal: AbortSignal;

  constructor(info: AttemptInfo, deps: Record<string, unknown>, signal: AbortSignal) {
    this.taskId = info.taskId;
    this.runId = info.runId;
    this.workflowName = info.workflowName;
    this.workflowVersion = info.workflowVersion;
    this.taskName = info.taskName;
    this.taskType = info.taskType;
    this.attempt = info.attempt;
    this.maxAttempts = info.maxAttempts;
    this.leaseId = info.leaseId;
    this.deadline = info.deadline;
    this.traceContext = Object.freeze({ ...info.traceContext });
    this.workerId = info.workerId;
    this.deps = Object.freeze({ ...deps });
    this.signal = signal;
  }

  /** Whether a retryable failure of this attempt will not be retried. */
  get isLastAttempt(): boolean {
    return this.attempt >= this.maxAttempts;
  }

  /** Whether the attempt has been cancelled. */
  get cancelled(): boolean {
    return this.signal.aborted;
  }

  /** Why the attempt was cancelled, once it has been. */
  get cancelReason(): CancelReason | undefined {
    const r: unknown = this.signal.reason;
    return r instanceof CancelledError ? r.reason : undefined;
  }

  /**
   * The output of dependency task `name`. Throws a FatalError of type "bad_input" when the task
   * has no such dependency. The type parameter is not checked at run time.
   */
  dep<T = unknown>(name: string): T {
    if (!Object.prototype.hasOwnProperty.call(this.deps, name)) {
      throw new FatalError(`task has no dependency output named ${JSON.stringify(name)}`, { type: "bad_input" });
    }
    return this.deps[name] as T;
  }

  /** A promise that resolves when the attempt is cancelled. */
  whenCancelled(): Promise<CancelReason> {
    return new Promise((resolve) => {
      const done = () => resolve(this.cancelReason ?? { kind: "shutdown" });
      if (this.signal.aborted) done();
      else this.signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Sleeps `ms` milliseconds; rejects with the CancelledError as soon as the attempt is cancelled. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.signal.aborted) {
        reject(this.signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(this.signal.reason);
      };
      const timer = setTimeout(() => {
        this.signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      this.signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}
