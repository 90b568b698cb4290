// The worker's log: structured lines on stderr by default, or any logger with the four levels.

export type LogFields = Record<string, unknown>;

/** Where the worker logs; `console` fits, and so do pino and winston instances. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const LEVELS = ["debug", "info", "warn", "error", "off"] as const;
type Level = (typeof LEVELS)[number];

/**
 * Logs `LEVEL message key=value ...` lines to stderr at or above `level` (default: the
 * BRAID_LOG environment variable, else "info").
 */
export function stderrLogger(level?: Level, prefix = "braid-worker"): Logger {
  const wanted = (level ?? (process.env.BRAID_LOG as Level | undefined) ?? "info").toLowerCase() as Level;
  const min = Math.max(0, LEVELS.indexOf(wanted));
  const write = (lvl: Level, message: string, fields?: LogFields) => {
    if (LEVELS.indexOf(lvl) < min) return;
    let line = `${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${prefix}: ${message}`;
    for (const [k, v] of Object.entries(fields ?? {})) {
      if (v === undefined) continue;
      line += ` ${k}=${typeof v === "string" ? (/[\s"=]/.test(v) ? JSON.stringify(v) : v) : safeJson(v)}`;
    }
    process.stderr.write(line + "\n");
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
