// The handler span (needs no server): a child of the assignment's traceparent, with the attempt's attributes and outcome.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SpanKind, SpanStatusCode, trace, type Context, type SpanOptions, type SpanStatus } from "@opentelemetry/api";
import { startHandlerSpan, type TracerProviderLike } from "../src/worker/tracing";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID = "00f067aa0ba902b7";

type Recorded = { name: string; options?: SpanOptions; parent?: Context; status?: SpanStatus; ended: boolean };

/** A TracerProvider that records what the worker asks of it. */
function recorder(): { provider: TracerProviderLike; spans: Recorded[] } {
  const spans: Recorded[] = [];
  const provider = {
    getTracer: () => ({
      startSpan(name: string, options?: SpanOptions, parent?: Context) {
        const rec: Recorded = { name, options, parent, ended: false };
        spans.push(rec);
        return {
          setStatus(status: SpanStatus) {
            rec.status = status;
            return this;
          },
          end() {
            rec.ended = true;
          },
        };
      },
    }),
  };
  return { provider, spans };
}

describe("handler span", () => {
  it("is a child of the assignment's traceparent and records a failure", () => {
    const { provider, spans } = recorder();
    const span = startHandlerSpan(
      { "braid.task_id": "t1", "braid.attempt": 1 },
      { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` },
      provider,
    );
    assert.equal(
      span.run(() => 42),
      42,
    );
    span.end("boom");
    assert.equal(spans.length, 1);
    const [s] = spans;
    assert.equal(s.name, "handler");
    assert.equal(s.options?.kind, SpanKind.CONSUMER);
    assert.deepEqual(s.options?.attributes, { "braid.task_id": "t1", "braid.attempt": 1 });
    const parent = s.parent && trace.getSpanContext(s.parent);
    assert.equal(parent?.traceId, TRACE_ID);
    assert.equal(parent?.spanId, PARENT_ID);
    assert.equal(parent?.isRemote, true);
    assert.deepEqual(s.status, { code: SpanStatusCode.ERROR, message: "boom" });
    assert.equal(s.ended, true);
  });

  it("is a root without a (valid) trace context, and ends without a status on success", () => {
    const contexts: Record<string, string>[] = [{}, { traceparent: "garbage" }, { traceparent: `00-${"0".repeat(32)}-${PARENT_ID}-01` }];
    for (const traceContext of contexts) {
      const { provider, spans } = recorder();
      startHandlerSpan({}, traceContext, provider).end();
      assert.equal(spans[0].parent && trace.getSpanContext(spans[0].parent), undefined);
      assert.equal(spans[0].status, undefined);
      assert.equal(spans[0].ended, true);
    }
  });
});
