// Workflow definitions: the file form (as in YAML/JSON files), declaring them in code, and
// converting either to the wire form.

import { Code, BraidError, type Violation } from "./errors";
import { formatMillis, toProtoDuration, type DurationLike } from "./duration";
import type { Duration } from "./gen/google/protobuf/duration";
import type { RetryPolicy } from "./gen/braid/v1/common";
import { ConcurrencyPolicy, type RunSettings, type TaskDefinition, type WorkflowDefinition } from "./gen/braid/v1/workflow";

/** A retry policy as in workflow files; unset fields are inherited (see docs/protocol.md). */
export interface RetryPolicyFile {
  max_attempts?: number;
  initial_backoff?: DurationLike;
  multiplier?: number;
  max_backoff?: DurationLike;
  jitter?: boolean;
}

/** One task as in workflow files. */
export interface TaskFile {
  name: string;
  task_type: string;
  depends_on?: string[];
  retry?: RetryPolicyFile;
  timeout?: DurationLike;
  description?: string;
}

/**
 * What happens to a run that does not fit under `max_concurrent_runs` or `max_per_key`:
 * "queue" (wait in QUEUED, first come first served; the default), "cancel_newest" (the new run
 * is cancelled) or "cancel_in_progress" (the oldest running run is cancelled to make room).
 */
export type ConcurrencyPolicyName = "queue" | "cancel_newest" | "cancel_in_progress";

const CONCURRENCY_POLICIES: Record<ConcurrencyPolicyName, ConcurrencyPolicy> = {
  queue: ConcurrencyPolicy.CONCURRENCY_POLICY_QUEUE,
  cancel_newest: ConcurrencyPolicy.CONCURRENCY_POLICY_CANCEL_NEWEST,
  cancel_in_progress: ConcurrencyPolicy.CONCURRENCY_POLICY_CANCEL_IN_PROGRESS,
};

/** Run-level settings as in workflow files. */
export interface RunSettingsFile {
  default_retry?: RetryPolicyFile;
  default_task_timeout?: DurationLike;
  max_concurrent_runs?: number;
  /** Omitted = "queue". */
  concurrency_policy?: ConcurrencyPolicyName;
  /** Running runs per concurrency key (given at trigger); 0 or omitted = unlimited. */
  max_per_key?: number;
  /** How long finished runs are kept, e.g. "30d"; omitted = the server's `--retention`. */
  retention?: DurationLike;
}

/**
 * A workflow definition in the form `braid workflow apply -f` reads (YAML or JSON), e.g. the
 * result of parsing such a file: snake_case keys, durations as humantime strings ("500ms", "1s").
 * camelCase spellings of the keys (`taskType`, `dependsOn`, ...) are accepted too.
 */
export interface WorkflowFile {
  name: string;
  description?: string;
  tasks: TaskFile[];
  settings?: RunSettingsFile;
}

/** A retry policy in code: every field optional, unset ones inherited. */
export interface RetryOptions {
  /** Attempts in total, the first included; 1 means no retry. */
  maxAttempts?: number;
  /** Delay before the second attempt, e.g. "1s". */
  initialBackoff?: DurationLike;
  /** Growth factor between attempts, 1.0 to 10.0. */
  multiplier?: number;
  /** Cap on any delay, e.g. "5m". */
  maxBackoff?: DurationLike;
  /** Full jitter (default true). */
  jitter?: boolean;
}

/** One task of a code-declared workflow. */
export interface TaskOptions {
  name: string;
  /** What workers serve (`worker.task(taskType, ...)`). */
  taskType: string;
  /** Names of tasks that must succeed first; their outputs reach this task as `ctx.deps`. */
  dependsOn?: string[];
  retry?: RetryOptions;
  /** How long one attempt may run, e.g. "30s". */
  timeout?: DurationLike;
  description?: string;
}

/** Options of a code-declared workflow. */
export interface WorkflowOptions {
  description?: string;
  /** Retry policy of tasks that set none. */
  defaultRetry?: RetryOptions;
  /** Timeout of tasks that set none, e.g. "2m". */
  defaultTaskTimeout?: DurationLike;
  /** Runs of this workflow in RUNNING at once; 0 = unlimited. */
  maxConcurrentRuns?: number;
  /**
   * The fate of a run that does not fit under `maxConcurrentRuns` or `maxPerKey`; unset is
   * "queue". A policy other than "queue" needs one of the two limits (checked by the server).
   */
  concurrencyPolicy?: ConcurrencyPolicyName;
  /** Running runs per concurrency key (`trigger(..., { concurrencyKey })`); 0 = unlimited. */
  maxPerKey?: number;
  /** Finished runs older than this are deleted, e.g. "30d"; unset takes the server's default. */
  retention?: DurationLike;
}

