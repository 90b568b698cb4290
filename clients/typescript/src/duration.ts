// Durations: humantime strings ("500ms", "1s", "1m 30s"), as in workflow files, to and from
// google.protobuf.Duration.

import type { Duration } from "./gen/google/protobuf/duration";

/**
 * A duration as accepted by the SDK: a humantime string as in workflow files ("500ms", "1s",
 * "5m", "1m 30s", "1day"), a number of milliseconds, or a `google.protobuf.Duration`.
 */
export type DurationLike = string | number | { seconds: number; nanos?: number };

const NANOS_PER_SECOND = 1_000_000_000n;

/** Units humantime (the server's parser for files) accepts, in nanoseconds. */
const UNITS: Record<string, bigint> = {};
function unit(nanos: bigint, ...names: string[]): void {
  for (const name of names) UNITS[name] = nanos;
}
unit(1n, "nanos", "nsec", "ns");
unit(1_000n, "usec", "us", "µs");
unit(1_000_000n, "millis", "msec", "ms");
unit(NANOS_PER_SECOND, "seconds", "second", "secs", "sec", "s");
unit(60n * NANOS_PER_SECOND, "minutes", "minute", "mins", "min", "m");
unit(3_600n * NANOS_PER_SECOND, "hours", "hour", "hrs", "hr", "h");
unit(86_400n * NANOS_PER_SECOND, "days", "day", "d");
unit(604_800n * NANOS_PER_SECOND, "weeks", "week", "w");
unit(2_630_016n * NANOS_PER_SECOND, "months", "month", "M");
unit(31_557_600n * NANOS_PER_SECOND, "years", "year", "y");

/** Parses a humantime string ("1m 30s", "500ms") into nanoseconds; throws a RangeError when it is not one. */
export function parseHumantime(text: string): bigint {
  const source = text.trim();
  if (source === "") throw new RangeError("empty duration");
  let total = 0n;
  let rest = source;
  while (rest.length > 0) {
    const m = /^(\d+)\s*([A-Za-zµ]+)\s*/.exec(rest);
    if (!m) {
      throw new RangeError(`invalid duration ${JSON.stringify(text)}: expected a number and a unit, e.g. "500ms", "30s", "1m 30s"`);
    }
    const factor = UNITS[m[2]];
    if (factor === undefined) {
      throw new RangeError(`invalid duration ${JSON.stringify(text)}: unknown unit ${JSON.stringify(m[2])}`);
    }
    total += BigInt(m[1]) * factor;
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** Converts a duration in any accepted form to a `google.protobuf.Duration`. */
export function toProtoDuration(value: DurationLike, path = "duration"): Duration {
  if (typeof value === "string") {
    let nanos: bigint;
    try {
      nanos = parseHumantime(value);
    } catch (e) {
      throw new RangeError(`${path}: ${(e as Error).message}`);
    }
    return { seconds: Number(nanos / NANOS_PER_SECOND), nanos: Number(nanos % NANOS_PER_SECOND) };
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`${path}: a duration in milliseconds must be a finite non-negative number (got ${value})`);
    }
    const nanos = BigInt(Math.round(value * 1_000_000));
    return { seconds: Number(nanos / NANOS_PER_SECOND), nanos: Number(nanos % NANOS_PER_SECOND) };
  }
  if (value !== null && typeof value === "object" && typeof value.seconds === "number") {
    return { seconds: value.seconds, nanos: value.nanos ?? 0 };
  }
  throw new TypeError(`${path}: expected a duration such as "30s", a number of milliseconds, or {seconds, nanos}`);
}

/** Milliseconds of a `google.protobuf.Duration` (undefined stays undefined). */
export function durationToMillis(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  return d.seconds * 1000 + Math.floor(d.nanos / 1_000_000);
}

/** Milliseconds of any accepted duration form. */
export function toMillis(value: DurationLike, path = "duration"): number {
  const d = toProtoDuration(value, path);
  return d.seconds * 1000 + d.nanos / 1_000_000;
}

/** A humantime-style rendering of milliseconds, e.g. 90500 → "1m 30s 500ms". */
export function formatMillis(ms: number): string {
  if (ms === 0) return "0s";
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [size, name] of [
    [86_400_000, "d"],
    [3_600_000, "h"],
    [60_000, "m"],
    [1_000, "s"],
    [1, "ms"],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${name}`);
      rest %= size;
    }
  }
  return parts.join(" ");
}
