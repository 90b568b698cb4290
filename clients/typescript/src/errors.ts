// BraidError: a failed call, with its gRPC code and, for INVALID_ARGUMENT, the violations from
// the google.rpc.BadRequest in `grpc-status-details-bin`.

import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Metadata, status as Status, type ServiceError } from "@grpc/grpc-js";

/** One problem of a refused request: where (e.g. `tasks[0].depends_on[0]`) and why. */
export interface Violation {
  path: string;
  reason: string;
}

/** gRPC status codes by number (the values of `google.rpc.Code`). */
export const Code = Status;
export type Code = Status;

/** The name of a gRPC status code, e.g. 3 → "INVALID_ARGUMENT". */
export function codeName(code: number): string {
  return (Status as unknown as Record<number, string>)[code] ?? `CODE_${code}`;
}

/** A call to Braid failed. `code` is the gRPC status code (see `Code`). */
export class BraidError extends Error {
  /** The gRPC status code, e.g. `Code.INVALID_ARGUMENT` (3). */
  readonly code: number;
  /** The status message from the server (or the local reason). */
  readonly details: string;
  /** For INVALID_ARGUMENT: every problem the server reported (google.rpc.BadRequest). */
  readonly violations: Violation[];
  /** The trailing metadata of the call, if any. */
  readonly metadata?: Metadata;

  constructor(code: number, details: string, violations: Violation[] = [], metadata?: Metadata, options?: { cause?: unknown }) {
    super(formatMessage(code, details, violations), options);
    this.name = "BraidError";
    this.code = code;
    this.details = details;
    this.violations = violations;
    this.metadata = metadata;
  }

  /** The code's name, e.g. "INVALID_ARGUMENT". */
  get codeName(): string {
    return codeName(this.code);
  }

  /** Converts a grpc-js error (or anything thrown by a call) into a BraidError. */
  static from(error: unknown): BraidError {
    if (error instanceof BraidError) return error;
    const e = error as Partial<ServiceError> | undefined;
    if (e && typeof e === "object" && typeof e.code === "number") {
      const metadata = e.metadata instanceof Metadata ? e.metadata : undefined;
      return new BraidError(e.code, e.details ?? e.message ?? "", violationsOf(metadata), metadata, { cause: error });
    }
    return new BraidError(Status.UNKNOWN, error instanceof Error ? error.message : String(error), [], undefined, {
      cause: error,
    });
  }
}

function formatMessage(code: number, details: string, violations: Violation[]): string {
  let text = `${codeName(code)}: ${details}`;
  // The server's message usually lists the problems already; add them only when it does not.
  const missing = violations.filter((v) => !details.includes(v.reason));
  for (const v of missing) text += `\n  ${v.path}: ${v.reason}`;
  return text;
}

const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";

/** The field violations of a google.rpc.BadRequest in the `grpc-status-details-bin` trailer. */
export function violationsOf(metadata: Metadata | undefined): Violation[] {
  const raw = metadata?.get("grpc-status-details-bin") ?? [];
  const out: Violation[] = [];
  for (const value of raw) {
    const bytes = typeof value === "string" ? Buffer.from(value, "base64") : value;
    try {
      for (const detail of decodeStatusDetails(bytes)) {
        if (detail.typeUrl === BAD_REQUEST_TYPE) out.push(...decodeBadRequest(detail.value));
      }
    } catch {
      // Undecodable details are ignored: the status message still says what is wrong.
    }
  }
  return out;
}

/**
 * Decodes `google.rpc.Status { int32 code = 1; string message = 2; repeated google.protobuf.Any
 * details = 3; }` and returns the `Any`s (`string type_url = 1; bytes value = 2;`).
 */
export function decodeStatusDetails(bytes: Uint8Array): { typeUrl: string; value: Uint8Array }[] {
  const reader = new BinaryReader(bytes);
  const details: { typeUrl: string; value: Uint8Array }[] = [];
  while (reader.pos < reader.len) {
    const [field, wire] = reader.tag();
    if (field === 3 && wire === WireType.LengthDelimited) {
      const any = new BinaryReader(reader.bytes());
      let typeUrl = "";
      let value: Uint8Array = new Uint8Array();
      while (any.pos < any.len) {
        const [f, w] = any.tag();
        if (f === 1 && w === WireType.LengthDelimited) typeUrl = any.string();
        else if (f === 2 && w === WireType.LengthDelimited) value = any.bytes();
        else any.skip(w);
      }
      details.push({ typeUrl, value });
    } else {
      reader.skip(wire);
    }
  }
  return details;
}

/**
 * Decodes `google.rpc.BadRequest { repeated FieldViolation field_violations = 1; }` with
 * `FieldViolation { string field = 1; string description = 2; ... }`.
 */
export function decodeBadRequest(bytes: Uint8Array): Violation[] {
  const reader = new BinaryReader(bytes);
  const out: Violation[] = [];
  while (reader.pos < reader.len) {
    const [field, wire] = reader.tag();
    if (field === 1 && wire === WireType.LengthDelimited) {
      const fv = new BinaryReader(reader.bytes());
      let path = "";
      let reason = "";
      while (fv.pos < fv.len) {
        const [f, w] = fv.tag();
        if (f === 1 && w === WireType.LengthDelimited) path = fv.string();
        else if (f === 2 && w === WireType.LengthDelimited) reason = fv.string();
        else fv.skip(w);
      }
      out.push({ path, reason });
    } else {
      reader.skip(wire);
    }
  }
  return out;
}