/**
 * A workflow declared in code. It converts to exactly the definition its YAML twin gives, so
 * applying either yields the same content hash and version.
 *
 * ```ts
 * const wf = new Workflow("thumbnails", { description: "Resize an image" })
 *   .task({ name: "fetch", taskType: "http-get" })
 *   .task({ name: "small", taskType: "resize", dependsOn: ["fetch"], retry: { maxAttempts: 5, initialBackoff: "1s" } })
 *   .task({ name: "publish", taskType: "upload", dependsOn: ["small"], timeout: "30s" });
 * ```
 */
export class Workflow {
  readonly name: string;
  readonly options: WorkflowOptions;
  private readonly tasks: TaskOptions[] = [];

  constructor(name: string, options: WorkflowOptions = {}) {
    this.name = name;
    this.options = { ...options };
  }

  /** Adds a task (in definition order, which the content hash counts). */
  task(task: TaskOptions): this {
    this.tasks.push({ ...task, dependsOn: task.dependsOn ? [...task.dependsOn] : undefined });
    return this;
  }

  /** The tasks added so far. */
  get taskList(): readonly TaskOptions[] {
    return this.tasks;
  }

  /** The file form (what the same workflow looks like in YAML). */
  toFile(): WorkflowFile {
    const o = this.options;
    const file: WorkflowFile = { name: this.name, tasks: this.tasks.map(taskToFile) };
    if (o.description !== undefined) file.description = o.description;
    if (
      o.defaultRetry !== undefined ||
      o.defaultTaskTimeout !== undefined ||
      o.maxConcurrentRuns !== undefined ||
      o.concurrencyPolicy !== undefined ||
      o.maxPerKey !== undefined ||
      o.retention !== undefined
    ) {
      file.settings = {};
      if (o.defaultRetry !== undefined) file.settings.default_retry = retryToFile(o.defaultRetry);
      if (o.defaultTaskTimeout !== undefined) file.settings.default_task_timeout = o.defaultTaskTimeout;
      if (o.maxConcurrentRuns !== undefined) file.settings.max_concurrent_runs = o.maxConcurrentRuns;
      if (o.concurrencyPolicy !== undefined) file.settings.concurrency_policy = o.concurrencyPolicy;
      if (o.maxPerKey !== undefined) file.settings.max_per_key = o.maxPerKey;
      if (o.retention !== undefined) file.settings.retention = o.retention;
    }
    return file;
  }

  /** The wire form (`braid.v1.WorkflowDefinition`). */
  toProto(): WorkflowDefinition {
    return toWorkflowDefinition(this.toFile());
  }

  /**
   * A workflow from its wire form, e.g. a stored version's `definition`. Durations come back as
   * humantime strings ("30s"), or `{seconds, nanos}` when not a whole number of milliseconds.
   */
  static fromProto(def: WorkflowDefinition): Workflow {
    const s = def.settings;
    const options: WorkflowOptions = {};
    if (def.description !== "") options.description = def.description;
    if (s !== undefined) {
      if (s.defaultRetry !== undefined) options.defaultRetry = retryFromProto(s.defaultRetry);
      if (s.defaultTaskTimeout !== undefined) options.defaultTaskTimeout = durationFromProto(s.defaultTaskTimeout);
      if (s.maxConcurrentRuns !== 0) options.maxConcurrentRuns = s.maxConcurrentRuns;
      const policy = concurrencyPolicyName(s.concurrencyPolicy);
      if (policy !== undefined) options.concurrencyPolicy = policy;
      if (s.maxPerKey !== 0) options.maxPerKey = s.maxPerKey;
      if (s.retention !== undefined) options.retention = durationFromProto(s.retention);
    }
    const wf = new Workflow(def.name, options);
    for (const t of def.tasks) {
      const task: TaskOptions = { name: t.name, taskType: t.taskType };
      if (t.dependsOn.length > 0) task.dependsOn = [...t.dependsOn];
      if (t.retry !== undefined) task.retry = retryFromProto(t.retry);
      if (t.timeout !== undefined) task.timeout = durationFromProto(t.timeout);
      if (t.description !== "") task.description = t.description;
      wf.task(task);
    }
    return wf;
  }
}

/**
 * The file-form name of a wire concurrency policy; unspecified is undefined (the server's
 * default, "queue"). A value this client does not know throws INVALID_ARGUMENT.
 */
export function concurrencyPolicyName(p: ConcurrencyPolicy): ConcurrencyPolicyName | undefined {
  if (p === ConcurrencyPolicy.CONCURRENCY_POLICY_UNSPECIFIED) return undefined;
  for (const [name, value] of Object.entries(CONCURRENCY_POLICIES)) {
    if (value === p) return name as ConcurrencyPolicyName;
  }
  const path = "settings.concurrency_policy";
  const reason = `unknown value ${String(p)}`;
  throw new BraidError(Code.INVALID_ARGUMENT, `${path}: ${reason}`, [{ path, reason }]);
}

