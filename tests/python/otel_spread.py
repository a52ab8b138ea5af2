"""Sends traces over two ingesters with the real OpenTelemetry Python SDK and records what each
ingester acknowledged.

Two TracerProviders: "spread-a" exports OTLP/gRPC to one ingester, "spread-b" OTLP/HTTP to the
other. Each trace (a root and three children) goes wholly through one of them, except every
fifth trace, which is split: the root and one child through A, two children through B (made by
B's tracer under A's root context), so a querier must merge it from both ingesters.

Only acknowledged spans are counted: each exporter is wrapped, and a span counts once the export
that carried it returned SUCCESS. Spans the SDK dropped (queue full) or whose export failed are
reported and never counted.

Span times are set `--hours-ago` hours back (default 3), at ten minutes past the start of that
hour, 1 ms apart: every span of a run falls in one hour window that is already "settled" for the
compactor (its planner merges every block of such a window into one), whatever the wall clock.

usage:
  otel_spread.py --grpc HOST:PORT --http http://HOST:PORT/v1/traces --out sent.json --traces 60
  otel_spread.py ... --out sent.json --seconds 25 --rate 30

The JSON written to --out: {"traces": {"<32 hex>": spans, ...}, "spans": N, "split": [ids],
"failed_spans": N, "dropped_spans": N, "base_unix_nano": N}. Exits 1 after writing it when any
span was not acknowledged.
"""

import argparse
import json
import sys
import threading
import time
from collections import Counter

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind


class AckCounter(SpanExporter):
    """Forwards to a real exporter; counts per trace the spans of every successful export."""

    def __init__(self, inner):
        self.inner = inner
        self.lock = threading.Lock()
        self.acked = Counter()
        self.failed_spans = 0
        self.failed_exports = 0

    def export(self, spans):
        result = self.inner.export(spans)
        with self.lock:
            if result == SpanExportResult.SUCCESS:
                for span in spans:
                    self.acked[span.context.trace_id] += 1
            else:
                self.failed_exports += 1
                self.failed_spans += len(spans)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


class Side:
    """One TracerProvider exporting to one ingester."""

    def __init__(self, service, exporter):
        self.provider = TracerProvider(resource=Resource({"service.name": service}))
        self.counter = AckCounter(exporter)
        self.provider.add_span_processor(
            BatchSpanProcessor(self.counter, max_export_batch_size=64, schedule_delay_millis=50,
                               max_queue_size=8192)
        )
        self.tracer = self.provider.get_tracer("strata.e2e.spread", "1.0.0")
        self.ended = 0

    def span(self, name, context, kind, start, end, attributes):
        s = self.tracer.start_span(name, context=context, kind=kind, start_time=start,
                                   attributes=attributes)
        s.end(end_time=end)
        self.ended += 1
        return s


def send_trace(a, b, t, base):
    """Trace number `t`: through A (t % 5 in 0, 1), through B (2, 3) or split over both (4)."""
    start = base + t * 1_000_000
    split = t % 5 == 4
    root_side = a if t % 5 in (0, 1, 4) else b
    root = root_side.tracer.start_span(
        f"GET /shop/{t % 7}", kind=SpanKind.SERVER, start_time=start,
        attributes={"http.request.method": "GET", "app.trace.n": t, "app.split": split},
    )
    ctx = trace.set_span_in_context(root)
    children = [a, b, b] if split else [root_side] * 3
    for i, side in enumerate(children):
        side.span(f"step-{i}", ctx, SpanKind.INTERNAL, start + 10_000 * (i + 1),
                  start + 10_000 * (i + 2), {"app.step": i})
    root.end(end_time=start + 900_000)
    root_side.ended += 1
    return root.get_span_context().trace_id, split


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True, help="ingester A's OTLP/gRPC host:port")
    parser.add_argument("--http", required=True, help="ingester B's OTLP/HTTP traces URL")
    parser.add_argument("--out", required=True)
    parser.add_argument("--traces", type=int, default=60, help="how many traces (without --seconds)")
    parser.add_argument("--seconds", type=float, default=None, help="send for this long instead")
    parser.add_argument("--rate", type=float, default=30.0, help="traces per second with --seconds")
    parser.add_argument("--hours-ago", type=int, default=3)
    args = parser.parse_args()

    now = time.time_ns()
    hour = 3_600_000_000_000
    base = (now - args.hours_ago * hour) // hour * hour + 600_000_000_000

    a = Side("spread-a", GrpcExporter(endpoint=args.grpc, insecure=True))
    b = Side("spread-b", HttpExporter(endpoint=args.http))
    split_ids = []
    began = time.monotonic()
    t = 0
    while True:
        if args.seconds is None:
            if t >= args.traces:
                break
        else:
            elapsed = time.monotonic() - began
            if elapsed >= args.seconds:
                break
            ahead = t / args.rate - elapsed
            if ahead > 0:
                time.sleep(ahead)
        trace_id, split = send_trace(a, b, t, base)
        if split:
            split_ids.append(f"{trace_id:032x}")
        t += 1
        if args.seconds is not None and t % 100 == 0:
            print(f"{t} traces after {time.monotonic() - began:.1f}s", file=sys.stderr, flush=True)

    flushed = [side.provider.force_flush(60_000) for side in (a, b)]
    for side in (a, b):
        side.provider.shutdown()
    acked = Counter()
    for side in (a, b):
        acked.update(side.counter.acked)
    failed = sum(side.counter.failed_spans for side in (a, b))
    ended = sum(side.ended for side in (a, b))
    dropped = ended - sum(acked.values()) - failed
    out = {
        "traces": {f"{tid:032x}": n for tid, n in sorted(acked.items())},
        "spans": sum(acked.values()),
        "split": split_ids,
        "failed_spans": failed,
        "dropped_spans": dropped,
        "base_unix_nano": base,
        "seconds": round(time.monotonic() - began, 2),
    }
    with open(args.out, "w") as f:
        json.dump(out, f)
    print(f"sent {t} traces, {ended} spans; acknowledged {len(acked)} traces, {out['spans']} spans; "
          f"{failed} failed, {dropped} dropped; force_flush {flushed}; {out['seconds']}s")
    if failed or dropped or not all(flushed):
        sys.exit(1)


if __name__ == "__main__":
    main()
