// TaskError: how a handler says an attempt failed and whether it may be retried.

import type { TaskError as TaskErrorProto } from "../gen/braid/v1/common";

export interface TaskErrorOptions {
  /** A short machine-readable kind, e.g. "timeout" or "bad_input" (default "error"). */
  type?: string;
  /** Whether the server may retry the task (default true for TaskError, false for FatalError). */
  retryable?: boolean;
  /** Any JSON value kept with the error (`TaskError.details_json`). */
  details?: unknown;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * A failed attempt, reported to the server as `TaskResult.error`. Throw it from a handler:
 *
 * ```ts
 * throw new TaskError("upstream busy", { type: "rate_limited", details: { retryAfter: 5 } });
 * throw new FatalError("no such image", { type: "not_found" }); // not retried
 * ```
 *
 * Any other thrown `Error` fails the attempt as retryable, with the error's `name` as its type.
 */
export class TaskError extends Error {
  readonly type: string;
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(message: string, options: TaskErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TaskError";
    this.type = options.type ?? "error";
    this.retryable = options.retryable ?? true;
    this.details = options.details;
  }

  /** The wire form. */
  toProto(): TaskErrorProto {
    let detailsJson = "";
    if (this.details !== undefined) {
      try {
        detailsJson = JSON.stringify(this.details) ?? "";
      } catch (e) {
        detailsJson = JSON.stringify({ unserializable_details: String(e) });
      }
    }
    return { message: this.message, type: this.type, retryable: this.retryable, detailsJson };
  }

  /**
   * The TaskError for anything a handler threw: a TaskError as is; another Error as a retryable
   * error whose type is its `name` and whose message includes its causes; anything else as a
   * retryable error of type "error".
   */
  static from(thrown: unknown): TaskError {
    if (thrown instanceof TaskError) return thrown;
    if (thrown instanceof Error) {
      let message = thrown.message || thrown.name;
      let cause: unknown = (thrown as { cause?: unknown }).cause;
      for (let depth = 0; cause !== undefined && depth < 8; depth++) {
        message += `: ${cause instanceof Error ? cause.message : String(cause)}`;
        cause = cause instanceof Error ? (cause as { cause?: unknown }).cause : undefined;
      }
      return new TaskError(message, { type: thrown.name || "Error", retryable: true, cause: thrown });
    }
    return new TaskError(typeof thrown === "string" ? thrown : `handler threw ${safeString(thrown)}`, {
      type: "error",
      retryable: true,
    });
  }
}

/** A failure that ends the task at once, whatever attempts remain (`retryable: false`). */
export class FatalError extends TaskError {
  constructor(message: string, options: Omit<TaskErrorOptions, "retryable"> = {}) {
    super(message, { ...options, retryable: false });
    this.name = "FatalError";
  }
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