function durationFromProto(d: Duration): DurationLike {
  if (d.nanos % 1_000_000 === 0) return formatMillis(d.seconds * 1000 + d.nanos / 1_000_000);
  return { seconds: d.seconds, nanos: d.nanos };
}

function retryFromProto(p: RetryPolicy): RetryOptions {
  const out: RetryOptions = {};
  if (p.maxAttempts !== undefined) out.maxAttempts = p.maxAttempts;
  if (p.initialBackoff !== undefined) out.initialBackoff = durationFromProto(p.initialBackoff);
  if (p.multiplier !== undefined) out.multiplier = p.multiplier;
  if (p.maxBackoff !== undefined) out.maxBackoff = durationFromProto(p.maxBackoff);
  if (p.jitter !== undefined) out.jitter = p.jitter;
  return out;
}

function retryToFile(r: RetryOptions): RetryPolicyFile {
  const out: RetryPolicyFile = {};
  if (r.maxAttempts !== undefined) out.max_attempts = r.maxAttempts;
  if (r.initialBackoff !== undefined) out.initial_backoff = r.initialBackoff;
  if (r.multiplier !== undefined) out.multiplier = r.multiplier;
  if (r.maxBackoff !== undefined) out.max_backoff = r.maxBackoff;
  if (r.jitter !== undefined) out.jitter = r.jitter;
  return out;
}

function taskToFile(t: TaskOptions): TaskFile {
  const out: TaskFile = { name: t.name, task_type: t.taskType };
  if (t.dependsOn !== undefined) out.depends_on = [...t.dependsOn];
  if (t.retry !== undefined) out.retry = retryToFile(t.retry);
  if (t.timeout !== undefined) out.timeout = t.timeout;
  if (t.description !== undefined) out.description = t.description;
  return out;
}

/** Anything `applyWorkflow` accepts: a code-declared `Workflow` or the file form. */
export type WorkflowInput = Workflow | WorkflowFile;

/**
 * Converts a workflow (code-declared, or the file form as parsed from YAML/JSON) to the wire
 * form. Shape problems (unknown keys, wrong types, unparsable durations) are all reported at
 * once as a `BraidError` with code INVALID_ARGUMENT and one violation per problem; the rules
 * about names, cycles and ranges are the server's.
 */
export function toWorkflowDefinition(input: WorkflowInput): WorkflowDefinition {
  if (input instanceof Workflow) return input.toProto();
  const problems: Violation[] = [];
  const def = readDefinition(input, problems);
  if (problems.length > 0) {
    const n = problems.length;
    throw new BraidError(
      Code.INVALID_ARGUMENT,
      `invalid workflow definition (${n} problem${n === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  ${p.path}: ${p.reason}`).join("\n"),
      problems,
    );
  }
  return def;
}

type Obj = Record<string, unknown>;

/** Reads an object's keys, each known by its snake_case name (camelCase accepted too). */
class Reader {
  private readonly values = new Map<string, unknown>();

  constructor(
    readonly obj: Obj,
    readonly path: string,
    private readonly problems: Violation[],
    known: string[],
  ) {
    const byName = new Map<string, string>();
    for (const key of known) {
      byName.set(key, key);
      byName.set(camel(key), key);
    }
    for (const [key, value] of Object.entries(obj)) {
      const canonical = byName.get(key);
      if (canonical === undefined) {
        problems.push({ path: join(path, key), reason: `unknown field; expected one of ${known.join(", ")}` });
      } else if (this.values.has(canonical)) {
        problems.push({ path: join(path, key), reason: `set twice (as ${canonical} and ${camel(canonical)})` });
      } else if (value !== undefined && value !== null) {
        this.values.set(canonical, value);
      }
    }
  }

