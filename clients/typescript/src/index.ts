// @braid/client: the TypeScript client and worker SDK of Braid.

export { BraidClient, isTerminal, parseJson, TERMINAL_RUN_STATES } from "./client";
export type {
  ClientOptionsArg,
  DeadLetterFilterArg,
  Page,
  RedriveRequestArg,
  RunFilter,
  TriggerOptions,
  TriggerPriority,
} from "./client";
export { BraidError, Code, codeName, violationsOf } from "./errors";
export type { Violation } from "./errors";
export { DEFAULT_ENDPOINT } from "./endpoint";
export { resolveToken } from "./token";
export type { PemSource, TlsOptions } from "./tls";
export { formatMillis, parseHumantime, toMillis, toProtoDuration } from "./duration";
export type { DurationLike } from "./duration";
export { Workflow, concurrencyPolicyName, toWorkflowDefinition } from "./workflow";
export type {
  ConcurrencyPolicyName,
  RetryOptions,
  RetryPolicyFile,
  RunSettingsFile,
  TaskFile,
  TaskOptions,
  WorkflowFile,
  WorkflowInput,
  WorkflowOptions,
} from "./workflow";
export { Worker, WorkerRefusedError, defaultWorkerName, parseEnvelope } from "./worker/worker";
export type { TracerProviderLike } from "./worker/tracing";
export type { Handler, TaskHandlerOptions, TaskRef, WorkerEvent, WorkerOptions, WorkerStats } from "./worker/worker";
export { CancelledError, TaskContext } from "./worker/context";
export type { CancelReason } from "./worker/context";
export { FatalError, TaskError } from "./worker/task-error";
export type { TaskErrorOptions } from "./worker/task-error";
export { silentLogger, stderrLogger } from "./worker/logger";
export type { Logger, LogFields } from "./worker/logger";
export { SDK_VERSION } from "./version";

// The generated braid.v1 types most callers meet.
export { Priority, RunState, TaskState, TriggerSource } from "./gen/braid/v1/common";
export type { PageRequest, RetryPolicy, TaskAttempt, TaskError as TaskErrorProto } from "./gen/braid/v1/common";
export type { Run, RunEvent, Task } from "./gen/braid/v1/run";
export { ConcurrencyPolicy } from "./gen/braid/v1/workflow";
export type { ValidationError, Workflow as StoredWorkflow, WorkflowDefinition, WorkflowSummary } from "./gen/braid/v1/workflow";
export type { DeadLetter, QueueInfo, WorkerInfo } from "./gen/braid/v1/admin";
/** Every generated braid.v1 message and grpc-js client (proto.run.RunServiceClient, ...), for what the wrappers do not cover. */
export * as proto from "./proto";
