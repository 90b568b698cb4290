/**
 * The handler span of each attempt: a child of the assignment's W3C `traceparent` (the control
 * plane's `dispatch` span), made through `@opentelemetry/api` when it is installed (an optional
 * peer dependency) and nothing at all otherwise. The tracer provider (the worker's
 * `tracerProvider`, else the global one) decides where spans go.
 */
import type * as Otel from "@opentelemetry/api";

/** What the worker needs of an OpenTelemetry TracerProvider. */
export interface TracerProviderLike {
  getTracer(name: string, version?: string): unknown;
}

/** A started handler span: `run` calls the handler with the span as the active context. */
export interface HandlerSpan {
  run<T>(fn: () => T): T;
  /** Ends the span; an error message sets its status to error. */
  end(error?: string): void;
}

const NONE: HandlerSpan = { run: (fn) => fn(), end: () => {} };
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

let api: typeof Otel | null | undefined;

function otel(): typeof Otel | null {
  if (api === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      api = require("@opentelemetry/api") as typeof Otel;
    } catch {
      api = null;
    }
  }
  return api;
}

/** The remote span context a `traceparent` (and `tracestate`) name, or undefined. */
function remoteParent(o: typeof Otel, traceContext: Record<string, string>): Otel.Context {
  const m = TRACEPARENT.exec((traceContext.traceparent ?? "").trim().toLowerCase());
  if (!m || m[1] === "ff" || /^0+$/.test(m[2]) || /^0+$/.test(m[3])) return o.ROOT_CONTEXT;
  const state = traceContext.tracestate;
  return o.trace.setSpanContext(o.ROOT_CONTEXT, {
    traceId: m[2],
    spanId: m[3],
    traceFlags: parseInt(m[4], 16) & 1,
    isRemote: true,
    traceState: state ? o.createTraceState(state) : undefined,
  });
}

/** Starts the `handler` span of an attempt under its trace context. */
export function startHandlerSpan(
  attributes: Record<string, string | number>,
  traceContext: Record<string, string>,
  provider?: TracerProviderLike,
): HandlerSpan {
  const o = otel();
  if (!o) return NONE;
  const parent = remoteParent(o, traceContext);
  const tp = (provider as Otel.TracerProvider | undefined) ?? o.trace.getTracerProvider();
  const span = tp.getTracer("@braid/client").startSpan("handler", { kind: o.SpanKind.CONSUMER, attributes }, parent);
  const active = o.trace.setSpan(parent, span);
  return {
    run: (fn) => o.context.with(active, fn),
    end: (error) => {
      if (error !== undefined) span.setStatus({ code: o.SpanStatusCode.ERROR, message: error });
      span.end();
    },
  };
}