  private bad(key: string, reason: string): undefined {
    this.problems.push({ path: join(this.path, key), reason });
    return undefined;
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  raw(key: string): unknown {
    return this.values.get(key);
  }

  string(key: string): string {
    const v = this.values.get(key);
    if (v === undefined) return "";
    if (typeof v !== "string") return this.bad(key, `must be a string (got ${typeOf(v)})`) ?? "";
    return v;
  }

  uint(key: string): number | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      return this.bad(key, `must be a non-negative integer (got ${JSON.stringify(v)})`);
    }
    return v;
  }

  number(key: string): number | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) return this.bad(key, `must be a number (got ${JSON.stringify(v)})`);
    return v;
  }

  bool(key: string): boolean | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") return this.bad(key, `must be true or false (got ${JSON.stringify(v)})`);
    return v;
  }

  duration(key: string): Duration | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    try {
      return toProtoDuration(v as DurationLike, join(this.path, key));
    } catch (e) {
      this.problems.push({ path: join(this.path, key), reason: stripPath((e as Error).message) });
      return undefined;
    }
  }

  /** A concurrency policy by name; unset is UNSPECIFIED (the server's default, queue). */
  concurrencyPolicy(key: string): ConcurrencyPolicy {
    const v = this.values.get(key);
    if (v === undefined) return ConcurrencyPolicy.CONCURRENCY_POLICY_UNSPECIFIED;
    if (typeof v === "string" && Object.prototype.hasOwnProperty.call(CONCURRENCY_POLICIES, v)) {
      return CONCURRENCY_POLICIES[v as ConcurrencyPolicyName];
    }
    const expected = Object.keys(CONCURRENCY_POLICIES).join(", ");
    this.bad(key, `unknown concurrency policy ${JSON.stringify(v)}; expected one of ${expected}`);
    return ConcurrencyPolicy.CONCURRENCY_POLICY_UNSPECIFIED;
  }

  strings(key: string): string[] {
    const v = this.values.get(key);
    if (v === undefined) return [];
    if (!Array.isArray(v)) return this.bad(key, `must be a list of strings (got ${typeOf(v)})`) ?? [];
    const out: string[] = [];
    v.forEach((item, i) => {
      if (typeof item === "string") out.push(item);
      else this.problems.push({ path: `${join(this.path, key)}[${i}]`, reason: `must be a string (got ${typeOf(item)})` });
    });
    return out;
  }

  object(key: string): Obj | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    if (!isObj(v)) return this.bad(key, `must be a mapping (got ${typeOf(v)})`);
    return v;
  }
}

function readDefinition(input: unknown, problems: Violation[]): WorkflowDefinition {
  if (!isObj(input)) {
    problems.push({ path: "definition", reason: `must be a mapping with name and tasks (got ${typeOf(input)})` });
    return { name: "", description: "", tasks: [], settings: undefined };
  }
  const r = new Reader(input, "", problems, ["name", "description", "tasks", "settings"]);
  const name = r.string("name");
  const description = r.string("description");
  const tasks: TaskDefinition[] = [];
  const rawTasks = r.raw("tasks");
  if (rawTasks !== undefined && !Array.isArray(rawTasks)) {
    problems.push({ path: "tasks", reason: `must be a list (got ${typeOf(rawTasks)})` });
  } else if (Array.isArray(rawTasks)) {
    rawTasks.forEach((t, i) => {
      const path = `tasks[${i}]`;
      if (!isObj(t)) {
        problems.push({ path, reason: `must be a mapping (got ${typeOf(t)})` });
        return;
      }
      const tr = new Reader(t, path, problems, ["name", "task_type", "depends_on", "retry", "timeout", "description"]);
      const retry = tr.object("retry");
      tasks.push({
        name: tr.string("name"),
        taskType: tr.string("task_type"),
        dependsOn: tr.strings("depends_on"),
        retry: retry === undefined ? undefined : readRetry(retry, `${path}.retry`, problems),
        timeout: tr.duration("timeout"),
        description: tr.string("description"),
      });
    });
  }
  const s = r.object("settings") ?? {};
  const sr = new Reader(s, "settings", problems, [
    "default_retry",
    "default_task_timeout",
    "max_concurrent_runs",
    "concurrency_policy",
    "max_per_key",
    "retention",
  ]);
  const defaultRetry = sr.object("default_retry");
  const settings: RunSettings = {
    defaultRetry: defaultRetry === undefined ? undefined : readRetry(defaultRetry, "settings.default_retry", problems),
    defaultTaskTimeout: sr.duration("default_task_timeout"),
    maxConcurrentRuns: sr.uint("max_concurrent_runs") ?? 0,
    concurrencyPolicy: sr.concurrencyPolicy("concurrency_policy"),
    maxPerKey: sr.uint("max_per_key") ?? 0,
    retention: sr.duration("retention"),
  };
  return { name, description, tasks, settings };
}

function readRetry(obj: Obj, path: string, problems: Violation[]): RetryPolicy {
  const r = new Reader(obj, path, problems, ["max_attempts", "initial_backoff", "multiplier", "max_backoff", "jitter"]);
  return {
    maxAttempts: r.uint("max_attempts"),
    initialBackoff: r.duration("initial_backoff"),
    multiplier: r.number("multiplier"),
    maxBackoff: r.duration("max_backoff"),
    jitter: r.bool("jitter"),
  };
}

function camel(snake: string): string {
  return snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function stripPath(message: string): string {
  const i = message.indexOf(": ");
  return i >= 0 ? message.slice(i + 2) : message;
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return typeof v;
}
