// Workflow definitions: the file form (as in YAML/JSON files), declaring them in code, and
// converting either to the wire form.

import { Code, BraidError, type Violation } from "./errors";
import { toProtoDuration, type DurationLike } from "./duration";
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

/** Run-level settings as in workflow files. */
export interface RunSettingsFile {
  default_retry?: RetryPolicyFile;
  default_task_timeout?: DurationLike;
  max_concurrent_runs?: number;
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
    if (o.defaultRetry !== undefined || o.defaultTaskTimeout !== undefined || o.maxConcurrentRuns !== undefined) {
      file.settings = {};
      if (o.defaultRetry !== undefined) file.settings.default_retry = retryToFile(o.defaultRetry);
      if (o.defaultTaskTimeout !== undefined) file.settings.default_task_timeout = o.defaultTaskTimeout;
      if (o.maxConcurrentRuns !== undefined) file.settings.max_concurrent_runs = o.maxConcurrentRuns;
    }
    return file;
  }

  /** The wire form (`braid.v1.WorkflowDefinition`). */
  toProto(): WorkflowDefinition {
    return toWorkflowDefinition(this.toFile());
  }
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
  const sr = new Reader(s, "settings", problems, ["default_retry", "default_task_timeout", "max_concurrent_runs"]);
  const defaultRetry = sr.object("default_retry");
  const settings: RunSettings = {
    defaultRetry: defaultRetry === undefined ? undefined : readRetry(defaultRetry, "settings.default_retry", problems),
    defaultTaskTimeout: sr.duration("default_task_timeout"),
    maxConcurrentRuns: sr.uint("max_concurrent_runs") ?? 0,
    // Not in the file form this SDK reads yet: the wire defaults (queue, unlimited per key).
    concurrencyPolicy: ConcurrencyPolicy.CONCURRENCY_POLICY_UNSPECIFIED,
    maxPerKey: 0,
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
