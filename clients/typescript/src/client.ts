// BraidClient: authoring, triggers, runs and dead letters over the braid.v1 gRPC API.

import { type CallOptions, type Metadata, type ChannelCredentials, type ClientOptions, type ServiceError } from "@grpc/grpc-js";
import { BraidError, Code } from "./errors";
import { resolveEndpoint } from "./endpoint";
import type { TlsOptions } from "./tls";
import { authMetadata, resolveToken } from "./token";
import { toWorkflowDefinition, type WorkflowInput } from "./workflow";
import {
  WorkflowServiceClient,
  type ValidationError,
  type Workflow as StoredWorkflow,
  type WorkflowSummary,
} from "./gen/braid/v1/workflow";
import { RunServiceClient, type Run, type RunEvent, type TriggerRunRequest } from "./gen/braid/v1/run";
import {
  AdminServiceClient,
  type DeadLetter,
  type QueueInfo,
  type WorkerInfo,
} from "./gen/braid/v1/admin";
import { Priority, RunState, type PageRequest } from "./gen/braid/v1/common";

/**
 * `caCert`, `clientCert` and `clientKey` (TlsOptions: file paths or PEM) configure TLS for an
 * `https://` endpoint; with an `http://` one they throw a TypeError.
 */
export interface ClientOptionsArg extends TlsOptions {
  /**
   * Channel credentials; by default plaintext for host:port and http://, TLS for https:// (with
   * `caCert`, `clientCert`, `clientKey`). Not together with those.
   */
  credentials?: ChannelCredentials;
  /** grpc-js channel options. */
  channelOptions?: Partial<ClientOptions>;
  /** Deadline of each unary call in milliseconds (default 30000; 0 for none). */
  timeoutMs?: number;
  /**
   * The API token sent as `authorization: Bearer TOKEN` on every call (default BRAID_TOKEN;
   * "" for none). A token with whitespace or control characters inside throws a TypeError.
   */
  token?: string;
}

export interface TriggerOptions {
  /** The run input: any JSON value (default {}). */
  input?: unknown;
  /** The run input as JSON text, sent as is (instead of `input`). */
  inputJson?: string;
  /** A repeated trigger with the same key (and input) returns the same run with created = false. */
  idempotencyKey?: string;
  /** Workflow version; 0 or unset for the latest. */
  version?: number;
  /** How urgently the run's ready tasks are dispatched; unset is normal. Any other value throws a RangeError. */
  priority?: TriggerPriority;
  /**
   * E.g. a customer id (at most 128 bytes): runs sharing it count against the workflow's
   * `max_per_key`; the rest wait in RUN_STATE_QUEUED (`run.reason` says why).
   */
  concurrencyKey?: string;
}

/** A trigger's priority: a worker takes ready tasks of higher priority first (low never starves). */
export type TriggerPriority = "high" | "normal" | "low";

const PRIORITIES: Record<TriggerPriority, Priority> = {
  high: Priority.PRIORITY_HIGH,
  normal: Priority.PRIORITY_NORMAL,
  low: Priority.PRIORITY_LOW,
};

/** The wire value of a trigger priority (unset is PRIORITY_UNSPECIFIED, which the server takes as normal). */
export function priorityToProto(priority: TriggerPriority | undefined): Priority {
  if (priority === undefined) return Priority.PRIORITY_UNSPECIFIED;
  if (typeof priority === "string" && Object.prototype.hasOwnProperty.call(PRIORITIES, priority)) {
    return PRIORITIES[priority];
  }
  throw new RangeError(`unknown priority ${JSON.stringify(priority)}: expected "high", "normal" or "low"`);
}

/** The TriggerRun request `trigger(workflow, options)` sends; throws on a bad option before any call. */
export function triggerRunRequest(workflow: string, options: TriggerOptions = {}): TriggerRunRequest {
  const priority = priorityToProto(options.priority);
  const inputJson = options.inputJson ?? (options.input === undefined ? "" : JSON.stringify(options.input));
  return {
    workflowName: workflow,
    workflowVersion: options.version ?? 0,
    inputJson,
    idempotencyKey: options.idempotencyKey ?? "",
    priority,
    concurrencyKey: options.concurrencyKey ?? "",
  };
}

export interface RunFilter {
  workflowName?: string;
  states?: RunState[];
  createdAfter?: Date;
  createdBefore?: Date;
  /** Only runs made by this schedule. */
  scheduleId?: string;
  pageSize?: number;
  pageToken?: string;
}

export interface DeadLetterFilterArg {
  workflowName?: string;
  taskName?: string;
  errorType?: string;
  createdAfter?: Date;
  createdBefore?: Date;
}

export interface Page {
  pageSize?: number;
  pageToken?: string;
}

export interface RedriveRequestArg {
  /** Dead letter ids; or a filter (all matching); not both. */
  ids?: string[];
  filter?: DeadLetterFilterArg;
}

/** Run states after which nothing changes (unless a failed run is redriven). */
export const TERMINAL_RUN_STATES: readonly RunState[] = [
  RunState.RUN_STATE_SUCCEEDED,
  RunState.RUN_STATE_FAILED,
  RunState.RUN_STATE_CANCELLED,
];

/** Whether a run state is terminal. */
export function isTerminal(state: RunState): boolean {
  return TERMINAL_RUN_STATES.includes(state);
}

type Callback<R> = (error: ServiceError | null, response: R) => void;
type UnaryMethod<Q, R> = (request: Q, metadata: Metadata, options: Partial<CallOptions>, callback: Callback<R>) => unknown;

/**
 * A client of one Braid control plane.
 *
 * ```ts
 * const braid = new BraidClient("127.0.0.1:7400");
 * await braid.applyWorkflow({ name: "hello", tasks: [{ name: "greet", task_type: "echo" }] });
 * const { run } = await braid.trigger("hello", { input: { who: "world" } });
 * ```
 *
 * Every failed call throws a `BraidError` with the gRPC code (and, for INVALID_ARGUMENT, the
 * server's violations).
 */
export class BraidClient {
  readonly address: string;
  private readonly workflows: WorkflowServiceClient;
  private readonly runs: RunServiceClient;
  private readonly admin: AdminServiceClient;
  private readonly timeoutMs: number;
  private readonly token: string | undefined;

  constructor(endpoint?: string, options: ClientOptionsArg = {}) {
    const target = resolveEndpoint(endpoint, options.credentials, options);
    this.token = resolveToken(options.token);
    this.address = target.address;
    const channelOptions = options.channelOptions ?? {};
    this.workflows = new WorkflowServiceClient(target.address, target.credentials, channelOptions);
    // The three clients share one channel.
    const shared = { ...channelOptions, channelOverride: this.workflows.getChannel() };
    this.runs = new RunServiceClient(target.address, target.credentials, shared);
    this.admin = new AdminServiceClient(target.address, target.credentials, shared);
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  private call<Q, R>(client: object, method: UnaryMethod<Q, R>, request: Q): Promise<R> {
    const options: Partial<CallOptions> = this.timeoutMs > 0 ? { deadline: Date.now() + this.timeoutMs } : {};
    return new Promise<R>((resolve, reject) => {
      method.call(client, request, authMetadata(this.token), options, (error, response) => {
        if (error) reject(BraidError.from(error));
        else resolve(response);
      });
    });
  }

  /**
   * Validates and stores a workflow as its next version; the same content as the latest version
   * returns that version with `created = false`. `definition` is a code-declared `Workflow` or
   * the file form (as parsed from YAML or JSON).
   */
  async applyWorkflow(definition: WorkflowInput): Promise<{ workflow: StoredWorkflow; created: boolean }> {
    const def = toWorkflowDefinition(definition);
    const res = await this.call(this.workflows, this.workflows.putWorkflow, { definition: def });
    return { workflow: res.workflow!, created: res.created };
  }

  /** Validates without storing: `valid` and every problem as (path, reason). */
  async validateWorkflow(definition: WorkflowInput): Promise<{ valid: boolean; errors: ValidationError[] }> {
    const def = toWorkflowDefinition(definition);
    const res = await this.call(this.workflows, this.workflows.validateWorkflow, { definition: def });
    return { valid: res.valid, errors: res.errors };
  }

  /** One stored version (the latest when `version` is 0 or unset), with defaults written out. */
  async getWorkflow(name: string, version = 0): Promise<StoredWorkflow> {
    const res = await this.call(this.workflows, this.workflows.getWorkflow, { name, version });
    return res.workflow!;
  }

  /** Workflow names with their latest version. */
  async listWorkflows(page: Page = {}): Promise<{ workflows: WorkflowSummary[]; nextPageToken: string }> {
    const res = await this.call(this.workflows, this.workflows.listWorkflows, { page: pageOf(page) });
    return { workflows: res.workflows, nextPageToken: res.nextPageToken };
  }

  /** Starts a run of `workflow`; with an idempotency key a repeat returns the same run (`created` false). */
  async trigger(workflow: string, options: TriggerOptions = {}): Promise<{ run: Run; created: boolean }> {
    const res = await this.call(this.runs, this.runs.triggerRun, triggerRunRequest(workflow, options));
    return { run: res.run!, created: res.created };
  }

  /** A run with its tasks and their attempts. */
  async getRun(runId: string): Promise<Run> {
    const res = await this.call(this.runs, this.runs.getRun, { runId });
    return res.run!;
  }

  /** Runs newest first (without tasks), filtered, one page at a time. */
  async listRuns(filter: RunFilter = {}): Promise<{ runs: Run[]; nextPageToken: string }> {
    const res = await this.call(this.runs, this.runs.listRuns, {
      workflowName: filter.workflowName ?? "",
      states: filter.states ?? [],
      createdAfter: filter.createdAfter,
      createdBefore: filter.createdBefore,
      page: pageOf(filter),
      scheduleId: filter.scheduleId ?? "",
    });
    return { runs: res.runs, nextPageToken: res.nextPageToken };
  }

  /**
   * The run's events with a sequence greater than `afterSequence` (0: the whole log), then live
   * ones until the run ends. Breaking out of the loop cancels the stream.
   */
  async *watchRun(runId: string, afterSequence = 0): AsyncGenerator<RunEvent, void, undefined> {
    const call = this.runs.watchRun({ runId, afterSequence }, authMetadata(this.token));
    try {
      for await (const message of call) {
        const event = (message as { event?: RunEvent }).event;
        if (event) yield event;
      }
    } catch (error) {
      throw BraidError.from(error);
    } finally {
      call.cancel();
    }
  }

  /**
   * Follows the run until it is terminal and returns it (with its tasks). Throws a BraidError
   * with DEADLINE_EXCEEDED after `timeoutMs` (default: no limit).
   */
  async waitForRun(runId: string, options: { timeoutMs?: number } = {}): Promise<Run> {
    // WatchRun ends once the run is terminal and every event has been sent.
    const call = this.runs.watchRun({ runId, afterSequence: 0 }, authMetadata(this.token));
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (error?: unknown) => {
        clearTimeout(timer);
        if (error === undefined) resolve();
        else reject(error);
      };
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          settle(new BraidError(Code.DEADLINE_EXCEEDED, `run ${runId} did not finish within ${options.timeoutMs} ms`));
          call.cancel();
        }, options.timeoutMs);
      }
      call.on("data", () => undefined);
      call.on("end", () => settle());
      call.on("error", (error: ServiceError) => settle(BraidError.from(error)));
    });
    return this.getRun(runId);
  }

  /** Cancels pending and ready tasks and tells workers holding leases to stop. */
  async cancelRun(runId: string, reason = ""): Promise<Run> {
    const res = await this.call(this.runs, this.runs.cancelRun, { runId, reason });
    return res.run!;
  }

  /** Dead-lettered tasks, filtered, one page at a time. */
  async listDeadLetters(
    filter: DeadLetterFilterArg = {},
    page: Page = {},
  ): Promise<{ deadLetters: DeadLetter[]; nextPageToken: string }> {
    const res = await this.call(this.admin, this.admin.listDeadLetters, {
      filter: deadLetterFilter(filter),
      page: pageOf(page),
    });
    return { deadLetters: res.deadLetters, nextPageToken: res.nextPageToken };
  }

  /** Makes dead-lettered tasks ready again with fresh attempts; their runs resume. */
  async redrive(request: RedriveRequestArg): Promise<{ redriven: number; taskIds: string[] }> {
    const res = await this.call(this.admin, this.admin.redriveDeadLetters, {
      ids: request.ids ?? [],
      filter: request.filter ? deadLetterFilter(request.filter) : undefined,
    });
    return { redriven: res.redriven, taskIds: res.taskIds };
  }

  /** Workers connected to the control plane. */
  async listWorkers(page: Page = {}): Promise<{ workers: WorkerInfo[]; nextPageToken: string }> {
    const res = await this.call(this.admin, this.admin.listWorkers, { page: pageOf(page) });
    return { workers: res.workers, nextPageToken: res.nextPageToken };
  }

  /** Dispatch queues, one per task type. */
  async listQueues(): Promise<QueueInfo[]> {
    const res = await this.call(this.admin, this.admin.listQueues, {});
    return res.queues;
  }

  /** Closes the channel. */
  close(): void {
    this.workflows.close();
  }
}

function pageOf(page: Page): PageRequest {
  return { pageSize: page.pageSize ?? 0, pageToken: page.pageToken ?? "" };
}

function deadLetterFilter(f: DeadLetterFilterArg) {
  return {
    workflowName: f.workflowName ?? "",
    taskName: f.taskName ?? "",
    errorType: f.errorType ?? "",
    createdAfter: f.createdAfter,
    createdBefore: f.createdBefore,
  };
}

/** Parses a `*_json` field: undefined when empty. */
export function parseJson<T = unknown>(text: string | undefined): T | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  return JSON.parse(text) as T;
}
